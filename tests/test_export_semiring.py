"""The semiring products and the dynamic programs export for cpu, cuda and tpu with symbolic shapes.

Each function is exported once with ``jax.export`` for the three platforms and symbolic dimensions,
then called on CPU at concrete shapes and compared with the direct call (or, for a large product,
with its formula); likewise its gradient.
A lowering for cuda or tpu carries the definitions only (the CPU engines are chosen per platform).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export
from jax.scipy.special import logsumexp

from softjax.dp import (
    dtw,
    linear_chain,
    node_marginals,
    shortest_paths,
    soft_dtw_divergence,
    viterbi,
)
from softjax.semiring import LogSemiring, MaxPlus, MinPlus

PLATFORMS = ("cpu", "cuda", "tpu")


def _data(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def _spec(dims: str, scope=None):
    return jax.ShapeDtypeStruct(export.symbolic_shape(dims, scope=scope), jnp.float32)


def _check(fn, specs, *calls, grad_argnums=(0,), rtol=1e-5, reference=None):
    """Exports ``fn`` and its gradient once at ``specs`` and compares their calls at each tuple of
    arguments in ``calls`` with those of ``reference`` (``fn`` itself by default)."""
    reference = fn if reference is None else reference

    def loss(f):
        return lambda *xs: jnp.sum(jnp.where(jnp.isfinite(v := f(*xs)), v, 0.0))

    value = export.export(jax.jit(fn), platforms=PLATFORMS)(*specs)
    grad = export.export(jax.jit(jax.grad(loss(fn), grad_argnums)), platforms=PLATFORMS)(*specs)
    value_ref, grad_ref = jax.jit(reference), jax.jit(jax.grad(loss(reference), grad_argnums))
    for args in calls:
        chex.assert_trees_all_close(value.call(*args), value_ref(*args), rtol=rtol, atol=1e-5)
        chex.assert_trees_all_close(grad.call(*args), grad_ref(*args), rtol=rtol, atol=1e-5)


BETA = jax.ShapeDtypeStruct((), jnp.float32)


@pytest.mark.parametrize("beta", [1.5, -2.0, 0.0, float("inf"), 100.0])
def test_log_matmul_exports_with_symbolic_shapes(beta):
    scope = export.SymbolicScope()
    specs = (_spec("b, m, k", scope), _spec("b, k, n", scope), BETA)
    args = (_data((3, 5, 7), 0), _data((3, 7, 4), 1), jnp.float32(beta))
    _check(lambda a, b, beta: LogSemiring(beta).matmul(a, b), specs, args, grad_argnums=(0, 1, 2))


@pytest.mark.parametrize("semiring", [MaxPlus(), MinPlus()], ids=["maxplus", "minplus"])
def test_tropical_matmul_exports_with_symbolic_shapes(semiring):
    scope = export.SymbolicScope()
    specs = (_spec("b, m, k", scope), _spec("b, k, n", scope))
    args = (_data((2, 6, 19), 2), _data((2, 19, 5), 3))
    _check(semiring.matmul, specs, args, grad_argnums=(0, 1))


def test_large_static_matmul_exports_for_every_platform():
    # Static shapes large enough for the CPU engine: the export carries it for cpu only. It is
    # compared with the product's formula (compiling the engine once, not twice).
    a, b = _data((128, 128), 4), _data((128, 128), 5)
    specs = (jax.ShapeDtypeStruct(a.shape, a.dtype),) * 2 + (BETA,)
    _check(
        lambda a, b, beta: LogSemiring(beta).matmul(a, b),
        specs,
        (a, b, jnp.float32(3.0)),
        grad_argnums=(0, 1, 2),
        reference=lambda a, b, beta: logsumexp(beta * (a[:, :, None] + b[None]), axis=1) / beta,
    )


def test_einsum_and_closure_export_with_symbolic_shapes():
    scope = export.SymbolicScope()
    specs = (_spec("b, i, j", scope), _spec("b, j, k", scope), BETA)
    args = (_data((2, 3, 4), 6), _data((2, 4, 5), 7), jnp.float32(0.5))
    _check(
        lambda x, y, beta: LogSemiring(beta).einsum("bij,bjk->bik", x, y),
        specs,
        args,
        grad_argnums=(0, 1, 2),
    )
    w = -jnp.abs(_data((2, 4, 4), 8)) - 1.0
    _check(
        lambda w, beta: LogSemiring(beta).closure(w, num_squarings=6),
        (_spec("b, n, n"), BETA),
        (w, jnp.float32(1.0)),
        grad_argnums=(0, 1),
    )
    _check(lambda w: MinPlus().closure(-w), (_spec("b, 4, 4"),), (w,))


@pytest.mark.parametrize("method", ["sequential", "parallel"])
def test_linear_chain_exports_with_symbolic_shapes(method):
    dims = "b, T, K, K" if method == "sequential" else "b, 6, K, K"
    pot = _data((2, 6, 3, 3), 9)
    for semiring in (LogSemiring(1.0), MaxPlus()):
        _check(
            lambda p, semiring=semiring: linear_chain(p, semiring, method=method),
            (_spec(dims),),
            (pot,),
        )


def test_shortest_paths_export_with_symbolic_shapes():
    w = jnp.abs(_data((2, 5, 5), 10))
    _check(shortest_paths, (_spec("b, 5, 5"),), (w,))
    _check(
        lambda w: shortest_paths(w, LogSemiring(-3.0), num_squarings=5), (_spec("b, n, n"),), (w,)
    )
    # The default ⌈log₂ n⌉ squarings of the tropical semirings, with n symbolic: one export
    # serves n = 5 and 9 (3 and 4 squarings).
    ws = [(jnp.abs(_data((2, n, n), 14 + n)),) for n in (5, 9)]
    _check(shortest_paths, (_spec("b, n, n"),), *ws)
    _check(lambda w: shortest_paths(-w, MaxPlus()), (_spec("b, n, n"),), *ws)


def test_dtw_and_divergence_export_with_symbolic_shapes():
    cost = jnp.abs(_data((2, 4, 6), 11))
    _check(dtw, (_spec("b, n, m"),), (cost,))
    _check(lambda c: dtw(c, LogSemiring(-1.0)), (_spec("b, n, m"),), (cost,))
    scope = export.SymbolicScope()
    x, y = _data((2, 5, 3), 12), _data((2, 4, 3), 13)
    _check(
        lambda x, y: soft_dtw_divergence(x, y, gamma=0.5),
        (_spec("b, n, d", scope), _spec("b, m, d", scope)),
        (x, y),
        grad_argnums=(0, 1),
    )


def test_chains_of_emissions_export_with_a_symbolic_number_of_positions():
    scope = export.SymbolicScope(("N >= 2",))
    specs = (_spec("b, N, K", scope), _spec("K, K", scope))
    em, trans = _data((2, 5, 3), 20), _data((3, 3), 21)
    for semiring in (LogSemiring(1.0), MaxPlus()):
        _check(
            lambda e, t, semiring=semiring: linear_chain(e, semiring, transitions=t),
            specs,
            (em, trans),
            grad_argnums=(0, 1),
        )
    _check(lambda e, t: node_marginals(e, transitions=t), specs, (em, trans), grad_argnums=(0, 1))
    exported = export.export(jax.jit(lambda e, t: viterbi(e, transitions=t)), platforms=PLATFORMS)
    chex.assert_trees_all_equal(exported(*specs).call(em, trans), viterbi(em, transitions=trans))


def test_a_symbolic_number_of_positions_must_be_declared_at_least_two():
    # N = 1 would leave no transition to scan, which JAX cannot lower for a symbolic length.
    specs = (_spec("b, N, K"), jax.ShapeDtypeStruct((3, 3), jnp.float32))
    with pytest.raises(ValueError, match=r"declare N >= 2"):
        export.export(jax.jit(lambda e, t: viterbi(e, transitions=t)))(*specs)
