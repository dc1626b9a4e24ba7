r"""Dynamic programs written once, generic over a semiring: linear chains, shortest paths, DTW.

Each program only uses the semiring's :math:`\oplus` (``add``, ``sum``), :math:`\otimes` (``mul``),
``matmul``, ``closure``, ``zero`` and ``one``, so the same code computes a log-partition function
under :class:`~softjax.semiring.LogSemiring`, a best score under :class:`~softjax.semiring.MaxPlus`
or :class:`~softjax.semiring.MinPlus`, and a sum of products under :class:`~softjax.semiring.Real`.
The semiring is an argument like any other pytree: β is traced, so a jitted program runs at
every β (including ±∞) without recompiling, and ``jax.grad`` of a value gives the expected (Gibbs)
counts of the parts of the structure: edge marginals, expected alignments, and, in the tropical
limits, the best structure itself (ties split equally).

References:
  Mensch & Blondel, "Differentiable dynamic programming for structured prediction and attention"
  (2018), arXiv:1802.03676.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from softjax._core import broadcasts_to, compute_dtype, debug_checked, real_array
from softjax.semiring import LogSemiring, MaxPlus, MinPlus

__all__ = [
    "dtw",
    "linear_chain",
    "node_marginals",
    "shortest_paths",
    "soft_dtw",
    "soft_dtw_divergence",
    "viterbi",
]

_METHODS = ("sequential", "parallel")
_SEMIRING_API = ("zero", "one", "add", "mul", "sum", "matmul")


# ----------------------------------------------------------------------------------------------
# Helpers


def _has_static(obj: Any, name: str) -> bool:
    try:
        inspect.getattr_static(obj, name)
    except AttributeError:
        return False
    return True


def _check_semiring(semiring: Any, needs=_SEMIRING_API) -> None:
    if isinstance(semiring, type):
        raise TypeError(
            f"semiring must be a semiring instance such as MaxPlus() or LogSemiring(beta), "
            f"got the class {semiring.__name__}"
        )
    # Looked up statically: reading a property such as ``zero`` would compute it.
    missing = [name for name in needs if not _has_static(semiring, name)]
    if missing:
        raise TypeError(
            f"semiring must be a semiring such as LogSemiring(beta) or MaxPlus(), got {semiring!r}"
        )


_as_float = real_array


def _upcast(x: jax.Array) -> jax.Array:
    """``x`` in the dtype to compute in (16-bit floats accumulate in float32; the caller casts the
    result back)."""
    return x.astype(compute_dtype(x.dtype))


def _constant(value, dtype, shape) -> jax.Array:
    """The semiring constant ``value`` (possibly traced) as an array of ``shape`` and ``dtype``."""
    return jnp.broadcast_to(jnp.asarray(value).astype(dtype), shape)


def _provably_at_least(dim, bound: int) -> bool:
    """Whether the dimension ``dim`` (an int or symbolic) is ≥ ``bound`` for every value it may
    take; a symbolic comparison that JAX cannot decide counts as not proved."""
    if isinstance(dim, int):
        return dim >= bound
    try:
        return bool(dim >= bound)
    except Exception:  # jax's InconclusiveDimensionOperation, not public
        return False


def _common_batch(a: tuple, b: tuple, message: str) -> tuple:
    """The broadcast of two batch shapes, or a ValueError with ``message``."""
    try:
        return tuple(jnp.broadcast_shapes(a, b))
    except ValueError:
        raise ValueError(message) from None


def _per_problem(program: Callable, semiring, batch: tuple, *arrays: jax.Array) -> jax.Array:
    """``program(semiring, *arrays)`` for arrays with leading batch dimensions ``batch``.

    A semiring whose parameters (β) are arrays broadcastable to ``batch`` gives one semiring per
    problem: the program is vmapped over the batch dimensions. Scalar parameters: one call.
    """
    leaves = jax.tree.leaves(semiring)
    if all(jnp.ndim(leaf) == 0 for leaf in leaves):
        return program(semiring, *arrays)
    for leaf in leaves:
        if not broadcasts_to(jnp.shape(leaf), batch):
            raise ValueError(
                f"the semiring's parameters must be scalars or broadcast to the batch shape "
                f"{batch} (one per problem), got {semiring!r} with shape {jnp.shape(leaf)}"
            )
    semiring = jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, batch), semiring)
    f = program
    for _ in batch:
        f = jax.vmap(f)
    return f(semiring, *arrays)


def _vecmat(semiring, v: jax.Array, m: jax.Array) -> jax.Array:
    """Row vector times matrix in the semiring: (..., K) ⊗ (..., K, L) -> (..., L).

    Written with ``sum`` and ``mul`` rather than ``matmul``: a (K, L) intermediate is no larger than
    the matrix itself, and it traces and runs faster than a one-row product.
    """
    return semiring.sum(semiring.mul(v[..., :, None], m), axis=-2)


# ----------------------------------------------------------------------------------------------
# Linear chains


def _reduce_tree(semiring, mats: jax.Array) -> jax.Array:
    """Ordered semiring product of ``mats`` (..., T, K, K) over T by pairwise (log-depth) rounds."""
    while mats.shape[-3] > 1:
        t = mats.shape[-3]
        even = t - t % 2
        paired = semiring.matmul(mats[..., 0:even:2, :, :], mats[..., 1:even:2, :, :])
        if t % 2:
            paired = jnp.concatenate([paired, mats[..., even:, :, :]], axis=-3)
        mats = paired
    return mats[..., 0, :, :]


class _Chain(NamedTuple):
    pot: jax.Array  # (..., T, K, K), in the dtype to compute in
    alpha: jax.Array  # (..., K) initial scores
    omega: jax.Array  # (..., K) final scores
    last: jax.Array | None  # (...) each sequence's last position (int32), None: all T
    batch: tuple
    t_len: Any  # T (an int, or a symbolic dimension)
    dtype: Any  # the dtype of the result


def _chain_inputs(potentials, transitions, initial, final, lengths, mul, one) -> _Chain:
    """The arguments of the chain programs, checked: edge potentials, or emissions with
    transitions folded into edge potentials (the first emission into the initial scores)."""
    x = _as_float(potentials, "potentials")
    dtype = x.dtype
    x = _upcast(x)
    if transitions is None:
        if x.ndim < 3 or x.shape[-1] != x.shape[-2]:
            raise ValueError(
                f"potentials must have shape (..., T, K, K) with square (K, K) transitions, "
                f"got shape {x.shape}"
            )
        pot, first = x, None
    else:
        trans = _upcast(_as_float(transitions, "transitions")).astype(x.dtype)
        if x.ndim < 2 or x.shape[-2] == 0:
            raise ValueError(
                f"with transitions, potentials are emissions of shape (..., N, K) with N >= 1 "
                f"positions, got shape {x.shape}"
            )
        if not isinstance(x.shape[-2], int) and not _provably_at_least(x.shape[-2], 2):
            # The recursion is a scan over the N − 1 transitions, which JAX lowers only for a
            # length it can prove non-zero.
            raise ValueError(
                f"with transitions and a symbolic number of positions N = {x.shape[-2]}, declare "
                f"N >= 2 where the shape is made, e.g. jax.export.symbolic_shape('b, N, K', "
                f"constraints=('N >= 2',))"
            )
        k = x.shape[-1]
        if trans.ndim < 2 or trans.shape[-2:] != (k, k):
            raise ValueError(
                f"transitions must have shape (..., K, K) = (..., {k}, {k}) for emissions of "
                f"shape {x.shape}, got shape {trans.shape}"
            )
        batch = _common_batch(
            x.shape[:-2],
            trans.shape[:-2],
            f"batch dimensions of the emissions {x.shape} and transitions {trans.shape} "
            "must broadcast",
        )
        x = jnp.broadcast_to(x, batch + x.shape[-2:])
        trans = jnp.broadcast_to(trans, batch + (k, k))
        pot = mul(trans[..., None, :, :], x[..., 1:, None, :])  # ψ_t(i, j) = A_ij ⊗ E_{t+1, j}
        first = x[..., 0, :]
    batch, t_len, k = pot.shape[:-3], pot.shape[-3], pot.shape[-1]
    if k == 0:
        raise ValueError(f"potentials must have K >= 1 states, got shape {x.shape}")
    vec_shape = batch + (k,)

    def boundary(v, name):
        if v is None:
            return _constant(one, pot.dtype, vec_shape)
        v = _as_float(v, name)
        if not broadcasts_to(v.shape, vec_shape):
            raise ValueError(
                f"{name} must be broadcastable to shape {vec_shape} (batch + (K,)), "
                f"got shape {v.shape}"
            )
        return jnp.broadcast_to(v.astype(pot.dtype), vec_shape)

    alpha = boundary(initial, "initial")
    if first is not None:
        alpha = mul(alpha, first)
    omega = boundary(final, "final")
    return _Chain(pot, alpha, omega, _last_positions(lengths, batch, t_len), batch, t_len, dtype)


def _last_positions(lengths, batch, t_len) -> jax.Array:
    """The index of each sequence's last position, from ``lengths`` (numbers of positions)."""
    if lengths is None:
        return None
    n = jnp.asarray(lengths)
    if not jnp.issubdtype(n.dtype, jnp.integer):
        raise TypeError(f"lengths must be an integer array, got dtype {n.dtype}")
    if not broadcasts_to(n.shape, batch):
        raise ValueError(
            f"lengths must be broadcastable to the batch shape {batch}, got shape {n.shape}"
        )
    if not isinstance(n, jax.core.Tracer) and isinstance(t_len, int):
        bad = np.asarray(n)[(np.asarray(n) < 1) | (np.asarray(n) > t_len + 1)]
        if bad.size:
            raise ValueError(
                f"lengths must be between 1 and the number of positions {t_len + 1}, "
                f"got {bad.tolist()}"
            )
    return jnp.broadcast_to(jnp.clip(n, 1, t_len + 1) - 1, batch).astype(jnp.int32)


