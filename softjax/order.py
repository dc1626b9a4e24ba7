r"""Beyond the arg max: top-k, sort and rank as β-families with exact limits.

The soft top-k is the arg max of ``k`` fermions: the Fermi–Dirac occupations
:math:`p_i = \sigma(\beta(z_i - \mu))` with the chemical potential :math:`\mu` chosen so that
:math:`\sum_i p_i = k`, the maximiser of :math:`\langle p, z\rangle + H_{\mathrm{bin}}(p)/\beta`
over :math:`0 \le p \le 1,\ \sum_i p_i = k`. Sort and rank are Euclidean projections onto
permutahedra (Blondel et al. 2020), solved by an isotonic regression (pool adjacent violators)
written in ``lax``. As for the arg max, one compiled function serves every β in
:math:`[-\infty, +\infty]`: :math:`\beta = \pm\infty` give the exact hard operations (ties
split or averaged), :math:`\beta = 0` the uniform answer, with no Python branch on β.

These functions work along one axis (``axis`` is an int).
"""

from __future__ import annotations

import operator
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero
from jax.sharding import PartitionSpec as P
from jax.typing import ArrayLike

from softjax._core import (
    as_beta,
    as_mask,
    as_real,
    debug_checked,
    explicitly_sharded,
    finite_beta,
    inexact,
)

__all__ = ["fermi_level", "soft_rank", "soft_sort", "soft_topk", "topk_onehot"]

_INF = float("inf")


# ----------------------------------------------------------------------------------------------
# Argument handling. Every private function below works on the last axis; shapes: z (..., n),
# β, k (..., 1) or scalars, mask like z or None.


def _one_axis(axis, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int):
        try:
            axis = operator.index(axis)
        except TypeError:
            raise TypeError(f"axis must be an int, got {axis!r}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis!r} is out of range for an array with {ndim} dimensions")
    return axis % ndim


def _check_k(k):
    if isinstance(k, int | float) and not isinstance(k, bool) and not k >= 0:
        raise ValueError(f"k must be >= 0, got {k!r}")
    if isinstance(k, bool):
        raise TypeError(f"k must be a number or an array, got {k!r}")


def _per_slice(value, shape, axis, dtype, name):
    """A scalar or one value per slice, as an array of the rank of ``shape`` with ``axis`` last."""
    v = as_beta(value, shape, (axis,), dtype, name)
    return v if v.ndim == 0 else jnp.moveaxis(v, axis, -1)


def _gathered(x):
    """``x`` unsplit when it is split over an explicit mesh axis (sort and the loops run along
    the whole axis; the sharded types of their parts must agree), and its spec to restore."""
    if x is None or not hasattr(x, "ndim") or not explicitly_sharded(x):
        return x, None
    return jax.sharding.reshard(x, P()), jax.typeof(x).sharding.spec


def _restore(out, spec):
    return out if spec is None else jax.sharding.reshard(out, spec)


def _prepare(z, axis, where, beta=None, k=None):
    z, compute = as_real(z, "z")
    z, _ = _gathered(z)
    beta, _ = _gathered(beta)
    k, _ = _gathered(k)
    where, _ = _gathered(where)
    if z.ndim == 0:
        raise ValueError("z must have at least one dimension, got a scalar")
    ax = _one_axis(axis, z.ndim)
    mask = as_mask(where, z.shape)
    beta = None if beta is None else _per_slice(beta, z.shape, ax, compute, "beta")
    k = None if k is None else _per_slice(k, z.shape, ax, compute, "k")
    z = jnp.moveaxis(z, ax, -1)
    mask = None if mask is None else jnp.moveaxis(mask, ax, -1)
    return z, beta, k, mask, ax, compute


def _live(z, mask):
    return jnp.ones(z.shape, bool) if mask is None else mask


def _nan_of_slice(z, live):
    """0 on each slice, NaN where a live entry is NaN (taken from z itself)."""
    return 0 * jnp.sum(jnp.where(live & jnp.isnan(z), z, 0), axis=-1, keepdims=True)


# ----------------------------------------------------------------------------------------------
# Top-k.


def _topk_exact(z, k, live):
    """1 above the k-th largest live entry, the rest of k shared equally by the entries equal to
    it, 0 below; the sum is min(k, live count). Comparisons in z's own dtype; k real."""
    kdt = jnp.result_type(k, jnp.float32) if not hasattr(k, "dtype") else k.dtype
    lowest = jnp.finfo(z.dtype).min if jnp.issubdtype(z.dtype, jnp.floating) else None
    if lowest is None:
        lowest = jnp.iinfo(z.dtype).min
    key = jnp.where(live, z, lowest)
    if jnp.issubdtype(z.dtype, jnp.floating):
        key = jnp.where(live & jnp.isnan(z), lowest, key)
        # live −inf entries rank above masked ones: masked entries get a strict lower key below.
    n_live = jnp.sum(live, axis=-1, keepdims=True, dtype=kdt)
    kk = jnp.clip(jnp.asarray(k, kdt), 0, n_live)
    desc = jnp.flip(jnp.sort(key, axis=-1), axis=-1)
    # Live entries come first in ``desc`` unless a live entry equals ``lowest``: the k-th largest
    # live value is found by index, with the index clipped to the live count.
    idx = jnp.clip(
        jnp.ceil(kk).astype(jnp.int32) - 1, 0, jnp.maximum(n_live.astype(jnp.int32) - 1, 0)
    )
    t = jnp.take_along_axis(desc, idx.astype(jnp.int32), axis=-1)
    above = live & (z > t)
    at = live & (z == t)
    if jnp.issubdtype(z.dtype, jnp.floating):
        # Entries at ``lowest`` that are −inf (or finfo.min) tie with t only among live entries.
        at = at | (live & (t == lowest) & (z <= t))
    n_above, n_at = _sums(above.astype(kdt), at.astype(kdt))
    share = jnp.clip(kk - n_above, 0, None) / jnp.maximum(n_at, 1)
    out = jnp.where(above, 1.0, jnp.where(at, share, 0.0)).astype(kdt)
    return jnp.where(n_live == 0, 0.0, out).astype(kdt)


