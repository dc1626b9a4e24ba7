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

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from softjax._core import (
    Axis,
    as_float,
    as_mask,
    finish,
    normalize_axis,
    prepare,
)

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
# Private kernel. Shapes: z (...), beta broadcastable to z with the reduced axes kept, mask like z
# or None; every reduction keeps its axes.
#
# Every function computes exp(y) with y = β·(z − M) ≤ 0, where M is the maximum of z when β ≥ 0 and
# the minimum when β < 0: the subtraction comes first, so no large product is ever differenced.
# The common case (no mask, finite nonzero β, finite M) is one fused max-exp-sum pass, like
# jax.nn.softmax. Its normaliser is NaN exactly when the slice holds a NaN, β = ±inf, or M = ±inf
# (or β = 0 meets an infinite entry), and then so is the whole output slice; only then is the
# exact select-based form evaluated, at run time under lax.cond, so the rare cases cost nothing on
# the hot path. Derivatives (short slices) recompute σ from select-free forms with the rare cases
# folded into per-slice constants, which XLA fuses with the backward pass: _tangent_logits for the
# z-derivative of softargmax and log_softargmax (5 operations per entry, exact wherever that
# derivative is not 0), _select_free_logits where σ itself is the derivative (smooth_max).


def _prepare(z, beta, axis, where):
    # z keeps a 16-bit dtype; β carries the dtype to compute in (float32 for 16-bit z), and the
    # kernel converts z inside its fused passes.
    return prepare(z, beta, axis, where, "z")


def _up(x, beta):
    """``x`` in the dtype to compute in (that of β)."""
    return x.astype(beta.dtype)


def _extreme(z, beta, mask, axes):
    """M: the maximum of the live entries where β ≥ 0, their minimum where β < 0 (no gradient).

    XLA's CPU reductions may skip a NaN: callers propagate it through ``z − M`` instead.
    """
    z = _up(z, beta)
    hi = z if mask is None else jnp.where(mask, z, -_INF)
    lo = z if mask is None else jnp.where(mask, z, _INF)
    hi = jnp.max(hi, axis=axes, keepdims=True, initial=-_INF)
    lo = jnp.min(lo, axis=axes, keepdims=True, initial=_INF)
    return jax.lax.stop_gradient(jnp.where(beta < 0, lo, hi))


def _exact_logits(z, beta, mask, axes):
    """(y, M) with the rules for the rare cases spelled out elementwise.

    Entries equal to M get exactly 0, so ties, +inf entries and all-(−inf) slices split the mass
    equally even at |β| = ∞; every live entry gets 0 at β = 0 (uniform); masked entries get −inf.
    A NaN entry gets NaN (also at β = 0), which poisons its slice's sum.
    """
    z = _up(z, beta)
    m = _extreme(z, beta, mask, axes)
    y = jnp.where(((z == m) | (beta == 0)) & ~jnp.isnan(z), 0.0, beta * (z - m))
    if mask is not None:
        y = jnp.where(mask, y, -_INF)
    return y, m


def _fast(z, beta, axes, finish):
    """``finish(y, S, M)`` with y = β(z − M) and S = Σ exp(y), by the fused path.

    The side (max or min) is picked at run time from the sign of β; a β per slice with both signs
    computes both extremes.
    """

    def side(reduce):
        def branch(z, beta):
            # The extreme is exact in the input dtype; taking it before the upcast keeps each
            # 16-bit conversion inside the pass that uses it (nothing float32 is materialised).
            m = _up(jax.lax.stop_gradient(reduce(z, beta)), beta)
            y = beta * (_up(z, beta) - m)
            s = jnp.sum(jnp.exp(y), axis=axes, keepdims=True)
            return finish(y, s, m)

        return branch

    def hi(z, beta):
        return jnp.max(z, axis=axes, keepdims=True, initial=-_INF)

    def lo(z, beta):
        return jnp.min(z, axis=axes, keepdims=True, initial=_INF)

    branches = [side(hi), side(lo)]
    if beta.ndim == 0:
        index = (beta < 0).astype(jnp.int32)
    else:
        branches.append(side(lambda z, beta: jnp.where(beta < 0, lo(z, beta), hi(z, beta))))
        index = jnp.where(jnp.all(beta >= 0), 0, jnp.where(jnp.all(beta < 0), 1, 2))
    return jax.lax.switch(index, branches, z, beta)