def _chain_value(semiring, pot, alpha, omega, last, *, method):
    """The semiring sum over the paths of each chain (the transitions from ``last`` on are
    padding: the path stops there; ``last=None``: no padding)."""
    t_len = pot.shape[-3]
    if not (isinstance(t_len, int) and t_len == 0):
        # (..., T): whether transition t is in the chain.
        shape = pot.shape[:-2]
        live = (
            None
            if last is None
            else lax.broadcasted_iota(jnp.int32, shape, len(shape) - 1) < last[..., None]
        )
        if method == "sequential":

            def step(a, x):
                p, ok = x
                new = _vecmat(semiring, a, p)
                return (new if ok is None else jnp.where(ok[..., None], new, a)), None

            # + 0 typed like the potentials: the carry then holds their sharding from the start
            # (a reduction, not a slice, so that a symbolic T needs no proof that T ≥ 1).
            alpha = alpha + jnp.zeros_like(jnp.sum(pot, axis=(-3, -2)))
            if live is not None:  # the padding is 0 first, so that a NaN there is inert
                pot = jnp.where(live[..., None, None], pot, 0.0)
            xs = (jnp.moveaxis(pot, -3, 0), None if live is None else jnp.moveaxis(live, -1, 0))
            alpha, _ = lax.scan(step, alpha, xs)
        else:
            if live is not None:  # padding: identity matrices, which carry α unchanged
                eye = jnp.eye(pot.shape[-1], dtype=bool)
                identity = jnp.where(eye, semiring.one, semiring.zero).astype(pot.dtype)
                pot = jnp.where(live[..., None, None], pot, identity)
            alpha = _vecmat(semiring, alpha, _reduce_tree(semiring, pot))
    return semiring.sum(semiring.mul(alpha, omega), axis=-1)