def _sums(*terms):
    """Sums (or max/min, for terms given as ("max", x) / ("min", x)) over the last axis in a
    single reduction: XLA fuses the producers of a variadic reduction into it, where separate
    reductions of selects would each write their operand out at full size."""
    ops = [t if isinstance(t, tuple) else ("sum", t) for t in terms]
    dtype = ops[0][1].dtype
    init = {"sum": 0.0, "max": -_INF, "min": _INF}
    comb = {"sum": jnp.add, "max": jnp.maximum, "min": jnp.minimum}

    def combine(a, c):
        return tuple(comb[kind](u, v) for (kind, _), u, v in zip(ops, a, c, strict=True))

    out = lax.reduce(
        tuple(x.astype(dtype) for _, x in ops),
        tuple(jnp.asarray(init[kind], dtype) for kind, _ in ops),
        combine,
        (ops[0][1].ndim - 1,),
    )
    return tuple(o[..., None] for o in out)


def _level_stats(x, live):
    """Per slice, in one pass: the counts of live finite, live +inf and live levels, the largest
    and smallest live finite level and their sum (0, 0, 0 without any), and a NaN flag (0 or
    NaN)."""
    fin = live & jnp.isfinite(x)
    n_fin, n_top, n_live, top, bottom, total, nan = _sums(
        fin.astype(x.dtype),
        (live & (x == _INF)).astype(x.dtype),
        live.astype(x.dtype),
        ("max", jnp.where(fin, x, -_INF)),
        ("min", jnp.where(fin, x, _INF)),
        jnp.where(fin, x, 0.0),
        jnp.where(live & jnp.isnan(x), x, 0.0),
    )
    top = jnp.where(n_fin > 0, top, 0.0)
    bottom = jnp.where(n_fin > 0, bottom, 0.0)
    return n_fin, n_top, n_live, top, bottom, total, 0 * nan


def _fermi_solve(x, k, b, live):
    """The chemical potential ν with Σ σ(b(x − ν)) = k over the live finite entries, b > 0 finite.

    Safeguarded Newton: ν stays in a bracket [lo, hi] where the sum is ≥ k and ≤ k; a Newton step
    that leaves the bracket is replaced by the midpoint. Returns (ν, the number of fermions on the
    finite levels k_f, and the statistics of :func:`_level_stats`).
    """
    stats = _level_stats(x, live)
    n_fin, n_top, _, top, bottom, total, _ = stats
    kf = jnp.clip(k - n_top, 0.0, n_fin)
    # The levels the fermions fill: live finite ones; the rest at −inf, where σ = 0.
    xm = jnp.where(live & jnp.isfinite(x), x, -_INF)
    # Σσ(b(x − hi)) ≤ n σ(−log(n/k)) < k and Σσ(b(x − lo)) ≥ n σ(log(n/(n − k))) > k.
    n_safe = jnp.maximum(n_fin, 1.0)
    tiny = jnp.finfo(x.dtype).tiny
    k_in = jnp.clip(kf, tiny, n_safe)  # the bracket of the true k (the loop skips k = 0 and n)
    log_n = jnp.log(n_safe)
    hi = top + (log_n - jnp.log(k_in)) / b
    lo = bottom - (log_n - jnp.log(jnp.maximum(n_safe - k_in, tiny))) / b
    mean = total / n_safe
    q = k_in / n_safe
    nu = jnp.clip(mean - (jnp.log(q) - jnp.log1p(-q)) / b, lo, hi)

    eps = jnp.finfo(x.dtype).eps
    # Relative to the fewer of particles and holes when below one (a k of 1e-8 is met to
    # rounding, not to 1e-6).
    scarce = jnp.clip(jnp.minimum(kf, n_fin - kf), tiny, 1.0)
    tol = 16 * eps * jnp.maximum(kf, 1.0) * scarce

    def body(state):
        it, nu, lo, hi, best, best_err, _ = state
        p = jax.nn.sigmoid(b * (xm - nu))
        g, spread = _sums(p, p * (1 - p))
        d = b * spread
        err = jnp.abs(g - kf)
        better = err < best_err
        best, best_err = jnp.where(better, nu, best), jnp.where(better, err, best_err)
        high = g > kf  # too many fermions: μ must rise
        lo = jnp.where(high, nu, lo)
        hi = jnp.where(high, hi, nu)
        # Newton on log(particles) when there are too few, on log(holes) when too many: both are
        # nearly linear in μ far from the root, so large β converges as fast as small β.
        holes = n_fin - g
        log_step = jnp.where(
            high,
            (jnp.log(jnp.maximum(holes, 1e-30)) - jnp.log(n_fin - kf)) * holes,
            (jnp.log(jnp.maximum(g, 1e-30)) - jnp.log(kf)) * g,
        )
        near = (g > kf / 2) & (holes > (n_fin - kf) / 2)
        log_step = jnp.where(near, g - kf, jnp.where(high, -1.0, 1.0) * log_step)
        step = nu + log_step / jnp.where(d > 0, d, 1.0)
        ok = (d > 0) & (step > lo) & (step < hi)
        nu = jnp.where(ok, step, lo / 2 + hi / 2)
        done = jnp.all((best_err <= tol) | (kf <= 0) | (kf >= n_fin))
        return it + 1, nu, lo, hi, best, best_err, done

    # Until every slice meets the sum to rounding, at most ``iterations`` passes. The answer is
    # the evaluated point nearest to the root (in float32 at a huge β the bracket may shrink to
    # two neighbouring floats, one of which sits on a level).
    iterations = 30 if jnp.finfo(x.dtype).bits <= 32 else 60
    start = (0, nu, lo, hi, nu, jnp.full(nu.shape, _INF, nu.dtype), False)
    state = lax.while_loop(lambda s: (s[0] < iterations) & ~s[-1], body, start)
    nu = state[4]
    return nu, kf, stats