def _guarded(z, beta, mask, axes, finish):
    """``finish(y, S, M)`` computed exactly: fused fast path, exact path only where it is needed."""

    def exact(z, beta):
        y, m = _exact_logits(z, beta, mask, axes)
        s = jnp.sum(jnp.exp(y), axis=axes, keepdims=True)
        return finish(y, s, m)

    if mask is not None:
        return exact(z, beta)
    out = _fast(z, beta, axes, finish)
    # S is NaN exactly in the rare cases (and for a NaN entry), and then ``finish`` is NaN on the
    # whole slice: the first entry of each slice tells. Probing the output rather than returning S
    # from the fast path keeps that path one fused kernel with a single output.
    probe = out
    if out.shape == z.shape:
        if any(z.shape[a] == 0 for a in axes):
            return out
        probe = out[tuple(slice(0, 1) if a in axes else slice(None) for a in range(z.ndim))]
    return jax.lax.cond(jnp.any(jnp.isnan(probe)), exact, lambda z, beta: out, z, beta)


def _select_free_logits(z, beta, axes):
    """y = β(z − M) with the rare cases folded in, by arithmetic only (no mask).

    XLA's CPU backend fuses a softmax's forward and backward passes into one kernel (YNNPACK) only
    when every operation between them is arithmetic, min/max, exp or log: a select or a compare
    splits the kernel and forces the output to memory. Under differentiation the output is
    therefore computed here with per-slice constants in place of selects::

        w = min(max((z − c₁) − c₂, lo), hi),     y = a₂·(a₁·w)

    Normal slices (finite β ≠ 0 and finite extreme M) take c₁ = M, c₂ = 0, lo = −∞, hi = +∞,
    a₁ = β, a₂ = 1, so that y = β(z − M) bit for bit. At β = ±∞, a₁ = ±K and a₂ = K with K² times
    the smallest subnormal beyond the underflow of exp: every entry off the extreme gets weight
    exactly 0. When the extreme is infinite on the side of β, (z ∓ F) ∓ F (F the largest float)
    is ±∞ on the extreme entries and finite elsewhere; clamped to [−1, 0] and scaled by K² it gives
    0 there and −∞ elsewhere, so even an entry equal to F loses to +∞. When every entry ties (β = 0,
    or all at −∞ on the side of β) lo = hi = 0. The indicators of these cases are computed from the
    extreme by clamps and ``log`` (log 0 = −∞ gives the infinite bounds), never by a compare.
    A NaN entry makes w, and so its slice, NaN.
    """
    dt = beta.dtype
    fi = jnp.finfo(dt)
    k = 2.0 ** math.ceil((10 - math.log2(float(fi.smallest_subnormal))) / 2)
    # Opaque to XLA's simplifier, which would turn min(max(x, c), d) with constants into a clamp.
    big, zero, one = jax.lax.optimization_barrier(
        (jnp.asarray(fi.max, dt), jnp.asarray(0, dt), jnp.asarray(1, dt))
    )
    # Functions of β alone (computed before the fused kernel).
    sgn = jnp.where(beta < 0, -one, one)
    pos = (one + sgn) * 0.5
    a1 = jnp.where(jnp.isinf(beta), k, jnp.abs(beta))
    a2 = jnp.where(jnp.isinf(beta), k, one)
    at_zero = (beta == 0).astype(dt)
    # Functions of the extreme t = max(sgn·z), by arithmetic.
    zc = _up(z, beta)
    t = jax.lax.stop_gradient(jnp.max(sgn * zc, axis=axes, keepdims=True, initial=-_INF))
    tc = jnp.minimum(jnp.maximum(t, -big), big)
    up = jnp.minimum(jnp.maximum(t - tc, zero), one)  # 1 where t = +inf
    down = jnp.minimum(jnp.maximum(tc - t, zero), one)  # 1 where t = −inf (all entries tie)
    tie = jnp.maximum(down, at_zero)
    flat = jnp.log(jnp.maximum(up, tie))  # 0 in the rare cases, −inf otherwise
    keep = up * (one - tie)  # 1 where the infinite entries are the extreme ones
    lo = flat - keep * pos
    hi = keep * (one - pos) - flat
    w = jnp.minimum(jnp.maximum((zc - sgn * tc) - sgn * (keep * big), lo), hi)
    return jnp.maximum(a2, keep * k) * ((jnp.maximum(a1, keep * k) * sgn) * w)