@debug_checked
def linear_chain(
    potentials: ArrayLike,
    semiring,
    *,
    transitions: ArrayLike | None = None,
    initial: ArrayLike | None = None,
    final: ArrayLike | None = None,
    lengths: ArrayLike | None = None,
    method: str = "sequential",
) -> jax.Array:
    r"""The semiring sum over all state sequences of a linear chain: forward algorithm and Viterbi.

    .. math::
        V = \bigoplus_{y_0, \dots, y_T} a_{y_0} \otimes
            \bigotimes_{t=0}^{T-1} \psi_t(y_t, y_{t+1}) \otimes b_{y_T}

    with :math:`\psi_t(i, j) =` ``potentials[..., t, i, j]`` the score of state :math:`i` at
    position :math:`t` followed by state :math:`j` at :math:`t + 1`, and :math:`a`, :math:`b` the
    optional initial and final state scores (the semiring's one when omitted). Under
    ``LogSemiring(1.0)`` this is the log-partition function of a linear-chain CRF (the forward
    algorithm) and ``jax.grad`` with respect to ``potentials`` gives the edge marginals
    :math:`P(y_t = i, y_{t+1} = j)`; under ``LogSemiring(beta)`` it is :math:`\frac1\beta \log Z`
    with the scores scaled by β, and the gradient gives the marginals of the Gibbs distribution at
    β. Under :class:`~softjax.semiring.MaxPlus` (or ``LogSemiring(inf)``) it is the Viterbi score
    and the gradient is the one-hot indicator of the best path's edges (split equally between tied
    paths); :class:`~softjax.semiring.MinPlus` gives the cheapest path and
    :class:`~softjax.semiring.Real` the sum of products of the potentials.

    ``method="sequential"`` runs the forward recursion :math:`\alpha_{t+1} = \alpha_t \otimes
    \psi_t` (a ``lax.scan`` of :math:`T` vector-matrix products, :math:`O(T K^2)` work).
    ``method="parallel"`` multiplies the :math:`T` matrices in the semiring by a balanced tree of
    batched matrix products (they are associative): :math:`O(\log T)` depth for
    :math:`O(T K^3)` work, the better choice for long chains with small :math:`K` on parallel
    hardware (it traces :math:`\lceil\log_2 T\rceil` rounds, so its compile time grows with
    :math:`\log T`). Both give the same value and gradient up to rounding. Inputs in 16-bit
    floats are accumulated in float32 and the value is returned in the input dtype.

    The common unary-plus-pairwise form is accepted as it is: with ``transitions`` :math:`A`
    given, ``potentials`` are the emissions :math:`E` of the :math:`N` positions and
    :math:`\psi_t(i, j) = A_{ij} \otimes E_{t+1, j}`, with :math:`E_0` folded into the initial
    scores. Ragged batches are right-padded: ``lengths`` gives each sequence's number of
    positions, and its value equals the call on the unpadded sequence (the padding gets zero
    gradient).

    Args:
      potentials: transition scores, shape ``(..., T, K, K)`` (:math:`T \ge 0` transitions between
        :math:`T + 1` positions with :math:`K` states); leading dimensions are batch dimensions.
        With ``transitions``: emissions, shape ``(..., N, K)`` (:math:`N \ge 1` positions).
      semiring: the semiring, e.g. ``LogSemiring(beta)``, ``MaxPlus()``, ``MinPlus()``, ``Real()``;
        a ``LogSemiring`` whose β is an array over the batch solves one problem per β.
      transitions: optional transition scores :math:`A`, shape ``(..., K, K)`` (batch dimensions
        broadcast with those of the emissions).
      initial: optional scores of the first state, shape broadcastable to ``(..., K)``.
      final: optional scores of the last state, shape broadcastable to ``(..., K)``; they score
        each sequence's last position.
      lengths: optional numbers of positions, integers broadcastable to the batch shape, between
        1 and :math:`T + 1`; concrete values outside raise, traced ones are clipped.
      method: ``"sequential"`` or ``"parallel"`` (static).

    Returns:
      The value :math:`V`, shape ``(...)``.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from softjax.dp import linear_chain
      >>> from softjax.semiring import LogSemiring, MaxPlus
      >>> pot = jnp.array([[[1.0, 0.0], [0.0, 2.0]], [[0.5, 0.0], [3.0, 0.0]]])  # T=2, K=2
      >>> print(f"{linear_chain(pot, LogSemiring(1.0)):.4f}")
      5.2297
      >>> print(f"{linear_chain(pot, MaxPlus()):.4f}")
      5.0000
      >>> print(jax.grad(linear_chain)(pot, MaxPlus()))  # the best path 1 -> 1 -> 0
      [[[0. 0.]
        [0. 1.]]
      <BLANKLINE>
       [[0. 0.]
        [1. 0.]]]

    References:
      Lafferty, McCallum & Pereira, "Conditional random fields: probabilistic models for
      segmenting and labeling sequence data", ICML (2001).
      Rabiner, "A tutorial on hidden Markov models and selected applications in speech
      recognition", Proc. IEEE 77 (1989).
      Särkkä & García-Fernández, "Temporal parallelization of Bayesian smoothers" (2019),
      arXiv:1905.13002.
    """
    _check_semiring(semiring)
    if not isinstance(method, str) or method not in _METHODS:
        raise ValueError(f"method must be 'sequential' or 'parallel', got {method!r}")
    c = _chain_inputs(potentials, transitions, initial, final, lengths, semiring.mul, semiring.one)
    if method == "parallel" and not isinstance(c.t_len, int):
        raise ValueError(
            f"method='parallel' needs a static number of transitions T, got T = {c.t_len}; "
            "use method='sequential' for a symbolic T"
        )
    chain = partial(_chain_value, method=method)
    return _per_problem(chain, semiring, c.batch, c.pot, c.alpha, c.omega, c.last).astype(c.dtype)


