r"""Semirings indexed by β: the log-semiring and its tropical limits, max-plus and min-plus.

The log-semiring :math:`\mathbb{R}_\beta` has :math:`x \oplus y = \frac{1}{\beta}\log(e^{\beta x} +
e^{\beta y})` and :math:`x \otimes y = x + y`. Its sum is :func:`softjax.smooth.smooth_max`. The
Maslov dequantisation :math:`x \mapsto e^{\beta x}` (:func:`dequantize`) maps it onto the ordinary
semiring of non-negative reals, and :math:`\beta \to \pm\infty` is its tropicalisation: the
max-plus (:class:`MaxPlus`) and min-plus (:class:`MinPlus`) semirings of idempotent analysis.

Every semiring here is a pytree: :class:`LogSemiring` carries β as a leaf, so a function of the
semiring may be jitted once and called, vmapped or differentiated at any β, including ±∞.

The matrix product of :class:`LogSemiring` is defined here as its formula,
:math:`C_{ij} = \frac1\beta \log \sum_k e^{\beta(A_{ik} + B_{kj})}`, a loop over blocks of k shifted
by the tropical product, with a custom VJP that recomputes the weights blockwise; the tropical
product is a loop of rank-one maxima whose gradient splits ties. On CPU, at large static sizes, a
faster engine computes the same product (:mod:`softjax._engines.log_matmul`: exp-shift BLAS passes
with an exact repair), chosen by ``jax.lax.platform_dependent``; every other platform lowers the
definition.
"""

from __future__ import annotations

import dataclasses
import math
import string
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import PartitionSpec as P
from jax.typing import ArrayLike

