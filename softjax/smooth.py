r"""The kernel: the smooth arg max, its log, and the smooth max, one family indexed by β.

Every function here takes the inverse temperature ``beta`` as an ordinary JAX value in
:math:`[-\infty, +\infty]`. One compiled function serves every β: :math:`\beta = +\infty` gives the
exact arg max (one-hot, ties split equally), :math:`\beta = -\infty` the arg min, :math:`\beta = 0`
the uniform distribution, with no Python branch on β and no recompilation when it changes.
XLA flushes subnormal numbers to zero on CPU and GPU, so a subnormal β (``0 < |β| <
finfo(dtype).tiny``) acts as exactly β = 0.

The numerics follow one rule: shift by the maximum of :math:`\operatorname{sign}(\beta)\,z` (an
exact negation) *before* multiplying by :math:`|\beta|`, so that the exponent
:math:`|\beta|\,(s z - m)` is never positive and never formed as a difference of two large products.
Gradients are closed forms (``jax.custom_jvp``) that stay finite on ties, infinities and masks.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from softjax._core import (
    Axis,
    as_mask,
    as_real,
    centred,
    compute_dtype,
    count,
    debug_checked,
    finish,
    finite_beta,
    inexact,
    logits,
    masked_mean,
    minus,
    nan_from,
    normalize_axis,
    prepare,
    weighted,
)
from softjax._engines import on_cpu, softmax_cpu

__all__ = [
    "argmax_onehot",
    "argmin_onehot",
    "log_softargmax",
    "logsumexp",
    "mellowmax",
    "smooth_max",
    "smooth_min",
    "softargmax",
    "softargmin",
]

_INF = float("inf")


# ----------------------------------------------------------------------------------------------
# The definitions. Shapes: z (...), beta broadcastable to z with the reduced axes kept, mask like
# z or None; every reduction keeps its axes. z may be 16-bit; β carries the dtype to compute in.
#
# Each function is exp(y) normalised, with the exact exponents y = β(z − M) ≤ 0 of
# ``_core.logits`` (the subtraction first, so that no large product is differenced), and a
# closed-form derivative. On CPU, where it was measured faster, the same numbers come from the
# fused engine (``_engines.softmax_cpu``); ``_on_platform`` makes that choice at lowering time.


def _on_platform(engine, definition, z, beta, mask, axes):
    """``definition(z, beta)``, or ``engine(z, beta)`` on CPU where the engine serves the call."""
    if not softmax_cpu.applies(z, mask, axes):
        return definition(z, beta)
    return on_cpu(engine, definition, z, beta)


def _reduce(z, beta, mask, axes, finish, terms=jnp.exp, fast=None, logits_out=False):
    """``finish(y, Σ terms(y), M)`` with the exact exponents y and M the extreme (the sum is taken
    of each array in the pytree ``terms(y)``).

    On CPU the engine computes ``fast(y, S, M)`` (default: ``finish``) with S = Σ exp(y) from one
    fused pass, and this definition on the slices where that is NaN. ``logits_out``: ``finish``
    returns y itself (not only functions of exp(y)).
    """

    def definition(z, beta):
        y, m = logits(z, beta, mask, axes)
        sums = jax.tree.map(partial(jnp.sum, axis=axes, keepdims=True), terms(y))
        return finish(y, sums, m)

    engine = partial(
        softmax_cpu.reduce, axes=axes, fast=fast or finish, exact=definition, logits_out=logits_out
    )
    return _on_platform(engine, definition, z, beta, mask, axes)


def _softargmax_value(z, beta, mask, axes):
    # S ≥ 1 on every slice with a live entry (its extreme contributes e⁰), S = 0 on a slice
    # without one: max(S, 1) guards 0/0 by arithmetic, which keeps a fused pass fused.
    def finish(y, s, m):
        return (jnp.exp(y) / jnp.maximum(s, 1.0)).astype(z.dtype)

    return _reduce(z, beta, mask, axes, finish)


# The custom JVP stays finite at β = ±inf, on ties, on all-(−inf) slices and on masked entries,
# where autodiff gives NaN. ``recomputed``: the output is a derivative (of smooth_max), which the
# CPU engine recomputes inside the backward pass on short slices instead of storing it.
@partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _softargmax(z, beta, mask, axes, recomputed=False):
    if recomputed and softmax_cpu.applies(z, mask, axes) and softmax_cpu.recomputes(z, axes):
        engine = partial(softmax_cpu.softargmax_recomputed, axes=axes)
        return on_cpu(engine, partial(_softargmax_value, mask=mask, axes=axes), z, beta)
    return _softargmax_value(z, beta, mask, axes)


def _dz_weights(z, beta, mask, axes, p):
    """(e, r) with σ = e·r for the z-tangent: σ itself, or on CPU (short slices) weights that the
    engine recomputes inside the backward pass, so that no array-sized σ is kept."""
    p = p.astype(beta.dtype)
    if not (softmax_cpu.applies(z, mask, axes) and softmax_cpu.recomputes(z, axes)):
        return p, 1.0
    ones = jnp.ones_like(jnp.sum(p, axis=axes, keepdims=True))  # typed (and sharded) like r
    engine = partial(softmax_cpu.tangent_weights, axes=axes)
    return on_cpu(engine, lambda z, beta: (p, ones), z, beta)


def _dz_tangent(e, r, beta, dz, axes):
    """σ ⊙ (ż − ⟨σ, ż⟩)·β with σ = e·r.

    Written so that reverse mode multiplies the cotangent by e before β (no overflow at a huge β
    where σ = 0).
    """
    k = finite_beta(beta) * r
    return e * (k * (dz - jnp.sum(e * dz, axis=axes, keepdims=True) * r))


def _softargmax_jvp(axes, recomputed, primals, tangents):
    z, beta, mask = primals
    dz, dbeta, _ = tangents
    p_out = _softargmax(z, beta, mask, axes, recomputed)
    p = p_out.astype(beta.dtype)
    out = jnp.zeros(p_out.shape, beta.dtype)
    with_beta = not isinstance(dbeta, SymbolicZero)
    if not isinstance(dz, SymbolicZero):
        # With a β-tangent the exact σ is needed anyway: it then serves both (one residual).
        e, r = (p, 1.0) if with_beta else _dz_weights(z, beta, mask, axes, p_out)
        out = _dz_tangent(e, r, beta, dz.astype(beta.dtype), axes)
    if with_beta:
        # ∂σ/∂β = σ ⊙ (z − ⟨σ, z⟩), with the exact σ (also at β = 0 and ±∞).
        c, live = centred(z, beta, mask, axes, p)
        out = out + jnp.where(live, p * jnp.where(live, c, 0.0), 0.0) * dbeta
    return p_out, out.astype(p_out.dtype)


_softargmax.defjvp(_softargmax_jvp, symbolic_zeros=True)


# Custom JVP for the same reasons as softargmax, with the same weights for the z-derivative.
@partial(jax.custom_jvp, nondiff_argnums=(3,))
def _log_softargmax(z, beta, mask, axes):
    def finish(y, s, m):
        out = y - jnp.log(s)
        return (out if mask is None else jnp.where(mask, out, -_INF)).astype(z.dtype)

    return _reduce(z, beta, mask, axes, finish, logits_out=True)


def _log_softargmax_jvp(axes, primals, tangents):
    z, beta, mask = primals
    dz, dbeta, _ = tangents
    logp = _log_softargmax(z, beta, mask, axes)
    out = jnp.zeros(logp.shape, beta.dtype)
    with_beta = not isinstance(dbeta, SymbolicZero)
    if not isinstance(dz, SymbolicZero):
        if with_beta:  # as for softargmax: the exact σ serves both tangents
            e, r = _softargmax(z, beta, mask, axes, True).astype(beta.dtype), 1.0
        else:
            e, r = _dz_weights(z, beta, mask, axes, _softargmax(z, beta, mask, axes, True))
        dz = dz.astype(beta.dtype)
        out = (dz - jnp.sum(e * dz, axis=axes, keepdims=True) * r) * finite_beta(beta)
    if with_beta:
        # ∂ log σ / ∂β = z − ⟨σ, z⟩, finite wherever z is (also where σ underflows to 0); an
        # infinite entry has a constant log-probability (±inf or log of its share), slope 0.
        p = _softargmax(z, beta, mask, axes, True).astype(beta.dtype)
        c, _ = centred(z, beta, mask, axes, p)
        out = out + jnp.where(jnp.isfinite(c), c, 0.0) * dbeta
    if mask is not None:
        out = jnp.where(mask, out, 0.0)
    return logp, out.astype(logp.dtype)


_log_softargmax.defjvp(_log_softargmax_jvp, symbolic_zeros=True)


def _below_and_at_extreme(y):
    """(e^y off the extreme, 1 at it), by arithmetic: y < 0 is a normal float, so −y·F ≥ 1.

    With r and k their sums, S − 1 = r + (k − 1) is the sum without one term at the extreme, which
    log1p takes without the rounding of 1 + r (the log1p form of LogSumExp).
    """
    off = jnp.minimum(-y * jnp.finfo(y.dtype).max, 1.0)  # 1 off the extreme, 0 at it
    return jnp.exp(y) * off, 1.0 - off


def _smooth_max_value(z, beta, mask, axes):
    safe_beta = jnp.where(beta == 0, 1.0, beta)

    def finish(y, sums, m):
        below, at = sums
        excess = below + (at - 1.0)  # S − 1: −1 where no entry is live
        log_s = jnp.log1p(excess)
        # β = 0: the limit β → 0⁺, +inf as soon as two entries are live (log n / β), else M.
        at_zero = jnp.where((log_s > 0) & (m > -_INF), _INF, m)
        val = jnp.where(beta == 0, at_zero, m + log_s / safe_beta)
        val = nan_from(excess, val)  # a NaN entry (M may have skipped it)
        return jnp.where(excess == -1.0, -_INF, val)  # no live entry

    def fast(y, s, m):
        # log S equals log1p(S − 1) to rounding where S ≥ 1.5; the rest is left to the definition.
        return jnp.where(s >= 1.5, m + jnp.log(s) / beta, jnp.nan)

    return _reduce(z, beta, mask, axes, finish, _below_and_at_extreme, fast)


# Below this |β|·max|z − mean|, mellowmax and its β-slope come from the cumulant expansion: the
# expansion's error, (β s)⁵/420 of the slope, and the exact form's cancellation, about ε/(β s),
# are equal at (420 ε)^(1/6).
def _series_limit(dtype):
    return float(420 * jnp.finfo(dtype).eps) ** (1 / 6)


def _mellowmax_series(z, beta, mask, axes):
    """(value, slope, β s) of mellowmax by the cumulant expansion around β = 0::

        mm = κ₁ + κ₂β/2! + κ₃β²/3! + … + κ₆β⁵/6!,   ∂mm/∂β = Σ (k − 1) κₖ β^{k−2} / k!

    with the cumulants κₖ of the live entries, computed on (z − mean)/s, s = max |z − mean|, so
    that no power overflows.
    """
    z = z.astype(beta.dtype)
    mean = masked_mean(z, mask, axes)
    d = z - mean if mask is None else jnp.where(mask, z - mean, 0.0)
    s = jnp.max(jnp.abs(d), axis=axes, keepdims=True, initial=0.0)
    x = d / jnp.where(s > 0, s, 1.0)
    n = jnp.maximum(count(z, mask, axes), 1.0)
    m2, m3, m4, m5, m6 = (jnp.sum(x**k, axis=axes, keepdims=True) / n for k in range(2, 7))
    k2, k3, k4 = m2, m3, m4 - 3 * m2**2
    k5, k6 = m5 - 10 * m3 * m2, m6 - 15 * m4 * m2 - 10 * m3**2 + 30 * m2**3
    b = beta * s
    value = mean + s * (b * (k2 / 2 + b * (k3 / 6 + b * (k4 / 24 + b * (k5 / 120 + b * k6 / 720)))))
    slope = (s * s) * (k2 / 2 + b * (k3 / 3 + b * (k4 / 8 + b * (k5 / 30 + b * k6 / 144))))
    return value, slope, b


def _mellowmax_parts(z, beta, mask, axes):
    """(value, β-slope) of mellowmax: the cumulant expansion where |β|·spread is small, else

        mm = M + log1p(mean(expm1(y)))/β,   ∂mm/∂β = KL(σ ‖ uniform)/β² = (⟨σ, y⟩ − β(mm − M))/β²

    with the exact exponents y = β(z − M) ≤ 0 (so also at β = ±∞ and on infinite entries).
    """
    y, m = logits(z, beta, mask, axes)
    n = count(y, mask, axes)
    em1 = jnp.expm1(y) if mask is None else jnp.where(mask, jnp.expm1(y), 0.0)
    log_mean = jnp.log1p(jnp.sum(em1, axis=axes, keepdims=True) / n)
    safe_beta = jnp.where(beta == 0, 1.0, beta)
    p = _softargmax(z, beta, mask, axes, True).astype(beta.dtype)
    kl = jnp.maximum(weighted(p, y, axes) - log_mean, 0.0)
    value, slope, b = _mellowmax_series(z, beta, mask, axes)
    # Only on slices with a finite extreme: infinite entries make the cumulants undefined.
    series = (jnp.abs(b) <= _series_limit(beta.dtype)) & jnp.isfinite(m)
    value = jnp.where(series, value, m + log_mean / safe_beta)
    slope = jnp.where(series, slope, kl / safe_beta**2)
    value = nan_from(m, value)
    return jnp.where(n == 0, -_INF, value), slope


def _mellowmax_value(z, beta, mask, axes):
    return _mellowmax_parts(z, beta, mask, axes)[0]


def _entropy_of(z, beta, mask, axes, p):
    """H(σ) = −⟨σ, log σ⟩, with 0·log 0 = 0."""
    return -weighted(p, _log_softargmax(z, beta, mask, axes).astype(beta.dtype), axes)


# Custom JVP: ∇_z is the softargmax and ∂/∂β = −H/β² in closed form, finite on ties, infinities
# and masks (autodiff of the shifted form gives NaN there, jax issue 6811). ``mean``: mellowmax.
@partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _lse(z, beta, mask, axes, mean=False):
    return (_mellowmax_value if mean else _smooth_max_value)(z, beta, mask, axes)


def _lse_jvp(axes, mean, primals, tangents):
    z, beta, mask = primals
    dz, dbeta, _ = tangents
    val = _lse(z, beta, mask, axes, mean)
    p = _softargmax(z, beta, mask, axes, True).astype(beta.dtype)
    out = jnp.zeros_like(val)
    if not isinstance(dz, SymbolicZero):
        out = jnp.sum(p * dz.astype(beta.dtype), axis=axes, keepdims=True)
    if not isinstance(dbeta, SymbolicZero):
        if mean:
            # d/dβ (1/β) log mean e^{βz} = KL(σ ‖ uniform)/β², → Var(z)/2 at β = 0.
            slope = _mellowmax_parts(z, beta, mask, axes)[1]
        else:
            # d/dβ (1/β) log Σ e^{βz} = −H(σ)/β²: −inf at β = 0 with two live entries.
            h = _entropy_of(z, beta, mask, axes, p)
            safe_beta = jnp.where(beta == 0, 1.0, beta)
            slope = jnp.where(beta == 0, jnp.where(h > 0, -_INF, 0.0), -h / safe_beta**2)
        out = out + slope * dbeta
    return val, out


_lse.defjvp(_lse_jvp, symbolic_zeros=True)


# Compiled entry points of the public functions: eager calls hit JAX's compilation cache instead
# of re-tracing on every call (the static argument is the tuple of reduced axes).
_softargmax_call = jax.jit(_softargmax, static_argnums=(3,))
_log_softargmax_call = jax.jit(_log_softargmax, static_argnums=(3,))
_lse_call = jax.jit(_lse, static_argnums=(3, 4))


def _onehot_exact(z, mask, axes, largest):
    """The one-hot arg max (or min), ties split, decided by comparisons in z's own dtype.

    No two distinct integers tie however large (float32 cannot tell 2²⁴ + 1 from 2²⁴), and no
    NaN or infinity is formed on finite input (the β = ±∞ exponents would be ±∞). A slice whose
    live entries are all at the far infinity ties them all; a live NaN makes the slice NaN.
    """
    z = z.astype(jnp.int32) if z.dtype == jnp.bool_ else z
    info = jnp.iinfo(z.dtype) if jnp.issubdtype(z.dtype, jnp.integer) else jnp.finfo(z.dtype)
    fill = info.min if largest else info.max
    live = jnp.ones(z.shape, bool) if mask is None else mask
    pick = jnp.max if largest else jnp.min
    top = pick(jnp.where(live, z, fill), axis=axes, keepdims=True, initial=fill)
    hit = live & (z == top)
    if jnp.issubdtype(z.dtype, jnp.floating):
        far = live & jnp.isinf(z) & ((z < 0) if largest else (z > 0))
        hit = jnp.where(jnp.any(hit, axis=axes, keepdims=True), hit, far)
    out = hit / jnp.maximum(jnp.sum(hit, axis=axes, keepdims=True), 1)
    if jnp.issubdtype(z.dtype, jnp.floating):  # + 0·NaN: a live NaN poisons its slice
        nan = jnp.sum(jnp.where(live & jnp.isnan(z), z, 0), axis=axes, keepdims=True)
        out = out + 0 * nan.astype(out.dtype)
    return out


def _onehot(z, axis, where, largest):
    z = jnp.asarray(z)
    if jnp.issubdtype(z.dtype, jnp.complexfloating):
        raise TypeError(f"z must be real, got dtype {z.dtype}")
    axes = normalize_axis(axis, z.ndim)
    mask = as_mask(where, z.shape)
    return _onehot_exact(z, mask, axes, largest).astype(inexact(z.dtype))


def _integer_limits(raw, out, beta, mask, axes, log=False):
    """``out`` with its β = ±∞ slices decided in the dtype of integer scores ``raw``.

    The kernel computes in floating point, where distinct integers beyond the mantissa round
    together (float32 cannot tell 2²⁴ + 1 from 2²⁴) and would tie; the one-hot limits are exact.
    """
    raw = jnp.asarray(raw)
    if not jnp.issubdtype(raw.dtype, jnp.integer):
        return out
    if jnp.iinfo(raw.dtype).bits <= jnp.finfo(out.dtype).nmant + 1:
        return out  # every integer of this dtype is exact in the float
    hot = _onehot_exact(raw, mask, axes, True).astype(out.dtype)
    cold = _onehot_exact(raw, mask, axes, False).astype(out.dtype)
    if log:
        hot, cold = jnp.log(hot), jnp.log(cold)
    return jnp.where(beta == _INF, hot, jnp.where(beta == -_INF, cold, out))


# ----------------------------------------------------------------------------------------------
# Public API


@debug_checked
def softargmax(
    z: ArrayLike, *, beta: ArrayLike = 1.0, axis: Axis = -1, where: ArrayLike | None = None
) -> jax.Array:
    r"""The smooth arg max: the softmax of :math:`\beta z`, exact at :math:`\beta = 0, \pm\infty`.

    .. math::
        \sigma_\beta(z)_i = \frac{e^{\beta z_i}}{\sum_j e^{\beta z_j}}
        = \frac{e^{|\beta|(s z_i - m)}}{\sum_j e^{|\beta|(s z_j - m)}},
        \qquad s = \operatorname{sign}\beta,\ m = \max_j s z_j .

    :math:`\beta \to +\infty` gives the arg max as a one-hot vector with ties split equally
    (:func:`argmax_onehot`), :math:`\beta \to -\infty` the arg min, :math:`\beta = 0` the uniform
    distribution; all three are computed exactly by the same compiled code. In probability this is
    the categorical (Gibbs) distribution with logits :math:`\beta z`.

    Non-finite input has a defined answer: entries equal to the maximum share the mass equally, so
    a slice that is all :math:`-\infty` is uniform and entries at :math:`+\infty` split the mass; an
    unmasked NaN makes its slice NaN; masked entries get 0 and are invisible to values and
    gradients; a slice with no unmasked entry is all zeros. 16-bit input is computed in float32 and
    returned in its own dtype; integers promote to the default float.

    Args:
      z: scores, any shape.
      beta: inverse temperature in :math:`[-\infty, +\infty]`: a scalar or an array broadcastable to
        ``z`` with the reduced axes kept (one β per slice). May be traced, vmapped, differentiated.
      axis: the axis or axes to normalise over (int, tuple of ints, or None for all).
      where: optional boolean mask broadcastable to ``z``; False entries are left out.

    Returns:
      An array like ``z`` whose slices along ``axis`` are non-negative and sum to one.

    Example:
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> print(sjx.softargmax(jnp.array([0.0, 10.0])))
      [4.539787e-05 9.999546e-01]
      >>> print(sjx.softargmax(jnp.array([1.0, 5.0, 5.0]), beta=jnp.inf))
      [0.  0.5 0.5]
      >>> print(sjx.softargmax(jnp.array([1.0, 5.0, 10.0]), beta=0.0))
      [0.33333334 0.33333334 0.33333334]

    References:
      Bridle, "Probabilistic interpretation of feedforward classification network outputs, with
      relationships to statistical pattern recognition", Neurocomputing (1990).
    """
    raw = z
    z, beta, mask, axes, dtype = prepare(z, beta, axis, where, "z")
    out = _softargmax_call(z, beta, mask, axes).astype(dtype)
    return _integer_limits(raw, out, beta, mask, axes)


@debug_checked
def softargmin(
    z: ArrayLike, *, beta: ArrayLike = 1.0, axis: Axis = -1, where: ArrayLike | None = None
) -> jax.Array:
    r"""The smooth arg min: :math:`\sigma_{-\beta}(z)`, the softmax of :math:`-\beta z`.

    .. math:: \operatorname{softargmin}_\beta(z) = \operatorname{softargmax}_{-\beta}(z)

    :math:`\beta \to +\infty` gives :func:`argmin_onehot`. Same conventions as :func:`softargmax`.

    Args:
      z: scores, any shape.
      beta: inverse temperature (scalar or one per slice), may be traced.
      axis: the axis or axes to normalise over.
      where: optional boolean mask; False entries are left out.

    Returns:
      An array like ``z`` whose slices sum to one, concentrated on the smallest entries.

    Example:
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> print(sjx.softargmin(jnp.array([1.0, 1.0001]), beta=1e7))
      [1. 0.]

    References:
      Blondel, Martins & Niculae, "Learning with Fenchel-Young losses", JMLR 21 (2020),
      arXiv:1901.02324.
    """
    raw = z
    z, beta, mask, axes, dtype = prepare(z, beta, axis, where, "z")
    out = _softargmax_call(z, -beta, mask, axes).astype(dtype)
    return _integer_limits(raw, out, -beta, mask, axes)


@debug_checked
def log_softargmax(
    z: ArrayLike, *, beta: ArrayLike = 1.0, axis: Axis = -1, where: ArrayLike | None = None
) -> jax.Array:
    r"""The logarithm of :func:`softargmax`, computed without forming the softmax.

    .. math::
        \log \sigma_\beta(z)_i = \beta z_i - \log \sum_j e^{\beta z_j}

    At :math:`\beta = +\infty` it is :math:`-\log k` on the :math:`k` maximal entries and
    :math:`-\infty` elsewhere. Masked entries and fully masked slices give :math:`-\infty` with zero
    gradient.

    Args:
      z: scores, any shape.
      beta: inverse temperature (scalar or one per slice), may be traced.
      axis: the axis or axes to normalise over.
      where: optional boolean mask; False entries are left out.

    Returns:
      An array like ``z``: log-probabilities along ``axis``.

    Example:
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> print(sjx.log_softargmax(jnp.array([0.0, 0.0, 1.0]), beta=jnp.inf))
      [-inf -inf  0.]

    References:
      Blanchard, Higham & Higham, "Accurately computing the log-sum-exp and softmax functions",
      IMA J. Numer. Anal. 41(4) (2021), doi:10.1093/imanum/draa038.
    """
    raw = z
    z, beta, mask, axes, dtype = prepare(z, beta, axis, where, "z")
    out = _log_softargmax_call(z, beta, mask, axes).astype(dtype)
    return _integer_limits(raw, out, beta, mask, axes, log=True)


@debug_checked
def argmax_onehot(z: ArrayLike, *, axis: Axis = -1, where: ArrayLike | None = None) -> jax.Array:
    r"""The arg max as a one-hot array, ties split equally: the :math:`\beta = +\infty` limit.

    .. math::
        \operatorname{argmax\_onehot}(z)_i = \frac{[z_i = \max_j z_j]}{\#\{j : z_j = \max_k z_k\}}
        = \lim_{\beta \to +\infty} \sigma_\beta(z)_i

    It equals ``softargmax(z, beta=inf)`` bit for bit on floating input, and is computed by
    comparisons in the input's own dtype, so integers are never rounded (``[2**24 + 1, 2**24]``
    has one maximum) and no infinity or NaN is formed on finite input. Its gradient is zero.

    Args:
      z: scores, any shape.
      axis: the axis or axes to take the arg max over.
      where: optional boolean mask; False entries are left out.

    Returns:
      An array like ``z``: :math:`1/k` on the :math:`k` maximal entries of each slice, 0 elsewhere.

    Example:
      >>> import softjax as sjx
      >>> print(sjx.argmax_onehot([1, 5, 10]))
      [0. 0. 1.]
      >>> print(sjx.argmax_onehot([1, 5, 5]))
      [0.  0.5 0.5]

    References:
      Blondel, Martins & Niculae, "Learning with Fenchel-Young losses", JMLR 21 (2020),
      arXiv:1901.02324 (the arg max as the β = ∞ limit of regularised prediction).
    """
    return _onehot(z, axis, where, largest=True)


@debug_checked
def argmin_onehot(z: ArrayLike, *, axis: Axis = -1, where: ArrayLike | None = None) -> jax.Array:
    r"""The arg min as a one-hot array, ties split equally: the :math:`\beta = -\infty` limit.

    .. math::
        \operatorname{argmin\_onehot}(z) = \lim_{\beta \to -\infty} \sigma_\beta(z)

    It equals ``softargmax(z, beta=-inf)`` bit for bit on floating input, and is computed by
    comparisons in the input's own dtype, like :func:`argmax_onehot`. Its gradient is zero.

    Args:
      z: scores, any shape.
      axis: the axis or axes to take the arg min over.
      where: optional boolean mask; False entries are left out.

    Returns:
      An array like ``z``: :math:`1/k` on the :math:`k` minimal entries of each slice, 0 elsewhere.

    Example:
      >>> import softjax as sjx
      >>> print(sjx.argmin_onehot([3.0, 1.0, 1.0, 2.0]))
      [0.  0.5 0.5 0. ]

    References:
      Blondel, Martins & Niculae, "Learning with Fenchel-Young losses", JMLR 21 (2020),
      arXiv:1901.02324.
    """
    return _onehot(z, axis, where, largest=False)


@debug_checked
def smooth_max(
    z: ArrayLike,
    *,
    beta: ArrayLike = 1.0,
    axis: Axis = -1,
    keepdims: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""The smooth maximum :math:`\frac{1}{\beta}\log\sum_i e^{\beta z_i}` (LogSumExp at β).

    .. math::
        \operatorname{smax}_\beta(z) = \frac{1}{\beta} \log \sum_i e^{\beta z_i},
        \qquad \max z \le \operatorname{smax}_\beta(z) \le \max z + \frac{\log n}{\beta}
        \quad (\beta > 0).

    It is the sum of the log-semiring, a deformation of the tropical (max-plus) sum
    :math:`\max`: :math:`\beta \to +\infty` gives :math:`\max z`, :math:`\beta \to -\infty` gives
    :math:`\min z` (exactly, from the same compiled code). Its gradient in :math:`z` is
    :func:`softargmax`, its Hessian :math:`\beta(\operatorname{diag} p - p p^\top)` and
    :math:`\partial/\partial\beta = -H(\sigma_\beta(z))/\beta^2`.

    At :math:`\beta = 0` the function has no limit (it tends to :math:`+\infty` from the right and
    :math:`-\infty` from the left when two or more entries are live). The value returned is the
    right-hand limit: :math:`+\infty` when at least two entries are unmasked and not all are
    :math:`-\infty`, and :math:`\max z` for a single entry; the gradient there is the uniform
    softargmax. Use :func:`mellowmax` for a smooth maximum that is finite (the mean) at β = 0.
    A subnormal β is flushed to 0 and so gives this limit too, even where
    :math:`\max z + \log n / \beta` would still be finite.

    Non-finite input: entries at :math:`+\infty` give :math:`+\infty`, an all-:math:`-\infty` slice
    gives :math:`-\infty` with a finite (uniform) gradient, an unmasked NaN gives NaN, and a slice
    with no unmasked entry gives :math:`-\infty` with zero gradient.

    Args:
      z: scores, any shape.
      beta: inverse temperature (scalar or one per slice, with the reduced axes kept), may be
        traced, vmapped and differentiated.
      axis: the axis or axes to reduce (int, tuple, or None for all).
      keepdims: keep the reduced axes as size 1.
      where: optional boolean mask; False entries are left out.

    Returns:
      The reduced array.

    Example:
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> z = jnp.array([1.0, 2.0, 3.0])
      >>> print(f"{sjx.smooth_max(z, beta=1.0):.4f} {sjx.smooth_max(z, beta=jnp.inf):.4f}")
      3.4076 3.0000
      >>> print(f"{sjx.smooth_max(z, beta=-jnp.inf):.4f}")
      1.0000

    References:
      Nesterov, "Smooth minimization of non-smooth functions", Math. Programming 103 (2005).
      Litvinov, "Maslov dequantization, idempotent and tropical mathematics: a brief
      introduction" (2007), arXiv:math/0507014.
    """
    z, beta, mask, axes, dtype = prepare(z, beta, axis, where, "z")
    return finish(_lse_call(z, beta, mask, axes, False), axes, keepdims, dtype)