@debug_checked
def viterbi(
    potentials: ArrayLike,
    *,
    transitions: ArrayLike | None = None,
    initial: ArrayLike | None = None,
    final: ArrayLike | None = None,
    lengths: ArrayLike | None = None,
) -> tuple[jax.Array, jax.Array]:
    r"""The best state sequence of a linear chain and its score: Viterbi decoding.

    .. math::
        y^\star = \operatorname*{arg\,max}_{y_0, \dots, y_T}\;
            a_{y_0} + \sum_{t=0}^{T-1} \psi_t(y_t, y_{t+1}) + b_{y_T}

    for the chain of :func:`linear_chain` (same arguments, the max-plus semiring). The score is
    ``linear_chain(..., MaxPlus())`` up to rounding; the path is decoded by back-pointers:
    max-plus values-to-go :math:`\beta_t(i) = \max_j \psi_t(i, j) + \beta_{t+1}(j)` from the end,
    then :math:`y_0, y_1, \dots` forward, each the smallest state attaining the maximum. Among
    tied best paths this returns the lexicographically smallest. Forbidden transitions are
    :math:`-\infty`; if every path is forbidden the score is :math:`-\infty` and the path is the
    smallest one. A NaN score makes the score NaN (the path is then undefined).

    Args:
      potentials: transition scores ``(..., T, K, K)``, or with ``transitions`` the emissions
        ``(..., N, K)`` (see :func:`linear_chain`).
      transitions: optional transition scores ``(..., K, K)``.
      initial: optional scores of the first state, broadcastable to ``(..., K)``.
      final: optional scores of the last state, broadcastable to ``(..., K)``.
      lengths: optional numbers of positions of right-padded sequences (see :func:`linear_chain`).

    Returns:
      ``(score, path)``: the best score, shape ``(...)``, in the dtype of the potentials, and the
      best path, int32 of shape ``(..., T + 1)`` (``(..., N)`` with emissions), holding -1 at the
      padded positions.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.dp import viterbi
      >>> trans = jnp.array([[0.0, 1.0], [1.0, 0.0]])  # switching scores 1
      >>> score, path = viterbi(jnp.zeros((3, 2)), transitions=trans)
      >>> print(score, path)
      2.0 [0 1 0]

    References:
      Viterbi, "Error bounds for convolutional codes and an asymptotically optimum decoding
      algorithm", IEEE Trans. Inf. Theory 13 (1967).
    """
    c = _chain_inputs(potentials, transitions, initial, final, lengths, jnp.add, 0.0)
    pot, t_len = c.pot, c.t_len
    last = jnp.full(c.batch, t_len, jnp.int32) if c.last is None else c.last

    # Values-to-go, from the end: β_t = b for t ≥ last, else max_j ψ_t(:, j) + β_{t+1}(j).
    def back(b_next, x):
        p, t = x
        b_t = jnp.max(p + b_next[..., None, :], axis=-1)
        b_t = jnp.where((t < last)[..., None], b_t, c.omega)
        return b_t, b_next

    xs = (jnp.moveaxis(pot, -3, 0), jnp.arange(t_len))
    b0, b_rest = lax.scan(back, c.omega, xs, reverse=True)  # b_rest[t] is β_{t+1}
    start = c.alpha + b0
    score = jnp.max(start, axis=-1)
    y0 = jnp.argmax(start, axis=-1).astype(jnp.int32)

    def forward(y, x):
        p, b_next, t = x
        row = jnp.take_along_axis(p, y[..., None, None], axis=-2)[..., 0, :]
        y_next = jnp.argmax(row + b_next, axis=-1).astype(jnp.int32)
        y_next = jnp.where(t < last, y_next, y)  # padding: carried, then masked to -1 below
        return y_next, y_next

    _, ys = lax.scan(forward, y0, (jnp.moveaxis(pot, -3, 0), b_rest, jnp.arange(t_len)))
    path = jnp.concatenate([y0[..., None], jnp.moveaxis(ys, 0, -1)], axis=-1)
    position = lax.broadcasted_iota(jnp.int32, path.shape, path.ndim - 1)
    path = jnp.where(position <= last[..., None], path, -1)
    return score.astype(c.dtype), path


@debug_checked
def node_marginals(
    potentials: ArrayLike,
    semiring=None,
    *,
    transitions: ArrayLike | None = None,
    initial: ArrayLike | None = None,
    final: ArrayLike | None = None,
    lengths: ArrayLike | None = None,
    method: str = "sequential",
) -> jax.Array:
    r"""The marginal probability of each state at each position of a linear chain.

    .. math::
        \mu_t(k) = P_\beta(y_t = k) = \frac{\partial V}{\partial u_t(k)}

    the gradient of the chain's value :math:`V` (:func:`linear_chain`) with respect to a score
    :math:`u_t(k)` added to state :math:`k` at position :math:`t`. Under ``LogSemiring(1.0)``
    (the default) these are the CRF's node marginals (forward–backward); under
    ``LogSemiring(beta)`` the marginals of the Gibbs distribution at β; under
    :class:`~softjax.semiring.MaxPlus` the best path as one-hot rows (split equally between tied
    paths), and under :class:`~softjax.semiring.MinPlus` the cheapest.

    Args:
      potentials: transition scores ``(..., T, K, K)``, or with ``transitions`` the emissions
        ``(..., N, K)`` (see :func:`linear_chain`).
      semiring: ``LogSemiring(beta)`` (default ``LogSemiring(1.0)``), ``MaxPlus()`` or
        ``MinPlus()``: a semiring whose :math:`\otimes` is +.
      transitions: optional transition scores ``(..., K, K)``.
      initial: optional scores of the first state, broadcastable to ``(..., K)``.
      final: optional scores of the last state, broadcastable to ``(..., K)``.
      lengths: optional numbers of positions of right-padded sequences; the padded positions get
        0.
      method: ``"sequential"`` or ``"parallel"`` (static), as in :func:`linear_chain`.

    Returns:
      The marginals, shape ``(..., T + 1, K)`` (``(..., N, K)`` with emissions), each row summing
      to one (rows of padded positions are 0).

    Example:
      >>> import jax.numpy as jnp
      >>> import numpy as np
      >>> from softjax.dp import node_marginals
      >>> trans = jnp.array([[0.0, 1.0], [1.0, 0.0]])
      >>> mu = node_marginals(jnp.array([[2.0, 0.0], [0.0, 0.0]]), transitions=trans)
      >>> print(np.array2string(np.asarray(mu), precision=3))
      [[0.881 0.119]
       [0.324 0.676]]
    """
    if semiring is None:
        semiring = LogSemiring(1.0)
    if not isinstance(semiring, LogSemiring | MaxPlus | MinPlus):
        raise TypeError(
            f"semiring must be LogSemiring(beta), MaxPlus() or MinPlus() (whose product is +), "
            f"got {semiring!r}"
        )
    c = _chain_inputs(potentials, transitions, initial, final, lengths, jnp.add, 0.0)
    n_pos = c.t_len + 1

    def value(u):
        # u_0 scores the first position, u_{t+1} the arrival of transition t.
        pot = c.pot + u[..., 1:, None, :]
        return jnp.sum(
            linear_chain(
                pot,
                semiring,
                initial=c.alpha + u[..., 0, :],
                final=c.omega,
                lengths=None if c.last is None else c.last + 1,
                method=method,
            )
        )

    u = jnp.zeros(c.batch + (n_pos, c.pot.shape[-1]), c.pot.dtype)
    return jax.grad(value)(u).astype(c.dtype)


# ----------------------------------------------------------------------------------------------
# Shortest paths


def _no_loop(semiring) -> jax.Array:
    """The diagonal weight that adds no path: the semiring's zero, or in an idempotent semiring
    (tropical, or the log-semiring at β = ±inf) its one, which keeps a finite matrix finite."""
    if isinstance(semiring, MaxPlus | MinPlus):
        return jnp.asarray(semiring.one)
    if isinstance(semiring, LogSemiring):
        return jnp.where(jnp.isinf(semiring.beta), semiring.one, semiring.zero)
    return jnp.asarray(semiring.zero)


