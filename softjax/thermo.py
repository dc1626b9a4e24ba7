r"""Statistical mechanics: the smooth arg max as the Boltzmann distribution.

Read the inputs as the energies :math:`E_i` of the micro-states of a system and β as its coldness
(inverse temperature). The softargmax of :math:`-E` is the Boltzmann (Gibbs) distribution

.. math::
    p_i = \frac{e^{-\beta E_i}}{Z(\beta)}, \qquad Z(\beta) = \sum_i e^{-\beta E_i},

and the thermodynamic quantities are its moments and the derivatives of :math:`\log Z`:

.. math::
    \langle E\rangle = -\frac{\partial \log Z}{\partial \beta}, \qquad
    C = \beta^2 \frac{\partial^2 \log Z}{\partial \beta^2} = \beta^2 \operatorname{Var}(E), \qquad
    F = -\frac{\log Z}{\beta}, \qquad S = \beta(\langle E\rangle - F).

Every function takes β in :math:`[-\infty, +\infty]` as an ordinary JAX value:
:math:`\beta = +\infty` is the ground state (absolute zero), :math:`\beta = 0` infinite
temperature (the uniform distribution), and :math:`\beta < 0` the negative temperatures of
systems with bounded energy, where the highest energies are the most populated. The
thermodynamic entropy :math:`S` is the Shannon entropy of the Boltzmann distribution,
``entropy(-energies, beta=beta)``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from softjax._core import (
    Axis,
    count,
    debug_checked,
    extreme,
    finish,
    finite_beta,
    nan_from,
    nan_max,
    nan_min,
    prepare,
    weighted,
)
from softjax.smooth import _log_softargmax, _lse, _softargmax

__all__ = [
    "boltzmann",
    "entropy",
    "gibbs_entropy",
    "free_energy",
    "heat_capacity",
    "log_partition",
    "mean_energy",
]

_INF = float("inf")


def _prepare(x, beta, axis, where, name):
    """``prepare`` with ``x`` upcast to the dtype to compute in."""
    x, beta, mask, axes, dtype = prepare(x, beta, axis, where, name)
    return x.astype(beta.dtype), beta, mask, axes, dtype


_finish = finish


def _sum(x, axes):
    return jnp.sum(x, axis=axes, keepdims=True)


def _shifted(energies, beta, mask, axes):
    """(M, d/2): M the minimum live energy (maximum where β < 0), d = E − M (0 where E = M).

    Halved, so that a spread up to twice the largest float does not overflow.
    """
    lo = energies if mask is None else jnp.where(mask, energies, _INF)
    hi = energies if mask is None else jnp.where(mask, energies, -_INF)
    lo, hi = nan_min(lo, axes), nan_max(hi, axes)
    m = jax.lax.stop_gradient(jnp.where(beta < 0, hi, lo))
    # On the ground states d is E − stop_gradient(E): exactly 0, with the gradient of E.
    ground = jnp.where(jnp.isfinite(energies), energies - jax.lax.stop_gradient(energies), 0.0) / 2
    return m, jnp.where(energies == m, ground, energies / 2 - m / 2)


def _mean_energy(energies, beta, mask, axes):
    """(⟨E⟩, p, d/2, ⟨p, d⟩/2) with d = E − M: ⟨E⟩ = M + ⟨p, d⟩, exactly M when p sits on the
    ground states (β = ±∞). A NaN in p (a NaN energy or β) makes the slice NaN."""
    p = _softargmax(-energies, beta, mask, axes)
    m, half_d = _shifted(energies, beta, mask, axes)
    half_mean = weighted(p, half_d, axes)
    finite = jnp.isfinite(m)
    mean = jnp.where(finite, (jnp.where(finite, m, 0.0) / 2 + half_mean) * 2, m)
    mean = nan_from(p, mean, axes)
    return mean, p, half_d, half_mean


def _log_partition_impl(energies, beta, mask, axes):
    # log Z = −βM + log S with S = Σ exp(−β(E − M)) ∈ [k, n]; the kernel gives log p = −log S on the
    # ground states, where the exponent is exactly 0, and less elsewhere.
    logp = _log_softargmax(-energies, beta, mask, axes)
    log_s = -nan_max(logp, axes)
    m, _ = _shifted(energies, beta, mask, axes)
    # −βM, with 0 where β = 0 (infinite temperature) or M = 0 (also at β = ±∞: log Z = log k).
    skip = (beta == 0) | (m == 0)
    shift = jnp.where(skip, 0.0, -jnp.where(skip, 1.0, beta) * m)
    out = shift + log_s
    return jnp.where(log_s == _INF, -_INF, out)  # no live entry: Z = 0


# Custom JVP: ∂/∂β = −⟨E⟩ and ∂/∂E = −βp in closed form, finite at β = ±∞ (autodiff of −βM gives
# ∞·0 = NaN on the excited states there).
@partial(jax.custom_jvp, nondiff_argnums=(3,))
def _log_partition(energies, beta, mask, axes):
    return _log_partition_impl(energies, beta, mask, axes)


def _log_partition_jvp(axes, primals, tangents):
    energies, beta, mask = primals
    de, dbeta, _ = tangents
    out = _log_partition(energies, beta, mask, axes)
    mean, p, _, _ = _mean_energy(energies, beta, mask, axes)
    dout = jnp.zeros_like(out)
    if not isinstance(de, SymbolicZero):
        coef = jnp.where(p > 0, -beta * p, 0.0)
        dout = dout + _sum(jnp.where(p > 0, coef * de, 0.0), axes)
    if not isinstance(dbeta, SymbolicZero):
        # A slice without a live state is Z = 0 at every β: slope 0.
        empty = count(energies, mask, axes) == 0
        dout = dout - jnp.where(empty, 0.0, mean) * dbeta
    return out, dout


_log_partition.defjvp(_log_partition_jvp, symbolic_zeros=True)


def _entropy_parts(z, beta, mask, axes):
    """(H, p, log p, top): the entropy and what its derivative needs.

    ``top`` marks the k entries of largest probability (the maximum of sign(β)·z, every live entry
    at β = 0), where the kernel's exponent is exactly 0 and log p = −log S. With q the mass off
    them, S = k/(1 − q), so their log p = log1p(−q) − log k: this keeps H = O(q·β·gap) accurate
    when q is below the rounding of S (float32 loses it from β·gap ≈ 16 on).
    """
    p = _softargmax(z, beta, mask, axes)
    logp = _log_softargmax(z, beta, mask, axes)
    live = logp > -_INF  # masked entries have log p = −∞
    m = nan_max(jnp.where(live, logp, -_INF), axes)
    top = live & (logp == m) & ((z == extreme(z, beta, live, axes)) | (beta == 0))
    k = _sum(top, axes).astype(p.dtype)
    q = _sum(jnp.where(top, 0.0, p), axes)
    top_logp = jnp.where(q < 0.5, jnp.log1p(-q) - jnp.log(jnp.maximum(k, 1.0)), m)
    logp_top = jnp.where(top, top_logp, logp)
    h = weighted(p, -logp_top, axes)  # skips entries with p = NaN: a NaN slice is made NaN
    return nan_from(p, h, axes), p


# Custom JVP: dH = −β Σ p (β ż + d β̇)(d − ⟨p, d⟩) with d = z − M, finite on ±∞ entries and at
# β = 0, ±∞ (autodiff through log_softargmax gives ∞·0 = NaN for entries of zero weight).
@partial(jax.custom_jvp, nondiff_argnums=(3,))
def _entropy(z, beta, mask, axes):
    return _entropy_parts(z, beta, mask, axes)[0]


def _entropy_jvp(axes, primals, tangents):
    z, beta, mask = primals
    dz, dbeta, _ = tangents
    h, p = _entropy_parts(z, beta, mask, axes)
    pos = p > 0
    # d is finite where p > 0, except at β = 0 (entries at ±∞), where the factor β is 0; at
    # β = ±∞ the centred d vanishes where p > 0 and the factor is taken as 0 too.
    m = extreme(z, beta, pos, axes)
    d = jnp.where(pos & jnp.isfinite(z - m), z - m, 0.0)
    c = jnp.where(pos, d - weighted(p, d, axes), 0.0)
    finite_beta = jnp.where(jnp.isinf(beta), 0.0, beta)
    u = jnp.zeros_like(p)
    if not isinstance(dz, SymbolicZero):
        u = u + finite_beta * dz
    if not isinstance(dbeta, SymbolicZero):
        u = u + d * dbeta
    return h, -finite_beta * weighted(p, u * c, axes)


_entropy.defjvp(_entropy_jvp, symbolic_zeros=True)


# ----------------------------------------------------------------------------------------------
# Public API


@debug_checked
def entropy(
    z: ArrayLike,
    *,
    beta: ArrayLike = 1.0,
    axis: Axis = -1,
    keepdims: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""The Shannon entropy (in nats) of :func:`~softjax.softargmax`, exact at every β.

    .. math::
        H_\beta(z) = -\sum_i \sigma_\beta(z)_i \log \sigma_\beta(z)_i,
        \qquad 0 \log 0 := 0 .

    It is :math:`\log n` at :math:`\beta = 0` (:math:`n` unmasked entries), :math:`\log k` at
    :math:`\beta = \pm\infty` for a :math:`k`-way tie for the maximum (minimum), and decreases
    from :math:`\log n` to :math:`\log k` as :math:`|\beta|` grows. It is computed from
    :func:`~softjax.log_softargmax`, so it never takes the logarithm of an underflowed
    probability, and stays accurate (to the relative precision of the dtype) when nearly all the
    mass sits on the maximum. Its gradients are closed forms,
    :math:`\nabla_z H = -\beta^2\, p \odot (z - \langle p, z\rangle)` and
    :math:`\partial H/\partial\beta = -\beta \operatorname{Var}_p(z)`, finite everywhere: on
    ties, at :math:`\beta = 0, \pm\infty`, on :math:`\pm\infty` entries and on masked entries
    (which get a zero gradient). It takes scores: for energies :math:`E` the thermodynamic
    entropy :math:`\beta(\langle E\rangle - F)` is :func:`gibbs_entropy`, i.e.
    ``entropy(-E, beta=beta)``. A slice with an unmasked NaN gives NaN; a slice with no unmasked
    entry gives 0.

    Args:
      z: scores, any shape.
      beta: inverse temperature in :math:`[-\infty, +\infty]` (scalar or one per slice), may be
        traced, vmapped and differentiated.
      axis: the axis or axes of the distribution (int, tuple, or None for all).
      keepdims: keep the reduced axes as size 1.
      where: optional boolean mask; False entries are left out.

    Returns:
      The entropy of each slice, the reduced array.

    Example:
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> z = jnp.array([1.0, 3.0, 3.0, 0.0])
      >>> print(f"{sjx.entropy(z, beta=0.0):.4f} {sjx.entropy(z):.4f}")
      1.3863 0.9739
      >>> print(f"{sjx.entropy(z, beta=jnp.inf):.4f}")
      0.6931

    References:
      Shannon, "A mathematical theory of communication", Bell System Technical Journal 27 (1948).
    """
    z, beta, mask, axes, dtype = _prepare(z, beta, axis, where, "z")
    return _finish(_entropy(z, beta, mask, axes), axes, keepdims, dtype)


