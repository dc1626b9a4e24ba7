r"""Sampling from the smooth arg max: exact Gumbel-max samples, their relaxation, straight-through.

:func:`~softjax.softargmax` is a categorical distribution with logits :math:`\beta z`. The
Gumbel-max trick draws from it exactly: with :math:`g_i` independent standard Gumbel variables,

.. math::
    \operatorname{argmax}_i \big(\beta z_i + g_i\big) \sim \sigma_\beta(z).

:func:`sample_onehot` returns that sample as a one-hot array, exactly at every β (the arg max at
:math:`\beta = +\infty` with ties broken uniformly at random, the uniform distribution at
:math:`\beta = 0`); :func:`gumbel_softargmax` relaxes it into a differentiable point of the simplex
(the Gumbel-softmax or Concrete distribution), and :func:`straight_through` combines a hard forward
value with a soft gradient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from softjax._core import (
    Axis,
    as_beta,
    as_mask,
    as_real,
    debug_checked,
    nan_from,
    nan_max,
    normalize_axis,
)
from softjax.smooth import _log_softargmax, _softargmax

__all__ = ["gumbel_softargmax", "sample_onehot", "straight_through"]

_INF = float("inf")


def _perturbed(key, z, beta, axis, where):
    """(u, mask, axes, dtype, compute) with u = log σ_β(z) + g, g standard Gumbel noise like z."""
    z, compute = as_real(z, "z")
    dtype = z.dtype
    z = z.astype(compute)
    axes = normalize_axis(axis, z.ndim)
    beta = as_beta(beta, z.shape, axes, compute)
    mask = as_mask(where, z.shape)
    # log σ_β(z) = β(z − M) − log S is never above 0 and is exact at β = 0, ±∞ and on masked
    # entries (−∞), so adding the noise needs no case analysis on β: the shift by the maximum
    # comes before the product with β, and a huge β sends the non-maximal entries to −∞.
    logp = _log_softargmax(z, beta, mask, axes)
    g = jax.random.gumbel(key, z.shape, compute)
    return logp + g, mask, axes, dtype


def _onehot_argmax(u, mask, axes):
    """One-hot of the first arg max of ``u`` over ``axes`` (row-major order): zeros where no entry
    is live, NaN if the slice holds a NaN.

    Elementwise and reductions only (no transpose or gather), so that the result keeps the
    sharding of ``u``, also over an explicit mesh axis.
    """
    # The position of each entry in its slice, row-major over the reduced axes.
    pos, stride = jnp.zeros_like(u, jnp.int32), 1  # sharded like u
    for a in reversed(axes):
        pos = pos + lax.broadcasted_iota(jnp.int32, u.shape, a) * stride
        stride = stride * u.shape[a]
    top = nan_max(u, axes)
    last = jnp.iinfo(jnp.int32).max
    first = jnp.min(jnp.where(u == top, pos, last), axis=axes, keepdims=True, initial=last)
    # A slice with no live entry has u = −∞ everywhere (log σ is −∞ on masked entries).
    hot = ((pos == first) & (top > -_INF)).astype(u.dtype)
    if mask is not None:
        hot = jnp.where(mask, hot, 0.0)
    return nan_from(top, hot)


@jax.custom_jvp
def _straight_through(hard, soft):
    return hard


@_straight_through.defjvp
def _straight_through_jvp(primals, tangents):
    # Forward value exactly ``hard``, tangent exactly that of ``soft``: the arithmetic form
    # soft + stop_gradient(hard − soft) rounds, and is not ``hard`` bit for bit.
    hard, _ = primals
    _, dsoft = tangents
    return hard, dsoft


def straight_through(hard: ArrayLike, soft: ArrayLike) -> jax.Array:
    r"""The straight-through estimator: the value of ``hard`` with the gradient of ``soft``.

    .. math::
        \operatorname{st}(h, s) = h, \qquad
        \frac{\partial \operatorname{st}}{\partial s} = I, \qquad
        \frac{\partial \operatorname{st}}{\partial h} = 0 .

    The usual form :math:`s + \operatorname{stop\_gradient}(h - s)` has the same derivatives but
    its value is :math:`h` only up to rounding; here the value is ``hard`` bit for bit (a
    ``custom_jvp``), so a one-hot ``hard`` stays exactly one-hot. Works under ``jit`` and
    ``vmap``, in forward and reverse mode; derivatives of every order are those of ``soft``.

    Args:
      hard: the forward value, e.g. a one-hot sample or an arg max.
      soft: a differentiable surrogate with the same shape, e.g. a softargmax.

    Returns:
      ``hard`` (in the dtype common to both inputs), with the derivatives of ``soft``.

    Raises:
      ValueError: if the shapes of ``hard`` and ``soft`` differ.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> z = jnp.array([1.0, 2.0, 0.5])
      >>> f = lambda z: sjx.straight_through(sjx.argmax_onehot(z), sjx.softargmax(z))
      >>> print(f(z))
      [0. 1. 0.]
      >>> g = jax.grad(lambda z: f(z)[1])(z)  # the gradient of softargmax(z)[1]
      >>> print(" ".join(f"{x:.4f}" for x in g))
      -0.1453 0.2335 -0.0881

    References:
      Bengio, Léonard & Courville, "Estimating or propagating gradients through stochastic
      neurons for conditional computation" (2013), arXiv:1308.3432.
    """
    hard = jnp.asarray(hard)
    soft = jnp.asarray(soft)
    if hard.shape != soft.shape:
        raise ValueError(
            f"hard and soft must have the same shape, got hard {hard.shape} and soft {soft.shape}"
        )
    dtype = jnp.promote_types(hard.dtype, soft.dtype)
    if not jnp.issubdtype(dtype, jnp.inexact):
        dtype = jnp.result_type(float)
    return _straight_through(hard.astype(dtype), soft.astype(dtype))


@debug_checked
def sample_onehot(
    key: ArrayLike,
    z: ArrayLike,
    *,
    beta: ArrayLike = 1.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""An exact one-hot sample from :func:`~softjax.softargmax`, by the Gumbel-max trick.

    .. math::
        e_{i^*}, \qquad i^* = \operatorname{argmax}_i \big(\log \sigma_\beta(z)_i + g_i\big)
        \sim \sigma_\beta(z), \qquad g_i \overset{iid}{\sim} \operatorname{Gumbel}(0, 1).

    The log-probabilities come from :func:`~softjax.log_softargmax`, which shifts by the maximum
    before multiplying by β, so the comparison neither overflows nor loses the noise for any β:
    :math:`\beta = +\infty` gives the arg max with ties broken uniformly at random,
    :math:`\beta = -\infty` the arg min, :math:`\beta = 0` a uniform draw among the unmasked
    entries, and masked entries are never drawn. Each slice along ``axis`` is one independent
    draw; a slice with no unmasked entry gives zeros and a slice with an unmasked NaN gives NaN.
    The sample is piecewise constant in ``z`` and β (zero gradient): see :func:`gumbel_softargmax`
    for a relaxation and :func:`straight_through` to combine the two.

    Args:
      key: a PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``).
      z: scores, any shape.
      beta: inverse temperature in :math:`[-\infty, +\infty]` (scalar or one per slice), may be
        traced and vmapped.
      axis: the axis or axes of one draw (int, tuple, or None for all).
      where: optional boolean mask; False entries are never drawn.

    Returns:
      An array like ``z`` (integers promote to the default float dtype) with one 1 per slice and
      zeros elsewhere.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> z = jnp.array([1.0, 3.0, 3.0, 0.0])
      >>> keys = jax.random.split(jax.random.key(0), 10_000)
      >>> draws = jax.vmap(lambda k: sjx.sample_onehot(k, z, beta=jnp.inf))(keys)
      >>> print(draws.mean(axis=0).round(1))
      [0.  0.5 0.5 0. ]
      >>> print(sjx.sample_onehot(jax.random.key(1), z, where=jnp.array([1, 0, 0, 1], bool)))
      [1. 0. 0. 0.]

    References:
      Gumbel, "Statistical theory of extreme values and some practical applications", National
      Bureau of Standards Applied Mathematics Series 33 (1954).
      Maddison, Tarlow & Minka, "A* sampling", NeurIPS 2014, arXiv:1411.0030.
    """
    u, mask, axes, dtype = _perturbed(key, z, beta, axis, where)
    return jax.lax.stop_gradient(_onehot_argmax(u, mask, axes)).astype(dtype)