def _topk_value(z, k, beta, mask):
    """Fermi–Dirac occupations with Σ = k (min(k, live count)), every β in one code path.

    Slices that are all plain (finite levels, no mask, 0 < k < n, 0 < |β| < ∞ and a moderate
    spread β(max − min)) take :func:`_topk_plain`, whose passes need no exponential; any other
    slice sends the call to :func:`_topk_general`, the reference for every case.
    """
    if mask is not None:
        return _topk_general(z, k, beta, mask)
    z = z.astype(beta.dtype)
    sign = jnp.where(beta < 0, -1.0, 1.0).astype(z.dtype)
    x = sign * z
    b = jnp.abs(beta)
    n = z.shape[-1]
    top = jnp.max(x, axis=-1, keepdims=True, initial=-_INF)  # an empty axis: to the reference
    bottom = jnp.min(x, axis=-1, keepdims=True, initial=_INF)
    kk = jnp.broadcast_to(k, top.shape)
    spread = _PLAIN_SPREAD[jnp.finfo(z.dtype).bits > 32]
    plain = (
        # A NaN entry makes top or bottom NaN (should a reduction skip it, the plain path's
        # sums still carry it to every entry of the slice).
        jnp.isfinite(top)
        & jnp.isfinite(bottom)
        & (b > 0)
        & (b < _INF)
        & (jnp.minimum(kk, n - kk) >= n * jnp.exp(-spread))
        & (b * (top - bottom) <= spread)
    )
    return lax.cond(
        jnp.all(plain),
        lambda: _topk_plain(z, sign, kk, b, top, bottom),  # x formed again, not held
        lambda: _topk_general(z, k, beta, mask),
    )


# The largest spread β(max − min) of a slice that _topk_plain takes (float32, float64): its
# factors e^{−β(x − min)} then stay normal numbers, and so does k/n.
_PLAIN_SPREAD = (40.0, 300.0)


def _topk_plain(z, sign, k, b, top, bottom):
    """The occupations of finite levels x = sign·z by 0 < k < n fermions at 0 < b < ∞, with
    b(top − bottom) ≤ the plain spread (top, bottom: the extremes of x).

    Solved for the fewer of particles and holes: with s = −1 where k > n/2 (holes), the levels
    s·x hold k' = min(k, n − k) ≤ n/2 particles. With t = e^{b(s x − c)} ∈ (0, 1], c = max(s x),
    computed once, the occupation at the potential c + ℓ/b is t/(t + e^ℓ): every pass of the
    iteration is a division and a sum, no exponential. ℓ starts from the Boltzmann limit
    ℓ₀ = log(Σ t / k') and follows secant steps on φ(ℓ) = log(g/(n − g)), g = Σ t/(t + e^ℓ)
    (decreasing, with slope in [−1, 0): a step of slope −1 never overshoots), kept inside the
    bracket [log((n − k')/k') − b(top − bottom), log((n − k')/k')] (else the midpoint), until
    Σ holds k' to rounding.
    """
    n = z.shape[-1]
    holes = k > n / 2
    s = jnp.where(holes, -sign, sign)
    kp = jnp.where(holes, n - k, k)
    c = jnp.where(holes, -bottom, top)
    t = jnp.exp(b * (s * z - c))
    ratio = jnp.log(n - kp) - jnp.log(kp)
    hi = ratio
    lo = ratio - b * (top - bottom)
    start = jnp.clip(jnp.log(jnp.sum(t, axis=-1, keepdims=True)) - jnp.log(kp), lo, hi)
    target = -ratio
    eps = jnp.finfo(z.dtype).eps
    tol = 16 * eps * jnp.maximum(kp, 1.0) * jnp.clip(kp, 0.0, 1.0)

    def body(state):
        it, ell, ell_prev, f_prev, lo, hi, best, best_err, _ = state
        g = jnp.sum(t / (t + jnp.exp(ell)), axis=-1, keepdims=True)
        tiny = jnp.finfo(g.dtype).tiny  # g may round to 0 or n far from the root
        f = jnp.log(jnp.maximum(g, tiny)) - jnp.log(jnp.maximum(n - g, tiny)) - target
        err = jnp.abs(g - kp)
        better = err < best_err
        best, best_err = jnp.where(better, ell, best), jnp.where(better, err, best_err)
        high = f > 0  # too many particles: the potential must rise
        lo = jnp.where(high, ell, lo)
        hi = jnp.where(high, hi, ell)
        span = ell - ell_prev
        slope = (f_prev - f) / jnp.where(span == 0, 1.0, span)
        slope = jnp.where((it > 0) & (slope > 0) & (slope < _INF), slope, 1.0)
        step = ell + f / slope
        ell_next = jnp.where((step > lo) & (step < hi), step, lo / 2 + hi / 2)
        done = jnp.all(best_err <= tol)
        return it + 1, ell_next, ell, f, lo, hi, best, best_err, done

    iterations = 30 if jnp.finfo(z.dtype).bits <= 32 else 60
    zero = jnp.zeros_like(start)  # no previous point yet: the first step has slope 1
    init = (0, start, start, zero, lo, hi, start, jnp.full_like(start, _INF), False)
    ell = lax.while_loop(lambda st: (st[0] < iterations) & ~st[-1], body, init)[6]
    d = jnp.exp(ell)
    # Particles: t/(t + d); holes: 1 − t/(t + d) = d/(t + d).
    return jnp.where(holes, d, 1.0) * jnp.where(holes, 1.0, t) / (t + d)