@debug_checked
def smooth_min(
    z: ArrayLike,
    *,
    beta: ArrayLike = 1.0,
    axis: Axis = -1,
    keepdims: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""The smooth minimum :math:`-\frac{1}{\beta}\log\sum_i e^{-\beta z_i}`.

    .. math:: \operatorname{smin}_\beta(z) = -\operatorname{smax}_\beta(-z)

    :math:`\beta \to +\infty` gives :math:`\min z`; it is the sum of the min-side log-semiring (the
    deformation of the min-plus semiring). A slice with no unmasked entry gives :math:`+\infty`;
    at :math:`\beta = 0` the value is :math:`-\infty` for two or more live entries (see
    :func:`smooth_max`).

    Args:
      z: scores, any shape.
      beta: inverse temperature (scalar or one per slice), may be traced.
      axis: the axis or axes to reduce.
      keepdims: keep the reduced axes as size 1.
      where: optional boolean mask; False entries are left out.

    Returns:
      The reduced array.

    Example:
      >>> import softjax as sjx
      >>> print(f"{sjx.smooth_min([1.0, 2.0, 3.0], beta=10.0):.4f}")
      0.9999

    References:
      Litvinov, "Maslov dequantization, idempotent and tropical mathematics: a brief
      introduction" (2007), arXiv:math/0507014.
    """
    z, beta, mask, axes, dtype = prepare(z, beta, axis, where, "z")
    return finish(-_lse_call(-z, beta, mask, axes, False), axes, keepdims, dtype)


@debug_checked
def mellowmax(
    z: ArrayLike,
    *,
    beta: ArrayLike = 1.0,
    axis: Axis = -1,
    keepdims: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Mellowmax: :math:`\frac{1}{\beta}\log\frac{1}{n}\sum_i e^{\beta z_i}`, from min to max.

    .. math::
        \operatorname{mm}_\beta(z) = \frac{1}{\beta}\log\Big(\frac{1}{n}\sum_{i=1}^n
        e^{\beta z_i}\Big)

    A generalised mean that is non-decreasing in β: :math:`\min z` at :math:`\beta = -\infty`,
    the arithmetic mean at :math:`\beta = 0` (returned exactly, with
    :math:`\partial/\partial\beta = \operatorname{Var}(z)/2` there), :math:`\max z` at
    :math:`\beta = +\infty`. Computed with ``expm1``/``log1p`` so that it is accurate for small
    :math:`|\beta|`; :math:`\partial/\partial\beta = \mathrm{KL}(\sigma_\beta \,\|\, u)/\beta^2`.
    :math:`n` counts the unmasked entries; a slice with none gives :math:`-\infty`.

    Args:
      z: scores, any shape.
      beta: inverse temperature (scalar or one per slice), may be traced.
      axis: the axis or axes to reduce.
      keepdims: keep the reduced axes as size 1.
      where: optional boolean mask; False entries are left out.

    Returns:
      The reduced array.

    Example:
      >>> import softjax as sjx
      >>> z = [1.0, 2.0, 6.0]
      >>> print(f"{sjx.mellowmax(z, beta=0.0):.4f} {sjx.mellowmax(z, beta=1.0):.4f}")
      3.0000 4.9261

    References:
      Asadi & Littman, "An alternative softmax operator for reinforcement learning", ICML 2017,
      arXiv:1612.05628.
    """
    z, beta, mask, axes, dtype = prepare(z, beta, axis, where, "z")
    return finish(_lse_call(z, beta, mask, axes, True), axes, keepdims, dtype)


# ----------------------------------------------------------------------------------------------
# logsumexp with weights: a drop-in replacement for jax.nn.logsumexp.


def _wlse_impl(a, b, mask, axes):
    valid = b != 0 if mask is None else (b != 0) & mask
    m = jnp.max(jnp.where(valid, a, -_INF), axis=axes, keepdims=True, initial=-_INF)
    m = jax.lax.stop_gradient(m)
    e = jnp.exp(minus(a, m))
    s = jnp.sum(jnp.where(valid, b * e, 0.0), axis=axes, keepdims=True)
    out = m + jnp.log(jnp.abs(s))
    # An undefined sum (inf − inf) has no sign: NaN, like its log.
    sign = nan_from(out, jnp.where(out == -_INF, 0.0, jnp.sign(s)))
    return out, sign, e, s, valid


# Custom JVP: ∂/∂b_i = e^{a_i} / Σ_j b_j e^{a_j} also where b_i = 0 (autodiff of the masked form
# gives 0 there), and finite gradients on all-(−inf) slices.
@partial(jax.custom_jvp, nondiff_argnums=(3,))
def _wlse(a, b, mask, axes):
    out, sign, *_ = _wlse_impl(a, b, mask, axes)
    return out, sign


@_wlse.defjvp
def _wlse_jvp(axes, primals, tangents):
    a, b, mask = primals
    da, db, _ = tangents
    out, sign, e, s, valid = _wlse_impl(a, b, mask, axes)
    safe_s = jnp.where(s == 0, 1.0, s)
    w = jnp.where(s == 0, 0.0, e / safe_s)
    if mask is not None:
        w = jnp.where(mask, w, 0.0)
    wa = jnp.where(valid, b * w, 0.0)
    dout = jnp.sum(wa * da + w * db, axis=axes, keepdims=True)
    return (out, sign), (dout, jnp.zeros_like(sign))


_wlse_call = jax.jit(_wlse, static_argnums=(3,))


@debug_checked
def logsumexp(
    a: ArrayLike,
    axis: Axis = None,
    b: ArrayLike | None = None,
    keepdims: bool = False,
    return_sign: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    r"""Log-sum-exp, a drop-in replacement for :func:`jax.nn.logsumexp` that is right at the edges.

    .. math::
        \operatorname{LSE}(a; b) = \log \Big| \sum_i b_i e^{a_i} \Big|,
        \qquad \operatorname{sign} = \operatorname{sign} \sum_i b_i e^{a_i}.

    Same signature and semantics as :func:`jax.nn.logsumexp` and ``scipy.special.logsumexp``:
    ``b`` are weights (possibly negative; entries with ``b == 0`` are left out of the sum, whatever
    ``a`` is), ``return_sign`` returns the sign of the sum, and without it a negative sum gives NaN.
    Where :func:`jax.nn.logsumexp` differs, this one is right: an all-:math:`-\infty` slice gives
    :math:`-\infty` with a finite gradient (the uniform softargmax); the derivative with respect to
    a zero weight is :math:`e^{a_i}/\sum_j b_j e^{a_j}`, not 0; 16-bit input accumulates in float32
    and returns its own dtype. A sum that is exactly zero gives :math:`-\infty`, sign 0 and a zero
    gradient. Without ``b`` this is :func:`smooth_max` at :math:`\beta = 1`.

    Args:
      a: the exponents.
      axis: the axis or axes to reduce (None: all).
      b: optional weights broadcastable with ``a``.
      keepdims: keep the reduced axes as size 1.
      return_sign: also return the sign of the sum.
      where: optional boolean mask; False entries are left out.

    Returns:
      The log of the absolute sum, and its sign when ``return_sign`` is True.

    Example:
      >>> import jax.numpy as jnp
      >>> import softjax as sjx
      >>> print(sjx.logsumexp(jnp.array([-jnp.inf, -jnp.inf])))
      -inf
      >>> value, sign = sjx.logsumexp(jnp.array([1.0, 2.0]), b=jnp.array([1.0, -1.0]),
      ...                             return_sign=True)
      >>> print(f"{value:.4f} {sign:.0f}")
      1.5413 -1

    References:
      Blanchard, Higham & Higham, "Accurately computing the log-sum-exp and softmax functions",
      IMA J. Numer. Anal. 41(4) (2021), doi:10.1093/imanum/draa038.
    """
    if b is None:
        a, beta, mask, axes, dtype = prepare(a, 1.0, axis, where, "a")
        out = _lse_call(a, beta, mask, axes, False)
        if not return_sign:
            return finish(out, axes, keepdims, dtype)
        sign = nan_from(out, jnp.where(out == -_INF, 0.0, 1.0))
        return finish(out, axes, keepdims, dtype), finish(sign, axes, keepdims, dtype)
    # JAX's promotion of the pair, then to a float as jnp.exp would (float32 with int32 weights).
    dtype = inexact(jnp.result_type(jnp.asarray(a), jnp.asarray(b)))
    a, _ = as_real(a, "a")
    b, _ = as_real(b, "b")
    a, b = jnp.broadcast_arrays(a.astype(compute_dtype(dtype)), b.astype(compute_dtype(dtype)))
    axes = normalize_axis(axis, a.ndim)
    mask = as_mask(where, a.shape)
    out, sign = _wlse_call(a, b, mask, axes)
    if not return_sign:
        out = jnp.where(sign < 0, jnp.sqrt(jnp.minimum(sign, 0.0)), out)  # NaN: no real log
        return finish(out, axes, keepdims, dtype)
    return finish(out, axes, keepdims, dtype), finish(sign, axes, keepdims, dtype)