@debug_checked
def shortest_paths(
    weights: ArrayLike, semiring=None, *, num_squarings: int | None = None
) -> jax.Array:
    r"""All-pairs path values in a semiring: shortest paths, soft shortest paths, longest paths.

    .. math::
        D = (I \oplus W \oplus W^{\otimes 2} \oplus \cdots) = W^{*},
        \qquad D^{\min}_{ij} = \min_{\text{paths } i \to j} \sum_{e} w_e,
        \qquad D^{\beta}_{ij} = \frac1\beta \log \sum_{\text{paths } i \to j} e^{\beta \sum_e w_e}

    computed by the semiring's Kleene star (:meth:`~softjax.semiring.MinPlus.closure`, repeated
    squaring). ``weights[..., i, j]`` is the weight of the edge :math:`i \to j`, with the
    semiring's zero for "no edge" (:math:`+\infty` under :class:`~softjax.semiring.MinPlus` and
    ``LogSemiring(beta)`` for β < 0). The diagonal of ``weights`` is ignored, as by
    ``scipy.sparse.csgraph.floyd_warshall``: :math:`D_{ii}` always includes the empty path (the
    semiring's one, i.e. 0 = staying put), so a diagonal of 0, :math:`+\infty` or anything else
    gives the same answer. Under ``MinPlus()`` (the default) this is all-pairs shortest path
    lengths, under :class:`~softjax.semiring.MaxPlus` longest paths in a DAG, and under
    ``LogSemiring(-beta)`` (β > 0) the soft shortest path lengths, a smooth lower bound of
    :math:`D^{\min}` that tends to it as β → ∞; the gradient of :math:`D^{\beta}_{ij}` with respect
    to the weights is the expected number of traversals of each edge by a Gibbs-random path from
    :math:`i` to :math:`j`.

    Cycles. Under ``MinPlus()``, if there is no negative cycle the answer is exact after
    :math:`\lceil \log_2 n \rceil` squarings (the default). A negative cycle has no shortest path;
    this function does not raise (it cannot, on traced values): the entries for pairs connected
    through a negative cycle hold the best path of fewer than :math:`2^t` edges, which decreases
    with ``num_squarings``, and each node on a negative cycle gets a negative diagonal entry, so
    ``jnp.any(jnp.diagonal(D, axis1=-2, axis2=-1) < 0)`` detects one. Under ``LogSemiring(-beta)``
    the sum over paths (with cycles repeated) is finite iff the spectral radius of the matrix
    :math:`e^{-\beta W}` (zero diagonal) is below one, which needs every cycle to have positive
    length and β large enough; otherwise the series diverges, and the entries returned are the
    partial sums over paths of fewer than :math:`2^t` edges (``t = num_squarings``): large negative
    numbers that keep decreasing with ``num_squarings``, not a limit. Check the spectral radius
    (or compare two values of ``num_squarings``) before trusting a soft answer at small β.

    Args:
      weights: edge weights, shape ``(..., n, n)``; leading dimensions are batch dimensions.
      semiring: the semiring; default ``MinPlus()``.
      num_squarings: number of squaring steps (static); default the semiring's:
        :math:`\lceil\log_2 n\rceil` for the tropical semirings (counted at run time when n is
        a symbolic dimension), 32 otherwise.

    Returns:
      The path values :math:`D`, shape ``(..., n, n)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.dp import shortest_paths
      >>> from softjax.semiring import LogSemiring
      >>> inf = jnp.inf
      >>> w = jnp.array([[0.0, 1.0, 4.0], [inf, 0.0, 2.0], [1.0, inf, 0.0]])
      >>> print(shortest_paths(w))
      [[0. 1. 3.]
       [3. 0. 2.]
       [1. 2. 0.]]
      >>> print(shortest_paths(w, LogSemiring(-5.0))[0, 2].round(4))
      2.9987

    References:
      Lehmann, "Algebraic structures for transitive closure", Theoretical Computer Science 4
      (1977).
      Mensch & Blondel, "Differentiable dynamic programming for structured prediction and
      attention" (2018), arXiv:1802.03676.
    """
    if semiring is None:
        semiring = MinPlus()
    _check_semiring(semiring, _SEMIRING_API + ("closure",))
    w = _as_float(weights, "weights")
    dtype = w.dtype
    w = _upcast(w)
    if w.ndim < 2 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"weights must have shape (..., n, n), got shape {w.shape}")
    n = w.shape[-1]

    def paths(semiring, w):
        eye = jnp.broadcast_to(jnp.eye(n, dtype=bool), w.shape)
        w = jnp.where(eye, _no_loop(semiring).astype(w.dtype), w)
        return semiring.closure(w, num_squarings=num_squarings)

    return _per_problem(paths, semiring, w.shape[:-2], w).astype(dtype)


# ----------------------------------------------------------------------------------------------
# Dynamic time warping


def _shift(x: jax.Array, fill: jax.Array) -> jax.Array:
    """x[..., i - 1] along the last axis, with ``fill`` at i = 0."""
    return jnp.concatenate([fill, x[..., :-1]], axis=-1)


