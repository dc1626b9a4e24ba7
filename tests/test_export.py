"""Every public function exports with ``jax.export``: for CPU, GPU and TPU at once, and with a
symbolic batch and a symbolic reduced axis; the exported function, run on CPU, equals the call.

Lowering for an accelerator needs no accelerator, so this also checks that nothing on those
platforms carries the CPU engines' code: a function that lowers for ("cpu", "cuda", "tpu") chooses
its engine per platform.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cases import CASES, DIFFERENTIABLE, loss, per_row_beta
from jax import export

import softjax as sjx
from softjax import schedules

PLATFORMS = ("cpu", "cuda", "tpu")
SHAPES = ["b, n", "b, 7", "3, n"]


def _data(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def _exported(f, spec, platforms=("cpu",)):
    arg = jax.ShapeDtypeStruct(export.symbolic_shape(spec), jnp.float32)
    return export.export(jax.jit(f), platforms=platforms)(arg)


@pytest.mark.parametrize("spec", SHAPES)
@pytest.mark.parametrize("case", list(CASES))
def test_value_exports_with_symbolic_shapes(case, spec):
    f = CASES[case]
    _exported(f, spec, PLATFORMS)
    exp = _exported(f, spec)
    sizes = {"b, n": [(3, 7), (5, 12)], "b, 7": [(3, 7), (5, 7)], "3, n": [(3, 7), (3, 12)]}
    for shape in sizes[spec]:
        x = _data(shape)
        chex.assert_trees_all_close(exp.call(x), jax.jit(f)(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("spec", SHAPES)
@pytest.mark.parametrize("case", DIFFERENTIABLE)
def test_gradient_exports_with_symbolic_shapes(case, spec):
    g = jax.grad(loss(case))
    _exported(g, spec, PLATFORMS)
    exp = _exported(g, spec)
    x = _data((3, 7), seed=1)
    chex.assert_trees_all_close(exp.call(x), jax.jit(g)(x), rtol=1e-5, atol=1e-6)


def test_per_row_beta_follows_a_symbolic_batch():
    for f in [per_row_beta, jax.grad(loss(per_row_beta))]:
        _exported(f, "b, n", PLATFORMS)
        exp = _exported(f, "b, n")
        x = _data((5, 9), seed=2)
        chex.assert_trees_all_close(exp.call(x), jax.jit(f)(x), rtol=1e-5, atol=1e-6)


def test_gradient_in_beta_exports():
    def f(x, beta):
        return jnp.sum(sjx.smooth_max(x, beta=beta) + sjx.softargmax(x, beta=beta)[..., 0])

    g = jax.grad(f, argnums=1)
    args = (
        jax.ShapeDtypeStruct(export.symbolic_shape("b, n"), jnp.float32),
        jax.ShapeDtypeStruct((), jnp.float32),
    )
    export.export(jax.jit(g), platforms=PLATFORMS)(*args)
    exp = export.export(jax.jit(g))(*args)
    x = _data((4, 6), seed=3)
    chex.assert_trees_all_close(exp.call(x, 1.5), jax.jit(g)(x, 1.5), rtol=1e-5)


@pytest.mark.parametrize(
    "schedule",
    [
        schedules.linear(0.0, 10.0, 100),
        schedules.exponential(0.1, 100.0, 1000),
        schedules.cosine(0.0, 5.0, 50),
        schedules.polynomial(1.0, 4.0, 2.0, 20),
        schedules.logarithmic(1.0, transition_begin=10),
        schedules.gumbel_softmax(),
    ],
)
def test_schedules_export(schedule):
    exp = export.export(jax.jit(schedule), platforms=PLATFORMS)(jax.ShapeDtypeStruct((), jnp.int32))
    assert exp.platforms == PLATFORMS
    exp = export.export(jax.jit(schedule))(jax.ShapeDtypeStruct((), jnp.int32))
    for count in [0, 7, 500]:
        chex.assert_trees_all_close(exp.call(jnp.int32(count)), schedule(count), rtol=1e-6)