def _tangent_logits(z, beta, axes):
    """Logits y with exp(y) ∝ σ_β(z) wherever the z-derivative of σ needs σ, by 5 ops per entry.

    The z-tangent of softargmax, σ ⊙ (ż − ⟨σ, ż⟩)·β, vanishes at β = 0 and β = ±∞, so there it
    only needs *some* finite weights; everywhere else (β finite and nonzero, finite, infinite or
    NaN entries) these logits give σ exactly. That lets them drop the second scale of
    :func:`_select_free_logits` (only needed for the one-hot limit), and keep the per-slice
    constants to a few operations, which also count inside the fused kernel::

        u = (sgn β / 2)·z,   t = max u,   y = a·min(max(u − t', lo), hi)

    Normal slices take t' = t, lo = −∞, hi = F (the largest float, above every u − t, so that no
    derivative meets a tie with a bound) and a = 2|β|: y = β(z − M) bit for bit, since halving is
    exact. When t = +∞, t' = F, hi = 0 and a ≥ 2¹⁴: every finite u is at most F/2, so a·(u − F)
    overflows to −∞ (weight 0) while +∞ entries clamp to 0, and an entry equal to F still loses to
    +∞. When every entry is −∞ on the side of β, lo = +∞ and hi = 0 put them all at 0 (uniform).
    β ∈ {0, ±∞, subnormal} is computed as β = ±1, which only has to be finite there. A NaN entry
    makes its slice NaN. The constants come from t by arithmetic and ``log`` (log 0 = −∞), never
    by a compare, which would split the kernel.

    Two inexact corners, both beyond any use: ``|β| > F/2`` scales by F instead of 2|β|, and an
    entry with ``|z| < 2·tiny`` may be flushed when halved.
    """
    dt = beta.dtype
    fi = jnp.finfo(dt)
    # Opaque to XLA's simplifier, which would turn min(max(x, c), d) with constants into a clamp.
    big, zero, k = jax.lax.optimization_barrier(
        (jnp.asarray(fi.max, dt), jnp.asarray(0, dt), jnp.asarray(2.0**14, dt))
    )
    # Functions of β alone (computed before the fused kernel).
    half = jnp.where(beta < 0, -0.5, 0.5).astype(dt)
    regular = jnp.isfinite(beta) & (jnp.abs(beta) >= fi.tiny)
    scale = jnp.where(regular, jnp.minimum(2 * jnp.abs(beta), fi.max), 2.0).astype(dt)
    # Functions of the extreme t = max u (per slice, inside the fused kernel).
    u = half * _up(z, beta)
    t = jax.lax.stop_gradient(jnp.max(u, axis=axes, keepdims=True, initial=-_INF))
    tc = jnp.minimum(jnp.maximum(t, -big), big)
    d = tc - t  # ∓inf where t = ±inf, else 0
    lo = jnp.log(jnp.maximum(d, zero))  # +inf where t = −inf (then every w = hi = 0), else −inf
    rare = jnp.abs(d)
    hi = big - jnp.minimum(rare, big)
    return (scale + jnp.minimum(rare, k)) * jnp.minimum(jnp.maximum(u - tc, lo), hi)


def _dz_weights(z, beta, mask, axes, exact):
    """(e, r) with σ = e·r wherever the z-tangent of softargmax needs σ; ``exact()`` gives σ."""
    if not _recomputes(z, mask, axes):
        return _up(exact(), beta), 1.0
    e = jnp.exp(_tangent_logits(z, beta, axes))
    return e, 1.0 / jnp.sum(e, axis=axes, keepdims=True)