def _topk_general(z, k, beta, mask):
    """The reference for every case: masks, ±inf and NaN levels, k at 0 or n, β at 0 or ±∞."""
    z = z.astype(beta.dtype)
    live = _live(z, mask)
    sign = jnp.where(beta < 0, -1.0, 1.0).astype(beta.dtype)
    x = sign * z
    b = jnp.abs(beta)
    b_safe = jnp.where(jnp.isinf(b) | (b == 0), 1.0, b)
    nu, kf, (n_fin, n_top, n_live, _, _, _, nan) = _fermi_solve(x, k, b_safe, live)

    def finite():
        fin = live & jnp.isfinite(x)
        p = jax.nn.sigmoid(b_safe * (jnp.where(fin, x, 0.0) - nu))
        p = jnp.where(kf >= n_fin, 1.0, jnp.where(kf <= 0, 0.0, p))
        # Entries at +inf share what they can hold of k (at most one fermion each), as at β = ∞.
        on_top = jnp.minimum(k, n_top) / jnp.maximum(n_top, 1.0)
        p = jnp.where(fin, p, jnp.where(live & (x == _INF), on_top, 0.0))
        uniform = jnp.clip(k, 0.0, n_live) / jnp.maximum(n_live, 1.0)
        return jnp.where(b == 0, jnp.where(live, uniform, 0.0), p)

    def exact():  # β = ±∞ on some slice: the exact top (bottom) k there
        top_k = _topk_exact(x, jnp.broadcast_to(k, n_live.shape), live).astype(z.dtype)
        return jnp.where(jnp.isinf(b), top_k, finite())

    p = lax.cond(jnp.any(jnp.isinf(b)), exact, finite)
    return p + nan.astype(p.dtype)


# Custom JVP by implicit differentiation of Σp = k: ṗ = s ⊙ (β(ż − μ̇) + β̇(z − μ)) with
# s = p(1 − p), so no derivative runs through the iterations for μ.
@jax.custom_jvp
def _soft_topk(z, k, beta, mask):
    return _topk_value(z, k, beta, mask)


@partial(_soft_topk.defjvp, symbolic_zeros=True)
def _soft_topk_jvp(primals, tangents):
    z, k, beta, mask = primals
    dz, dk, dbeta, _ = tangents
    p = _soft_topk(z, k, beta, mask)
    zc = z.astype(beta.dtype)
    live = _live(zc, mask) & jnp.isfinite(zc)
    s = jnp.where(live & ~jnp.isinf(beta), p * (1 - p), 0.0)
    total = jnp.sum(s, axis=-1, keepdims=True)
    w = s / jnp.where(total > 0, total, 1.0)
    out = jnp.zeros(p.shape, p.dtype)
    if not isinstance(dz, SymbolicZero):
        dz = jnp.where(live, dz.astype(p.dtype), 0.0)
        out = out + s * finite_beta(beta) * (dz - jnp.sum(w * dz, axis=-1, keepdims=True))
    if not isinstance(dbeta, SymbolicZero):
        zf = jnp.where(live, zc, 0.0)
        c = zf - jnp.sum(w * zf, axis=-1, keepdims=True)
        out = out + s * c * dbeta
    if not isinstance(dk, SymbolicZero):
        out = out + w * dk
    return p, out


def _fermi_level_value(z, k, beta, mask):
    z = z.astype(beta.dtype)
    live = _live(z, mask)
    sign = jnp.where(beta < 0, -1.0, 1.0).astype(beta.dtype)
    x = sign * z
    b = jnp.abs(beta)
    b_safe = jnp.where(jnp.isinf(b) | (b == 0), 1.0, b)
    nu, _, (*_, nan) = _fermi_solve(x, k, b_safe, live)
    # β = ±∞: the limit, the partly filled level for fractional k, else the midpoint of the
    # k-th and (k+1)-th levels.
    key = jnp.where(live, x, -_INF)
    desc = jnp.flip(jnp.sort(key, axis=-1), axis=-1)
    n = desc.shape[-1]
    kk = jnp.broadcast_to(k, nu.shape)
    i = jnp.clip(jnp.ceil(kk).astype(jnp.int32) - 1, 0, n - 1)
    t_k = jnp.take_along_axis(desc, i, axis=-1)
    t_next = jnp.take_along_axis(desc, jnp.minimum(i + 1, n - 1), axis=-1)
    mid = jnp.where(jnp.isinf(t_next), t_next, t_k / 2 + t_next / 2)
    limit = jnp.where(kk == jnp.ceil(kk), mid, t_k)
    nu = jnp.where(jnp.isinf(b), limit, nu)
    nu = jnp.where(b == 0, 0.0, nu)
    return sign * nu + nan


# ----------------------------------------------------------------------------------------------
# Sort and rank: projections onto the permutahedron by pool adjacent violators.


