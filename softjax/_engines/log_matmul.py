r"""The CPU engine of the log-semiring matrix product: exp-shift BLAS passes with an exact repair.

It computes the same thing as the definition in :mod:`softjax.semiring`,
:math:`C_{ij} = \frac1\beta \log \sum_k e^{\beta(A_{ik} + B_{kj})}`, faster on CPU at large sizes:

1. A first BLAS pass :math:`C = u_i + v_j + \frac1\beta\log\big(e^{\beta(A - u)}
   e^{\beta(B - v)}\big)_{ij}` with :math:`u, v` the row maxima of :math:`A` and column maxima of
   :math:`B` (minima for β < 0); at moderate β times the spread of the data every sum is trusted.
2. Head/tail passes at large β·spread: :math:`u, v` become the r-th largest entries of each row and
   column, the r − 1 larger ones (the head) are summed exactly in the log domain, the rest (the
   tail) on BLAS.
3. A trust test per entry (a sum is trusted when the terms it may have lost weigh at most
   :math:`\epsilon \max(1, \beta|u_i + v_j|/2)` of it), and an exact repair of what is not trusted:
   one entry at a time when few, densely when many.

The VJP follows the same passes with the weights :math:`W_{ikj} = e^{\beta(A_{ik} + B_{kj} -
C_{ij})}` recomputed, the β-component summed as :math:`\sum g W \log W / \beta^2`.
:func:`maxplus_vjp` is the fast path of the tropical gradient: a scatter when no maximum is tied.

Shapes are static here (the caller sends symbolic shapes to the definition); operands are 3-D,
a (B, m, k) and b (B, k, n) with k ≥ 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from softjax.smooth import _lse

__all__ = ["log_matmul", "maxplus_vjp"]

_INF = float("inf")


def _smooth_max_rows(x, beta):
    """(1/β) log Σ_k exp(β x_qk) of each row of a (q, K) block, by the kernel's definition."""
    return _lse(x, beta.astype(x.dtype), None, (1,))[:, 0]


def _smooth_max_row_values(x, beta):
    """The values of :func:`_smooth_max_rows` for finite β ≠ 0, for the forward pass only.

    Shifted by each row's extreme in the direction of β, x* (the maximum for β > 0): x* + (1/β)
    log Σ e^{β(x − x*)}, and x* itself where it is infinite (unless a term is NaN). The kernel's
    form, accurate to an ulp where one term dominates (log1p of the others), is slower here; the
    entries repaired this way join the head/tail passes' sums, which take a plain log as well.
    """
    sign = jnp.sign(beta)
    top = sign * jnp.max(sign * x, axis=1)
    shift = jnp.where(jnp.isfinite(top), top, 0.0)
    s = jnp.sum(jnp.exp(beta * (x - shift[:, None])), axis=1)
    return jnp.where(jnp.isinf(top) & ~jnp.isnan(s), top, shift + jnp.log(s) / beta)


def _batched(fn, *arrays):
    """``fn`` of 2-D arrays over the batch of 3-D ones; a batch of one is called directly
    (vmapped, gathers, scatters and conditionals compile to slower batched forms on CPU)."""
    if arrays[0].shape[0] == 1:
        return jax.tree.map(lambda x: x[None], fn(*(x[0] for x in arrays)))
    return jax.vmap(fn)(*arrays)


# ----------------------------------------------------------------------------------------------
# The tropical gradient: a scatter when no maximum is tied


def _tie_counts(a, b, c):
    """Per entry of the max-plus product (2-D): how many k attain the maximum, and the last one."""
    index = jnp.int16 if a.shape[1] < 2**15 else jnp.int32

    def step(carry, column_and_row):
        count, last, q = carry
        x, y = column_and_row
        hit = x[:, None] + y[None, :] == c
        return (count + hit.astype(c.dtype), jnp.where(hit, q, last), q + 1), None

    init = (jnp.zeros_like(c), jnp.zeros(c.shape, index), jnp.zeros((), index))
    # Unrolled: each step is one fused rank-one update, 16 of them per loop iteration.
    (count, last, _), _ = lax.scan(step, init, (a.T, b), unroll=16)
    return count, last