def _dz_tangent(e, r, beta, dz, axes):
    """σ ⊙ (ż − ⟨σ, ż⟩)·β with σ = e·r.

    Written so that reverse mode multiplies the cotangent by e before β (no overflow at a huge β
    where σ = 0) and needs no array-sized σ: the weights are recomputed inside the backward pass.
    """
    k = _finite_beta(beta) * r
    return e * (k * (dz - jnp.sum(e * dz, axis=axes, keepdims=True) * r))


# The largest slice for which derivatives recompute σ inside the backward kernel from a
# select-free form (_tangent_logits, _select_free_logits). For longer slices keeping the output
# in memory (the guarded form) is faster: on CPU recomputing won up to 2048 entries per slice and
# lost from 4096 on (forward+backward against jax.nn.softmax in one process).
_FUSE_MAX = 1 << 11


def _recomputes(z, mask, axes):
    """Whether derivatives recompute σ from a select-free form (short slices, no mask)."""
    n = math.prod(z.shape[a] for a in axes)
    return mask is None and 0 < n <= _FUSE_MAX


def _softargmax_ad_impl(z, beta, mask, axes):
    if not _recomputes(z, mask, axes):
        return _softargmax_impl(z, beta, mask, axes)
    e = jnp.exp(_select_free_logits(z, beta, axes))
    return (e / jnp.sum(e, axis=axes, keepdims=True)).astype(z.dtype)


def _safe_total(s):
    """The normaliser, with 1 in place of 0 for an empty or fully masked slice (all e are 0)."""
    return jnp.where(s == 0, 1.0, s)


def _softargmax_impl(z, beta, mask, axes):
    # Without a mask a non-empty slice has S >= 1 (its maximum contributes e^0), so the guard
    # against 0/0 is only needed with a mask or an empty axis; leaving it out keeps the fast path
    # one fused pass.
    guard = mask is not None or any(z.shape[a] == 0 for a in axes)

    def finish(y, s, m):
        return (jnp.exp(y) / (_safe_total(s) if guard else s)).astype(z.dtype)

    return _guarded(z, beta, mask, axes, finish)


# The custom JVP stays finite at β = ±inf, on ties, on all-(−inf) slices and on masked entries,
# where autodiff gives NaN. Its z-derivative keeps no array-sized residual but z on short slices
# (the weights are recomputed in the backward pass) and the output on long or masked ones.
@partial(jax.custom_jvp, nondiff_argnums=(3,))
def _softargmax(z, beta, mask, axes):
    return _softargmax_impl(z, beta, mask, axes)


# The same function where σ itself is a derivative (of smooth_max, mellowmax and logsumexp, and
# the β-derivative of log_softargmax): on short slices its output comes from the select-free
# logits, so that XLA fuses it with the backward pass instead of storing it.
@partial(jax.custom_jvp, nondiff_argnums=(3,))
def _softargmax_ad(z, beta, mask, axes):
    return _softargmax_ad_impl(z, beta, mask, axes)


def _finite_beta(beta):
    # d σ / d z vanishes at |β| = ∞: the one-hot limit is locally constant.
    return jnp.where(jnp.isinf(beta), 0.0, beta)


def _minus(z, m):
    """z − m, with 0 where z = m = ±inf; differentiable in z wherever m is finite."""
    return jnp.where(jnp.isfinite(m), z - m, jnp.where(z == m, 0.0, z - m))


def _centred(z, beta, mask, axes, p):
    """z − ⟨p, z⟩, computed as d − ⟨p, d⟩ with d = z − M, finite wherever z is."""
    z = _up(z, beta)
    m = _extreme(z, beta, mask, axes)
    d = _minus(z, m)
    live = p > 0
    mean = jnp.sum(jnp.where(live, p * jnp.where(live, d, 0.0), 0.0), axis=axes, keepdims=True)
    return d - mean, live