@debug_checked
def dtw(
    cost: ArrayLike,
    semiring=None,
    *,
    band: int | None = None,
    lengths: tuple[ArrayLike, ArrayLike] | None = None,
) -> jax.Array:
    r"""Dynamic time warping in a semiring: DTW under min-plus, soft-DTW under the log-semiring.

    .. math::
        R_{ij} = C_{ij} \otimes \big(R_{i-1,j} \oplus R_{i,j-1} \oplus R_{i-1,j-1}\big),
        \qquad R_{00} = C_{00},
        \qquad \mathrm{dtw}(C) = R_{n-1,m-1}

    that is, the semiring sum over all alignment paths from :math:`(0, 0)` to
    :math:`(n-1, m-1)` with steps :math:`(1, 0)`, :math:`(0, 1)`, :math:`(1, 1)` of the product of
    the costs of the cells visited. Under ``MinPlus()`` (the default) this is DTW; under
    ``LogSemiring(-1/gamma)`` it is the soft-DTW of Cuturi & Blondel,
    :math:`\min^\gamma_{A} \langle A, C\rangle` with :math:`\min^\gamma(a) = -\gamma\log\sum_i
    e^{-a_i/\gamma}`, and its gradient with respect to ``cost`` is the expected alignment matrix
    (for DTW, the optimal alignment, ties split). γ = 0, i.e. ``LogSemiring(-inf)``, gives DTW
    exactly.

    The recursion runs as a wavefront: a ``lax.scan`` over the :math:`n + m - 1` anti-diagonals,
    each computed in one vectorised step of length :math:`\min(n, m)`.

    Args:
      cost: pairwise costs, shape ``(..., n, m)`` with :math:`n, m \ge 1`; leading dimensions are
        batch dimensions.
      semiring: the semiring; default ``MinPlus()``. A ``LogSemiring`` whose β is an array over
        the batch solves one problem per β.
      band: optional Sakoe–Chiba radius (static int ≥ 0): only cells with :math:`|i - j| \le`
        ``band`` are on a path. If the end is outside the band (:math:`|n - m| >` ``band``) no
        path exists and the value is the semiring's zero (+inf under ``MinPlus``).
      lengths: optional pair ``(n_lengths, m_lengths)`` of integer arrays broadcastable to the
        batch shape: right-padded series, the value of each being that of its unpadded cost
        ``cost[..., :n_len, :m_len]`` (the padding gets zero gradient).

    Returns:
      The value :math:`R_{n-1,m-1}`, shape ``(...)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.dp import dtw
      >>> from softjax.semiring import LogSemiring
      >>> x, y = jnp.array([0.0, 1.0, 2.0]), jnp.array([0.0, 2.0])
      >>> cost = (x[:, None] - y[None, :]) ** 2
      >>> print(f"{dtw(cost):.4f} {dtw(cost, LogSemiring(-1.0)):.4f}")
      1.0000 0.1227

    References:
      Sakoe & Chiba, "Dynamic programming algorithm optimization for spoken word recognition",
      IEEE Trans. ASSP 26 (1978).
      Cuturi & Blondel, "Soft-DTW: a differentiable loss function for time-series" (2017),
      arXiv:1703.01541.
    """
    if semiring is None:
        semiring = MinPlus()
    _check_semiring(semiring)
    c = _as_float(cost, "cost")
    dtype = c.dtype
    c = _upcast(c)
    if c.ndim < 2 or c.shape[-1] == 0 or c.shape[-2] == 0:
        raise ValueError(f"cost must have shape (..., n, m) with n, m >= 1, got shape {c.shape}")
    if band is not None and (
        isinstance(band, bool) or not isinstance(band, int | np.integer) or band < 0
    ):
        raise ValueError(f"band must be None or an int >= 0 (a static radius), got {band!r}")
    n, m = c.shape[-2:]
    batch = c.shape[:-2]
    if lengths is None:
        ends = None
    else:
        if not isinstance(lengths, tuple | list) or len(lengths) != 2:
            raise TypeError(
                f"lengths must be a pair (lengths of the rows, lengths of the columns), "
                f"got {lengths!r}"
            )
        ends = tuple(
            _last_positions(v, batch, size - 1) for v, size in zip(lengths, (n, m), strict=True)
        )
        # The padding is 0 before any arithmetic, so that a NaN there reaches no gradient.
        rows = lax.broadcasted_iota(jnp.int32, c.shape, c.ndim - 2)
        cols = lax.broadcasted_iota(jnp.int32, c.shape, c.ndim - 1)
        inside = (rows <= ends[0][..., None, None]) & (cols <= ends[1][..., None, None])
        c = jnp.where(inside, c, 0.0)
    if isinstance(n, int) and isinstance(m, int) and n > m:
        c = jnp.swapaxes(c, -1, -2)  # the recursion is symmetric; keep diagonals short
        ends = None if ends is None else ends[::-1]
    n, m = c.shape[-2:]
    n_diag = n + m - 1
    # Skewed costs: row d holds the anti-diagonal i + j = d, indexed by i.
    d_idx = jnp.arange(n_diag)[:, None]
    i_idx = jnp.arange(n)[None, :]
    j_idx = d_idx - i_idx
    valid = (j_idx >= 0) & (j_idx < m)  # (D, n)
    # Cells outside the band are in the grid but on no path: the semiring's zero.
    in_band = None if band is None else jnp.abs(i_idx - j_idx) <= band
    skew = c[..., i_idx, jnp.clip(j_idx, 0, m - 1)]  # (..., D, n)

    top_row = jnp.arange(n) == 0  # i = 0

    def warp(semiring, skew, ends):
        # Cells outside the grid hold 0 and are never read: on the edges the predecessors
        # outside are left out by selects instead of being the semiring's zero (an infinity).
        # + 0 typed like the costs: the scan's carry then holds their sharding from the start.
        filler = jnp.zeros_like(skew[..., 0, :])
        one = _constant(semiring.one, skew.dtype, filler.shape[:-1] + (1,)) + filler[..., :1]
        if ends is not None:  # the value of each pair is at its own cell
            end_d, end_i = ends[0] + ends[1], ends[0]

        def step(carry, x):
            r1, r2, out = carry  # anti-diagonals d - 1 and d - 2, the value once reached
            cd, ok, first_col, d, band_ok = x
            up = _shift(r1, r1[..., :1])  # R[i-1, j]
            diag = _shift(r2, r2[..., :1])  # R[i-1, j-1]
            acc = semiring.sum(jnp.stack([up, r1, diag]), axis=0)
            acc = jnp.where(first_col, up, acc)  # j = 0: from above only
            acc = jnp.where(top_row, jnp.where(d == 0, one, r1), acc)  # i = 0: from the left
            new = semiring.mul(cd, acc)
            if band_ok is not None:
                new = jnp.where(band_ok, new, _constant(semiring.zero, new.dtype, new.shape))
            new = jnp.where(ok, new, filler)
            if ends is not None:
                at_end = jnp.take_along_axis(new, end_i[..., None], axis=-1)[..., 0]
                out = jnp.where(d == end_d, at_end, out)
            return (new, r1, out), None

        xs = (jnp.moveaxis(skew, -2, 0), valid, j_idx == 0, jnp.arange(n_diag), in_band)
        (last, _, out), _ = lax.scan(step, (filler, filler, filler[..., 0]), xs)
        return last[..., -1] if ends is None else out

    return _per_problem(warp, semiring, batch, skew, ends).astype(dtype)


def _squared_euclidean(x: jax.Array, y: jax.Array) -> jax.Array:
    diff = x[..., :, None, :] - y[..., None, :, :]
    return jnp.sum(diff * diff, axis=-1)


