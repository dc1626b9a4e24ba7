r"""Semirings indexed by β: the log-semiring and its tropical limits, max-plus and min-plus.

The log-semiring :math:`\mathbb{R}_\beta` has :math:`x \oplus y = \frac{1}{\beta}\log(e^{\beta x} +
e^{\beta y})` and :math:`x \otimes y = x + y`. Its sum is :func:`softjax.smooth.smooth_max`. The
Maslov dequantisation :math:`x \mapsto e^{\beta x}` (:func:`dequantize`) maps it onto the ordinary
semiring of non-negative reals, and :math:`\beta \to \pm\infty` is its tropicalisation: the
max-plus (:class:`MaxPlus`) and min-plus (:class:`MinPlus`) semirings of idempotent analysis.

Every semiring here is a pytree: :class:`LogSemiring` carries β as a leaf, so a function of the
semiring may be jitted once and called, vmapped or differentiated at any β, including ±∞.

The matrix product of :class:`LogSemiring` is computed by the exp-shift trick on BLAS (a real
matrix product of dequantised, row- and column-shifted factors); at large β times the spread of the
data, a head/tail split (the few largest entries of each row and column summed exactly, the rest on
BLAS shifted by the r-th largest) takes over, and the entries that still underflow are detected and
recomputed exactly, so the answer is right at every β. Its gradient is a custom VJP
that keeps only the operands and the result, and recomputes the weights
:math:`e^{\beta(A_{ik} + B_{kj} - C_{ij})}` by the same trick (the head/tail split included);
the β-derivative is summed as :math:`\sum g\,W \log W / \beta^2`, never as a difference of
large sums.
"""

from __future__ import annotations

import dataclasses
import math
import string
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from softjax._core import nan_max, nan_min, normalize_axis, real_array, squeeze
from softjax.smooth import smooth_max

__all__ = ["LogSemiring", "MaxPlus", "MinPlus", "Real", "dequantize"]

_INF = float("inf")


# ----------------------------------------------------------------------------------------------
# Shapes


_as_float = real_array


def _matmul_operands(a: ArrayLike, b: ArrayLike):
    """@-style operands as 3-D arrays (batch, m, k) and (batch, k, n), plus the output shape."""
    a = _as_float(a, "a")
    b = _as_float(b, "b")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs arrays of rank >= 1, got shapes {a.shape} and {b.shape}")
    dtype = jnp.result_type(a.dtype, b.dtype)
    a_vec, b_vec = a.ndim == 1, b.ndim == 1
    if a_vec:
        a = a[None, :]
    if b_vec:
        b = b[:, None]
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"matmul contraction dimensions differ: a has shape {a.shape} and b has shape {b.shape}"
        )
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    a = jnp.broadcast_to(a.astype(dtype), batch + (m, k))
    b = jnp.broadcast_to(b.astype(dtype), batch + (k, n))
    size = math.prod(batch)
    out_shape = batch + ((m,) if not a_vec else ()) + ((n,) if not b_vec else ())
    return a.reshape(size, m, k), b.reshape(size, k, n), out_shape, dtype


def _compute_dtype(dtype):
    return jnp.float32 if jnp.finfo(dtype).bits < 32 else dtype


# ----------------------------------------------------------------------------------------------
# The tropical product max_k (A_ik + B_kj) and its relatives, as loops of rank-one updates over k
# (16 per step, unrolled) that never form an (m, k, n) array. 2-D kernels, vmapped over the batch.

_KBLOCK = 16