def _softargmax_jvp(primal, axes, primals, tangents):
    z, beta, mask = primals
    dz, dbeta, _ = tangents
    p_out = primal(z, beta, mask, axes)
    out = jnp.zeros(p_out.shape, jnp.result_type(p_out, beta))
    with_beta = not isinstance(dbeta, SymbolicZero)
    if not isinstance(dz, SymbolicZero):
        # With a β-tangent the exact σ is needed anyway: it then serves both (one residual).
        if with_beta:
            e, r = _up(p_out, beta), 1.0
        else:
            e, r = _dz_weights(z, beta, mask, axes, lambda: p_out)
        out = _dz_tangent(e, r, beta, _up(dz, beta), axes)
    if with_beta:
        # ∂σ/∂β = σ ⊙ (z − ⟨σ, z⟩), with the exact σ (also at β = 0 and ±∞)
        p = _up(p_out, beta)
        c, live = _centred(z, beta, mask, axes, p)
        out = out + jnp.where(live, p * jnp.where(live, c, 0.0), 0.0) * dbeta
    return p_out, out.astype(p_out.dtype)


# The output of softargmax comes from the guarded kernel (one fused pass in the forward); its
# z-tangent recomputes its own weights (_tangent_logits), which XLA fuses with the backward pass.
# The gradient of smooth_max is σ itself, exact at every β: it uses _softargmax_ad.
_softargmax.defjvp(partial(_softargmax_jvp, _softargmax), symbolic_zeros=True)
_softargmax_ad.defjvp(partial(_softargmax_jvp, _softargmax_ad), symbolic_zeros=True)


def _log_softargmax_impl(z, beta, mask, axes):
    def finish(y, s, m):
        out = y - jnp.log(s)
        out = out if mask is None else jnp.where(mask, out, -_INF)
        return out.astype(z.dtype)

    return _guarded(z, beta, mask, axes, finish)


# Custom JVP for the same reasons as softargmax, with the same weights for the z-derivative.
@partial(jax.custom_jvp, nondiff_argnums=(3,))
def _log_softargmax(z, beta, mask, axes):
    return _log_softargmax_impl(z, beta, mask, axes)


def _log_softargmax_jvp(axes, primals, tangents):
    z, beta, mask = primals
    dz, dbeta, _ = tangents
    logp = _log_softargmax(z, beta, mask, axes)
    out = jnp.zeros(logp.shape, jnp.result_type(logp, beta))
    with_beta = not isinstance(dbeta, SymbolicZero)
    p = _up(_softargmax_ad(z, beta, mask, axes), beta) if with_beta else None
    if not isinstance(dz, SymbolicZero):
        if with_beta:  # as for softargmax: the exact σ serves both tangents
            e, r = p, 1.0
        else:
            e, r = _dz_weights(z, beta, mask, axes, lambda: _softargmax_ad(z, beta, mask, axes))
        dz = _up(dz, beta)
        out = (dz - jnp.sum(e * dz, axis=axes, keepdims=True) * r) * _finite_beta(beta)
    if with_beta:
        # ∂ log σ / ∂β = z − ⟨σ, z⟩, finite wherever z is (also where σ underflows to 0); an
        # infinite entry has a constant log-probability (±inf or log of its share), slope 0.
        c, _ = _centred(z, beta, mask, axes, p)
        out = out + jnp.where(jnp.isfinite(c), c, 0.0) * dbeta
    if mask is not None:
        out = jnp.where(mask, out, 0.0)
    return logp, out.astype(logp.dtype)


_log_softargmax.defjvp(_log_softargmax_jvp, symbolic_zeros=True)


def _count(z, mask, axes):
    if mask is None:
        n = 1
        for a in axes:
            n *= z.shape[a]
        return jnp.asarray(n, z.dtype)
    return jnp.sum(mask, axis=axes, keepdims=True).astype(z.dtype)


def _masked_mean(z, mask, axes):
    n = _count(z, mask, axes)
    zz = z if mask is None else jnp.where(mask, z, 0.0)
    return jnp.sum(zz, axis=axes, keepdims=True) / n


def _smooth_max_impl(z, beta, mask, axes):
    safe_beta = jnp.where(beta == 0, 1.0, beta)

    def finish(y, s, m):
        log_s = jnp.log(s)
        # β = 0: the limit β → 0⁺, +inf as soon as two entries are live (log n / β), else M.
        at_zero = jnp.where((log_s > 0) & (m > -_INF), _INF, m)
        val = jnp.where(beta == 0, at_zero, m + log_s / safe_beta)
        val = jnp.where(jnp.isnan(s), jnp.nan, val)  # a NaN entry (M may have skipped it)
        return jnp.where(s == 0, -_INF, val)  # no live entry

    return _guarded(z, beta, mask, axes, finish)