@debug_checked
def gumbel_softargmax(
    key: ArrayLike,
    z: ArrayLike,
    *,
    tau: ArrayLike = 1.0,
    beta: ArrayLike = 1.0,
    axis: Axis = -1,
    hard: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""A Gumbel-softmax (Concrete) sample: a draw of :func:`sample_onehot` relaxed at τ.

    .. math::
        y = \sigma_{1/\tau}\big(\log \sigma_\beta(z) + g\big), \qquad
        g_i \overset{iid}{\sim} \operatorname{Gumbel}(0, 1),

    i.e. :math:`y_i \propto \exp((\beta z_i + g_i)/\tau)`: the relaxation of Jang et al. and
    Maddison et al., :math:`\operatorname{softmax}((\log\pi + g)/\tau)`, of the categorical
    :math:`\pi = \sigma_\beta(z)`. ``beta`` means what it means everywhere in softjax (and in
    :func:`sample_onehot`): the inverse temperature of the distribution being sampled; ``tau`` is
    the temperature of the relaxation. τ = 0 gives exactly the one-hot sample
    ``sample_onehot(key, z, beta=beta)`` (same key, same noise), τ = ∞ the centre of the simplex
    (uniform over the unmasked entries). With ``hard=True`` the value is that one-hot sample and
    the derivatives are those of the relaxation (:func:`straight_through`). Masked entries get 0.
    To anneal τ with a β schedule such as ``softjax.schedules.gumbel_softmax`` (which gives
    :math:`1/\tau_t`), pass ``tau=1 / beta_t`` or wrap it in ``schedules.to_temperature``.

    Args:
      key: a PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``).
      z: scores, any shape.
      tau: the relaxation temperature τ ∈ [0, ∞] (scalar or one per slice), may be traced,
        vmapped, differentiated and annealed; a concrete negative or NaN value raises (traced, a
        negative τ relaxes the arg min of the perturbed scores).
      beta: inverse temperature of the categorical σ_β(z) being relaxed, in [−∞, +∞] (scalar or
        one per slice), as in :func:`sample_onehot`.
      axis: the axis or axes of one draw (int, tuple, or None for all).
      hard: return the one-hot sample with the relaxed gradient (straight-through).
      where: optional boolean mask; False entries get 0 and are never drawn.

    Returns:
      An array like ``z`` whose slices lie on the simplex (one-hot if ``hard``).

    Raises:
      TypeError: if ``hard`` is not a bool.
      ValueError: if ``tau`` is a concrete negative or NaN value.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> key, z = jax.random.key(0), jnp.array([1.0, 2.0, 0.5])
      >>> y = sjx.gumbel_softargmax(key, z, tau=0.5)
      >>> print(f"{float(y.sum()):.4f}")
      1.0000
      >>> print(jnp.array_equal(sjx.gumbel_softargmax(key, z, tau=0.0, beta=3.0),
      ...                       sjx.sample_onehot(key, z, beta=3.0)))
      True

    References:
      Jang, Gu & Poole, "Categorical reparameterization with Gumbel-softmax", ICLR 2017,
      arXiv:1611.01144.
      Maddison, Mnih & Teh, "The Concrete distribution: a continuous relaxation of discrete
      random variables", ICLR 2017, arXiv:1611.00712.
    """
    if not isinstance(hard, bool):
        raise TypeError(f"hard must be a bool, got {hard!r}")
    if not isinstance(tau, jax.core.Tracer):
        t = np.asarray(tau)
        if np.issubdtype(t.dtype, np.number) and not np.iscomplexobj(t) and not np.all(t >= 0):
            raise ValueError(f"tau must be >= 0, got {tau}")
    u, mask, axes, dtype = _perturbed(key, z, beta, axis, where)
    tau = as_beta(tau, u.shape, axes, u.dtype)
    # The relaxation's inverse temperature 1/τ: +∞ at τ = 0, with a zero derivative there (the
    # one-hot limit is flat in τ).
    relax = jnp.where(tau == 0, _INF, 1.0 / jnp.where(tau == 0, 1.0, tau))
    one = jax.lax.stop_gradient(_onehot_argmax(u, mask, axes))
    soft = _softargmax(u, relax, mask, axes)
    # At τ = 0 the relaxation is the sample itself (also on exact ties of u).
    soft = jnp.where(relax == _INF, one, soft)
    out = straight_through(one, soft) if hard else soft
    return out.astype(dtype)