def _scatter_to_maxima(a, b, c, g, count, last):
    """The VJP when no entry but those with no finite term has a tie: a scatter of g to the one k
    that attains each maximum; an entry with no finite term (-inf) ties all k, g/k each."""
    m, k = a.shape
    n = b.shape[1]
    dead = c == -_INF
    h = jnp.where((count == 1) & ~dead, g, 0.0)
    gd = jnp.where(dead, g, 0.0)
    last = last.astype(jnp.int32)
    da = jnp.zeros_like(a).at[jnp.arange(m)[:, None], last].add(h)
    db = jnp.zeros_like(b).at[last, jnp.arange(n)[None, :]].add(h)
    da = da + jnp.sum(gd, axis=1, keepdims=True) / k
    db = db + jnp.sum(gd, axis=0, keepdims=True) / k
    return da, db


def maxplus_vjp(a, b, c, g, split_ties: Callable):
    """The VJP of the max-plus product :math:`C = \\max_k (A_{ik} + B_{kj})`, ties split equally.

    One pass counts, per entry, the k that attain the maximum and keeps the last; when no entry
    (but those with no finite term) has a tie, the gradient is a scatter of ``g`` to those k.
    Otherwise ``split_ties(a, b, c, g)``, the definition's VJP, splits the ties blockwise.

    Args:
      a: (B, m, k); b: (B, k, n); c: the product, (B, m, n); g: its cotangent, (B, m, n).
      split_ties: the definition's VJP, called when some maximum is tied.

    Returns:
      (dA, dB).
    """
    count, last = _batched(_tie_counts, a, b, c)
    unique = jnp.all((count <= 1) | (c == -_INF))
    return lax.cond(
        unique,
        lambda: _batched(_scatter_to_maxima, a, b, c, g, count, last),
        lambda: split_ties(a, b, c, g),
    )


# ----------------------------------------------------------------------------------------------
# Dense exact repair (many damaged entries): blockwise over k, shifted by the tropical product

# Terms per step of the dense repair: (m, 4, n) blocks, measured fastest on CPU.
_DENSE_BLOCK = 4


