r"""The fused CPU softmax: the kernel of :mod:`softjax.smooth`, computed as XLA's CPU backend fuses.

The definitions in :mod:`softjax.smooth` compute the exponents with selects that spell out the
limits (β = 0, ±inf, ties, infinite entries, NaN). XLA's CPU backend fuses a softmax's passes into
one kernel only when every operation is arithmetic, min/max, exp or log: a select or a compare
splits the kernel and forces the output to memory. This engine gives the same numbers without
them:

- :func:`reduce`, the forward pass: the plain fused max–exp–sum pass, whose normaliser is NaN
  exactly when the slice holds a rare case (a NaN, β = ±inf, an infinite extreme, or β = 0 with
  an infinite entry); only then is the exact select-based form evaluated, under ``lax.cond``.
- :func:`tangent_weights` and :func:`softargmax_recomputed`, the weights a derivative needs, from
  select-free exponents with the rare cases folded into per-slice constants, so that XLA fuses
  them into the backward pass instead of storing σ (on short slices, see ``_FUSE_MAX``).

It serves a call only when there is no mask, the array is large (``_MIN_SIZE``), the reduced axes
are static and not empty, and they are not sharded over an explicit mesh axis (the probe of
:func:`reduce` slices them).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from softjax._core import explicitly_sharded, static_size

_INF = float("inf")

# The largest slice for which derivatives recompute σ inside the backward kernel from
# select-free exponents; for longer slices keeping σ in memory is faster (benchmarks/README.md).
_FUSE_MAX = 1 << 11

# The smallest array the engine serves: below it the definition is as fast on its own and faster
# inside loops (the steps of a dynamic program), where the engine's probe and branch cost most
# (benchmarks/README.md).
_MIN_SIZE = 1 << 16


def applies(z: jax.Array, mask, axes) -> bool:
    """Whether the engine serves this call (a static decision on the shape and the sharding)."""
    if mask is not None or not static_size(z.shape, axes):
        return False
    total = static_size(z.shape, tuple(range(z.ndim)))
    if total is None or total < _MIN_SIZE:
        return False
    return not explicitly_sharded(z, axes)


def recomputes(z: jax.Array, axes) -> bool:
    """Whether derivatives recompute σ from select-free exponents (short slices)."""
    return static_size(z.shape, axes) <= _FUSE_MAX


def _up(x, beta):
    return x.astype(beta.dtype)


def _fast(z, beta, axes, finish, logits_out):
    """``finish(y, S, M)`` with y = β(z − M) and S = Σ exp(y), by one fused pass.

    The side (max or min) is picked at run time from the sign of β; a β per slice with both signs
    computes both extremes. ``logits_out``: whether ``finish`` returns y itself rather than only
    functions of exp(y).
    """
    if logits_out:
        # 2β(z/2 − M/2) is β(z − M) bit for bit, and finite where z − M overflows; where
        # |β| > F/2, 2β = ±inf makes the extreme NaN, which sends the slice to the definition.
        def exponents(z, m, beta):
            return (2 * beta) * (z * 0.5 - m * 0.5)

    else:
        # Where z − M overflows (a spread beyond the largest float F), the exact exponent
        # 2β(z/2 − M/2) is below −2¹⁰ once |β| ≥ 2¹⁰/F, so exp gives 0 as the overflowed β(z − M)
        # does; :func:`reduce` sends a smaller |β| (β = 0 too) to the definition.
        def exponents(z, m, beta):
            return beta * (z - m)

    def side(reduce):
        def branch(z, beta):
            # The extreme is exact in the input dtype; taking it before the upcast keeps each
            # 16-bit conversion inside the pass that uses it (nothing float32 is materialised).
            m = _up(lax.stop_gradient(reduce(z)), beta)
            y = exponents(_up(z, beta), m, beta)
            return finish(y, jnp.sum(jnp.exp(y), axis=axes, keepdims=True), m)

        return branch

    def hi(z):
        return jnp.max(z, axis=axes, keepdims=True, initial=-_INF)

    def lo(z):
        return jnp.min(z, axis=axes, keepdims=True, initial=_INF)

    branches = [side(hi), side(lo)]
    if beta.ndim == 0:
        index = (beta < 0).astype(jnp.int32)
    else:
        branches.append(side(lambda z: jnp.where(beta < 0, lo(z), hi(z))))
        index = jnp.where(jnp.all(beta >= 0), 0, jnp.where(jnp.all(beta < 0), 1, 2))
    return lax.switch(index, branches, z, beta)


def reduce(z: jax.Array, beta: jax.Array, axes, fast, exact, logits_out=False):
    """``fast(y, S, M)`` from the fused pass, or ``exact(z, beta)`` (the definition) when that is
    NaN on any slice.

    A plain fused pass gives S = NaN exactly in the rare cases (a NaN entry, β = ±inf, an infinite
    extreme, β = 0 with an infinite entry), and ``fast`` may declare more slices rare by giving
    NaN; the definition then computes the whole call.
    """
    out = _fast(z, beta, axes, fast, logits_out)
    # The first entry of each slice tells: probing the output rather than returning S keeps the
    # fast path one fused kernel with a single output.
    probe = out
    if out.shape == z.shape:
        probe = out[tuple(slice(0, 1) if a in axes else slice(None) for a in range(z.ndim))]
    rare = jnp.any(jnp.isnan(probe))
    if not logits_out:
        rare = rare | jnp.any(jnp.abs(beta) < 2.0**10 / jnp.finfo(beta.dtype).max)
    return lax.cond(rare, exact, lambda z, beta: out, z, beta)


def _select_free_logits(z, beta, axes):
    """y = β(z − M) with the rare cases folded in, by arithmetic only (no mask)::

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
    big, zero, one = lax.optimization_barrier(
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
    t = lax.stop_gradient(jnp.max(sgn * zc, axis=axes, keepdims=True, initial=-_INF))
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


def softargmax_recomputed(z: jax.Array, beta: jax.Array, axes) -> jax.Array:
    """σ_β(z) from select-free exponents, for a derivative that is σ itself (of smooth_max):
    XLA fuses it with the backward pass instead of storing it. Exact at every β."""
    e = jnp.exp(_select_free_logits(z, beta, axes))
    return (e / jnp.sum(e, axis=axes, keepdims=True)).astype(z.dtype)


def _tangent_logits(z, beta, axes):
    """Exponents y with exp(y) ∝ σ_β(z) wherever the z-derivative of σ needs σ, 5 ops per entry.

    The z-tangent of softargmax, σ ⊙ (ż − ⟨σ, ż⟩)·β, vanishes at β = 0 and β = ±∞, so there it
    only needs *some* finite weights; everywhere else (β finite and nonzero, finite, infinite or
    NaN entries) these exponents give σ exactly. That drops the second scale of
    :func:`_select_free_logits` (only needed for the one-hot limit), and keeps the per-slice
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
    big, zero, k = lax.optimization_barrier(
        (jnp.asarray(fi.max, dt), jnp.asarray(0, dt), jnp.asarray(2.0**14, dt))
    )
    # Functions of β alone (computed before the fused kernel).
    half = jnp.where(beta < 0, -0.5, 0.5).astype(dt)
    regular = jnp.isfinite(beta) & (jnp.abs(beta) >= fi.tiny)
    scale = jnp.where(regular, jnp.minimum(2 * jnp.abs(beta), fi.max), 2.0).astype(dt)
    # Functions of the extreme t = max u (per slice, inside the fused kernel).
    u = half * _up(z, beta)
    t = lax.stop_gradient(jnp.max(u, axis=axes, keepdims=True, initial=-_INF))
    tc = jnp.minimum(jnp.maximum(t, -big), big)
    d = tc - t  # ∓inf where t = ±inf, else 0
    lo = jnp.log(jnp.maximum(d, zero))  # +inf where t = −inf (then every w = hi = 0), else −inf
    rare = jnp.abs(d)
    hi = big - jnp.minimum(rare, big)
    return (scale + jnp.minimum(rare, k)) * jnp.minimum(jnp.maximum(u - tc, lo), hi)


def tangent_weights(z: jax.Array, beta: jax.Array, axes):
    """(e, r) with σ = e·r wherever the z-tangent of softargmax needs σ (short slices).

    Recomputed from z inside the backward pass, so that no array-sized σ is kept.
    """
    e = jnp.exp(_tangent_logits(z, beta, axes))
    return e, 1.0 / jnp.sum(e, axis=axes, keepdims=True)