def _pav_blocks(data, b, rank):
    """The blocks of the decreasing isotonic regression of y = bρ − data (sort) or b·data − ρ
    (rank), ρ = (n, …, 1), on each row of ``data`` (..., n) (sorted descending), b (...) ≥ 0
    finite.

    A stack of blocks (start, end, Σ data) per row; each step merges the two top blocks if they
    violate the order, else pushes the next entry: at most 2n steps. Returns each position's
    block (start, end). The adjacent-block test compares differences of block means, so that a
    large b does not round the data away: b·Δρ ≤ Δdata (sort) or b·Δdata ≤ Δρ (rank), Δρ > 0
    exact. The rows run in one loop, written batched: a finished row's steps write nowhere, so
    that no step copies or selects whole arrays.
    """
    lead, n = data.shape[:-1], data.shape[-1]
    data = data.reshape(-1, n)
    b = jnp.reshape(b, (-1,))
    rows = jnp.arange(data.shape[0])
    zero_i = jnp.zeros(data.shape, jnp.int32)
    zero = jnp.zeros(data.shape[:1], jnp.int32)
    state = (zero, zero, zero_i, zero_i, jnp.zeros_like(data), zero == 0)

    def at(a, j):
        return jnp.take_along_axis(a, j[:, None], axis=-1)[:, 0]

    def body(state):
        i, top, start, end, sums, _ = state
        j1, j2 = jnp.maximum(top - 1, 0), jnp.maximum(top - 2, 0)
        s1, e1, t1 = at(start, j1), at(end, j1), at(sums, j1)
        s2, e2, t2 = at(start, j2), at(end, j2), at(sums, j2)
        m1 = t1 / (e1 - s1 + 1).astype(data.dtype)
        m2 = t2 / (e2 - s2 + 1).astype(data.dtype)
        d_rho = ((s1 + e1) - (s2 + e2)).astype(data.dtype) / 2
        violated = (b * d_rho <= m2 - m1) if not rank else (b * (m2 - m1) <= d_rho)
        merge = (top >= 2) & violated
        push = ~merge & (i < n)
        # The slot written: the lower of the merged blocks, or the new top; n (dropped) if none.
        j = jnp.where(merge, top - 2, jnp.where(push, top, n))
        new_start = jnp.where(merge, s2, i)
        new_end = jnp.where(merge, e1, i)
        new_sum = jnp.where(merge, t2 + t1, at(data, jnp.minimum(i, n - 1)))
        start = start.at[rows, j].set(new_start, mode="drop")
        end = end.at[rows, j].set(new_end, mode="drop")
        sums = sums.at[rows, j].set(new_sum, mode="drop")
        top = top + push.astype(jnp.int32) - merge.astype(jnp.int32)
        i = i + push.astype(jnp.int32)
        return i, top, start, end, sums, merge | push

    _, top, start, end, _, _ = lax.while_loop(lambda s: jnp.any(s[-1]), body, state)
    iota = lax.broadcasted_iota(jnp.int32, data.shape, 1)
    slot = jnp.where(iota < top[:, None], start, n)
    first = zero_i.at[rows[:, None], slot].set(1, mode="drop")
    block = jnp.cumsum(first, axis=-1) - 1
    start = jnp.take_along_axis(start, block, axis=-1)
    end = jnp.take_along_axis(end, block, axis=-1)
    return start.reshape(*lead, n), end.reshape(*lead, n)


def _block_offsets(x, start, end):
    """(r, d, m) per position of its block [start, end]: the block's first entry r, x − r, and
    the block mean of x − r, so that the block mean of x is r + m and x less it is d − m.

    Each block's own sum of differences from its first entry (a scatter-add by block): neither
    running sums (which cancel a block's small differences against the large entries before it)
    nor sums of large values (whose rounding swamps the differences).
    """
    iota = lax.broadcasted_iota(jnp.int32, x.shape, x.ndim - 1)
    block = jnp.cumsum((start == iota).astype(jnp.int32), axis=-1) - 1  # the block of each entry
    ref = jnp.take_along_axis(x, start, -1)
    d = jnp.where(start == end, 0.0, x - ref)
    sums = _rows(lambda v, i: jnp.zeros_like(v).at[i].add(v), d, block)
    mean = jnp.take_along_axis(sums, block, -1) / (end - start + 1).astype(x.dtype)
    return ref, d, mean


def _rows(fn, *args):
    """``fn`` on 1-D rows, vectorised over the leading axes."""
    f = fn
    for _ in range(args[0].ndim - 1):
        f = jax.vmap(f)
    return f(*args)


def _rho_mean(start, end, n, dtype):
    """The mean of ρ = (n, …, 1) over [start, end] (0-based positions), exact."""
    return (n - (start + end).astype(dtype) / 2).astype(dtype)


def _sort_desc(theta, b):
    """The projection of bρ onto the permutahedron of θ, b ≥ 0 (b = +∞ allowed): the soft sort in
    descending order, per row of the last axis. b has θ's rank (or is a scalar)."""
    n = theta.shape[-1]
    if n == 0:  # an empty slice sorts to itself
        return theta * b
    srt = jnp.flip(jnp.sort(theta, axis=-1), axis=-1)
    bb = jnp.broadcast_to(b, srt.shape[:-1] + (1,))
    b_pav = jnp.where(jnp.isinf(bb), 1.0, bb)[..., 0]
    start, end = _pav_blocks(
        lax.stop_gradient(jnp.where(jnp.isinf(bb), jnp.zeros_like(srt), srt)),
        lax.stop_gradient(b_pav),
        rank=False,
    )
    iota = jnp.broadcast_to(lax.iota(jnp.int32, n), srt.shape)
    start = jnp.where(jnp.isinf(bb), iota, start)
    end = jnp.where(jnp.isinf(bb), iota, end)
    offset = (n - iota).astype(srt.dtype) - _rho_mean(start, end, n, srt.dtype)
    ref, _, mean = _block_offsets(srt, start, end)
    return ref + mean + finite_beta(bb) * offset