from softjax._core import (
    compute_dtype,
    debug_checked,
    explicitly_sharded,
    nan_max,
    nan_min,
    normalize_axis,
    real_array,
    squeeze,
)
from softjax._engines import on_cpu
from softjax._engines.log_matmul import log_matmul as log_matmul_engine
from softjax._engines.log_matmul import maxplus_vjp
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
    batch = tuple(jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    a = jnp.broadcast_to(a.astype(dtype), batch + (m, k))
    b = jnp.broadcast_to(b.astype(dtype), batch + (k, n))
    size = math.prod(batch)
    out_shape = batch + ((m,) if not a_vec else ()) + ((n,) if not b_vec else ())
    return a.reshape(size, m, k), b.reshape(size, k, n), out_shape, dtype


def _whole_along(x, axis):
    """``x`` resharded so that ``axis`` is not split over an explicit mesh axis (a loop runs along
    it); unchanged when it is not."""
    spec = list(jax.typeof(x).sharding.spec)
    spec += [None] * (x.ndim - len(spec))
    if spec[axis] is None:
        return x
    spec[axis] = None
    return jax.sharding.reshard(x, P(*spec))


# ----------------------------------------------------------------------------------------------
# Loops over the contraction index k, a block of k per step. Operands are 3-D: a (B, m, k),
# b (B, k, n); nothing of size m·k·n is formed.

# Terms per step of the loops over k: 16 rank-one updates unrolled into one fused kernel per step.
_K_BLOCK = 16
# Terms per step of the gradient's loop, which holds an (m, block, n) array of weights: 2 keep
# the temporary memory of the gradient at n = 512 within 16 MiB.
_VJP_BLOCK = 2


class _Blocks(NamedTuple):
    """The operands cut into blocks of k, padded with -inf (a padded term is -inf + -inf)."""

    a: jax.Array  # (steps, B, m, block)
    b: jax.Array  # (steps, B, block, n)
    valid: jax.Array  # (steps, block): the term is one of the k, not padding
    k: jax.Array  # the number of terms k, as a traced integer


def _k_blocks(a, b, size=_K_BLOCK) -> _Blocks:
    """Blocks of ``size`` terms (one block of k when k is smaller and static)."""
    nb, m, k = a.shape
    n = b.shape[-1]
    block = min(size, k) if isinstance(k, int) else size
    steps = (k + block - 1) // block  # (a symbolic k is known >= 1, and so is this)
    pad = steps * block - k
    a = jnp.pad(_whole_along(a, 2), ((0, 0), (0, 0), (0, pad)), constant_values=-_INF)
    b = jnp.pad(_whole_along(b, 1), ((0, 0), (0, pad), (0, 0)), constant_values=-_INF)
    valid = (jnp.arange(k + pad) < k).reshape(steps, block)
    return _Blocks(
        a.reshape(nb, m, steps, block).transpose(2, 0, 1, 3),
        b.reshape(nb, steps, block, n).transpose(1, 0, 2, 3),
        valid,
        jnp.asarray(k),
    )


def _full_like_product(blocks: _Blocks, value):
    """A (B, m, n) array of ``value``, typed like the product (dtype and sharding)."""
    return jnp.full_like(blocks.a[0][..., :1] + blocks.b[0][..., :1, :], value)


def _scan(step, init, xs):
    """``lax.scan``, or one call of ``step`` when there is one block (a small static k): the
    products inside dynamic programs compile without a loop each."""
    if isinstance(xs[0].shape[0], int) and xs[0].shape[0] == 1:
        carry, ys = step(init, jax.tree.map(lambda x: x[0], xs))
        return carry, jax.tree.map(lambda y: y[None], ys)
    return lax.scan(step, init, xs)


def _fold_k(blocks: _Blocks, init, update):
    """Folds ``carry = update(carry, x, y, valid)`` over every k, x = A[:, :, k] (B, m, 1) and
    y = B[:, k:k+1, :] (B, 1, n): rank-one updates, a block of them per step of a ``lax.scan``."""

    def step(carry, block):
        xs, ys, valid = block
        for q in range(xs.shape[-1]):
            carry = update(carry, xs[..., q : q + 1], ys[..., q : q + 1, :], valid[q])
        return carry, None

    return _scan(step, init, (blocks.a, blocks.b, blocks.valid))[0]


def _map_k(blocks: _Blocks, init, terms):
    """Sums ``terms(t, valid)`` over the blocks of k into (dA, dB) and a carried scalar.

    ``t`` holds the terms A_ik + B_kj of a block, (B, m, block, n), and ``valid`` (block, 1)
    marks the k that are not padding; ``terms`` returns (W, z), the weights of the block and its
    share of the scalar. The result is Σ_j W (B, m, k), Σ_i W (B, k, n) and Σ z.
    """

    def step(total, block):
        xs, ys, valid = block
        w, z = terms(xs[..., :, :, None] + ys[..., None, :, :], valid[:, None])
        return total + z, (jnp.sum(w, axis=3), jnp.sum(w, axis=1))

    total, (da, db) = _scan(step, init, (blocks.a, blocks.b, blocks.valid))
    steps, nb, m, block = da.shape
    da = da.transpose(1, 2, 0, 3).reshape(nb, m, steps * block)
    db = db.transpose(1, 0, 2, 3).reshape(nb, steps * block, db.shape[-1])
    return da, db, total


# ----------------------------------------------------------------------------------------------
# The tropical product and the log-semiring product: the definitions


def _tropical_product(a, b):
    r"""The max-plus product :math:`C_{ij} = \max_k (A_{ik} + B_{kj})`, by rank-one updates."""
    blocks = _k_blocks(a, b)
    return _fold_k(
        blocks, _full_like_product(blocks, -_INF), lambda c, x, y, _: jnp.maximum(c, x + y)
    )


def _log_matmul_max_side(a, b, beta):
    r"""The log-semiring product for :math:`\beta \in [0, +\infty]`.

    .. math::
        C_{ij} = M_{ij} + \frac1\beta \log \sum_k e^{\beta(A_{ik} + B_{kj} - M_{ij})},
        \qquad M_{ij} = \max_k (A_{ik} + B_{kj})

    shifted by the tropical product :math:`M` (before multiplying by β), so that every exponent is
    ≤ 0 and the largest is 0; :math:`C = M` at β = +∞ and where :math:`M` is not finite. At β = 0,
    the right-hand limit: +∞ wherever some term is live and k ≥ 2 (as
    :func:`~softjax.smooth.smooth_max`).
    """
    blocks = _k_blocks(a, b)
    mx = _tropical_product(a, b)
    shift = jnp.where(jnp.isfinite(mx), mx, 0.0)
    finite = jnp.isfinite(beta) & (beta > 0)
    safe = jnp.where(finite, beta, 1.0)

    def log_sum():
        return _fold_k(
            blocks,
            _full_like_product(blocks, 0.0),
            lambda s, x, y, _: s + jnp.exp(safe * (x + y - shift)),
        )

    s = lax.cond(finite, log_sum, lambda: _full_like_product(blocks, 1.0))
    soft = jnp.where(jnp.isfinite(mx), shift + jnp.log(s) / safe, mx)
    at_zero = jnp.where((blocks.k >= 2) & (mx > -_INF), _INF, mx)
    return jnp.where(beta == 0, at_zero, jnp.where(finite, soft, mx))


def _log_matmul_vjp_max_side(a, b, beta, c, g):
    r"""(dA, dB, dβ) of the product for :math:`\beta \in [0, +\infty]`, the weights recomputed.

    .. math::
        \bar A_{ik} = \sum_j \bar C_{ij} W_{ikj}, \qquad
        \bar B_{kj} = \sum_i \bar C_{ij} W_{ikj}, \qquad
        \bar\beta = \frac{1}{\beta^2} \sum_{ijk} \bar C_{ij} W_{ikj} \log W_{ikj}

    with the Gibbs weights :math:`W_{ikj} = e^{\beta(A_{ik} + B_{kj} - C_{ij})}` (the β-term summed
    term by term, never as a difference of large sums). At β = +∞, and where :math:`C = +\infty`,
    the weight is split equally between the k that attain the maximum (as ``jnp.max``); at β = 0,
    and where no term is live (:math:`C = -\infty`), it is uniform, 1/k, with
    :math:`\bar\beta = -\bar C \log k / \beta^2` (:math:`-\infty` at β = 0 when k ≥ 2, as
    :func:`~softjax.smooth.smooth_max`).
    """
    blocks = _k_blocks(a, b)
    k = blocks.k.astype(a.dtype)
    finite = jnp.isfinite(beta) & (beta > 0)
    safe = jnp.where(finite, beta, 1.0)
    uniform = (beta == 0) | (c == -_INF)
    gibbs = finite & jnp.isfinite(c)
    tied = ~uniform & ~gibbs
    c_gibbs = jnp.where(gibbs, c, 0.0)

    def count_ties():
        def count(n, x, y, valid):
            return n + ((x + y == c) & valid).astype(c.dtype)

        return _fold_k(blocks, jnp.zeros_like(c), count)

    ties = lax.cond(jnp.any(tied), count_ties, lambda: jnp.zeros_like(c))
    g_tied = jnp.where(tied & (ties > 0), g / jnp.where(ties > 0, ties, 1.0), 0.0)
    g_uniform = jnp.where(uniform, g / k, 0.0)
    g_gibbs = jnp.where(gibbs, g, 0.0)

    def over_k(x):  # (B, m, n) -> (B, m, 1, n), against a block of terms (B, m, block, n)
        return x[..., :, None, :]

    def terms(t, valid):
        log_w = safe * (t - over_k(c_gibbs))
        w_gibbs = over_k(g_gibbs) * jnp.exp(jnp.where(over_k(gibbs), log_w, -_INF))
        w = w_gibbs + over_k(g_uniform) + jnp.where(t == over_k(c), over_k(g_tied), 0.0)
        z = jnp.sum(w_gibbs * jnp.where(w_gibbs == 0, 0.0, log_w))  # Σ g W log W
        return jnp.where(valid, w, 0.0), z

    small = isinstance(a.shape[-1], int) and a.shape[-1] <= _K_BLOCK  # one step: no loop to compile
    vjp_blocks = _k_blocks(a, b, _K_BLOCK if small else _VJP_BLOCK)
    da, db, z = _map_k(vjp_blocks, jnp.zeros((), a.dtype), terms)
    k_terms = a.shape[-1]
    da, db = da[..., :k_terms], db[..., :k_terms, :]
    dead = jnp.where(finite, -jnp.sum(g_uniform) * k * jnp.log(k), 0.0)

    def at_zero():  # Σ ḡ·(−∞) when k ≥ 2: −∞, +∞ or NaN by the signs of the nonzero ḡ
        slope0 = jnp.where(blocks.k >= 2, -_INF, 0.0).astype(g.dtype)
        return jnp.sum(jnp.where(g == 0, 0.0, g) * jnp.where(g == 0, 0.0, slope0))

    dbeta = lax.cond(beta == 0, at_zero, lambda: (z + dead) / safe**2)
    return da, db, jnp.where(finite | (beta == 0), dbeta, 0.0)


def _sign_of(beta, dtype):
    return jnp.where(beta < 0, -1.0, 1.0).astype(dtype)


# Custom VJP: autodiff of the loops would store every rank-one update; this keeps A, B, β and C
# and recomputes the weights blockwise.
@jax.custom_vjp
def _log_matmul_definition(a, b, beta):
    r"""The log-semiring product :math:`C_{ij} = \frac1\beta \log \sum_k e^{\beta(A_{ik} + B_{kj})}`
    of 3-D operands, for every β: negative β by :math:`C(A, B, \beta) = -C(-A, -B, -\beta)`."""
    sign = _sign_of(beta, a.dtype)
    return sign * _log_matmul_max_side(sign * a, sign * b, sign * beta)


def _log_matmul_definition_fwd(a, b, beta):
    c = _log_matmul_definition(a, b, beta)
    return c, (a, b, beta, c)


def _log_matmul_definition_bwd(res, g):
    a, b, beta, c = res
    sign = _sign_of(beta, a.dtype)
    # C = sign·C'(sign·A, sign·B, sign·β): the signs cancel in every derivative.
    da, db, dbeta = _log_matmul_vjp_max_side(sign * a, sign * b, sign * beta, sign * c, g)
    return da, db, dbeta.astype(jnp.result_type(beta))


_log_matmul_definition.defvjp(_log_matmul_definition_fwd, _log_matmul_definition_bwd)


def _split_ties_vjp(a, b, c, g):
    """The VJP of the max-plus product: g split equally between the k that attain each maximum."""
    da, db, _ = _log_matmul_vjp_max_side(a, b, jnp.asarray(_INF, a.dtype), c, g)
    return da, db


# Custom VJP: autodiff of the loop would store every rank-one update; this recomputes the ties
# blockwise and splits the gradient equally between them, like jnp.max.
@jax.custom_vjp
def _tropical(a, b, sign):
    r"""The tropical product :math:`s \max_k (s A_{ik} + s B_{kj})`: max-plus at s = 1, min-plus at
    s = −1 (an exact negation)."""
    return sign * _tropical_product(sign * a, sign * b)


def _tropical_fwd(a, b, sign):
    c = _tropical(a, b, sign)
    return c, (a, b, sign, c)


def _tropical_bwd(res, g):
    a, b, sign, c = res
    a, b, c, g = sign * a, sign * b, sign * c, jnp.asarray(g)  # the signs cancel in the gradient
    if not _engine_serves(a, b):
        da, db = _split_ties_vjp(a, b, c, g)
    else:
        engine = partial(maxplus_vjp, split_ties=_split_ties_vjp)
        da, db = on_cpu(engine, _split_ties_vjp, a, b, c, g)
    return da, db, jnp.zeros_like(sign)


_tropical.defvjp(_tropical_fwd, _tropical_bwd)


# ----------------------------------------------------------------------------------------------
# The choice of engine

# The CPU engine serves products of at least this many terms m·k·n (per matrix, static shapes):
# below it the definition's fused loops are faster, value and gradient (benchmarks/README.md).
_ENGINE_MIN_TERMS = 128**3


def _engine_serves(a, b) -> bool:
    """Whether the CPU engine may compute the product of these 3-D operands: float32 (the only
    dtype it was measured and verified in; its float64 β-gradient is inexact at large β·spread),
    static shapes (a symbolic dimension takes the definition), large enough, and not explicitly
    sharded."""
    if a.dtype != jnp.float32:
        return False
    dims = (*a.shape, b.shape[-1])
    if not all(isinstance(d, int) for d in dims):
        return False
    if explicitly_sharded(a) or explicitly_sharded(b):
        return False
    _, m, k, n = dims
    return m * k * n >= _ENGINE_MIN_TERMS


def _log_matmul_cpu(a, b, beta):
    """On CPU: the BLAS engine for finite β ≠ 0, the max-plus product (with its engine gradient)
    at β = ±∞, the definition at β = 0."""
    special = jnp.isinf(beta) | (beta == 0)
    finite = jnp.where(special, 1.0, beta).astype(beta.dtype)
    sign = _sign_of(beta, a.dtype)

    def special_product():
        return lax.cond(
            beta == 0,
            lambda: _log_matmul_definition(a, b, beta),
            lambda: _tropical(a, b, sign),
        )

    return lax.cond(special, special_product, lambda: log_matmul_engine(a, b, finite))


def _log_matmul(a, b, beta):
    """The log-semiring product of 3-D operands: the definition, or the CPU engine if it serves."""
    k = a.shape[-1]
    if isinstance(k, int) and k == 0:  # no terms: every entry is the zero of the semiring
        shape = a.shape[:2] + b.shape[2:]
        return jnp.broadcast_to(jnp.where(beta < 0, _INF, -_INF).astype(a.dtype), shape)
    # The loops run along k: unsplit there (the gradient goes back to the caller's sharding).
    a, b = _whole_along(a, 2), _whole_along(b, 1)
    if not _engine_serves(a, b):
        return _log_matmul_definition(a, b, beta)
    return on_cpu(_log_matmul_cpu, _log_matmul_definition, a, b, beta)


def _tropical_matmul(a, b, sign):
    """The max-plus (sign = 1) or min-plus (sign = -1) product of 3-D operands."""
    k = a.shape[-1]
    if isinstance(k, int) and k == 0:  # no terms: the zero of the semiring
        return jnp.full(a.shape[:2] + b.shape[2:], -sign * _INF, a.dtype)
    return _tropical(_whole_along(a, 2), _whole_along(b, 1), jnp.asarray(sign, a.dtype))


# Compiled once per shape and dtype (β is an argument), so that eager calls do not retrace.
_log_matmul_jit = jax.jit(_log_matmul)
_tropical_jit = jax.jit(_tropical_matmul, static_argnums=2)


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

    @debug_checked
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

    @debug_checked
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
            if isinstance(num_squarings, jax.Array):  # a count known at run time (symbolic n)
                return self._closure_traced_steps(a, num_squarings)
        if isinstance(num_squarings, bool) or not isinstance(num_squarings, int | np.integer):
            raise TypeError(f"num_squarings must be an int, got {num_squarings!r}")
        if num_squarings < 0:
            raise ValueError(f"num_squarings must be >= 0, got {num_squarings}")
        if num_squarings == 0:
            return self._identity(n, a.shape[:-2], a.dtype) + jnp.zeros_like(a)  # typed like a

        t = a
        if num_squarings >= 2:
            t, p = lax.fori_loop(
                0,
                num_squarings - 2,
                lambda _, c: (self._doubled(*c), self.matmul(c[1], c[1])),
                (a, self.matmul(a, a)),
            )
            t = self._doubled(t, p)
        return self._with_identity(t)

    # S = I ⊕ T with T = A ⊕ … ⊕ A^{m−1}: the identity is added last, so that its zeros
    # (infinite in the tropical and log semirings) are never formed. Doubling m:
    # T ← T ⊕ P ⊕ P ⊗ T, P ← P ⊗ P, from T = A, P = A ⊗ A (m = 2).
    def _doubled(self, t, p):
        return self.add(self.add(t, p), self.matmul(p, t))

    def _with_identity(self, t):
        eye = jnp.eye(t.shape[-1], dtype=bool)
        return jnp.where(eye, self.add(jnp.asarray(self.one, t.dtype), t), t)

    def _closure_traced_steps(self, a, steps):
        """The closure after a traced number ``steps`` ≥ 1 of doubling steps (at most 31): a
        fixed loop whose steps past ``steps`` leave the carry as it is."""

        def step(i, c):
            return lax.cond(
                i < steps - 2,
                lambda c: (self._doubled(*c), self.matmul(c[1], c[1])),
                lambda c: c,
                c,
            )

        t, p = lax.fori_loop(0, 29, step, (a, self.matmul(a, a)))
        return self._with_identity(jnp.where(steps >= 2, self._doubled(t, p), a))


def _tropical_squarings(n):
    """⌈log₂ n⌉, at least 1; for a symbolic n a traced int32 (the bit length of n − 1)."""
    if isinstance(n, int):
        return max(1, math.ceil(math.log2(max(n, 2))))
    return 32 - lax.clz(jnp.maximum(jnp.asarray(n, jnp.int32) - 1, 1))


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

    def _beta(self) -> jax.Array:
        """β as an array, checked where it is used (a pytree's fields may hold anything while it
        is rebuilt by a transformation, so the constructor checks nothing)."""
        b = self.beta
        if isinstance(b, bool | str | complex) or getattr(b, "dtype", None) == jnp.bool_:
            raise TypeError(f"beta must be a real number or array, got {b!r}")
        b = jnp.asarray(b)
        if not jnp.issubdtype(b.dtype, jnp.number) or jnp.issubdtype(b.dtype, jnp.complexfloating):
            raise TypeError(f"beta must be a real number or array, got {self.beta!r}")
        return b

    @property
    def zero(self) -> jax.Array:
        """The additive identity: :math:`-\\infty` for β ≥ 0, :math:`+\\infty` for β < 0."""
        return jnp.where(self._beta() < 0, _INF, -_INF)

    @property
    def one(self) -> jax.Array:
        """The multiplicative identity, 0."""
        return jnp.zeros(())

    def add(self, x: ArrayLike, y: ArrayLike) -> jax.Array:
        r""":math:`x \oplus y = \frac1\beta \log(e^{\beta x} + e^{\beta y})`, elementwise."""
        x, y = jnp.broadcast_arrays(_as_float(x, "x"), _as_float(y, "y"))
        return smooth_max(jnp.stack([x, y]), beta=self._beta(), axis=0)

    def mul(self, x: ArrayLike, y: ArrayLike) -> jax.Array:
        r""":math:`x \otimes y = x + y`, elementwise with broadcasting."""
        x, y = jnp.broadcast_arrays(_as_float(x, "x"), _as_float(y, "y"))
        return x + y

    def sum(self, x: ArrayLike, axis=-1) -> jax.Array:
        r""":math:`\bigoplus` over ``axis``: :func:`~softjax.smooth.smooth_max` at this β."""
        return smooth_max(x, beta=self._beta(), axis=axis)

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
        beta = self._beta()
        if beta.ndim != 0:
            raise ValueError(f"matmul needs a scalar beta, got beta of shape {beta.shape}")
        a3, b3, shape, dtype = _matmul_operands(a, b)
        cd = compute_dtype(dtype)
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
        cd = compute_dtype(dtype)
        c = _tropical_jit(a3.astype(cd), b3.astype(cd), self._sign)
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


@debug_checked
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
      :math:`e^{\beta x}`, like ``x``, with :math:`0 \cdot \infty = 0`: :math:`x = 0` maps to 1
      at every β (β = ±∞ included), and β = 0 maps every ``x`` to 1.

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
    beta = _as_float(beta, "beta").astype(x.dtype)
    x, beta = jnp.broadcast_arrays(x, beta)
    undefined = ((x == 0) & jnp.isinf(beta)) | ((beta == 0) & jnp.isinf(x))  # 0 · ∞
    return jnp.exp(jnp.where(undefined, 0.0, beta * x))