def _mellowmax_impl(z, beta, mask, axes):
    # (1/β) log mean exp(βz) = M + log1p(mean(expm1(y)))/β, accurate for small |β|.
    z = _up(z, beta)
    y, m = _exact_logits(z, beta, mask, axes)
    n = _count(z, mask, axes)
    em1 = jnp.expm1(y)
    if mask is not None:
        em1 = jnp.where(mask, em1, 0.0)
    lm = jnp.log1p(jnp.sum(em1, axis=axes, keepdims=True) / n)
    safe_beta = jnp.where(beta == 0, 1.0, beta)
    val = jnp.where(beta == 0, _masked_mean(z, mask, axes), m + lm / safe_beta)
    val = jnp.where(jnp.isnan(m), jnp.nan, val)
    return jnp.where(n == 0, -_INF, val)


# Custom JVP: ∇_z is the softargmax and ∂/∂β = −H/β² in closed form, finite on ties, infinities
# and masks (autodiff of the shifted form gives NaN there, jax issue 6811).
@partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _lse(z, beta, mask, axes, mean):
    return (_mellowmax_impl if mean else _smooth_max_impl)(z, beta, mask, axes)


def _entropy_of(z, beta, mask, axes, p):
    logp = _up(_log_softargmax(z, beta, mask, axes), beta)
    live = p > 0
    return -jnp.sum(jnp.where(live, p * jnp.where(live, logp, 0.0), 0.0), axis=axes, keepdims=True)


def _lse_jvp(axes, mean, primals, tangents):
    z, beta, mask = primals
    dz, dbeta, _ = tangents
    val = _lse(z, beta, mask, axes, mean)
    p = _up(_softargmax_ad(z, beta, mask, axes), beta)
    out = jnp.zeros_like(val)
    if not isinstance(dz, SymbolicZero):
        out = jnp.sum(p * _up(dz, beta), axis=axes, keepdims=True)
    if not isinstance(dbeta, SymbolicZero):
        h = _entropy_of(z, beta, mask, axes, p)
        safe_beta = jnp.where(beta == 0, 1.0, beta)
        if mean:
            # d/dβ (1/β) log mean e^{βz} = KL(σ ‖ uniform)/β², → Var(z)/2 at β = 0.
            n = _count(z, mask, axes)
            kl = jnp.log(jnp.maximum(n, 1.0)) - h
            z = _up(z, beta)
            mu = _masked_mean(z, mask, axes)
            dev = (z - mu) ** 2 if mask is None else jnp.where(mask, (z - mu) ** 2, 0.0)
            var = jnp.sum(dev, axis=axes, keepdims=True) / jnp.maximum(n, 1.0)
            slope = jnp.where(beta == 0, var / 2, kl / safe_beta**2)
        else:
            # d/dβ (1/β) log Σ e^{βz} = −H(σ)/β²: −inf at β = 0 with two live entries.
            slope = jnp.where(beta == 0, jnp.where(h > 0, -_INF, 0.0), -h / safe_beta**2)
        out = out + slope * dbeta
    return val, out


_lse.defjvp(_lse_jvp, symbolic_zeros=True)


# Compiled entry points: eager calls hit JAX's compilation cache instead of re-tracing the
# run-time branches on every call (the static argument is the tuple of reduced axes).
_softargmax_call = jax.jit(_softargmax, static_argnums=(3,))
_log_softargmax_call = jax.jit(_log_softargmax, static_argnums=(3,))
_lse_call = jax.jit(_lse, static_argnums=(3, 4))
_onehot_call = jax.jit(
    lambda z, beta, mask, axes: jax.lax.stop_gradient(_softargmax_impl(z, beta, mask, axes)),
    static_argnums=(3,),
)


_finish = finish


