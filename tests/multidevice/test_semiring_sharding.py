"""Semiring matrix products on an 8-device CPU mesh equal the single-device result.

Run in its own process with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``. Both kinds of
mesh axes: Auto (the partitioner chooses) and Explicit (the sharding is part of the types, so a
loop's carry must carry it too); rows sharded, the contraction sharded, and both.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from softjax import dp
from softjax.semiring import LogSemiring, MaxPlus, MinPlus

jax.config.update("jax_numpy_rank_promotion", "raise")

INF = float("inf")
SPECS = {
    "rows": (P("x", None), P(None, None)),
    "contraction": (P(None, "y"), P("y", None)),
    "both": (P("x", "y"), P("y", None)),
}
SEMIRINGS = {
    "log(1.5)": LogSemiring(1.5),
    "log(-0.7)": LogSemiring(-0.7),
    "log(0)": LogSemiring(0.0),
    "log(inf)": LogSemiring(INF),
    "maxplus": MaxPlus(),
    "minplus": MinPlus(),
}


def _mesh(kind):
    if len(jax.devices()) < 8:
        pytest.fail(
            f"needs 8 devices, found {len(jax.devices())}: run with "
            "XLA_FLAGS=--xla_force_host_platform_device_count=8"
        )
    return jax.make_mesh((2, 4), ("x", "y"), axis_types=(kind, kind))


@pytest.fixture(scope="module", params=["auto", "explicit"])
def mesh(request):
    return _mesh(AxisType.Auto if request.param == "auto" else AxisType.Explicit)


def _data(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def _value_and_grads(semiring, a, b):
    w = _data((a.shape[0], b.shape[1]), 3)

    def loss(a, b, s):
        c = s.matmul(a, b)
        return jnp.sum(jnp.where(jnp.isfinite(c), w * c, 0.0))

    if isinstance(semiring, LogSemiring):
        value = jax.jit(lambda a, b, beta: LogSemiring(beta).matmul(a, b))(a, b, semiring.beta)
        grads = jax.jit(jax.grad(lambda a, b, beta: loss(a, b, LogSemiring(beta)), (0, 1, 2)))
        return value, grads(a, b, jnp.float32(semiring.beta))
    value = jax.jit(semiring.matmul)(a, b)
    return value, jax.jit(jax.grad(lambda a, b: loss(a, b, semiring), (0, 1)))(a, b)


@functools.cache
def _single_device(name, shape):
    m, k, n = shape
    return _value_and_grads(SEMIRINGS[name], _data((m, k), 1), _data((k, n), 2))


def _check_sharded(mesh, shape, spec, name):
    m, k, n = shape
    a, b = _data((m, k), 1), _data((k, n), 2)
    want_value, want_grads = _single_device(name, shape)
    spec_a, spec_b = SPECS[spec]
    with jax.set_mesh(mesh):
        a_s = jax.device_put(a, NamedSharding(mesh, spec_a))
        b_s = jax.device_put(b, NamedSharding(mesh, spec_b))
        assert len(a_s.sharding.device_set) > 1
        value, grads = _value_and_grads(SEMIRINGS[name], a_s, b_s)
    value = np.asarray(value)
    np.testing.assert_array_equal(np.isinf(value), np.isinf(np.asarray(want_value)))
    chex.assert_trees_all_close(value, want_value, rtol=1e-5, atol=1e-5)
    chex.assert_trees_all_close(grads, want_grads, rtol=1e-4, atol=1e-5)


# (16, 32) @ (32, 8) takes the definition (as does every explicitly sharded product).
@pytest.mark.parametrize("spec", list(SPECS), ids=list(SPECS))
@pytest.mark.parametrize("name", list(SEMIRINGS), ids=list(SEMIRINGS))
def test_matmul_sharded_equals_single_device(mesh, spec, name):
    _check_sharded(mesh, (16, 32, 8), spec, name)


# (128, 128) @ (128, 128) takes the CPU engine when the axes are Auto, and with Explicit axes when
# the contraction is sharded: both operands are then gathered whole along k, so neither is
# explicitly sharded any more. (Explicitly sharded rows take the definition, as above.)
LARGE = [("auto", "rows"), ("auto", "contraction"), ("auto", "both"), ("explicit", "contraction")]


@pytest.mark.parametrize(("kind", "spec"), LARGE, ids=["-".join(c) for c in LARGE])
@pytest.mark.parametrize("name", ["log(1.5)", "maxplus"])
def test_large_matmul_sharded_equals_single_device(kind, spec, name):
    mesh = _mesh(AxisType.Auto if kind == "auto" else AxisType.Explicit)
    _check_sharded(mesh, (128, 128, 128), spec, name)


# ------------------------------------------------------------------------------------------------
# Dynamic programs over a batch sharded across the mesh: value and gradient.

PROGRAMS = {
    "linear_chain": lambda x, s: dp.linear_chain(x, s),
    "linear_chain_parallel": lambda x, s: dp.linear_chain(x, s, method="parallel"),
    "dtw": lambda x, s: dp.dtw(jnp.abs(x[:, 0]), s),
    "shortest_paths": lambda x, s: dp.shortest_paths(jnp.abs(x[:, 0]) + 0.1, s),
}


# One semiring of each kind (the sign of β and the tropical limit are tested on one device).
@pytest.mark.parametrize("semiring", ["log(-0.7)", "maxplus"])
@pytest.mark.parametrize("program", list(PROGRAMS))
def test_dynamic_programs_over_a_sharded_batch(mesh, program, semiring):
    s = SEMIRINGS[semiring]
    x = _data((8, 6, 4, 4), seed=5)  # (batch, T, K, K)
    xs = jax.device_put(x, NamedSharding(mesh, P("x", None, None, None)))
    f = PROGRAMS[program]

    def loss(x):
        v = f(x, s)
        return jnp.sum(jnp.where(jnp.isfinite(v), jnp.sin(v), 0.0))

    for g in [lambda x: f(x, s), jax.grad(loss)]:
        with jax.set_mesh(mesh):
            got = jax.jit(g)(xs)
        chex.assert_trees_all_close(got, jax.jit(g)(x), rtol=1e-5, atol=1e-5)