class _Series(NamedTuple):
    x: jax.Array
    y: jax.Array
    gamma: jax.Array  # in the dtype to compute in, broadcastable to the batch
    lengths: tuple | None  # (x lengths, y lengths), integer arrays of the batch shape
    batch: tuple
    cost_fn: Callable


def _series(x, y, gamma, lengths, cost_fn) -> _Series:
    """The arguments of the soft-DTW losses, checked and broadcast."""
    if cost_fn is None:
        cost_fn = _squared_euclidean
    elif not callable(cost_fn):
        raise TypeError(f"cost_fn must be callable, got {cost_fn!r}")
    if isinstance(gamma, bool) or not isinstance(gamma, jax.core.Tracer):
        g = np.asarray(gamma)
        if not np.issubdtype(g.dtype, np.number) or np.iscomplexobj(g) or g.dtype == bool:
            raise TypeError(f"gamma must be a real number or array, got {gamma!r}")
        if not np.all(g >= 0):
            raise ValueError(f"gamma must be >= 0, got {gamma}")
    x = _as_float(x, "x")
    y = _as_float(y, "y")
    if x.ndim < 2 or y.ndim < 2 or x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"x and y must have shapes (..., n, d) and (..., m, d) with the same d, "
            f"got shapes {x.shape} and {y.shape}"
        )
    batch = _common_batch(
        x.shape[:-2],
        y.shape[:-2],
        f"batch dimensions of x and y must broadcast, got shapes {x.shape} and {y.shape}",
    )
    dtype = jnp.result_type(x.dtype, y.dtype)
    x = jnp.broadcast_to(x.astype(dtype), batch + x.shape[-2:])
    y = jnp.broadcast_to(y.astype(dtype), batch + y.shape[-2:])
    gamma = jnp.asarray(gamma).astype(compute_dtype(dtype))
    if not broadcasts_to(gamma.shape, batch):
        raise ValueError(
            f"gamma must be a scalar or broadcast to the batch shape {batch}, got shape "
            f"{gamma.shape}"
        )
    if lengths is not None:
        if not isinstance(lengths, tuple | list) or len(lengths) != 2:
            raise TypeError(f"lengths must be a pair (x lengths, y lengths), got {lengths!r}")
        lengths = tuple(
            jnp.full(batch, s.shape[-2]) if v is None else jnp.broadcast_to(jnp.asarray(v), batch)
            for v, s in zip(lengths, (x, y), strict=True)
        )

        def unpadded(s, n):  # the padding is 0 before the cost, so that a NaN there is inert
            steps = lax.broadcasted_iota(jnp.int32, s.shape, s.ndim - 2)
            return jnp.where(steps < n[..., None, None], s, 0.0)

        x, y = unpadded(x, lengths[0]), unpadded(y, lengths[1])
    return _Series(x, y, gamma, lengths, batch, cost_fn)


def _soft_dtw_parts(cost, gamma, band, lengths):
    """(soft-DTW at γ with γ = ∞ read as 1, log N, mean cost) for the γ = ∞ limits: N the number
    of alignments and the mean cost that of a uniformly random one (computed only when some γ
    is infinite)."""
    infinite = jnp.isinf(gamma)
    # γ = 0 (β = −∞) and γ = ∞ through selects: finite everywhere, so that gradients stay finite
    # (the derivative in γ at 0 is 0, that of the hard minimum away from ties).
    safe = jnp.where(infinite | (gamma == 0), 1.0, gamma)
    beta = jnp.where(gamma == 0, -jnp.inf, -1.0 / safe)
    value = dtw(cost, LogSemiring(beta), band=band, lengths=lengths)

    def counts():
        count = partial(dtw, semiring=LogSemiring(jnp.ones((), cost.dtype)), band=band)
        zero, one = jnp.zeros((), cost.dtype), jnp.ones((), cost.dtype)
        # d/dt log Σ_A e^{t⟨A, C⟩} at t = 0 is the mean of ⟨A, C⟩ over the alignments.
        return jax.jvp(lambda t: count(t * cost, lengths=lengths), (zero,), (one,))

    log_n, mean = lax.cond(
        jnp.any(infinite), counts, lambda: (jnp.zeros_like(value), jnp.zeros_like(value))
    )
    return value, log_n, mean


def _nan_if_negative(gamma, value):
    """A traced negative (or NaN) γ gives NaN, taken from γ itself (no NaN constant)."""
    return jnp.where(gamma >= 0, value, lax.stop_gradient(jnp.sqrt(jnp.minimum(gamma, 0.0))))