def _tie_blocks(u):
    """Each position's block of equal values in a sorted row u: (start, end)."""
    n = u.shape[-1]
    iota = jnp.broadcast_to(lax.iota(jnp.int32, n), u.shape)
    new = jnp.concatenate([jnp.ones(u.shape[:-1] + (1,), bool), u[..., 1:] != u[..., :-1]], -1)
    last = jnp.concatenate([u[..., 1:] != u[..., :-1], jnp.ones(u.shape[:-1] + (1,), bool)], -1)
    start = lax.cummax(jnp.where(new, iota, 0), axis=u.ndim - 1)
    end = lax.cummin(jnp.where(last, iota, n - 1), axis=u.ndim - 1, reverse=True)
    return start, end


def _rank_asc(theta, beta):
    """The projection of βθ onto the permutahedron of ρ: soft ranks, 1 for the smallest entry as
    β → +∞ (the largest as β → −∞), every β in one code path."""
    n = theta.shape[-1]
    if n == 0:  # an empty slice has no ranks
        return theta * beta
    sign = jnp.where(beta < 0, -1.0, 1.0).astype(theta.dtype)
    b = jnp.broadcast_to(jnp.abs(beta), theta.shape[:-1] + (1,))
    u = sign * theta
    order = jnp.flip(jnp.argsort(lax.stop_gradient(u), axis=-1), axis=-1)
    us = jnp.take_along_axis(u, order, axis=-1)
    b_pav = jnp.where(jnp.isinf(b), 1.0, b)[..., 0]
    start, end = _pav_blocks(lax.stop_gradient(us), lax.stop_gradient(b_pav), rank=True)
    tie_start, tie_end = _tie_blocks(lax.stop_gradient(us))
    start = jnp.where(jnp.isinf(b), tie_start, start)
    end = jnp.where(jnp.isinf(b), tie_end, end)
    _, d, mean = _block_offsets(us, start, end)
    ranks = _rho_mean(start, end, n, us.dtype) + finite_beta(b) * (d - mean)
    iota = jnp.broadcast_to(lax.iota(jnp.int32, n), order.shape)
    inverse = _rows(lambda o, i: jnp.zeros_like(i).at[o].set(i), order, iota)
    return jnp.take_along_axis(ranks, inverse, axis=-1)


# Compiled entry points: eager calls hit JAX's compilation cache instead of re-tracing.
_topk_exact_call = jax.jit(_topk_exact)
_soft_topk_call = jax.jit(_soft_topk)
_fermi_level_call = jax.jit(_fermi_level_value)
_sort_desc_call = jax.jit(_sort_desc)
_rank_asc_call = jax.jit(_rank_asc)


# ----------------------------------------------------------------------------------------------
# Public API


@debug_checked
def topk_onehot(
    z: ArrayLike, k: ArrayLike, *, axis: int = -1, where: ArrayLike | None = None
) -> jax.Array:
    r"""The top-k indicator, ties at the k-th largest sharing what remains: the β = +∞ limit.

    .. math::
        \operatorname{topk}(z)_i = \begin{cases} 1 & z_i > t \\
        (k - \#\{j: z_j > t\}) / \#\{j : z_j = t\} & z_i = t \\ 0 & z_i < t \end{cases}

    with :math:`t` the :math:`\lceil k\rceil`-th largest live entry, so that each slice sums to
    :math:`k`. ``topk_onehot(z, 1)`` equals :func:`~softjax.argmax_onehot`. ``k`` may be a
    Python number, a traced value or one value per slice, and fractional (the entries at
    :math:`t` then share the fraction). A slice with fewer than :math:`k` live entries gets 1 on
    all of them (its sum is the live count); :math:`k \le 0` gives zeros. Comparisons are made in
    ``z``'s own dtype; an unmasked NaN makes its slice NaN. Its gradient is zero.

    Args:
      z: scores, at least one dimension.
      k: the number of entries to select (real, ≥ 0): a scalar or one per slice.
      axis: the axis to select along.
      where: optional boolean mask; False entries are left out.

    Returns:
      An array like ``z`` (floating) with values in [0, 1] summing to k along ``axis``.

    Example:
      >>> from softjax.order import topk_onehot
      >>> print(topk_onehot([3.0, 1.0, 2.0, 2.0], 2))
      [1.  0.  0.5 0.5]

    References:
      Fenchel–Young view of top-k: Blondel, Martins & Niculae, "Learning with Fenchel-Young
      losses", JMLR 21 (2020), arXiv:1901.02324.
    """
    _check_k(k)
    raw = jnp.asarray(z)
    if jnp.issubdtype(raw.dtype, jnp.complexfloating):
        raise TypeError(f"z must be real, got dtype {raw.dtype}")
    if raw.ndim == 0:
        raise ValueError("z must have at least one dimension, got a scalar")
    out_dtype = inexact(raw.dtype)
    ax = _one_axis(axis, raw.ndim)
    raw, spec = _gathered(raw)
    mask = _gathered(as_mask(where, raw.shape))[0]
    zz = raw.astype(jnp.int32) if raw.dtype == jnp.bool_ else raw
    kk = _per_slice(k, raw.shape, ax, jnp.promote_types(out_dtype, jnp.float32), "k")
    zz = jnp.moveaxis(zz, ax, -1)
    mask = None if mask is None else jnp.moveaxis(mask, ax, -1)
    live = _live(zz, mask)
    n_shape = zz.shape[:-1] + (1,)
    out = _topk_exact_call(zz, jnp.broadcast_to(kk, n_shape), live)
    if jnp.issubdtype(zz.dtype, jnp.floating):
        out = out + _nan_of_slice(zz, live).astype(out.dtype)
    return _restore(jnp.moveaxis(out.astype(out_dtype), -1, ax), spec)