def _rank_one_loop(a, b, init, update):
    """Folds ``update(carry, a[:, q], b[q, :])`` over q = 0..k-1; returns the carry."""
    k = a.shape[1]
    kb = min(_KBLOCK, k) if k else 1
    main = (k // kb) * kb
    carry = init
    if main:
        at = a[:, :main].T.reshape(main // kb, kb, a.shape[0])
        bb = b[:main].reshape(main // kb, kb, b.shape[1])

        def body(carry, blk):
            x, y = blk
            for q in range(kb):
                carry = update(carry, x[q], y[q])
            return carry, None

        carry, _ = lax.scan(body, carry, (at, bb))
    for q in range(main, k):
        carry = update(carry, a[:, q], b[q])
    return carry


def _k_blocks(a, b, kb):
    """(a, b) as scan inputs of k-blocks (k/kb, m, kb) and (k/kb, kb, n); kb divides k."""
    m, k = a.shape
    return a.reshape(m, k // kb, kb).transpose(1, 0, 2), b.reshape(k // kb, kb, b.shape[1])


def _outer_sum(x, y):
    return x[:, None] + y[None, :]


def _maxplus2(a, b):
    init = jnp.full((a.shape[0], b.shape[1]), -_INF, a.dtype)
    return _rank_one_loop(a, b, init, lambda c, x, y: jnp.maximum(c, _outer_sum(x, y)))


def _maxplus_fwd_impl(a, b):
    return jax.vmap(_maxplus2)(a, b)


def _tie_seen2(a, b, c):
    """Per entry of the max-plus product: how many k attain the maximum, and the last that does."""
    k = a.shape[1]
    index = jnp.int16 if k < 2**15 else jnp.int32

    def seen(carry, x, y):
        cnt, last, q = carry
        eq = _outer_sum(x, y) == c
        return cnt + eq.astype(c.dtype), jnp.where(eq, q, last), q + 1

    init = (jnp.zeros_like(c), jnp.zeros(c.shape, index), jnp.zeros((), index))
    cnt, last, _ = _rank_one_loop(a, b, init, seen)
    return cnt, last


def _tie_unique2(a, b, c, g, cnt, last):
    """The VJP when no entry but those with no finite term has a tie: a scatter of g to the one k
    that attains each maximum; an entry with no finite term (-inf) ties all k, g/k each."""
    m, k = a.shape
    n = b.shape[1]
    dead = c == -_INF
    h = jnp.where((cnt == 1) & ~dead, g, 0.0)
    gd = jnp.where(dead, g, 0.0)
    last = last.astype(jnp.int32)
    da = jnp.zeros_like(a).at[jnp.arange(m)[:, None], last].add(h)
    db = jnp.zeros_like(b).at[last, jnp.arange(n)[None, :]].add(h)
    da = da + jnp.sum(gd, axis=1, keepdims=True) / max(k, 1)
    db = db + jnp.sum(gd, axis=0, keepdims=True) / max(k, 1)
    return da, db


def _tie_split2(a, b, c, g, cnt):
    """The VJP with g split equally between the cnt k that attain each maximum, blockwise over k."""
    h = jnp.where(cnt > 0, g / jnp.where(cnt > 0, cnt, 1.0), 0.0)

    def grads(_, blk):
        x, y = blk
        ht = jnp.where(x[:, :, None] + y[None, :, :] == c[:, None, :], h[:, None, :], 0.0)
        return None, (jnp.sum(ht, axis=2), jnp.sum(ht, axis=0))

    kb = next(d for d in (4, 2, 1) if a.shape[1] % d == 0)
    _, (da, db) = lax.scan(grads, None, _k_blocks(a, b, kb))
    return da.transpose(1, 0, 2).reshape(a.shape), db.reshape(b.shape)


def _batched(fn, *arrays):
    """``fn`` of 2-D arrays over the batch of 3-D ones; a batch of one is called directly
    (vmapped, gathers, scatters and conditionals compile to slower batched forms on CPU)."""
    if arrays[0].shape[0] == 1:
        return jax.tree.map(lambda x: x[None], fn(*(x[0] for x in arrays)))
    return jax.vmap(fn)(*arrays)


def _tie_weights_vjp(a, b, c, g):
    """VJP of the max-plus product with ties split equally (the gradient of ``jnp.max``).

    One pass finds, per entry, whether several k attain the maximum; when none does (but where
    no term is finite), the gradient is a scatter, else the ties are found and split blockwise.
    """
    cnt, last = _batched(_tie_seen2, a, b, c)
    unique = jnp.all((cnt <= 1) | (c == -_INF))
    return lax.cond(
        unique,
        lambda: _batched(_tie_unique2, a, b, c, g, cnt, last),
        lambda: _batched(_tie_split2, a, b, c, g, cnt),
    )


# Custom VJP: autodiff of the loop would store every rank-one update; this recomputes the ties
# blockwise and splits the gradient equally between them, like jnp.max.
@jax.custom_vjp
def _maxplus(a, b):
    return _maxplus_fwd_impl(a, b)


def _maxplus_fwd(a, b):
    c = _maxplus_fwd_impl(a, b)
    return c, (a, b, c)


def _maxplus_bwd(res, g):
    return _tie_weights_vjp(*res, jnp.asarray(g))


_maxplus.defvjp(_maxplus_fwd, _maxplus_bwd)


_EXP_KBLOCK = 4


def _exp_block(k):
    return next(d for d in (_EXP_KBLOCK, 4, 2, 1) if k % d == 0)


def _dense_exact2(a, b, beta):
    """(1/β) log Σ_k exp(β(A_ik + B_kj)) at finite β ≠ 0, shifted by the tropical product."""
    sign = jnp.where(beta < 0, -1.0, 1.0).astype(a.dtype)
    mx = sign * _maxplus2(sign * a, sign * b)
    ms = jnp.where(jnp.isfinite(mx), mx, 0.0)

    def acc(s, blk):
        x, y = blk
        e = jnp.exp(beta * (x[:, :, None] + y[None, :, :] - ms[:, None, :]))
        return s + jnp.sum(e, axis=1), None

    s, _ = lax.scan(acc, jnp.zeros_like(mx), _k_blocks(a, b, _exp_block(a.shape[1])))
    return jnp.where(jnp.isfinite(mx), mx + jnp.log(s) / beta, mx)


def _dense_vjp2(a, b, beta, c, g, mask):
    """(dA, dB, dβ) from the entries under ``mask`` (finite C, β > 0 finite), blockwise over k."""
    cs = jnp.where(mask, c, 0.0)
    gs = jnp.where(mask, g, 0.0)

    def blk_grads(z, blk):
        x, y = blk
        d = beta * (x[:, :, None] + y[None, :, :] - cs[:, None, :])
        w = gs[:, None, :] * jnp.exp(jnp.where(mask[:, None, :], d, -_INF))
        # Σ g W log W, the β-slope times β², term by term (no cancellation against C).
        z = z + jnp.sum(jnp.where(w == 0, 0.0, w * d))
        return z, (jnp.sum(w, axis=2), jnp.sum(w, axis=0))

    kb = next(d for d in (2, 1) if a.shape[1] % d == 0)
    z, (da, db) = lax.scan(blk_grads, jnp.zeros((), a.dtype), _k_blocks(a, b, kb))
    da = da.transpose(1, 0, 2).reshape(a.shape)
    db = db.reshape(b.shape)
    return da, db, z / beta**2


def _inner(x, d):
    """⟨x, d⟩ with 0 where d is 0 (x may be infinite there)."""
    return jnp.sum(jnp.where(d == 0, 0.0, x * d))


# ----------------------------------------------------------------------------------------------
# The log-semiring product (1/β) log Σ_k exp(β (A_ik + B_kj)). Shapes: a (B, m, K), b (B, K, n).


def _log_tau(dtype, k):
    """log τ, the smallest BLAS sum of k terms with factors ≤ 1 that is trusted.

    Float32 flushes subnormals to zero: a sum S of k terms loses at most k·tiny, a relative error
    below eps when log S ≥ log τ = log tiny + log k − log eps + 1.
    """
    fi = jnp.finfo(dtype)
    lo, eps = float(np.log(fi.tiny)), float(np.log(fi.eps))
    return lo + float(np.log(max(k, 1))) - eps + 1.0


def _slack(beta, shift):
    """How much larger than eps the relative error of a sum may be, as a log: max(1, β|u + v|/2).

    The product is formed as u + v + log(S)/β; rounding u + v alone errs by up to eps·|u + v|/2,
    so a relative error of S up to eps·β|u + v|/2 adds no more than that.
    """
    return jnp.log(jnp.maximum(1.0, 0.5 * jnp.abs(beta * shift)))


def _chunk(k):
    return max(1, (1 << 18) // max(k, 1))


def _safe_shifts(a, b, beta):
    """Row extremes of A and column extremes of B in the direction of β (max for β > 0)."""
    neg = beta < 0
    u = jnp.where(neg, jnp.min(a, axis=2, keepdims=True), jnp.max(a, axis=2, keepdims=True))
    v = jnp.where(neg, jnp.min(b, axis=1, keepdims=True), jnp.max(b, axis=1, keepdims=True))
    u = lax.stop_gradient(jnp.where(jnp.isfinite(u), u, 0.0))
    v = lax.stop_gradient(jnp.where(jnp.isfinite(v), v, 0.0))
    return u, v


_POS_BLOCK = 64


def _true_index(mask):
    """Counts of the true entries of ``mask`` by blocks of 64 (flat order): the blocks (nb, 64) and
    the running count up to each block (nb,), whose last entry is the number of true entries."""
    flat = mask.reshape(-1)
    nb = max(1, -(-flat.size // _POS_BLOCK))
    blocks = jnp.pad(flat, (0, nb * _POS_BLOCK - flat.size)).reshape(nb, _POS_BLOCK)
    return blocks, jnp.cumsum(jnp.sum(blocks, axis=1, dtype=jnp.int32))


def _true_positions(index, size, s, q):
    """The flat positions of the s·q-th to (s·q + q − 1)-th true entries of a mask of ``size``
    entries (``size`` past the last one), from its :func:`_true_index`.

    Two levels: the running count over blocks, searched for the block of each wanted entry, then
    running counts inside the q blocks found. A running count of every entry (or ``jnp.nonzero``
    with a static size) costs milliseconds at 512 × 512 on CPU even when few are true; this costs a
    running count of size/64 and a (q, 64) × (64, 64) product.
    """
    blocks, ends = index
    nb = blocks.shape[0]
    upper = jnp.asarray(np.triu(np.ones((_POS_BLOCK, _POS_BLOCK), np.float32)))
    t = s * q + jnp.arange(1, q + 1, dtype=jnp.int32)  # ranks of the wanted entries, from 1
    blk = jnp.minimum(jnp.searchsorted(ends, t, side="left"), nb - 1)
    before = jnp.where(blk > 0, ends[jnp.maximum(blk - 1, 0)], 0)
    # Running counts inside the q blocks, (q, 64), by a product with a triangle of ones: exact in
    # float32 (counts ≤ 64), and cheaper on CPU than a cumulative sum.
    run = jnp.matmul(blocks[blk].astype(jnp.float32), upper, precision=lax.Precision.HIGHEST)
    inside = jnp.sum(run < (t - before)[:, None], axis=1, dtype=jnp.int32)
    return jnp.where(t <= ends[-1], blk * _POS_BLOCK + inside, size)


def _unravel(idx, shape):
    _, m, n = shape
    bi, rest = jnp.divmod(idx, m * n)
    i, j = jnp.divmod(rest, n)
    return bi, i, j


def _exact_entries(a, b, beta, c, index):
    """Recomputes exactly the entries of ``c`` that a mask marks, given as its :func:`_true_index`,
    a chunk of entries at a time."""
    k = a.shape[-1]
    q = _chunk(k)
    bt = jnp.swapaxes(b, 1, 2)
    count = index[1][-1]
    flat = c.reshape(-1)

    def body(s, flat):
        sel = _true_positions(index, flat.size, s, q)
        bi, i, j = _unravel(jnp.minimum(sel, flat.size - 1), c.shape)
        x = a[bi, i] + bt[bi, j]  # (q, K)
        val = smooth_max(x, beta=beta, axis=-1)
        return flat.at[sel].set(val, mode="drop")

    flat = lax.fori_loop(0, (count + q - 1) // q, body, flat)
    return flat.reshape(c.shape)


def _tail_offset(dtype):
    """The exponent offset p of the tail factors, e^{2p} = max float / e: a tail term is ≤ e^{2p},
    and a sum that overflows all the same (three or more terms at the top) is inf, never trusted."""
    return 0.5 * (float(np.log(jnp.finfo(dtype).max)) - 1.0)


_TOP_BLOCK = 8


def _take_largest(c, ci, r, axis, left=None):
    """The r largest entries of the matrix ``c`` along ``axis``, in descending order, and their
    labels in ``ci``; only entries where ``left`` is true are candidates (all by default).

    r rounds of a maximum, the first position holding it and its removal: each round is a few fused
    reductions. Returns values and labels of shape (r, other axis).
    """
    size = c.shape[axis]
    iota = lax.broadcasted_iota(jnp.int32, c.shape, axis)
    if left is None:  # not yet taken (kept apart from c: a taken entry may equal a -inf one left)
        left = jnp.ones(c.shape, bool)
    vals, labels = [], []
    for _ in range(r):
        mx = jnp.max(jnp.where(left, c, -_INF), axis=axis, keepdims=True)
        pos = jnp.min(jnp.where(left & (c == mx), iota, size), axis=axis, keepdims=True)
        pos = jnp.minimum(pos, size - 1)  # a NaN matches nothing; such a row is never trusted
        vals.append(jnp.squeeze(mx, axis))
        labels.append(jnp.squeeze(jnp.take_along_axis(ci, pos, axis=axis), axis))
        left = left & (iota != pos)
    return jnp.stack(vals), jnp.stack(labels)


def _top_along(x, r, axis):
    """The r largest entries of each row (``axis=1``) or column (``axis=0``) of a matrix, in
    descending order, and their indices: arrays of shape (r, m) or (r, n). Requires r ≤ size.

    The entries are grouped in blocks of 8; the r blocks with the largest maxima hold the r largest
    entries (a block left out has a maximum no larger than r chosen blocks, each holding an entry at
    least as large), so the selection runs on those 8r candidates. On CPU this costs about half of
    ``lax.top_k`` (a partial sort per row), and needs no transpose of the matrix for the columns.
    """
    k = x.shape[axis]
    bs = _TOP_BLOCK
    nb = -(-k // bs)
    pad = [(0, 0), (0, 0)]
    pad[axis] = (0, nb * bs - k)
    xp = jnp.pad(x, pad, constant_values=-_INF)
    # The blocks are chosen along the matrix's own layout; the candidates are then gathered into
    # (slice, candidate) layout, materialised, so that every later round runs along the last axis.
    # (A transpose fused into rounds of reductions is redone, strided, in every round.)
    if axis == 1:
        blocks = xp.reshape(x.shape[0], nb, bs)  # (m, nb, bs)
        bmax = jnp.max(blocks, axis=2)
    else:
        blocks = xp.reshape(nb, bs, x.shape[1])  # (nb, bs, n)
        bmax = jnp.max(blocks, axis=1)
    bmax = lax.optimization_barrier(bmax)
    block_ids = lax.broadcasted_iota(jnp.int32, bmax.shape, axis)
    _, blk = _take_largest(bmax, block_ids, min(r, nb), axis)
    blk = blk.T  # (slices, r)
    if axis == 1:
        cand = jnp.take_along_axis(blocks, blk[:, :, None], axis=1)
    else:
        cand = blocks[blk, :, jnp.arange(x.shape[1])[:, None]]  # (n, r, bs)
    cand = lax.optimization_barrier(cand.reshape(cand.shape[0], -1))
    within = jnp.arange(bs, dtype=jnp.int32)[None, None, :]
    label = (blk[:, :, None] * bs + within).reshape(cand.shape)
    # The r chosen blocks hold at least r entries, so the padding is never needed.
    return _take_largest(cand, label, r, 1, left=label < k)


# Head sizes r of the successive head/tail passes (the second runs only if the first leaves many
# damaged entries, at large β times the spread of the data).
_HEADS = (8, 24)


def _log_tail(xa, xb):
    """log Σ_k e^{xa_ik + xb_kj} over the tail (both exponents ≤ 0), on BLAS with factors scaled by
    e^p. `where(x > 0, 0, …)` keeps a NaN in the product."""
    p = _tail_offset(xa.dtype)
    fa = jnp.where(xa > 0, 0.0, jnp.exp(xa + p))
    fb = jnp.where(xb > 0, 0.0, jnp.exp(xb + p))
    return jnp.log(jnp.matmul(fa, fb, precision=lax.Precision.HIGHEST)) - 2.0 * p


def _heads(a, b, beta, r):
    """The shifts and heads of a head/tail pass for β > 0 (2-D), r ≤ k.

    Returns u (m,) and v (n,), the r-th largest entry of each row of A and column of B (made
    finite); the scaled exponents xa = β(A − u) and xb = β(B − v), a term being in a head iff its
    exponent is > 0 (the same test everywhere); the head exponents ra (r, m) and rb (r, n) of the
    r largest entries, descending, with their indices; and whether each row and column has at most
    r − 1 entries above its shift (u = +inf or NaN could hide more: those go to the exact repair).
    """
    ra0, iat = _top_along(a, r, 1)  # (r, m), descending
    rb0, ibt = _top_along(b, r, 0)  # (r, n)
    u, v = ra0[r - 1], rb0[r - 1]
    ua, vb0 = ra0[0], rb0[0]
    row_ok, col_ok = u < _INF, v < _INF
    u = jnp.where(jnp.isfinite(u), u, jnp.where(jnp.isfinite(ua), ua, 0.0))
    v = jnp.where(jnp.isfinite(v), v, jnp.where(jnp.isfinite(vb0), vb0, 0.0))
    u, v = lax.stop_gradient(u), lax.stop_gradient(v)
    xa = beta * (a - u[:, None])
    xb = beta * (b - v[None, :])
    ra = beta * (ra0 - u[None, :])
    rb = beta * (rb0 - v[None, :])
    return u, v, xa, xb, ra, iat, rb, ibt, row_ok, col_ok


def _head_tail2(a, b, beta, r):
    """One head/tail pass for β > 0 (2-D): the product, and where it is trusted.

    With u_i the r-th largest entry of row i of A and v_j that of column j of B, the terms split
    into the tail (A_ik ≤ u_i and B_kj ≤ v_j), whose factors e^{β(A − u)}, e^{β(B − v)} are ≤ 1
    and go to BLAS scaled by e^p, and the head (the r − 1 largest entries of a row of A or a column
    of B), at most 2(r − 1) terms per entry, summed exactly in the log domain. u_i + v_j is then
    close to the dominant term, where the row and column maxima of the first pass can be far above
    it. Lost tail terms (a factor or product below the smallest normal) weigh at most k·tiny·e^{−p}
    on the scale e^{β(u + v)}, so the sum is trusted when its log is ≥ log τ − p (less the slack of
    :func:`_slack`).

    The heads are selected by :func:`_top_along`, and summed in two passes of r − 1 gathers: their
    largest term per entry, then the exponentials below it.
    """
    k = a.shape[1]
    r = min(r, k)
    log_tau = _log_tau(a.dtype, k)
    p = _tail_offset(a.dtype)
    u, v, xa, xb, ra, iat, rb, ibt, row_ok, col_ok = _heads(a, b, beta, r)
    log_tail = _log_tail(xa, xb)
    xat = xa.T

    def row_head(s):  # (m, n): k = the s-th largest of row i, any B_kj
        x = ra[s]
        return jnp.where((x > 0)[:, None], x[:, None] + xb[iat[s]], -_INF)

    def col_head(s):  # (n, m): k = the s-th largest of column j, outside the head of row i
        y, g = rb[s], xat[ibt[s]]
        return jnp.where((y > 0)[:, None] & ~(g > 0), y[:, None] + g, -_INF)

    # Two passes over the heads, each step one fused gather: the largest term M of every entry, then
    # Σ e^{x − M}. (A single pass of running pairs (M, S) splits into several kernels per step.)
    low = jnp.finfo(a.dtype).min
    lt = jnp.maximum(log_tail, low)
    mr = lax.fori_loop(0, r - 1, lambda s, mx: jnp.maximum(mx, row_head(s)), lt)
    lowt = jnp.full(lt.shape[::-1], low, lt.dtype)
    mc = lax.fori_loop(0, r - 1, lambda s, mx: jnp.maximum(mx, col_head(s)), lowt)
    mx = jnp.maximum(mr, mc.T)
    mxt = mx.T
    sr = lax.fori_loop(0, r - 1, lambda s, t: t + jnp.exp(row_head(s) - mx), jnp.exp(lt - mx))
    sc = lax.fori_loop(0, r - 1, lambda s, t: t + jnp.exp(col_head(s) - mxt), jnp.zeros_like(mxt))
    log_s = mx + jnp.log(sr + sc.T)
    c = u[:, None] + v[None, :] + log_s / beta
    trusted = log_s >= log_tau - p - _slack(beta, u[:, None] + v[None, :])
    ok = trusted & (log_s < _INF) & row_ok[:, None] & col_ok[None, :]
    return c, ok


def _first_pass_fails(a, b, beta, u, v, log_tau):
    """Whether the first BLAS pass would fail on many entries, judged on a sample of entries.

    Only a choice of speed: at large β times the spread of the data most sums underflow, and the
    head/tail pass is then run straight away.
    """
    nb, m, _ = a.shape
    n = b.shape[-1]
    q = min(nb * m * n, 128)
    idx = jnp.asarray(np.linspace(0, nb * m * n - 1, q).astype(np.int32))
    bi, i, j = _unravel(idx, (nb, m, n))
    x = a[bi, i] + jnp.swapaxes(b, 1, 2)[bi, j]  # (q, K)
    top = jnp.where(beta < 0, jnp.min(x, axis=-1), jnp.max(x, axis=-1))
    shift = u[bi, i, 0] + v[bi, 0, j]
    log_s = beta * (top - shift)
    return jnp.sum(~(log_s >= log_tau - _slack(beta, shift))) > q // 8


def _log_matmul_finite(a, b, beta):
    """The product for finite β ≠ 0, by exp-shift BLAS passes with an exact repair.

    The first pass shifts by the row maxima of A and the column maxima of B (minima for β < 0):
    every exponent β(A − u), β(B − v) is ≤ 0, and at moderate β·spread every sum is trusted. At
    large β·spread the head/tail passes (:func:`_head_tail2`) follow, and what they leave is
    recomputed exactly, one entry at a time when few, else densely.
    """
    k = a.shape[-1]
    shape = a.shape[:2] + b.shape[2:]
    if k == 0 or 0 in shape:  # no terms: every entry is the zero of the semiring
        return jnp.broadcast_to(jnp.where(beta < 0, _INF, -_INF).astype(a.dtype), shape)
    log_tau = _log_tau(a.dtype, k)
    u, v = _safe_shifts(a, b, beta)
    hi = lax.Precision.HIGHEST

    sign = jnp.where(beta < 0, -1.0, 1.0).astype(a.dtype)
    size = math.prod(shape)

    def head_tail(r):  # the product by a head/tail pass and where it is damaged
        ch, ok = _batched(lambda a, b: _head_tail2(a, b, sign * beta, r), sign * a, sign * b)
        return sign * ch, ~ok

    def merge(c, bad, r):  # a head/tail pass for the damaged entries
        ch, bad_h = head_tail(r)
        return jnp.where(bad & ~bad_h, ch, c), bad & bad_h

    def first():
        s0 = jnp.matmul(jnp.exp(beta * (a - u)), jnp.exp(beta * (b - v)), precision=hi)
        log_s0 = jnp.log(s0)
        trusted = log_s0 >= log_tau - _slack(beta, u + v)
        c, bad = u + v + log_s0 / beta, ~(trusted & (log_s0 < _INF))
        return lax.cond(jnp.any(bad), partial(merge, r=_HEADS[0]), lambda c, bad: (c, bad), c, bad)

    # Straight to the head/tail pass when a sample says that the first pass would fail widely.
    fails = _first_pass_fails(a, b, beta, u, v, log_tau)
    c, bad = lax.cond(fails, lambda: head_tail(_HEADS[0]), first)
    index = _true_index(bad)
    for r in _HEADS[1:] if _HEADS[0] < k else ():  # a head of all k terms leaves nothing

        def deeper(c, bad, index, r=r):
            c, bad = merge(c, bad, r)
            return c, bad, _true_index(bad)

        c, bad, index = lax.cond(index[1][-1] > size // 64, deeper, lambda *x: x, c, bad, index)

    def many(c, bad, index):
        # Entries with no finite term are exactly the zero; the rest densely.
        zero = jnp.where(beta < 0, _INF, -_INF)
        live = jnp.matmul((a != zero).astype(a.dtype), (b != zero).astype(b.dtype), precision=hi)
        dead = live == 0
        c = jnp.where(dead, zero, c)
        bad = bad & ~dead
        index = _true_index(bad)
        return lax.cond(
            index[1][-1] > size // 4,
            lambda: jnp.where(bad, jax.vmap(_dense_exact2, (0, 0, None))(a, b, beta), c),
            lambda: _exact_entries(a, b, beta, c, index),
        )

    count = index[1][-1]
    return lax.switch(
        jnp.minimum(count, 1) + (count > size // 4),
        [lambda c, bad, index: c, lambda c, bad, index: _exact_entries(a, b, beta, c, index), many],
        c,
        bad,
        index,
    )


def _special_fwd(a, b, beta):
    """β ∈ {0, ±inf}: the tropical product on the side of β, or the β = 0 limit."""
    sign = jnp.where(beta < 0, -1.0, 1.0).astype(a.dtype)
    c = _maxplus(sign * a, sign * b)
    k = a.shape[-1]
    at_zero = jnp.where((k >= 2) & (c > -_INF), _INF, c)
    return sign * jnp.where(beta == 0, at_zero, c)


def _log_matmul_impl(a, b, beta):
    special = jnp.isinf(beta) | (beta == 0)
    safe = jnp.where(special, 1.0, beta)
    return lax.cond(
        special, lambda: _special_fwd(a, b, beta), lambda: _log_matmul_finite(a, b, safe)
    )


def _exact_vjp_entries(a, b, beta, g, mask):
    """(dA, dB, dβ) from the entries under ``mask``, recomputed exactly a chunk at a time."""
    nb, m, k = a.shape
    n = b.shape[-1]
    q = _chunk(k)
    bt = jnp.swapaxes(b, 1, 2)
    index = _true_index(mask)
    count = index[1][-1]
    gflat = g.reshape(-1)

    def f(x, beta):
        return smooth_max(x, beta=beta, axis=-1)

    def body(s, carry):
        da, dbt, dbeta = carry
        sel = _true_positions(index, gflat.size, s, q)
        valid = sel < gflat.size
        bi, i, j = _unravel(jnp.minimum(sel, gflat.size - 1), g.shape)
        x = jnp.where(valid[:, None], a[bi, i] + bt[bi, j], 0.0)
        gs = jnp.where(valid, gflat[jnp.minimum(sel, gflat.size - 1)], 0.0)
        _, pull = jax.vjp(f, x, beta)
        dx, db_ = pull(gs)
        rows = jnp.where(valid, bi * m + i, nb * m)
        cols = jnp.where(valid, bi * n + j, nb * n)
        da = da.at[rows].add(dx, mode="drop")
        dbt = dbt.at[cols].add(dx, mode="drop")
        return da, dbt, dbeta + db_

    init = (
        jnp.zeros((nb * m, k), a.dtype),
        jnp.zeros((nb * n, k), a.dtype),
        jnp.zeros((), a.dtype),
    )
    da, dbt, dbeta = lax.fori_loop(0, (count + q - 1) // q, body, init)
    return da.reshape(nb, m, k), jnp.swapaxes(dbt.reshape(nb, n, k), 1, 2), dbeta


def _vjp_windows(dtype, k, size):
    """The ranges [lo, hi) of L = β(C − u − v) served by each tail product of the head/tail VJP,
    with the exponent offsets (κ, γ) of the scaled cotangent and of the factors.

    A tail weight e^{xa + xb − L} matters if it is ≥ e^{−E}, E = log(k/ε). Per pass, G = g e^{−L−κ}
    and factors e^{x + γ} must hold every weight that matters (γ ≥ E − T − lo, T = −log tiny), the
    product of G with a factor (κ ≥ log(size) − lo + γ − F + 1, F = log max) and the smallest G
    that matters (κ ≤ T − hi − E) must not overflow or underflow, nor the relevant products
    (κ ≤ γ + T − 2E). Entries with L ≥ E have negligible tail weights; those below the last lo
    are left to the exact repair.
    """
    fi = np.finfo(dtype)
    big, tiny = float(np.log(fi.max)), -float(np.log(fi.tiny))
    e = -float(np.log(fi.eps)) + float(np.log(max(k, 1)))
    ln = float(np.log(max(size, 1)))
    span = 2.0 * tiny + big - 2.0 * e - ln - 1.0  # hi ≤ span + 2 lo
    floor = ln - big + 1.0 - tiny + 2.0 * e + 0.5  # lo ≥ floor
    windows, hi = [], e
    while hi > floor and len(windows) < 3:
        lo = max(floor, 0.5 * (hi - span))
        gamma = min(e - tiny - lo, big - 1.0)
        kappa = ln - lo + gamma - big + 1.0
        windows.append((lo, hi, kappa, gamma))
        hi = lo
    return windows


def _head_tail_vjp2(a, b, c, g, beta, r):
    """The VJP of the product for β > 0 (2-D) by the head/tail split of the forward pass, for the
    entries where ``g`` is not zero: (dA, dB, where it is trusted, β² times the β-cotangent).

    The weights are W_ikj = e^{xa_ik + xb_kj − L_ij} with L = β(C − u − v). Tail–tail terms go to
    BLAS, a pair of products per range of L (:func:`_vjp_windows`); the heads of each row and column
    are gathered, weighted and scattered back, r − 1 steps each. Entries whose L is below the last
    range, not finite, or in a row or column whose head may hold more than r − 1 entries, are not
    trusted.
    """
    m, k = a.shape
    n = b.shape[1]
    r = min(r, k)
    hi_prec = lax.Precision.HIGHEST
    u, v, xa, xb, ra, iat, rb, ibt, row_ok, col_ok = _heads(a, b, beta, r)
    windows = _vjp_windows(a.dtype, k, max(m, n))
    big_l = beta * (c - u[:, None] - v[None, :])
    ok = jnp.isfinite(big_l) & (big_l >= windows[-1][0]) & row_ok[:, None] & col_ok[None, :]
    gmax = jnp.max(jnp.where(ok, jnp.abs(g), 0.0))
    gmax = jnp.where(gmax > 0, gmax, 1.0)
    gn = jnp.where(ok, g / gmax, 0.0)
    el = jnp.where(ok, big_l, 0.0)
    da = jnp.zeros_like(a)
    db = jnp.zeros_like(b)
    for lo, hi, kappa, gamma in windows:
        sel = ok & (el >= lo) & (el < hi)
        # Materialised one at a time: fused into a product, an exponential is redone per tile.
        gw = lax.optimization_barrier(jnp.where(sel, gn * jnp.exp(-el - kappa), 0.0))
        fb = lax.optimization_barrier(jnp.where(xb > 0, 0.0, jnp.exp(xb + gamma)))
        ha = jnp.matmul(gw, fb.T, precision=hi_prec)  # (m, k)
        # e^{x + κ − γ}·H in the log domain: neither factor alone need be representable.
        da = da + jnp.where(
            xa > 0, 0.0, jnp.sign(ha) * jnp.exp(xa + (kappa - gamma) + jnp.log(jnp.abs(ha)))
        )
        fa = lax.optimization_barrier(jnp.where(xa > 0, 0.0, jnp.exp(xa + gamma)))
        hb = jnp.matmul(fa.T, gw, precision=hi_prec)  # (k, n)
        db = db + jnp.where(
            xb > 0, 0.0, jnp.sign(hb) * jnp.exp(xb + (kappa - gamma) + jnp.log(jnp.abs(hb)))
        )
    rows, cols = jnp.arange(m), jnp.arange(n)

    # β² ∂C/∂β = Σ_k W log W with log W = xa + xb − L. Over the tail, Σ_ij g Σ_k W·(xa + xb) is
    # ⟨xa, dA⟩ + ⟨xb, dB⟩ and Σ_ij g L Σ_k W comes from the tail sums of the forward pass
    # (recomputed; Σ_k W as computed, since its rounding away from 1, β times the rounding of C,
    # would be multiplied by L); over the heads, term by term.
    mass = jnp.sum(jnp.where(ok, gn * el * jnp.exp(_log_tail(xa, xb) - el), 0.0))
    z = _inner(xa, da) + _inner(xb, db) - mass

    def weights(mask, t):  # g W and Σ g W log W of the terms with exponents t under mask
        w = jnp.where(mask, gn * jnp.exp(t), 0.0)
        return w, jnp.sum(jnp.where(w == 0, 0.0, w * t))

    def row_step(s, acc):  # k = the s-th largest of row i, any B_kj
        da, db, z = acc
        x = ra[s]
        w, dz = weights((x > 0)[:, None] & ok, x[:, None] + xb[iat[s]] - el)
        return da.at[rows, iat[s]].add(jnp.sum(w, axis=1)), db.at[iat[s]].add(w), z + dz

    def col_step(s, acc):  # k = the s-th largest of column j, outside the head of row i
        dat, db, z = acc
        y, h = rb[s], xa[:, ibt[s]]  # columns of xa gathered in place: no transposed copies
        w, dz = weights((y > 0)[None, :] & ~(h > 0) & ok, y[None, :] + h - el)
        # Rows of the transposed gradient: a scatter along the columns of dA is slow on CPU.
        return dat.at[ibt[s]].add(w.T), db.at[ibt[s], cols].add(jnp.sum(w, axis=0)), z + dz

    da, db, z = lax.fori_loop(0, r - 1, row_step, (da, db, z))
    dat, db, z = lax.fori_loop(0, r - 1, col_step, (da.T, db, z))
    return gmax * dat.T, gmax * db, ok, gmax * z


def _log_vjp_finite(a, b, beta, c, g):
    """VJP for finite β ≠ 0: BLAS for the entries the forward pass trusted, exact for the rest.

    Like the forward pass: by the row and column extremes when a sample says that they serve, else
    (and for what they leave, when much) by the head/tail split, and exactly for the rest.
    """
    k = a.shape[-1]
    size = g.size
    log_tau = _log_tau(a.dtype, k)
    u, v = _safe_shifts(a, b, beta)
    hi = lax.Precision.HIGHEST
    dead = c == jnp.where(beta < 0, _INF, -_INF)
    sign = jnp.where(beta < 0, -1.0, 1.0).astype(a.dtype)
    zeros = (jnp.zeros_like(a), jnp.zeros_like(b), jnp.zeros((), a.dtype))

    def first():
        ea = jnp.exp(beta * (a - u))
        eb = jnp.exp(beta * (b - v))
        log_s = beta * (c - u - v)
        ok = (log_s >= log_tau) & (log_s < _INF)
        gmax = jnp.max(jnp.where(ok, jnp.abs(g), 0.0))
        gmax = jnp.where(gmax > 0, gmax, 1.0)
        gs = jnp.where(ok, (g / gmax) * jnp.exp(-jnp.where(ok, log_s, 0.0)), 0.0)
        da = ea * jnp.matmul(gs, jnp.swapaxes(eb, 1, 2), precision=hi)
        db = eb * jnp.matmul(jnp.swapaxes(ea, 1, 2), gs, precision=hi)
        # β² ∂/∂β = Σ g W log W, log W = β(A − u) + β(B − v) − L, with Σ_k W as computed.
        mass = jnp.sum(gs * jnp.where(ok, log_s, 0.0) * jnp.matmul(ea, eb, precision=hi))
        z = _inner(beta * (a - u), da) + _inner(beta * (b - v), db) - mass
        return (gmax * da, gmax * db, gmax * z / beta**2), ~(ok | dead)

    def heads(grads, rest, r):  # the head/tail VJP of the entries in rest
        gr = jnp.where(rest, g, 0.0)
        fn = partial(_head_tail_vjp2, beta=sign * beta, r=r)
        da, db, ok, z = _batched(fn, sign * a, sign * b, sign * c, gr)
        dbeta = jnp.sum(z) / beta**2
        return jax.tree.map(jnp.add, grads, (da, db, dbeta)), rest & ~ok

    def deeper(grads, rest, r):  # a head/tail VJP when many entries are left
        busy = jnp.sum(rest, dtype=jnp.int32) > size // 64
        return lax.cond(busy, partial(heads, r=r), lambda *x: x, grads, rest)

    fails = _first_pass_fails(a, b, beta, u, v, log_tau)
    grads, rest = lax.cond(
        fails, lambda: heads(zeros, ~dead, _HEADS[0]), lambda: deeper(*first(), _HEADS[0])
    )
    for r in _HEADS[1:] if _HEADS[0] < k else ():  # a head of all k terms leaves nothing
        grads, rest = deeper(grads, rest, r)
    da, db, dbeta = grads
    # Entries with no finite term: uniform weights and ∂C/∂β = −log(K)/β², like smooth_max.
    gd = jnp.where(dead, g, 0.0)
    da = da + jnp.sum(gd, axis=2, keepdims=True) / k
    db = db + jnp.sum(gd, axis=1, keepdims=True) / k
    dbeta = dbeta - jnp.sum(gd) * np.log(k) / beta**2
    count = jnp.sum(rest, dtype=jnp.int32)
    dense = jax.vmap(_dense_vjp2, (0, 0, None, 0, 0, 0), (0, 0, 0))
    ra, rb, rbeta = lax.switch(
        jnp.minimum(count, 1) + (count > rest.size // 4),
        [
            lambda: zeros,
            lambda: _exact_vjp_entries(a, b, beta, g, rest),
            lambda: _sum_batch_beta(dense(a, b, beta, c, g, rest & jnp.isfinite(c))),
        ],
    )
    return da + ra, db + rb, dbeta + rbeta


def _sum_batch_beta(grads):
    da, db, dbeta = grads
    return da, db, jnp.sum(dbeta)


def _special_vjp(a, b, beta, c, g):
    """VJP at β ∈ {0, ±inf}: ties split equally, uniform weights at β = 0."""
    k = a.shape[-1]
    sign = jnp.where(beta < 0, -1.0, 1.0).astype(a.dtype)
    da_t, db_t = _tie_weights_vjp(sign * a, sign * b, sign * c, g)
    da0 = jnp.broadcast_to(jnp.sum(g, axis=2, keepdims=True) / k, a.shape)
    db0 = jnp.broadcast_to(jnp.sum(g, axis=1, keepdims=True) / k, b.shape)
    zero = beta == 0
    # d/dβ at β = 0 is −inf wherever two or more terms are live (smooth_max's convention).
    slope0 = jnp.where(k >= 2, -_INF, 0.0)
    dbeta = jnp.where(zero, jnp.sum(g * slope0), 0.0)
    return jnp.where(zero, da0, da_t), jnp.where(zero, db0, db_t), dbeta


# Custom VJP: autodiff of the broadcast form stores an (m, K, n) array; this keeps A, B and C and
# recomputes the weights exp(β(A_ik + B_kj − C_ij)) with the same shifted BLAS products.
@jax.custom_vjp
def _log_matmul(a, b, beta):
    return _log_matmul_impl(a, b, beta)


def _log_matmul_fwd(a, b, beta):
    c = _log_matmul_impl(a, b, beta)
    return c, (a, b, beta, c)


def _log_matmul_bwd(res, g):
    a, b, beta, c = res
    g = jnp.asarray(g)
    special = jnp.isinf(beta) | (beta == 0)
    safe = jnp.where(special, 1.0, beta)
    da, db, dbeta = lax.cond(
        special,
        lambda: _special_vjp(a, b, beta, c, g),
        lambda: _log_vjp_finite(a, b, safe, c, g),
    )
    return da, db, dbeta.astype(jnp.result_type(beta))


_log_matmul.defvjp(_log_matmul_fwd, _log_matmul_bwd)

# Compiled once per shape and dtype (β is an argument), so that eager calls do not retrace.
_log_matmul_jit = jax.jit(_log_matmul)
_maxplus_jit = jax.jit(_maxplus)


# ----------------------------------------------------------------------------------------------
# Generic semiring algorithms: einsum and the Kleene star.


def _parse_einsum(subscripts: str, n_ops: int):
    if not isinstance(subscripts, str):
        raise TypeError(f"subscripts must be a string, got {subscripts!r}")
    s = subscripts.replace(" ", "")
    if "." in s:
        raise ValueError(f"subscripts with an ellipsis are not supported, got {subscripts!r}")
    if "->" in s:
        lhs, out = s.split("->")
    else:
        lhs = s
        letters = lhs.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    ins = lhs.split(",")
    if len(ins) != n_ops:
        raise ValueError(f"subscripts {subscripts!r} name {len(ins)} operands, got {n_ops}")
    for term in ins + [out]:
        if any(c not in string.ascii_letters for c in term):
            raise ValueError(f"subscripts must use letters only, got {subscripts!r}")
        if len(set(term)) != len(term):
            raise ValueError(f"repeated index within one term is not supported, got {subscripts!r}")
    if any(c not in lhs for c in out):
        raise ValueError(f"output index not found among the inputs in {subscripts!r}")
    return ins, out


@dataclasses.dataclass(frozen=True)
class _Semiring:
    """Shared algorithms, written once against add, mul, sum, prod and matmul."""

    def _reduce_to(self, x, subs, keep):
        drop = tuple(i for i, c in enumerate(subs) if c not in keep)
        if drop:
            x = self.sum(x, axis=drop)
            subs = "".join(c for c in subs if c in keep)
        return x, subs

    def _contract(self, x, xs, y, ys, keep):
        x, xs = self._reduce_to(x, xs, set(ys) | keep)
        y, ys = self._reduce_to(y, ys, set(xs) | keep)
        size = {}
        for arr, sub in ((x, xs), (y, ys)):
            for c, d in zip(sub, arr.shape, strict=True):
                if size.setdefault(c, d) != d:
                    raise ValueError(f"index {c!r} has sizes {size[c]} and {d}")
        batch = [c for c in xs if c in ys and c in keep]
        con = [c for c in xs if c in ys and c not in keep]
        left = [c for c in xs if c not in ys]
        right = [c for c in ys if c not in xs]

        def prod_of(cs):
            return math.prod(size[c] for c in cs)

        xt = jnp.transpose(x, [xs.index(c) for c in batch + left + con])
        yt = jnp.transpose(y, [ys.index(c) for c in batch + con + right])
        x3 = xt.reshape(prod_of(batch), prod_of(left), prod_of(con))
        y3 = yt.reshape(prod_of(batch), prod_of(con), prod_of(right))
        if con:
            z = self.matmul(x3, y3)
        else:
            z = self.mul(x3, y3)
        z = z.reshape([size[c] for c in batch + left + right])
        return z, "".join(batch + left + right)

    def einsum(self, subscripts: str, *operands: ArrayLike) -> jax.Array:
        r"""Einstein summation in the semiring: :math:`\oplus` over contracted indices of products.

        Pairs of operands are contracted greedily, smallest intermediate first, each pair as one
        batched semiring :meth:`matmul`.

        .. math:: C_{ik} = \bigoplus_j A_{ij} \otimes B_{jk} \quad \text{for } \texttt{"ij,jk->ik"}

        Args:
          subscripts: numpy-style subscripts such as ``"bij,bjk->bik"`` (letters only, no
            ellipsis, no index repeated inside one operand).
          *operands: the arrays.

        Returns:
          The contracted array, indexed as the output subscripts.

        Example:
          >>> import jax.numpy as jnp
          >>> from softjax.semiring import MaxPlus
          >>> a = jnp.array([[0.0, 1.0], [2.0, 0.0]])
          >>> print(MaxPlus().einsum("ij,jk,kl->il", a, a, a))
          [[3. 4.]
           [5. 3.]]
        """
        if not operands:
            raise ValueError("einsum needs at least one operand, got none")
        ins, out = _parse_einsum(subscripts, len(operands))
        ops = [(_as_float(x, "operand"), s) for x, s in zip(operands, ins, strict=True)]
        for x, s in ops:
            if x.ndim != len(s):
                raise ValueError(f"operand of shape {x.shape} does not match subscripts {s!r}")
        while len(ops) > 1:
            best = None
            for p in range(len(ops)):
                for r in range(p + 1, len(ops)):
                    others = set(out).union(*(s for t, (_, s) in enumerate(ops) if t not in (p, r)))
                    kept = [c for c in dict.fromkeys(ops[p][1] + ops[r][1]) if c in others]
                    dims = dict(zip(ops[p][1], ops[p][0].shape, strict=True))
                    dims.update(zip(ops[r][1], ops[r][0].shape, strict=True))
                    size = math.prod(dims[c] for c in kept)
                    if best is None or size < best[0]:
                        best = (size, p, r, others)
            _, p, r, others = best
            z, zs = self._contract(*ops[p], *ops[r], others)
            ops = [op for t, op in enumerate(ops) if t not in (p, r)] + [(z, zs)]
        x, xs = self._reduce_to(*ops[0], set(out))
        return jnp.transpose(x, [xs.index(c) for c in out])

    def _identity(self, n, batch, dtype):
        eye = jnp.eye(n, dtype=bool)
        z = jnp.where(eye, jnp.asarray(self.one, dtype), jnp.asarray(self.zero, dtype))
        return jnp.broadcast_to(z, batch + (n, n))

    def _default_squarings(self, n):
        return 32

    def closure(self, a: ArrayLike, *, num_squarings: int | None = None) -> jax.Array:
        r"""The Kleene star :math:`A^* = I \oplus A \oplus A^{\otimes 2} \oplus \cdots` by doubling.

        With :math:`S_m = \bigoplus_{l<m} A^{\otimes l}` and :math:`P = A^{\otimes m}`, each step is
        :math:`S_{2m} = S_m \oplus P \otimes S_m,\ P \leftarrow P \otimes P`; after ``t`` steps the
        result holds every power below :math:`2^t`.

        In :class:`MaxPlus` and :class:`MinPlus` this is the all-pairs best path (Floyd–Warshall's
        answer) and is exact after :math:`\lceil\log_2 n\rceil` steps when there is no positive
        (max-plus) or negative (min-plus) cycle; with such a cycle the star does not exist and the
        affected entries grow with the number of steps. In :class:`LogSemiring` (β finite) and
        :class:`Real` the series converges iff the dequantised matrix :math:`e^{\beta A}`
        (respectively :math:`A`) has spectral radius below one, to
        :math:`\frac1\beta\log (I - e^{\beta A})^{-1}`; the default 32 steps sum the first
        :math:`2^{32}-1` powers, converged to rounding unless the spectral radius is within about
        :math:`10^{-9}` of one.

        Args:
          a: square matrices, shape ``(..., n, n)``.
          num_squarings: number of doubling steps ``t`` (static). Default: :math:`\lceil\log_2
            n\rceil` for the tropical semirings, 32 otherwise.

        Returns:
          :math:`\bigoplus_{l < 2^t} A^{\otimes l}`, shape ``(..., n, n)``.

        Example:
          >>> import jax.numpy as jnp
          >>> from softjax.semiring import MinPlus
          >>> inf = jnp.inf
          >>> w = jnp.array([[inf, 1.0, 5.0], [inf, inf, 2.0], [inf, inf, inf]])
          >>> print(MinPlus().closure(w))
          [[ 0.  1.  3.]
           [inf  0.  2.]
           [inf inf  0.]]

        References:
          Lehmann, "Algebraic structures for transitive closure", Theoretical Computer Science 4
          (1977).
        """
        a = _as_float(a, "a")
        if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
            raise ValueError(f"closure needs square matrices (..., n, n), got shape {a.shape}")
        n = a.shape[-1]
        if num_squarings is None:
            num_squarings = self._default_squarings(n)
        if isinstance(num_squarings, bool) or not isinstance(num_squarings, int | np.integer):
            raise TypeError(f"num_squarings must be an int, got {num_squarings!r}")
        if num_squarings < 0:
            raise ValueError(f"num_squarings must be >= 0, got {num_squarings}")
        s = self._identity(n, a.shape[:-2], a.dtype)

        def step(_, carry):
            s, p = carry
            return self.add(s, self.matmul(p, s)), self.matmul(p, p)

        if num_squarings == 0:
            return s
        s, p = lax.fori_loop(0, num_squarings - 1, step, (s, a))
        return self.add(s, self.matmul(p, s))


def _tropical_squarings(n):
    return max(1, math.ceil(math.log2(max(n, 2))))


# ----------------------------------------------------------------------------------------------
# Public semirings


@partial(jax.tree_util.register_dataclass, data_fields=["beta"], meta_fields=[])
@dataclasses.dataclass(frozen=True)
class LogSemiring(_Semiring):
    r"""The log-semiring at inverse temperature β: :math:`\oplus` is the smooth max, ⊗ is +.

    .. math::
        x \oplus_\beta y = \frac{1}{\beta}\log\left(e^{\beta x} + e^{\beta y}\right),
        \qquad x \otimes y = x + y,
        \qquad \mathbb{0} = -\infty\ (\beta > 0),\ +\infty\ (\beta < 0),\qquad \mathbb{1} = 0.

    It is the image of the ordinary semiring :math:`(\mathbb{R}_{\ge 0}, +, \times)` under
    :math:`x \mapsto \frac1\beta \log x` (the inverse of the Maslov dequantisation
    :func:`dequantize`). As :math:`\beta \to +\infty` it tropicalises to :class:`MaxPlus`, as
    :math:`\beta \to -\infty` to :class:`MinPlus` (the Litvinov–Maslov correspondence principle);
    both limits are taken exactly: ``LogSemiring(inf)`` and ``LogSemiring(-inf)`` return the same
    bits as ``MaxPlus()`` and ``MinPlus()``. At :math:`\beta = 0` there is no semiring:
    :math:`\oplus` follows :func:`~softjax.smooth.smooth_max` (its right-hand limit), so
    :math:`x \oplus y = +\infty` for any two terms that are not both :math:`-\infty`.

    ``beta`` is a pytree leaf: the semiring can be passed through ``jit``, ``vmap`` and ``grad``,
    and changing β does not recompile. :meth:`sum` is :func:`~softjax.smooth.smooth_max`;
    :meth:`matmul` uses BLAS with an exact repair of underflowing entries.

    Args:
      beta: the inverse temperature, a scalar in :math:`[-\infty, +\infty]`.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.semiring import LogSemiring
      >>> S = LogSemiring(beta=2.0)
      >>> print(f"{S.add(1.0, 1.0):.4f} {S.mul(1.0, 2.0):.4f}")
      1.3466 3.0000
      >>> a = jnp.array([[0.0, 1.0], [2.0, -jnp.inf]])
      >>> print(LogSemiring(jnp.inf).matmul(a, a))
      [[3. 1.]
       [2. 3.]]

    References:
      Litvinov, "Maslov dequantization, idempotent and tropical mathematics: a brief
      introduction" (2007), arXiv:math/0507014.
    """

    beta: ArrayLike = 1.0

    @property
    def zero(self) -> jax.Array:
        """The additive identity: :math:`-\\infty` for β ≥ 0, :math:`+\\infty` for β < 0."""
        return jnp.where(jnp.asarray(self.beta) < 0, _INF, -_INF)

    @property
    def one(self) -> jax.Array:
        """The multiplicative identity, 0."""
        return jnp.zeros(())

    def add(self, x: ArrayLike, y: ArrayLike) -> jax.Array:
        r""":math:`x \oplus y = \frac1\beta \log(e^{\beta x} + e^{\beta y})`, elementwise."""
        x, y = jnp.broadcast_arrays(_as_float(x, "x"), _as_float(y, "y"))
        return smooth_max(jnp.stack([x, y]), beta=self.beta, axis=0)

    def mul(self, x: ArrayLike, y: ArrayLike) -> jax.Array:
        r""":math:`x \otimes y = x + y`, elementwise with broadcasting."""
        x, y = jnp.broadcast_arrays(_as_float(x, "x"), _as_float(y, "y"))
        return x + y

    def sum(self, x: ArrayLike, axis=-1) -> jax.Array:
        r""":math:`\bigoplus` over ``axis``: :func:`~softjax.smooth.smooth_max` at this β."""
        return smooth_max(x, beta=self.beta, axis=axis)

    def prod(self, x: ArrayLike, axis=-1) -> jax.Array:
        r""":math:`\bigotimes` over ``axis``: the ordinary sum."""
        return jnp.sum(_as_float(x, "x"), axis=axis)

    def matmul(self, a: ArrayLike, b: ArrayLike) -> jax.Array:
        r"""The matrix product :math:`C_{ij} = \frac1\beta \log \sum_k e^{\beta(A_{ik} + B_{kj})}`.

        Batched and broadcast like ``a @ b``. For finite β it is computed on BLAS as
        :math:`C = u_i + v_j + \frac1\beta \log\big(e^{\beta(A - u)} e^{\beta(B - v)}\big)_{ij}`
        with :math:`u` the row maxima of :math:`A` and :math:`v` the column maxima of :math:`B` (the
        Maslov dequantisation of shifted operands). At large β times the spread of the data, where
        those sums underflow, :math:`u` and :math:`v` become the r-th largest entries of each row
        and column: the r − 1 larger ones (the head) are summed exactly in the log domain and the
        rest (the tail) on BLAS. Entries whose sum still underflows are detected and recomputed
        exactly, one at a time when few. A sum is trusted when the terms it may have lost weigh at
        most :math:`\epsilon \max(1, \beta |u_i + v_j| / 2)` of it: the error they cause in
        :math:`C_{ij}` is then no larger than :math:`\epsilon/\beta` or the rounding of
        :math:`u_i + v_j` itself. Negative β runs on the min side by the exact symmetry
        :math:`C(A, B, \beta) = -C(-A, -B, -\beta)`; β = ±∞ computes the tropical product with the
        same code as :class:`MaxPlus`. The gradient in ``a``, ``b`` and β uses
        :math:`O(mn + mk + kn)` memory and follows the same passes; its β-component is
        :math:`\sum_{ijk} \bar C_{ij} W_{ikj} \log W_{ikj} / \beta^2` with
        :math:`W_{ikj} = e^{\beta(A_{ik} + B_{kj} - C_{ij})}`, summed term by term or with the
        weights' sums as computed, so that it stays accurate in float32 at large β.

        Args:
          a: array of shape ``(..., m, k)`` (or ``(k,)``).
          b: array of shape ``(..., k, n)`` (or ``(k,)``).

        Returns:
          The product, shape ``(..., m, n)`` with the batch dimensions broadcast.
        """
        beta = jnp.asarray(self.beta)
        if beta.ndim != 0:
            raise ValueError(f"matmul needs a scalar beta, got beta of shape {beta.shape}")
        a3, b3, shape, dtype = _matmul_operands(a, b)
        cd = _compute_dtype(dtype)
        c = _log_matmul_jit(a3.astype(cd), b3.astype(cd), beta.astype(cd))
        return c.reshape(shape).astype(dtype)

    def closure(self, a: ArrayLike, *, num_squarings: int | None = None) -> jax.Array:
        return super().closure(a, num_squarings=num_squarings)

    closure.__doc__ = _Semiring.closure.__doc__


@dataclasses.dataclass(frozen=True)
class _Tropical(_Semiring):
    """The shared body of max-plus (``_sign = 1``) and min-plus (``_sign = -1``)."""

    _sign = 1.0

    @property
    def zero(self) -> jax.Array:
        """The additive identity: :math:`-\\infty` (max-plus) or :math:`+\\infty` (min-plus)."""
        return jnp.asarray(-self._sign * _INF)

    @property
    def one(self) -> jax.Array:
        """The multiplicative identity, 0."""
        return jnp.zeros(())

    def add(self, x: ArrayLike, y: ArrayLike) -> jax.Array:
        r""":math:`\max(x, y)` (max-plus) or :math:`\min(x, y)` (min-plus), with broadcasting."""
        x, y = jnp.broadcast_arrays(_as_float(x, "x"), _as_float(y, "y"))
        return jnp.maximum(x, y) if self._sign > 0 else jnp.minimum(x, y)

    def mul(self, x: ArrayLike, y: ArrayLike) -> jax.Array:
        r""":math:`x + y`, elementwise with broadcasting."""
        x, y = jnp.broadcast_arrays(_as_float(x, "x"), _as_float(y, "y"))
        return x + y

    def sum(self, x: ArrayLike, axis=-1) -> jax.Array:
        r""":math:`\max` (max-plus) or :math:`\min` (min-plus) over ``axis``."""
        x = _as_float(x, "x")
        axes = normalize_axis(axis, x.ndim)
        return squeeze(nan_max(x, axes) if self._sign > 0 else nan_min(x, axes), axes)

    def prod(self, x: ArrayLike, axis=-1) -> jax.Array:
        r"""The ordinary sum over ``axis``."""
        return jnp.sum(_as_float(x, "x"), axis=axis)

    def matmul(self, a: ArrayLike, b: ArrayLike) -> jax.Array:
        r"""The tropical product :math:`C_{ij} = \max_k (A_{ik} + B_{kj})` (or :math:`\min_k`).

        Batched like ``a @ b``; blocked over ``k`` so that no :math:`m \times k \times n` array is
        formed; the gradient splits ties equally and recomputes them blockwise. Min-plus is
        max-plus of the negated operands (an exact negation).

        Args:
          a: array of shape ``(..., m, k)`` (or ``(k,)``).
          b: array of shape ``(..., k, n)`` (or ``(k,)``).

        Returns:
          The product, shape ``(..., m, n)``.
        """
        a3, b3, shape, dtype = _matmul_operands(a, b)
        cd = _compute_dtype(dtype)
        if self._sign > 0:
            c = _maxplus_jit(a3.astype(cd), b3.astype(cd))
        else:
            c = -_maxplus_jit(-a3.astype(cd), -b3.astype(cd))
        return c.reshape(shape).astype(dtype)

    def _default_squarings(self, n):
        return _tropical_squarings(n)


# Registered as static: a field-less dataclass node would compare equal across classes.
@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class MaxPlus(_Tropical):
    r"""The max-plus (tropical) semiring: :math:`x \oplus y = \max(x, y)`, ⊗ is +.

    :math:`\mathbb{0} = -\infty`, :math:`\mathbb{1} = 0`. It is the :math:`\beta \to +\infty` limit
    (tropicalisation) of :class:`LogSemiring`. Gradients split ties equally, like ``jnp.max``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.semiring import MaxPlus
      >>> a = jnp.array([[0.0, 1.0], [2.0, 0.0]])
      >>> print(MaxPlus().matmul(a, a))
      [[3. 1.]
       [2. 3.]]

    References:
      Litvinov, "Maslov dequantization, idempotent and tropical mathematics: a brief
      introduction" (2007), arXiv:math/0507014.
    """

    _sign = 1.0


# Registered as static: a field-less dataclass node would compare equal across classes.
@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class MinPlus(_Tropical):
    r"""The min-plus (tropical) semiring: :math:`x \oplus y = \min(x, y)`, ⊗ is +.

    :math:`\mathbb{0} = +\infty`, :math:`\mathbb{1} = 0`. It is the :math:`\beta \to -\infty` limit
    of :class:`LogSemiring`; :meth:`closure` gives all-pairs shortest paths.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.semiring import MinPlus
      >>> a = jnp.array([[0.0, 1.0], [2.0, 0.0]])
      >>> print(MinPlus().matmul(a, a))
      [[0. 1.]
       [2. 0.]]

    References:
      Litvinov, "Maslov dequantization, idempotent and tropical mathematics: a brief
      introduction" (2007), arXiv:math/0507014.
    """

    _sign = -1.0


# Registered as static: a field-less dataclass node would compare equal across classes.
@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class Real(_Semiring):
    r"""The ordinary semiring :math:`(\mathbb{R}, +, \times)`, the target of :func:`dequantize`.

    :math:`\mathbb{0} = 0`, :math:`\mathbb{1} = 1`; :meth:`matmul` is ``jnp.matmul``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.semiring import Real
      >>> print(Real().einsum("ij,j->i", jnp.eye(2), jnp.array([2.0, 3.0])))
      [2. 3.]

    References:
      Litvinov, "Maslov dequantization, idempotent and tropical mathematics: a brief
      introduction" (2007), arXiv:math/0507014.
    """

    @property
    def zero(self) -> jax.Array:
        """The additive identity, 0."""
        return jnp.zeros(())

    @property
    def one(self) -> jax.Array:
        """The multiplicative identity, 1."""
        return jnp.ones(())

    def add(self, x: ArrayLike, y: ArrayLike) -> jax.Array:
        r""":math:`x + y`, elementwise with broadcasting."""
        x, y = jnp.broadcast_arrays(_as_float(x, "x"), _as_float(y, "y"))
        return x + y

    def mul(self, x: ArrayLike, y: ArrayLike) -> jax.Array:
        r""":math:`x y`, elementwise with broadcasting."""
        x, y = jnp.broadcast_arrays(_as_float(x, "x"), _as_float(y, "y"))
        return x * y

    def sum(self, x: ArrayLike, axis=-1) -> jax.Array:
        r"""The sum over ``axis``."""
        return jnp.sum(_as_float(x, "x"), axis=axis)

    def prod(self, x: ArrayLike, axis=-1) -> jax.Array:
        r"""The product over ``axis``."""
        return jnp.prod(_as_float(x, "x"), axis=axis)

    def matmul(self, a: ArrayLike, b: ArrayLike) -> jax.Array:
        r"""The ordinary matrix product, batched like ``a @ b``.

        Args:
          a: array of shape ``(..., m, k)`` (or ``(k,)``).
          b: array of shape ``(..., k, n)`` (or ``(k,)``).

        Returns:
          The product, shape ``(..., m, n)``.
        """
        a, b = _as_float(a, "a"), _as_float(b, "b")
        return jnp.matmul(a, b, precision=lax.Precision.HIGHEST)


def dequantize(x: ArrayLike, beta: ArrayLike) -> jax.Array:
    r"""The Maslov dequantisation :math:`x \mapsto e^{\beta x}`: log-semiring onto the reals.

    .. math::
        e^{\beta (x \oplus_\beta y)} = e^{\beta x} + e^{\beta y},
        \qquad e^{\beta (x \otimes y)} = e^{\beta x}\, e^{\beta y}.

    For finite :math:`\beta \ne 0` it is a semiring isomorphism of :math:`\mathbb{R}_\beta` onto
    :math:`(\mathbb{R}_{>0}, +, \times)` (with :math:`\mathbb{0} \mapsto 0`); reading it backwards,
    :math:`\frac1\beta \log` quantises the reals, and :math:`|\beta| \to \infty` is the
    tropical (idempotent) limit.

    Args:
      x: values in the log-semiring.
      beta: the inverse temperature (scalar or broadcastable to ``x``).

    Returns:
      :math:`e^{\beta x}`, like ``x``.

    Example:
      >>> from softjax.semiring import LogSemiring, dequantize
      >>> S = LogSemiring(beta=0.5)
      >>> lhs = dequantize(S.add(1.0, 2.0), 0.5)
      >>> rhs = dequantize(1.0, 0.5) + dequantize(2.0, 0.5)
      >>> print(f"{lhs:.4f} {rhs:.4f}")
      4.3670 4.3670

    References:
      Litvinov, "Maslov dequantization, idempotent and tropical mathematics: a brief
      introduction" (2007), arXiv:math/0507014.
    """
    x = _as_float(x, "x")
    beta = jnp.asarray(beta, x.dtype)
    x, beta = jnp.broadcast_arrays(x, beta)
    return jnp.exp(beta * x)
