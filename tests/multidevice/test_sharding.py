"""softjax under jit with NamedSharding on an 8-device CPU mesh equals the single-device result.

Run in its own process with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (``make test``
does this); there is no distribution layer of softjax's own, only JAX's SPMD partitioner.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cases import CASES, DIFFERENTIABLE, loss
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import softjax as sjx
from softjax.semiring import LogSemiring, MaxPlus

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(scope="module")
def mesh():
    devices = jax.devices()
    if len(devices) < 8:
        pytest.fail(
            f"needs 8 devices, found {len(devices)}: run with "
            "XLA_FLAGS=--xla_force_host_platform_device_count=8"
        )
    return Mesh(np.array(devices[:8]).reshape(2, 4), ("batch", "model"))


def _data(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


@pytest.mark.parametrize(
    "spec",
    [P("batch", None), P(None, "model"), P("batch", "model"), P(("batch", "model"), None)],
    ids=["batch", "reduction-axis", "both", "batch-8"],
)
@pytest.mark.parametrize("beta", [1.5, -0.7, 0.0, float("inf")])
def test_softargmax_and_smooth_max_sharded(mesh, spec, beta):
    x = _data((16, 64))
    xs = jax.device_put(x, NamedSharding(mesh, spec))
    assert len(xs.sharding.device_set) > 1
    sm = jax.jit(lambda x, b: sjx.softargmax(x, beta=b))
    chex.assert_trees_all_close(sm(xs, beta), sm(x, beta), rtol=1e-6, atol=1e-7)
    mx = jax.jit(lambda x, b: sjx.smooth_max(x, beta=b))
    chex.assert_trees_all_close(mx(xs, beta), mx(x, beta), rtol=1e-6)
    lse = jax.jit(lambda x: sjx.logsumexp(x, axis=-1))
    chex.assert_trees_all_close(lse(xs), lse(x), rtol=1e-6)
    grad = jax.jit(jax.grad(lambda x, b: (sjx.smooth_max(x, beta=b) ** 2).sum()))
    if np.isfinite(beta) and beta != 0:
        chex.assert_trees_all_close(grad(xs, beta), grad(x, beta), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("spec", [P("batch", None), P(None, "model"), P("batch", "model")])
@pytest.mark.parametrize("beta", [2.0, -1.0, 0.0, float("inf")])
def test_softargmax_gradient_sharded_with_edge_rows(mesh, spec, beta):
    # Under differentiation the kernel's select-free form is used: sharded, on rows with +inf and
    # all -inf entries, it must still equal the single-device gradient and stay finite.
    x = np.array(_data((16, 64), seed=2))
    x[3, :] = -np.inf
    x[5, [7, 9]] = np.inf
    x = jnp.asarray(x)
    w = _data((16, 64), seed=3)
    xs = jax.device_put(x, NamedSharding(mesh, spec))
    grad = jax.jit(jax.grad(lambda x, b: (sjx.softargmax(x, beta=b) * w).sum()))
    g = grad(xs, beta)
    assert jnp.isfinite(g).all()
    chex.assert_trees_all_close(g, grad(x, beta), rtol=1e-5, atol=1e-6)


def test_per_row_beta_sharded(mesh):
    x = _data((16, 64), seed=1)
    b = jnp.linspace(-2.0, 2.0, 16)[:, None]
    sharding = NamedSharding(mesh, P("batch", None))
    f = jax.jit(lambda x, b: sjx.softargmax(x, beta=b))
    out = f(jax.device_put(x, sharding), jax.device_put(b, sharding))
    chex.assert_trees_all_close(out, f(x, b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("semiring", [LogSemiring(1.0), LogSemiring(-3.0), MaxPlus()])
def test_semiring_matmul_sharded_value_and_gradient(mesh, semiring):
    a = _data((64, 32), seed=2)
    b = _data((32, 48), seed=3)
    a_s = jax.device_put(a, NamedSharding(mesh, P("batch", "model")))
    b_s = jax.device_put(b, NamedSharding(mesh, P("model", None)))
    mm = jax.jit(lambda a, b, s: s.matmul(a, b))
    chex.assert_trees_all_close(mm(a_s, b_s, semiring), mm(a, b, semiring), rtol=1e-5, atol=1e-5)
    loss = jax.jit(jax.grad(lambda a, b, s: jnp.sum(s.matmul(a, b) ** 2), argnums=(0, 1)))
    chex.assert_trees_all_close(
        loss(a_s, b_s, semiring), loss(a, b, semiring), rtol=1e-4, atol=1e-4
    )


# ------------------------------------------------------------------------------------------------
# Every public function of the β family under Auto and Explicit mesh axes (``jax.make_mesh``
# defaults to Explicit in current JAX): the batch, the reduced axis or both sharded.


def _edge_data():
    x = _data((16, 64), seed=4)
    return x.at[3].set(-jnp.inf).at[5, 7].set(jnp.inf).at[6, :8].set(1.0)


def _functions(case):
    return [CASES[case]] + ([jax.grad(loss(case))] if case in DIFFERENTIABLE else [])


@functools.cache
def _single_device(case):
    """The case's value (and gradient) on one device, computed once for every mesh and spec."""
    return [jax.jit(f)(_edge_data()) for f in _functions(case)]


@pytest.mark.parametrize("spec", [P("x", None), P(None, "y"), P("x", "y")], ids=str)
@pytest.mark.parametrize("case", list(CASES))
def test_every_function_under_auto_and_explicit_meshes(typed_mesh, spec, case):
    xs = jax.device_put(_edge_data(), NamedSharding(typed_mesh, spec))
    # A soft rank's gradient sums a block of up to 64 terms of size about β: the partitioner's
    # order of summation moves it by float32 rounding of that sum (about 1e-5).
    atol = 2e-5 if case.startswith("soft_rank") else 1e-6
    for f, want in zip(_functions(case), _single_device(case), strict=True):
        with jax.set_mesh(typed_mesh):
            got = jax.jit(f)(xs)
        chex.assert_trees_all_close(got, want, rtol=1e-5, atol=atol)