def _k_blocks(a, b, kb):
    """(a, b) as scan inputs of k-blocks (k/kb, m, kb) and (k/kb, kb, n); kb divides k."""
    m, k = a.shape
    return a.reshape(m, k // kb, kb).transpose(1, 0, 2), b.reshape(k // kb, kb, b.shape[1])


def _dense_block(k):
    return next(d for d in (_DENSE_BLOCK, 2, 1) if k % d == 0)


def _tropical(a, b):
    """max_k (A_ik + B_kj) (2-D), blockwise over k."""

    def step(mx, blk):
        x, y = blk
        return jnp.maximum(mx, jnp.max(x[:, :, None] + y[None, :, :], axis=1)), None

    init = jnp.full((a.shape[0], b.shape[1]), -_INF, a.dtype)
    mx, _ = lax.scan(step, init, _k_blocks(a, b, _dense_block(a.shape[1])))
    return mx


def _dense_exact(a, b, beta):
    """(1/β) log Σ_k exp(β(A_ik + B_kj)) (2-D) at finite β ≠ 0, shifted by the tropical product."""
    sign = jnp.where(beta < 0, -1.0, 1.0).astype(a.dtype)
    mx = sign * _tropical(sign * a, sign * b)
    ms = jnp.where(jnp.isfinite(mx), mx, 0.0)

    def acc(s, blk):
        x, y = blk
        e = jnp.exp(beta * (x[:, :, None] + y[None, :, :] - ms[:, None, :]))
        return s + jnp.sum(e, axis=1), None

    s, _ = lax.scan(acc, jnp.zeros_like(mx), _k_blocks(a, b, _dense_block(a.shape[1])))
    # A NaN term (a NaN entry, or +inf − inf) makes the sum NaN, and nothing else does (its terms
    # are ≥ 0); the blockwise maximum may have passed over it when another term is infinite.
    c = jnp.where(jnp.isfinite(mx), mx + jnp.log(s) / beta, mx)
    return jnp.where(jnp.isnan(s), s, c)


def _dense_vjp(a, b, beta, c, g, mask):
    """(dA, dB, dβ) from the entries under ``mask`` (finite C, β finite), blockwise over k."""
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
# Trust, positions of the damaged entries, and their exact recomputation


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
    so a relative error of S up to eps·β|u + v|/2 adds no more than that. Formed from logs: β|u + v|
    may overflow (β near the largest float), and an infinite slack would trust a sum of zero.
    """
    return jnp.maximum(0.0, jnp.log(jnp.abs(beta)) + jnp.log(0.5 * jnp.abs(shift)))


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


# Entries per block of the two-level search for the damaged entries (a (q, 64) x (64, 64) product).
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
        val = _smooth_max_row_values(x, beta)
        return flat.at[sel].set(val, mode="drop")

    flat = lax.fori_loop(0, (count + q - 1) // q, body, flat)
    return flat.reshape(c.shape)


def _tail_offset(dtype):
    """The exponent offset p of the tail factors, e^{2p} = max float / e: a tail term is ≤ e^{2p},
    and a sum that overflows all the same (three or more terms at the top) is inf, never trusted."""
    return 0.5 * (float(np.log(jnp.finfo(dtype).max)) - 1.0)


# Entries per block of the head selection: the r largest blocks hold the r largest entries.
_TOP_BLOCK = 8


def _take_largest(c, ci, r, axis, left=None):
    """The r largest entries of the matrix ``c`` along ``axis``, in descending order, and their
    labels in ``ci``; only entries where ``left`` is true are candidates (all by default).

    r rounds of a maximum, the first position holding it and its removal: each round is a few fused
    reductions, one iteration of a loop (unrolled, the rounds made the program r times longer and
    its compilation seconds slower). Returns values and labels of shape (r, other axis).
    """
    size = c.shape[axis]
    iota = lax.broadcasted_iota(jnp.int32, c.shape, axis)
    if left is None:  # not yet taken (kept apart from c: a taken entry may equal a -inf one left)
        left = jnp.ones(c.shape, bool)

    def round_(s, carry):
        left, vals, labels = carry
        mx = jnp.max(jnp.where(left, c, -_INF), axis=axis, keepdims=True)
        pos = jnp.min(jnp.where(left & (c == mx), iota, size), axis=axis, keepdims=True)
        pos = jnp.minimum(pos, size - 1)  # a NaN matches nothing; such a row is never trusted
        vals = vals.at[s].set(jnp.squeeze(mx, axis))
        labels = labels.at[s].set(jnp.squeeze(jnp.take_along_axis(ci, pos, axis=axis), axis))
        return left & (iota != pos), vals, labels

    out = (r,) + c.shape[:axis] + c.shape[axis + 1 :]
    init = (left, jnp.zeros(out, c.dtype), jnp.zeros(out, ci.dtype))
    _, vals, labels = lax.fori_loop(0, r, round_, init)
    return vals, labels


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


# Head sizes r of the successive head/tail passes; the second runs only when the first leaves many.
_HEADS = (8, 24)


def _log_tail(xa, xb):
    """log Σ_k e^{xa_ik + xb_kj} over the tail (both exponents ≤ 0), on BLAS with factors scaled by
    e^p. `where(x > 0, 0, …)` keeps a NaN in the product."""
    p = _tail_offset(xa.dtype)
    fa = jnp.where(xa > 0, 0.0, jnp.exp(xa + p))
    fb = jnp.where(xb > 0, 0.0, jnp.exp(xb + p))
    return jnp.log(jnp.matmul(fa, fb, precision=lax.Precision.HIGHEST)) - 2.0 * p


class _Heads(NamedTuple):
    """The shifts and heads of one head/tail pass (2-D, β > 0, head size r)."""

    u: jax.Array  # (m,) the r-th largest entry of each row of A, made finite
    v: jax.Array  # (n,) the r-th largest entry of each column of B, made finite
    xa: jax.Array  # (m, k) β(A − u); a term is in a head iff its exponent is > 0
    xb: jax.Array  # (k, n) β(B − v)
    ra: jax.Array  # (r, m) the head exponents of each row, descending
    ia: jax.Array  # (r, m) their column indices
    rb: jax.Array  # (r, n) the head exponents of each column, descending
    ib: jax.Array  # (r, n) their row indices
    row_ok: jax.Array  # (m,) at most r − 1 entries above u (else left to the exact repair)
    col_ok: jax.Array  # (n,) at most r − 1 entries above v


def _heads(a, b, beta, r) -> _Heads:
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
    return _Heads(u, v, xa, xb, ra, iat, rb, ibt, row_ok, col_ok)


def _head_tail_pass(a, b, beta, r):
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
    # A column's head pairs with the entries of A outside the row's head: xa with its head at
    # -inf, transposed and materialised once (a test of every entry in every step, or a transpose
    # fused into the steps' gathers, costs more than the copy).
    xat = lax.optimization_barrier(jnp.where(xa > 0, -_INF, xa).T)

    def row_head(s):  # (m, n): k = the s-th largest of row i, any B_kj
        x = ra[s]
        return jnp.where((x > 0)[:, None], x[:, None] + xb[iat[s]], -_INF)

    def col_head(s):  # (n, m): k = the s-th largest of column j, outside the head of row i
        y = rb[s]
        return jnp.where((y > 0)[:, None], y[:, None] + xat[ibt[s]], -_INF)

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
    large β·spread the head/tail passes (:func:`_head_tail_pass`) follow, and what they leave is
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
        ch, ok = _batched(lambda a, b: _head_tail_pass(a, b, sign * beta, r), sign * a, sign * b)
        return sign * ch, ~ok

    def merge(c, bad, r):  # a head/tail pass for the damaged entries
        ch, bad_h = head_tail(r)
        return jnp.where(bad & ~bad_h, ch, c), bad & bad_h

    def first():
        s0 = jnp.matmul(jnp.exp(beta * (a - u)), jnp.exp(beta * (b - v)), precision=hi)
        log_s0 = jnp.log(s0)
        trusted = log_s0 >= log_tau - _slack(beta, u + v)
        return u + v + log_s0 / beta, ~(trusted & (log_s0 < _INF))

    def skipped():  # every entry left to the head/tail pass
        return jnp.zeros(shape, a.dtype), jnp.ones(shape, bool)

    # Straight to the head/tail pass when a sample says that the first pass would fail widely.
    # (One call site of the pass, so that the program holds one copy of it.)
    fails = _first_pass_fails(a, b, beta, u, v, log_tau)
    c, bad = lax.cond(fails, skipped, first)
    c, bad = lax.cond(jnp.any(bad), partial(merge, r=_HEADS[0]), lambda c, bad: (c, bad), c, bad)
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
            lambda: jnp.where(bad, jax.vmap(_dense_exact, (0, 0, None))(a, b, beta), c),
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
        return _smooth_max_rows(x, beta)

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


def _head_tail_vjp(a, b, c, g, beta, r):
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
        fn = partial(_head_tail_vjp, beta=sign * beta, r=r)
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
    dense = jax.vmap(_dense_vjp, (0, 0, None, 0, 0, 0), (0, 0, 0))
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


# ----------------------------------------------------------------------------------------------
# The engine's one entry point


# Custom VJP: autodiff of the passes would differentiate through the shifts, the trust test and the
# repair; this keeps A, B, β and C and recomputes the weights by the same shifted BLAS products.
@jax.custom_vjp
def log_matmul(a, b, beta):
    r"""The log-semiring product :math:`\frac1\beta \log \sum_k e^{\beta(A_{ik} + B_{kj})}`.

    The same value as the definition in :mod:`softjax.semiring`, by exp-shift BLAS passes with an
    exact repair (see the module docstring), for finite :math:`\beta \ne 0` (the caller sends
    β ∈ {0, ±∞} to the definition).

    Args:
      a: (B, m, k), static shape, k ≥ 1.
      b: (B, k, n).
      beta: a finite nonzero scalar of the operands' dtype.

    Returns:
      C, (B, m, n).
    """
    return _log_matmul_finite(a, b, beta)


def _log_matmul_fwd(a, b, beta):
    c = _log_matmul_finite(a, b, beta)
    return c, (a, b, beta, c)


def _log_matmul_bwd(res, g):
    a, b, beta, c = res
    da, db, dbeta = _log_vjp_finite(a, b, beta, c, jnp.asarray(g))
    return da, db, dbeta.astype(jnp.result_type(beta))


log_matmul.defvjp(_log_matmul_fwd, _log_matmul_bwd)
