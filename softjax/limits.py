r"""How fast the smooth arg max converges to the arg max, and where it does not.

:math:`\sigma_\beta(z) \to \operatorname{argmax}(z)` as :math:`\beta \to +\infty` pointwise but not
uniformly in :math:`z`: with :math:`A` the set of the :math:`k` maximal entries and
:math:`\delta = \operatorname{margin}(z)` the gap to the best entry outside it, the mass left off
the arg max set obeys

.. math::
    \frac{e^{-\beta\,\Delta}\,(n - k)}{k + (n - k)\,e^{-\beta\,\Delta}}
    \;\le\; 1 - \sum_{i \in A} \sigma_\beta(z)_i \;\le\;
    \frac{(n - k)\,e^{-\beta\delta}}{k + (n - k)\,e^{-\beta\delta}},

(:math:`\Delta` the largest gap), so the β needed for a given accuracy grows like
:math:`1/\delta` and is unbounded near the singular set of inputs with a tie for the maximum,
where the limit jumps. :func:`margin` measures the distance to that set, :func:`is_singular` tests
membership, and :func:`beta_for_tolerance` finds the smallest sufficient β.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from softjax._core import (
    Axis,
    as_beta,
    as_mask,
    as_real,
    compute_dtype,
    count,
    debug_checked,
    nan_from,
    nan_max,
    normalize_axis,
    squeeze,
)
from softjax.smooth import _lse

__all__ = ["beta_for_tolerance", "is_singular", "margin"]

_INF = float("inf")


def _prepare(z, axis, where, exact_integers=False):
    """(z, live, axes, dtype); integers stay integers with ``exact_integers``, so that ties and
    gaps are decided in their own dtype (float32 cannot tell 2²⁴ + 1 from 2²⁴)."""
    z = jnp.asarray(z)
    if exact_integers and jnp.issubdtype(z.dtype, jnp.integer):
        dtype = compute_dtype(z.dtype)
    else:
        z, compute = as_real(z, "z")
        dtype = z.dtype
        z = z.astype(compute)
    axes = normalize_axis(axis, z.ndim)
    mask = as_mask(where, z.shape)
    live = jnp.ones(z.shape, bool) if mask is None else mask
    return z, live, axes, dtype


def _lowest(z):
    return jnp.iinfo(z.dtype).min if jnp.issubdtype(z.dtype, jnp.integer) else -_INF


def _top(z, live, axes):
    """(top, k, n): the largest live entry, how many live entries equal it, how many are live."""
    fill = _lowest(z)
    top = jnp.max(jnp.where(live, z, fill), axis=axes, keepdims=True, initial=fill)
    if not jnp.issubdtype(z.dtype, jnp.integer):
        top = nan_max(jnp.where(live, z, -_INF), axes)
    k = jnp.sum(live & (z == top), axis=axes, keepdims=True)
    n = jnp.sum(live, axis=axes, keepdims=True)
    return top, k, n


def _gap(top, second, dtype):
    """top − second ≥ 0 as a float; for integers exact before the rounding to ``dtype`` (the
    difference taken modulo 2^bits in the unsigned type of the same width)."""
    if not jnp.issubdtype(top.dtype, jnp.integer):
        return top - second
    unsigned = jnp.dtype(f"uint{jnp.iinfo(top.dtype).bits}")
    return (top.astype(unsigned) - second.astype(unsigned)).astype(dtype)


@debug_checked
def margin(z: ArrayLike, *, axis: Axis = -1, where: ArrayLike | None = None) -> jax.Array:
    r"""The gap between the largest entry and the second largest: the distance to a tie.

    .. math::
        \operatorname{margin}(z) = z_{(1)} - z_{(2)}, \qquad z_{(1)} \ge z_{(2)} \ge \dots

    It is 0 exactly when the maximum is tied (:func:`is_singular`); away from ties it sets the
    rate of convergence to the arg max,
    :math:`\|\sigma_\beta(z) - e_{\operatorname{argmax} z}\|_1 \le 2(n-1)e^{-\beta\delta}` with
    :math:`\delta = \operatorname{margin}(z)` and :math:`\beta \ge 0`. Repeated values count
    separately (``[3, 3, 1]`` has margin 0). With fewer than two unmasked entries there is no
    competitor and the margin is :math:`+\infty` (the arg max is exact already at
    :math:`\beta = 0`); it is also :math:`+\infty` when the maximum is :math:`+\infty` and
    unique, or the runner-up is :math:`-\infty`. Two entries at :math:`\pm\infty` tie (margin
    0); an unmasked NaN gives NaN. Its gradient is :math:`e_{(1)} - e_{(2)}` away from ties.

    Args:
      z: scores, any shape.
      axis: the axis or axes to compare over (int, tuple, or None for all).
      where: optional boolean mask; False entries are left out.

    Returns:
      The margin of each slice, the reduced array (non-negative).

    Example:
      >>> import softjax as sjx
      >>> print(sjx.margin([[1.0, 4.0, 2.5], [3.0, 0.0, 3.0]]))
      [1.5 0. ]
      >>> print(sjx.margin([1.0, 4.0, 2.5], where=[True, False, True]))
      1.5

    References:
      Gao & Pavel, "On the properties of the softmax function with application in game theory
      and reinforcement learning" (2017), arXiv:1704.00805.
    """
    z, live, axes, dtype = _prepare(z, axis, where, exact_integers=True)
    top, k, n = _top(z, live, axes)
    fill = _lowest(z)
    rest = jnp.where(live & (z != top), z, fill)
    second = jnp.max(rest, axis=axes, keepdims=True, initial=fill)
    # A tie at ±∞ would give ∞ − ∞: the tie branch is taken first.
    gap = jnp.where(k >= 2, 0.0, _gap(top, jnp.where(k >= 2, top, second), dtype))
    gap = jnp.where(n < 2, _INF, gap)
    if not jnp.issubdtype(z.dtype, jnp.integer):
        gap = nan_from(top, gap)
    return squeeze(gap, axes).astype(dtype)


@debug_checked
def is_singular(z: ArrayLike, *, axis: Axis = -1, where: ArrayLike | None = None) -> jax.Array:
    r"""Whether the arg max is not unique: True where two or more entries tie for the maximum.

    .. math:: \#\{i : z_i = \max_j z_j\} \ge 2

    These inputs form the singular set where the limit :math:`\beta \to +\infty` of
    :func:`~softjax.softargmax` is discontinuous (it splits the mass :math:`1/k` between the tied
    entries, and any perturbation changes it); elsewhere :func:`margin` is positive. Only unmasked
    entries count; ties at :math:`\pm\infty` are ties; a slice with a NaN is not singular (its
    softargmax is NaN).

    Args:
      z: scores, any shape.
      axis: the axis or axes to compare over (int, tuple, or None for all).
      where: optional boolean mask; False entries are left out.

    Returns:
      A boolean array, the reduced shape.

    Example:
      >>> import softjax as sjx
      >>> print(sjx.is_singular([[1.0, 4.0, 4.0], [1.0, 4.0, 2.0]]))
      [ True False]
      >>> print(sjx.is_singular([1.0, 4.0, 4.0], where=[True, True, False]))
      False

    References:
      Gao & Pavel, "On the properties of the softmax function with application in game theory
      and reinforcement learning" (2017), arXiv:1704.00805.
    """
    z, live, axes, _ = _prepare(z, axis, where, exact_integers=True)
    _, k, _ = _top(z, live, axes)
    return squeeze(k >= 2, axes)


def _check_eps(eps):
    if isinstance(eps, jax.core.Tracer):
        return
    arr = np.asarray(eps)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"eps must be a real number or array, got {eps!r}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"eps must be real, got {eps!r}")
    if not np.all((arr > 0) & (arr < 1)):
        raise ValueError(f"eps must be in (0, 1), got {eps!r}")


@debug_checked
def beta_for_tolerance(
    z: ArrayLike, eps: ArrayLike, *, axis: Axis = -1, where: ArrayLike | None = None
) -> jax.Array:
    r"""The smallest β ≥ 0 at which softargmax puts at most ``eps`` of its mass off the arg max.

    .. math::
        \beta^*(z, \varepsilon) = \min\Big\{\beta \ge 0 :
        1 - \sum_{i \in A} \sigma_\beta(z)_i \le \varepsilon\Big\},
        \qquad A = \{i : z_i = \max_j z_j\}.

    The arg max set :math:`A` contains every tied maximum, so ties are fine: the condition is
    about the mass on the losers. With :math:`k = |A|`, :math:`g_i = \max z - z_i` and
    :math:`t = k\varepsilon/(1-\varepsilon)`, the condition reads
    :math:`R(\beta) = \sum_{i \notin A} e^{-\beta g_i} \le t`; :math:`R` is decreasing and
    log-convex, so :math:`\beta^*` lies in the closed-form bracket
    :math:`\log(m/t)/\max g \le \beta^* \le \log(m/t)/\min g` (:math:`m` losers), which a fixed
    number of bisection steps in :math:`\log\beta` (all rows at once, ``jit``-able) narrows to
    about machine precision.

    Special cases: 0 when the condition already holds at :math:`\beta = 0`
    (:math:`\varepsilon \ge 1 - k/n`, e.g. all entries equal, or fewer than two); entries at
    :math:`-\infty` count at :math:`\beta = 0` (softargmax is uniform there) and vanish for any
    :math:`\beta > 0`, so when they are what violates the condition at 0 the answer is the smallest
    positive normal number (the infimum 0 is not attained); NaN for a slice with an unmasked NaN.
    A Python or NumPy ``eps`` must lie in :math:`(0, 1)`; a traced ``eps`` is not checked:
    :math:`\varepsilon \le 0` gives :math:`+\infty` (the off mass vanishes only in the limit;
    it is impossible for :math:`\varepsilon < 0`), :math:`\varepsilon \ge 1` gives 0, NaN gives
    NaN. For the arg min use ``-z``. The result
    carries no gradient.

    Args:
      z: scores, any shape.
      eps: the tolerance on the off-arg-max mass, in :math:`(0, 1)`: a scalar or one per slice
        (broadcastable to the reduced shape with the reduced axes kept).
      axis: the axis or axes of the distribution (int, tuple, or None for all).
      where: optional boolean mask; False entries are left out.

    Returns:
      :math:`\beta^*` for each slice, the reduced array.

    Raises:
      ValueError: if a concrete ``eps`` is outside :math:`(0, 1)`.
      TypeError: if ``eps`` is not real.

    Example:
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> z = jnp.array([0.0, 1.0, 3.0])
      >>> beta = sjx.beta_for_tolerance(z, 0.01)
      >>> print(f"{float(beta):.4f} {float(sjx.softargmax(z, beta=beta)[2]):.4f}")
      2.3434 0.9900
      >>> print(sjx.beta_for_tolerance(jnp.array([[0.0, 1.0], [2.0, 2.0]]), 0.1))
      [2.1972246 0.       ]

    References:
      Gao & Pavel, "On the properties of the softmax function with application in game theory
      and reinforcement learning" (2017), arXiv:1704.00805.
    """
    _check_eps(eps)
    z, live, axes, dtype = _prepare(z, axis, where)
    eps = as_beta(eps, z.shape, axes, z.dtype, "eps")
    info = jnp.finfo(z.dtype)

    top, k, n = _top(z, live, axes)
    gap = top - jnp.where(live, z, top)  # 0 on masked entries
    losers = live & (z != top)
    finite = losers & jnp.isfinite(gap)
    m = count(z, finite, axes)  # losers that still count for β > 0
    kf, nf = k.astype(z.dtype), n.astype(z.dtype)
    gmin = jnp.min(jnp.where(finite, gap, _INF), axis=axes, keepdims=True, initial=_INF)
    gmax = jnp.max(jnp.where(finite, gap, 0.0), axis=axes, keepdims=True, initial=0.0)

    safe_eps = jnp.clip(eps, info.tiny, 1 - info.epsneg)
    log_t = jnp.log(kf) + jnp.log(safe_eps) - jnp.log1p(-safe_eps)
    at_zero = (nf - kf) <= eps * nf  # the condition holds at β = 0
    at_tiny = (m == 0) | (jnp.log(jnp.maximum(m, 1.0)) <= log_t)  # holds for every β > 0
    search = ~at_zero & ~at_tiny & (eps > 0)

    # log R(β) − log t with R(β) = e^{−β gmin} Σ e^{−β(g − gmin)}: shifted before the product.
    h = jnp.where(finite, gap - gmin, 0.0)
    g0 = jnp.where(search, gmin, 1.0)

    def excess(log_beta):
        beta = jnp.exp(log_beta)
        log_r = _lse(-beta * h, jnp.ones((), z.dtype), finite, axes) - beta * g0
        return log_r - log_t

    log_l = jnp.log(jnp.where(search, jnp.log(m) - log_t, 1.0))
    lo = log_l - jnp.log(jnp.where(search, gmax, 1.0))
    hi = jnp.minimum(log_l - jnp.log(g0), np.log(info.max))
    lo = jnp.minimum(lo, hi)

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        ok = excess(mid) <= 0
        return jnp.where(ok, lo, mid), jnp.where(ok, mid, hi)

    _, hi = jax.lax.fori_loop(0, info.nmant + 16, bisect, (lo, hi))
    out = jnp.where(at_tiny, info.tiny, jnp.exp(hi))
    # ε ≤ 0: only the limit β = +∞ removes the off mass (unless every loser is at −∞ and ε = 0).
    out = jnp.where(eps <= 0, jnp.where((eps == 0) & (m == 0), info.tiny, _INF), out)
    out = jnp.where(at_zero, 0.0, out)
    out = nan_from(eps, nan_from(top, out))
    return jax.lax.stop_gradient(squeeze(out, axes)).astype(dtype)