# ----------------------------------------------------------------------------------------------
# Public API


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
    z, beta, mask, axes, dtype = _prepare(z, beta, axis, where)
    return _softargmax_call(z, beta, mask, axes).astype(dtype)


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
    z, beta, mask, axes, dtype = _prepare(z, beta, axis, where)
    return _softargmax_call(z, -beta, mask, axes).astype(dtype)


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
    z, beta, mask, axes, dtype = _prepare(z, beta, axis, where)
    return _log_softargmax_call(z, beta, mask, axes).astype(dtype)


def argmax_onehot(z: ArrayLike, *, axis: Axis = -1, where: ArrayLike | None = None) -> jax.Array:
    r"""The arg max as a one-hot array, ties split equally: the :math:`\beta = +\infty` limit.

    .. math::
        \operatorname{argmax\_onehot}(z)_i = \frac{[z_i = \max_j z_j]}{\#\{j : z_j = \max_k z_k\}}
        = \lim_{\beta \to +\infty} \sigma_\beta(z)_i

    It equals ``softargmax(z, beta=inf)`` bit for bit. Its gradient is zero.

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
    z, beta, mask, axes, dtype = _prepare(z, _INF, axis, where)
    return _onehot_call(z, beta, mask, axes).astype(dtype)


def argmin_onehot(z: ArrayLike, *, axis: Axis = -1, where: ArrayLike | None = None) -> jax.Array:
    r"""The arg min as a one-hot array, ties split equally: the :math:`\beta = -\infty` limit.

    .. math::
        \operatorname{argmin\_onehot}(z) = \lim_{\beta \to -\infty} \sigma_\beta(z)

    It equals ``softargmax(z, beta=-inf)`` bit for bit. Its gradient is zero.

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
    z, beta, mask, axes, dtype = _prepare(z, -_INF, axis, where)
    return _onehot_call(z, beta, mask, axes).astype(dtype)


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
    z, beta, mask, axes, dtype = _prepare(z, beta, axis, where)
    return _finish(_lse_call(z, beta, mask, axes, False), axes, keepdims, dtype)


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
    z, beta, mask, axes, dtype = _prepare(z, beta, axis, where)
    return _finish(-_lse_call(-z, beta, mask, axes, False), axes, keepdims, dtype)


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
    z, beta, mask, axes, dtype = _prepare(z, beta, axis, where)
    return _finish(_lse_call(z, beta, mask, axes, True), axes, keepdims, dtype)


# ----------------------------------------------------------------------------------------------
# logsumexp with weights: a drop-in replacement for jax.nn.logsumexp.


def _wlse_impl(a, b, mask, axes):
    valid = b != 0 if mask is None else (b != 0) & mask
    m = jnp.max(jnp.where(valid, a, -_INF), axis=axes, keepdims=True, initial=-_INF)
    m = jax.lax.stop_gradient(m)
    e = jnp.exp(_minus(a, m))
    s = jnp.sum(jnp.where(valid, b * e, 0.0), axis=axes, keepdims=True)
    out = m + jnp.log(jnp.abs(s))
    sign = jnp.where(out == -_INF, 0.0, jnp.sign(s))
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
        a, beta, mask, axes, dtype = _prepare(a, 1.0, axis, where)
        out = _lse_call(a, beta, mask, axes, False)
        if not return_sign:
            return _finish(out, axes, keepdims, dtype)
        sign = jnp.where(jnp.isnan(out), jnp.nan, jnp.where(out == -_INF, 0.0, 1.0))
        return _finish(out, axes, keepdims, dtype), _finish(sign, axes, keepdims, dtype)
    a, a_dtype = as_float(a, "a")
    b, b_dtype = as_float(b, "b")
    dtype = jnp.promote_types(a_dtype, b_dtype)
    ctype = jnp.promote_types(a.dtype, b.dtype)
    a, b = jnp.broadcast_arrays(a.astype(ctype), b.astype(ctype))
    axes = normalize_axis(axis, a.ndim)
    mask = as_mask(where, a.shape)
    out, sign = _wlse_call(a, b, mask, axes)
    if not return_sign:
        out = jnp.where(sign < 0, jnp.nan, out)
        return _finish(out, axes, keepdims, dtype)
    return _finish(out, axes, keepdims, dtype), _finish(sign, axes, keepdims, dtype)