@debug_checked
def gibbs_entropy(
    energies: ArrayLike,
    *,
    beta: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""The thermodynamic (Gibbs) entropy of the Boltzmann distribution of ``energies`` at β.

    .. math::
        S(\beta) = -\sum_i p_i \log p_i = \beta\big(\langle E\rangle - F\big),
        \qquad p = \operatorname{boltzmann}(E, \beta) = \sigma_\beta(-E)

    in units of :math:`k_B`: the energy counterpart of :func:`entropy` (which takes scores), i.e.
    ``entropy(-energies, beta=beta)``, with the same exact limits and closed-form gradients. It is
    :math:`\log n` at β = 0, :math:`\log g` at β = +∞ for a :math:`g`-fold degenerate ground
    state, and :math:`\partial S/\partial\beta = -\beta \operatorname{Var}(E) = -C/\beta`.

    Args:
      energies: the energies of the states, any shape.
      beta: inverse temperature in :math:`[-\infty, +\infty]` (scalar or one per slice).
      axis: the axis or axes of the states (int, tuple, or None for all).
      keepdims: keep the reduced axes as size 1.
      where: optional boolean mask; False states are left out.

    Returns:
      The entropy of each slice, the reduced array.

    Example:
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> e = jnp.array([0.0, 0.0, 1.0, 2.0])  # a two-fold ground state
      >>> print(f"{sjx.gibbs_entropy(e, beta=0.0):.4f} {sjx.gibbs_entropy(e, beta=jnp.inf):.4f}")
      1.3863 0.6931
    """
    energies, beta, mask, axes, dtype = _prepare(energies, beta, axis, where, "energies")
    return _finish(_entropy(-energies, beta, mask, axes), axes, keepdims, dtype)


@debug_checked
def boltzmann(
    energies: ArrayLike, *, beta: ArrayLike, axis: Axis = -1, where: ArrayLike | None = None
) -> jax.Array:
    r"""The Boltzmann (Gibbs) distribution of the energies at inverse temperature β.

    .. math:: p_i = \frac{e^{-\beta E_i}}{\sum_j e^{-\beta E_j}}
        = \sigma_\beta(-E)_i

    :math:`\beta = +\infty` puts the mass on the ground states (split equally between degenerate
    ones), :math:`\beta = 0` is uniform, :math:`\beta = -\infty` puts it on the highest energies.
    This is :func:`~softjax.softargmax` at :math:`-E` and shares its conventions.

    Args:
      energies: energies of the micro-states, any shape.
      beta: inverse temperature in :math:`[-\infty, +\infty]` (scalar or one per slice), may be
        traced.
      axis: the axis or axes over which the states range.
      where: optional boolean mask; False states are left out.

    Returns:
      An array like ``energies`` whose slices sum to one.

    Example:
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> print(sjx.boltzmann(jnp.array([0.0, 1.0]), beta=jnp.log(3.0)).round(4))
      [0.75 0.25]

    References:
      Gibbs, "Elementary Principles in Statistical Mechanics" (1902).
    """
    energies, beta, mask, axes, dtype = _prepare(energies, beta, axis, where, "energies")
    return _softargmax(-energies, beta, mask, axes).astype(dtype)


@debug_checked
def log_partition(
    energies: ArrayLike,
    *,
    beta: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""The log partition function :math:`\log Z(\beta) = \log \sum_i e^{-\beta E_i}`.

    .. math::
        \log Z(\beta) = -\beta M + \log \sum_i e^{-\beta (E_i - M)},
        \qquad M = \min_i E_i \ (\beta \ge 0), \quad M = \max_i E_i \ (\beta < 0).

    Computed in the shifted form above, so :math:`\beta E` is never formed and differenced. It is
    :math:`\log n` at :math:`\beta = 0`; at :math:`\beta = \pm\infty` it is :math:`\mp\infty\cdot M`
    (:math:`\log k` for :math:`k` degenerate ground states at energy exactly 0). Its derivatives
    are closed forms: :math:`\partial/\partial\beta = -\langle E\rangle` (:func:`mean_energy`)
    and :math:`\partial/\partial E = -\beta p`, so
    :math:`\partial^2/\partial\beta^2 = \operatorname{Var}(E)` under repeated differentiation. A
    slice with no unmasked state gives :math:`-\infty`.

    Args:
      energies: energies of the micro-states, any shape.
      beta: inverse temperature in :math:`[-\infty, +\infty]` (scalar or one per slice), may be
        traced, vmapped and differentiated.
      axis: the axis or axes over which the states range.
      keepdims: keep the reduced axes as size 1.
      where: optional boolean mask; False states are left out.

    Returns:
      :math:`\log Z` of each slice, the reduced array.

    Example:
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> e = jnp.array([0.0, 1.0, 1.0])
      >>> print(f"{sjx.log_partition(e, beta=0.0):.4f} {sjx.log_partition(e, beta=1.0):.4f}")
      1.0986 0.5514
      >>> print(f"{sjx.log_partition(e, beta=1e30):.4f}")
      0.0000

    References:
      Gibbs, "Elementary Principles in Statistical Mechanics" (1902).
    """
    energies, beta, mask, axes, dtype = _prepare(energies, beta, axis, where, "energies")
    return _finish(_log_partition(energies, beta, mask, axes), axes, keepdims, dtype)


@debug_checked
def free_energy(
    energies: ArrayLike,
    *,
    beta: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""The Helmholtz free energy :math:`F = -\frac{1}{\beta}\log Z`: the smooth minimum of E.

    .. math::
        F(\beta) = -\frac{1}{\beta} \log \sum_i e^{-\beta E_i}
        = \langle E\rangle - \frac{S}{\beta}
        = \operatorname{smin}_\beta(E)

    It is :func:`~softjax.smooth_min` of the energies: the ground energy :math:`\min E` exactly at
    :math:`\beta = +\infty` (absolute zero), :math:`\max E` at :math:`\beta = -\infty`, and
    :math:`\min E \ge F \ge \min E - \log(n)/\beta` for :math:`\beta > 0`. At :math:`\beta = 0`
    :math:`F` has no limit (the entropy term :math:`-TS` diverges: :math:`-\infty` from the right,
    :math:`+\infty` from the left); the value returned is the right-hand limit :math:`-\infty`
    when two or more states are unmasked, and the energy of the single state otherwise. Use
    :func:`log_partition` (:math:`= -\beta F`, which is :math:`\log n` at β = 0) there.
    :math:`\partial F/\partial E = p` and :math:`\partial F/\partial\beta = S/\beta^2`.

    Args:
      energies: energies of the micro-states, any shape.
      beta: inverse temperature in :math:`[-\infty, +\infty]` (scalar or one per slice), may be
        traced, vmapped and differentiated.
      axis: the axis or axes over which the states range.
      keepdims: keep the reduced axes as size 1.
      where: optional boolean mask; False states are left out.

    Returns:
      :math:`F` of each slice, the reduced array.

    Example:
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> e = jnp.array([1.0, 2.0, 2.0])
      >>> print(f"{sjx.free_energy(e, beta=1.0):.4f} {sjx.free_energy(e, beta=jnp.inf):.4f}")
      0.4486 1.0000

    References:
      Gibbs, "Elementary Principles in Statistical Mechanics" (1902).
    """
    energies, beta, mask, axes, dtype = _prepare(energies, beta, axis, where, "energies")
    f = -_lse(-energies, beta, mask, axes)
    return _finish(f, axes, keepdims, dtype)


@debug_checked
def mean_energy(
    energies: ArrayLike,
    *,
    beta: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""The mean (internal) energy :math:`\langle E\rangle`, the Boltzmann average of E.

    .. math::
        \langle E\rangle(\beta) = \sum_i p_i E_i = -\frac{\partial \log Z}{\partial \beta}

    The ground energy :math:`\min E` exactly at :math:`\beta = +\infty`, the plain mean of the
    unmasked energies at :math:`\beta = 0`, :math:`\max E` at :math:`\beta = -\infty`; it is
    non-increasing in β (:math:`\partial\langle E\rangle/\partial\beta = -\operatorname{Var}(E)`).
    Computed as :math:`M + \langle p, E - M\rangle` with :math:`M` the ground energy, so states of
    zero weight (also those at :math:`+\infty` energy) contribute exactly 0. At :math:`\beta = 0`
    every state has weight :math:`1/n`, so an energy of :math:`+\infty` makes the mean
    :math:`+\infty`, and its derivatives (in E and β) are NaN: the derivative of an infinite value
    is undefined.

    Args:
      energies: energies of the micro-states, any shape.
      beta: inverse temperature in :math:`[-\infty, +\infty]` (scalar or one per slice), may be
        traced, vmapped and differentiated.
      axis: the axis or axes over which the states range.
      keepdims: keep the reduced axes as size 1.
      where: optional boolean mask; False states are left out.

    Returns:
      :math:`\langle E\rangle` of each slice, the reduced array.

    Example:
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> e = jnp.array([0.0, 1.0])
      >>> print(f"{sjx.mean_energy(e, beta=0.0):.4f} {sjx.mean_energy(e, beta=jnp.log(3.0)):.4f}")
      0.5000 0.2500

    References:
      Jaynes, "Information theory and statistical mechanics", Phys. Rev. 106(4) (1957),
      doi:10.1103/PhysRev.106.620.
    """
    energies, beta, mask, axes, dtype = _prepare(energies, beta, axis, where, "energies")
    mean, *_ = _mean_energy(energies, beta, mask, axes)
    return _finish(mean, axes, keepdims, dtype)


@debug_checked
def heat_capacity(
    energies: ArrayLike,
    *,
    beta: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""The heat capacity :math:`C = \beta^2 \operatorname{Var}(E)` (in units of :math:`k_B`).

    .. math::
        C(\beta) = \beta^2 \big(\langle E^2\rangle - \langle E\rangle^2\big)
        = \beta^2 \frac{\partial^2 \log Z}{\partial \beta^2}
        = -\beta^2 \frac{\partial \langle E\rangle}{\partial \beta}

    Accumulated as :math:`\sum_i p_i (\beta (E_i - \langle E\rangle))^2` from the energies
    centred on the ground energy, never as a difference of second moments. :math:`C = 0` at
    :math:`\beta = 0` and exactly 0 at :math:`\beta = \pm\infty` (its limit: the excited states
    are exponentially suppressed), with finite gradients there. At :math:`\beta = 0` with an
    energy of :math:`+\infty`, C = 0 (the factor β² wins) but its derivatives are NaN: they are
    :math:`0 \cdot \infty`, a variance that is infinite at β = 0 and zero for every β > 0
    (where the state has no weight). For two levels a gap
    :math:`\Delta` apart it is the Schottky anomaly
    :math:`(\beta\Delta)^2 e^{\beta\Delta} / (1 + e^{\beta\Delta})^2`.

    Args:
      energies: energies of the micro-states, any shape.
      beta: inverse temperature in :math:`[-\infty, +\infty]` (scalar or one per slice), may be
        traced, vmapped and differentiated.
      axis: the axis or axes over which the states range.
      keepdims: keep the reduced axes as size 1.
      where: optional boolean mask; False states are left out.

    Returns:
      :math:`C` of each slice, the reduced array.

    Example:
      >>> import softjax as sjx
      >>> print(f"{sjx.heat_capacity([0.0, 1.0], beta=2.4):.4f}")
      0.4392

    References:
      Schottky, "Über die Drehung der Atomachsen in festen Körpern", Physikalische Zeitschrift 23
      (1922).
    """
    energies, beta, mask, axes, dtype = _prepare(energies, beta, axis, where, "energies")
    _, p, half_d, half_mean = _mean_energy(energies, beta, mask, axes)
    # Σ p (β(E − ⟨E⟩))², β(E − ⟨E⟩) = 2β(d/2 − ⟨p, d⟩/2): β² alone may overflow where the
    # variance underflows, and E − ⟨E⟩ where the spread is wide; C → 0 as |β| → ∞. States of zero
    # weight, and at β = 0 infinite energies (C = 0 there), are left out before the square, so
    # that their gradient is 0.
    dev = half_d - half_mean
    dev = jnp.where((p > 0) & jnp.isfinite(dev), dev, 0.0)
    c = weighted(p, (2 * finite_beta(beta) * dev) ** 2, axes)
    c = nan_from(p, c, axes)
    return _finish(c, axes, keepdims, dtype)