@debug_checked
def soft_dtw(
    x: ArrayLike,
    y: ArrayLike,
    *,
    gamma: ArrayLike,
    band: int | None = None,
    lengths: tuple[ArrayLike, ArrayLike] | None = None,
    cost_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> jax.Array:
    r"""Soft-DTW between time series: the smoothed minimum over alignments of the aligned cost.

    .. math::
        \mathrm{sdtw}_\gamma(x, y) = -\gamma \log \sum_{A} e^{-\langle A, C(x, y)\rangle / \gamma}

    over the monotone alignments :math:`A` from :math:`(0, 0)` to :math:`(n-1, m-1)` (see
    :func:`dtw`), with :math:`C(x, y)_{ij} = \|x_i - y_j\|^2` by default. It is
    ``dtw(C, LogSemiring(-1/gamma))``, computed from the series in one call, differentiable in
    ``x``, ``y`` and γ (its gradient in the costs is the expected alignment). γ = 0 is DTW exactly;
    as γ → ∞ it tends to :math:`-\gamma \log N + \bar C`, so γ = ∞ gives −∞ when more than one
    alignment exists (:math:`N` alignments of mean cost :math:`\bar C`). Soft-DTW is not zero at
    :math:`x = y` and can reward moving away from the target; :func:`soft_dtw_divergence` corrects
    both.

    Args:
      x: a time series, shape ``(..., n, d)``.
      y: a time series, shape ``(..., m, d)``; batch dimensions broadcast with those of ``x``.
      gamma: the smoothing parameter γ ∈ [0, ∞], a scalar or one per problem (broadcastable to the
        batch dimensions). A negative or NaN value raises when concrete; traced, it gives NaN.
      band: optional Sakoe–Chiba radius (static int ≥ 0), as in :func:`dtw`.
      lengths: optional pair ``(x_lengths, y_lengths)`` of integer arrays for right-padded series
        (either may be None: the full length); the padding may hold anything, NaN included.
      cost_fn: optional ``cost_fn(a, b)`` mapping series of shapes ``(..., p, d)`` and
        ``(..., q, d)`` to the cost matrix ``(..., p, q)``; default the squared Euclidean distance.

    Returns:
      :math:`\mathrm{sdtw}_\gamma(x, y)`, shape: the broadcast batch dimensions.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.dp import soft_dtw
      >>> x = jnp.array([[0.0], [1.0], [2.0]])
      >>> y = jnp.array([[0.0], [2.0]])
      >>> print(f"{soft_dtw(x, y, gamma=0.0):.4f} {soft_dtw(x, y, gamma=1.0):.4f}")
      1.0000 0.1227

    References:
      Cuturi & Blondel, "Soft-DTW: a differentiable loss function for time-series" (2017),
      arXiv:1703.01541.
      Sakoe & Chiba, "Dynamic programming algorithm optimization for spoken word recognition",
      IEEE Trans. ASSP 26 (1978).
    """
    s = _series(x, y, gamma, lengths, cost_fn)
    value, log_n, mean = _soft_dtw_parts(s.cost_fn(s.x, s.y), s.gamma, band, s.lengths)
    # γ = ∞: −γ log N + mean: −∞ for N ≥ 2, the one path's cost for N = 1, +∞ with no path.
    limit = jnp.where(log_n > 0, -jnp.inf, jnp.where(log_n == -jnp.inf, jnp.inf, mean))
    value = jnp.where(jnp.isinf(s.gamma), limit, value)
    return _nan_if_negative(s.gamma, value)


@debug_checked
def soft_dtw_divergence(
    x: ArrayLike,
    y: ArrayLike,
    *,
    gamma: ArrayLike,
    band: int | None = None,
    lengths: tuple[ArrayLike, ArrayLike] | None = None,
    cost_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> jax.Array:
    r"""The soft-DTW divergence: soft-DTW between time series, debiased to vanish at :math:`x = y`.

    .. math::
        D_\gamma(x, y) = \mathrm{sdtw}_\gamma(C(x, y))
            - \tfrac12\big(\mathrm{sdtw}_\gamma(C(x, x)) + \mathrm{sdtw}_\gamma(C(y, y))\big)

    with :math:`\mathrm{sdtw}_\gamma` the soft-DTW of :func:`soft_dtw` and :math:`C(x, y)_{ij}
    = \|x_i - y_j\|^2` by default. It is zero at :math:`x = y` and, unlike soft-DTW itself, does
    not reward moving :math:`y` away from :math:`x`. It is non-negative when the soft-DTW kernel
    :math:`k(x, y) = e^{-\mathrm{sdtw}_\gamma(C(x, y))/\gamma}` is positive definite on the series
    compared (Blondel et al., Prop. 1), which the squared Euclidean cost does not guarantee: for
    :math:`x_t = 1.289\sin(t - 1.088)`, :math:`y_t = 1.3\sin(t - 1)` on 30 points of
    :math:`[0, 2\pi]` and γ = 0.05 it is −0.0113.

    The limits are exact. γ = 0 gives
    :math:`\mathrm{dtw}(x, y) - \frac12(\mathrm{dtw}(x, x) + \mathrm{dtw}(y, y))`, i.e. DTW for a
    cost that vanishes on the diagonal. As γ → ∞, :math:`\mathrm{sdtw}_\gamma(C) = -\gamma \log
    N_{nm} + \bar C + O(1/\gamma)` with :math:`N_{nm}` the number of alignments and :math:`\bar C`
    the mean cost of a uniformly random alignment; since :math:`N_{nm}^2 < N_{nn} N_{mm}` for
    :math:`n \ne m`, γ = ∞ gives +∞ for series of different lengths and
    :math:`\bar C(x, y) - \frac12(\bar C(x, x) + \bar C(y, y))` for equal lengths.

    Args:
      x: a time series, shape ``(..., n, d)``.
      y: a time series, shape ``(..., m, d)``; batch dimensions broadcast with those of ``x``.
      gamma: the smoothing parameter γ ∈ [0, ∞], a scalar or one per problem (broadcastable to the
        batch dimensions). A negative or NaN value raises when concrete; traced, it gives NaN.
      band: optional Sakoe–Chiba radius (static int ≥ 0), as in :func:`dtw`, for all three terms.
      lengths: optional pair ``(x_lengths, y_lengths)`` of integer arrays for right-padded series
        (either may be None: the full length); the padding may hold anything, NaN included.
      cost_fn: optional ``cost_fn(a, b)`` mapping series of shapes ``(..., p, d)`` and
        ``(..., q, d)`` to the cost matrix ``(..., p, q)``; default the squared Euclidean distance.

    Returns:
      :math:`D_\gamma(x, y)`, shape: the broadcast batch dimensions.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.dp import soft_dtw_divergence
      >>> x = jnp.array([[0.0], [1.0], [2.0]])
      >>> y = jnp.array([[0.0], [2.0]])
      >>> print(f"{soft_dtw_divergence(x, y, gamma=1.0):.4f}")
      0.7359
      >>> print(f"{soft_dtw_divergence(x, x, gamma=1.0):.4f}")
      0.0000

    References:
      Blondel, Mensch & Vert, "Differentiable divergences between time series" (2021),
      arXiv:2010.08354.
      Cuturi & Blondel, "Soft-DTW: a differentiable loss function for time-series" (2017),
      arXiv:1703.01541.
    """
    s = _series(x, y, gamma, lengths, cost_fn)
    if s.lengths is None:
        lxy = lxx = lyy = None
        same_length = s.x.shape[-2] == s.y.shape[-2]
    else:
        lx, ly = s.lengths
        lxy, lxx, lyy = (lx, ly), (lx, lx), (ly, ly)
        same_length = lx == ly
    pairs = ((s.x, s.y, lxy), (s.x, s.x, lxx), (s.y, s.y, lyy))
    (xy, _, m_xy), (xx, _, m_xx), (yy, _, m_yy) = (
        _soft_dtw_parts(s.cost_fn(a, b), s.gamma, band, ends) for a, b, ends in pairs
    )
    # γ = ∞: the log-counts cancel for equal lengths (else N(n, m)² < N(n, n)·N(m, m): +∞).
    limit = jnp.where(same_length, m_xy - 0.5 * (m_xx + m_yy), jnp.inf)
    value = jnp.where(jnp.isinf(s.gamma), limit, xy - 0.5 * (xx + yy))
    return _nan_if_negative(s.gamma, value)