@debug_checked
def soft_topk(
    z: ArrayLike,
    k: ArrayLike,
    *,
    beta: ArrayLike = 1.0,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""The soft top-k: Fermi–Dirac occupations of the levels ``z`` by ``k`` fermions.

    .. math::
        p_i = \frac{1}{1 + e^{-\beta (z_i - \mu)}}, \quad \sum_i p_i = k,
        \qquad p = \operatorname*{arg\,max}_{0 \le p \le 1,\ \sum p = k}
        \langle p, z\rangle + \frac{1}{\beta} H_{\mathrm{bin}}(p)

    with :math:`H_{\mathrm{bin}}(p) = -\sum_i p_i \log p_i + (1 - p_i)\log(1 - p_i)`.
    :math:`\beta = +\infty` gives :func:`topk_onehot` exactly, :math:`\beta = -\infty` the bottom k,
    :math:`\beta = 0` the uniform :math:`k/n`; for ``k = 1`` the occupations are a softened arg max
    (not the softargmax: fermions exclude each other). The chemical potential :math:`\mu`
    (:func:`fermi_level`) comes from a safeguarded iteration of at most 30 steps in 32-bit and 60
    in 64-bit, stopped when every slice holds k to rounding (secant steps on the log-odds of the
    filling, solved for the fewer of particles and holes, when every level is finite and
    β·(max − min) is moderate; Newton steps otherwise); the derivatives in ``z``,
    ``k`` and ``beta`` are closed forms by implicit differentiation of :math:`\sum_i p_i = k`:
    :math:`\dot p = s \odot (\beta(\dot z - \langle w, \dot z\rangle) + \dot\beta (z - \langle w,
    z\rangle)) + w \dot k`, :math:`s = p(1 - p)`, :math:`w = s / \sum s`. They are zero at
    :math:`\beta = \pm\infty`.

    ``k`` is clipped to [0, live count]: a slice with fewer than ``k`` live entries gets 1 on each.
    Masked entries get 0 and are invisible. At finite β the entries at :math:`+\infty` share
    :math:`\min(k, n_{+\infty})` equally (at most 1 each) and those at :math:`-\infty` get 0, the
    other entries sharing the rest (so the sum is less than ``k``
    when fewer than ``k`` entries are above :math:`-\infty`). An unmasked NaN makes its slice NaN.
    16-bit input is computed in float32 and returned in its dtype.

    The relation with :func:`soft_sort`: in both limits (β = ±∞, 0), :math:`\langle p, z\rangle`
    equals the sum of the k largest soft-sorted values; at finite β the two regularise
    differently (entropy of occupations against a quadratic penalty) and agree only roughly.

    Args:
      z: scores (energies with a minus sign), at least one dimension.
      k: the number of fermions, real in [0, n]: a scalar or one per slice, may be traced.
      beta: inverse temperature in :math:`[-\infty, +\infty]`, scalar or one per slice.
      axis: the axis along which the occupations sum to ``k``.
      where: optional boolean mask; False entries are left out.

    Returns:
      An array like ``z`` with values in [0, 1] summing to ``k`` along ``axis``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.order import soft_topk
      >>> z = jnp.array([3.0, 1.0, 2.0, 0.0])
      >>> print(" ".join(f"{v:.3f}" for v in soft_topk(z, 2, beta=2.0)))
      0.953 0.269 0.731 0.047
      >>> print(soft_topk(z, 2, beta=jnp.inf))
      [1. 0. 1. 0.]

    References:
      Amos, Koltun & Kolter, "The limited multi-label projection layer" (2019),
      arXiv:1906.08707. Xie et al., "Differentiable top-k with optimal transport", NeurIPS 2020,
      arXiv:2002.06504.
    """
    _check_k(k)
    spec = _gathered(z)[1]
    z, beta, kk, mask, ax, compute = _prepare(z, axis, where, beta=beta, k=k)
    dtype = z.dtype
    p = _soft_topk_call(z, kk, beta, mask)
    return _restore(jnp.moveaxis(p.astype(dtype), -1, ax), spec)


@debug_checked
def fermi_level(
    z: ArrayLike,
    k: ArrayLike,
    *,
    beta: ArrayLike = 1.0,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""The chemical potential μ of :func:`soft_topk`: :math:`\sum_i \sigma(\beta(z_i - \mu)) = k`.

    At :math:`\beta = \pm\infty` the limit: for an integer ``k`` the midpoint of the k-th and
    (k+1)-th largest live entries (smallest for β < 0), for a fractional ``k`` the partly filled
    level; at :math:`\beta = 0` any μ solves the equation and 0 is returned. A slice whose ``k``
    is 0 or the live count has no finite solution: the value is then the end of the search
    bracket. Not differentiable (its gradient is zero).

    Args:
      z: scores, at least one dimension.
      k: the number of fermions (scalar or one per slice).
      beta: inverse temperature, scalar or one per slice.
      axis: the axis along which the occupations sum to ``k``.
      where: optional boolean mask; False entries are left out.

    Returns:
      μ per slice (``axis`` removed).

    Example:
      >>> from softjax.order import fermi_level
      >>> print(f"{fermi_level([3.0, 1.0, 2.0, 0.0], 2, beta=2.0):.4f}")
      1.5000
    """
    _check_k(k)
    z, beta, kk, mask, ax, compute = _prepare(z, axis, where, beta=beta, k=k)
    z, beta, kk = lax.stop_gradient((z, beta, kk))
    mu = _fermi_level_call(z, kk, jnp.broadcast_to(beta, z.shape[:-1] + (1,)), mask)
    return mu[..., 0].astype(z.dtype)


def _sort_or_rank_args(z, beta, axis, descending, name):
    if not isinstance(descending, bool):
        raise TypeError(f"descending must be a bool, got {descending!r}")
    z, beta, _, _, ax, compute = _prepare(z, axis, None, beta=beta)
    return z, beta, ax, compute


@debug_checked
def soft_sort(
    z: ArrayLike, *, beta: ArrayLike = 1.0, axis: int = -1, descending: bool = False
) -> jax.Array:
    r"""The soft sort: the projection of :math:`\beta\rho` onto the permutahedron of ``z``.

    .. math::
        s_\beta(z) = \operatorname*{arg\,min}_{\mu \in \mathcal{P}(z)}
        \tfrac{1}{2}\lVert \mu - \beta\rho \rVert^2
        = \operatorname*{arg\,max}_{\mu \in \mathcal{P}(z)} \langle \mu, \rho\rangle
        - \tfrac{1}{2\beta}\lVert\mu\rVert^2,
        \qquad \rho = (n, n - 1, \dots, 1)

    for the descending order. :math:`\beta = +\infty` gives ``jnp.sort`` exactly,
    :math:`\beta = 0` the mean of ``z`` everywhere, and :math:`\beta < 0` the reversed order
    (:math:`\beta = -\infty`: sorted the other way). Computed as
    :math:`s = \bar z_B + \beta(\rho - \bar\rho_B)` on the blocks :math:`B` of the isotonic
    regression of :math:`\beta\rho - z_{\mathrm{sorted}}`, found by pool adjacent violators in
    ``lax`` (a ``while_loop`` of at most 2n steps); the Jacobian is block-constant and
    differentiated in closed form from the block means (the loop itself is not differentiated).
    The values are a convex combination of the sorted ``z``: they sum to ``sum(z)``.

    Non-finite input: the projection needs finite values. A NaN makes its slice NaN at finite β
    (at β = ±∞ it sorts as ``jnp.sort`` sorts it); a slice holding ±inf gives ±inf or NaN entries
    at finite β. Replace infinite values (e.g. by ``jnp.nan_to_num``) before a soft sort.

    Args:
      z: values, at least one dimension.
      beta: inverse temperature (regularisation 1/β), scalar or one per slice, may be traced.
      axis: the axis to sort along.
      descending: sort from the largest (default: ascending, like ``jnp.sort``).

    Returns:
      An array like ``z``, softly sorted along ``axis``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.order import soft_sort
      >>> z = jnp.array([2.0, 0.0, 1.2])
      >>> print(soft_sort(z, beta=jnp.inf), soft_sort(z, beta=0.0))
      [0.  1.2 2. ] [1.0667 1.0667 1.0667]
      >>> print(soft_sort(z, beta=0.5))
      [0.5667 1.0667 1.5667]

    References:
      Blondel, Teboul, Berthet & Djolonga, "Fast differentiable sorting and ranking", ICML 2020,
      arXiv:2002.08871.
    """
    spec = _gathered(z)[1]
    z, beta, ax, compute = _sort_or_rank_args(z, beta, axis, descending, "soft_sort")
    dtype = z.dtype
    zc = z.astype(compute)
    signed = beta if descending else -beta
    desc = _sort_desc_call(zc, jnp.abs(signed))
    out = jnp.where(jnp.broadcast_to(signed, desc.shape[:-1] + (1,)) < 0, jnp.flip(desc, -1), desc)
    return _restore(jnp.moveaxis(out.astype(dtype), -1, ax), spec)


@debug_checked
def soft_rank(
    z: ArrayLike, *, beta: ArrayLike = 1.0, axis: int = -1, descending: bool = False
) -> jax.Array:
    r"""The soft rank: the projection of :math:`\beta z` onto the permutahedron of (1, …, n).

    .. math::
        r_\beta(z) = \operatorname*{arg\,min}_{\mu \in \mathcal{P}(\rho)}
        \tfrac{1}{2}\lVert \mu - \beta z \rVert^2

    :math:`\beta = +\infty` gives the ranks 1…n (1 for the smallest entry, or the largest with
    ``descending=True``) with ties averaged, as ``scipy.stats.rankdata(method="average")``;
    :math:`\beta = 0` gives :math:`(n + 1)/2` everywhere; :math:`\beta < 0` reverses the order.
    Pool adjacent violators in ``lax`` on the sorted :math:`\beta z`; the Jacobian is
    :math:`\beta` times the block-centring of the sorted order, in closed form.

    Non-finite input: as for :func:`soft_sort`, the values must be finite; a NaN or an infinite
    entry makes its slice NaN at finite β (at β = ±∞ a NaN entry alone gets NaN).

    Args:
      z: values, at least one dimension.
      beta: inverse temperature (regularisation 1/β), scalar or one per slice, may be traced.
      axis: the axis to rank along.
      descending: rank 1 for the largest entry.

    Returns:
      An array like ``z`` of soft ranks in [1, n], summing to n(n + 1)/2 along ``axis``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.order import soft_rank
      >>> z = jnp.array([2.0, 0.0, 2.0, 1.0])
      >>> print(soft_rank(z, beta=jnp.inf))
      [3.5 1.  3.5 2. ]
      >>> print(soft_rank(z, beta=1.0))
      [3.25 1.25 3.25 2.25]

    References:
      Blondel, Teboul, Berthet & Djolonga, "Fast differentiable sorting and ranking", ICML 2020,
      arXiv:2002.08871.
    """
    spec = _gathered(z)[1]
    z, beta, ax, compute = _sort_or_rank_args(z, beta, axis, descending, "soft_rank")
    dtype = z.dtype
    zc = z.astype(compute)
    signed = -beta if descending else beta
    out = _rank_asc_call(zc, signed)
    return _restore(jnp.moveaxis(out.astype(dtype), -1, ax), spec)
