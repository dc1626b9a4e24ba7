"""The kernel's CPU engine equals the definition on one shared battery of edge cases.

On CPU, softargmax, log_softargmax, smooth_max and logsumexp run the fused engine when no mask is
given, and the definition when one is (the engine never takes a mask): a mask that keeps every
entry computes the same function by the definition. Both paths are compared through the public
API, value and derivatives in z and β, on short slices (where derivatives recompute σ inside the
backward pass) and long ones (where they keep it). The engine serves only arrays of at least
``softmax_cpu._MIN_SIZE`` entries, so the battery's rows repeat up to that size (checked).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import softjax as sjx
from softjax._engines import softmax_cpu

INF = float("inf")
NAN = float("nan")


# Rows without NaN or infinities: with a finite β ≠ 0 the engine's own fast pass computes them
# (a single rare slice sends a whole call to the definition).
FINITE_ROWS = [0, 7, 10, 12, 13]


def battery(dtype, n, rows=None):
    """Rows of every kind the kernel distinguishes, n entries each (or only ``rows``)."""
    fi = np.finfo(dtype)
    z = np.random.default_rng(16).standard_normal((14, n)).astype(dtype)
    z[1, 5] = NAN
    z[2, :] = -INF
    z[3, [1, 3]] = INF
    z[4, :] = 0.0
    z[4, 3], z[4, 4] = fi.max, INF  # the largest float loses to +inf
    z[5, :2] = -INF
    z[6, :] = INF
    z[7, : n // 2], z[7, n // 2 :] = 4 * fi.tiny, 0.0  # β = ∞ must still separate them
    z[8, 3:5], z[8, 6] = -INF, fi.min
    z[9, :] = np.arange(n) * (fi.max / (2 * n))
    z[10, :] = 1.0
    z[11, : n // 2] = -INF
    z[12, :] = np.round(z[12] * 2) / 2  # many ties
    z[13, :] = z[13] * 1e-30
    return _served(z if rows is None else z[rows])


def _served(z):
    """``z``'s rows repeated until the engine serves the array (asserted)."""
    reps = -(-softmax_cpu._MIN_SIZE // z.size)
    z = np.tile(z, (reps, 1))
    assert softmax_cpu.applies(jnp.asarray(z), None, (1,)), z.shape
    return z


BETAS = [2.0, -3.0, INF, -INF, 0.0, 1e-40, 1e-3, 1e30, -1e30, "rows"]


def _beta(b, dtype, rows):
    if isinstance(b, str):
        pattern = np.array([2, -1, INF, -INF, 0, 3, -2, INF, -INF, 1e-3, -5, 1, 0.5, -0.5])
        return jnp.asarray(np.resize(pattern, rows)[:, None], dtype)
    return jnp.asarray(b, dtype)


FUNCTIONS = {
    "softargmax": lambda z, b, where: sjx.softargmax(z, beta=b, where=where),
    "softargmin": lambda z, b, where: sjx.softargmin(z, beta=b, where=where),
    "log_softargmax": lambda z, b, where: sjx.log_softargmax(z, beta=b, where=where),
    "smooth_max": lambda z, b, where: sjx.smooth_max(z, beta=b, where=where),
    "smooth_min": lambda z, b, where: sjx.smooth_min(z, beta=b, where=where),
    "logsumexp": lambda z, b, where: sjx.logsumexp(z, axis=-1, where=where),
}


def assert_same(engine, definition, dtype, what):
    engine, definition = np.asarray(engine, np.float64), np.asarray(definition, np.float64)
    np.testing.assert_array_equal(np.isnan(engine), np.isnan(definition), err_msg=what)
    finite = np.isfinite(definition)
    np.testing.assert_array_equal(engine[~finite], definition[~finite], err_msg=what)
    eps = np.finfo(dtype).eps
    scale = np.max(np.abs(definition[finite]), initial=1.0)
    np.testing.assert_allclose(
        engine[finite], definition[finite], rtol=64 * eps, atol=64 * eps * scale, err_msg=what
    )


def _paths(f, w):
    """Jitted value, gradient in (z, β) and z-tangent of ``f`` without a mask (the engine) and with
    a mask that keeps everything (the definition)."""

    def value(z, beta, where):
        return f(z, beta, where)

    def loss(z, beta, where):
        out = f(z, beta, where)
        return jnp.sum(out * (w if out.ndim == 2 else w[:, 0]))

    def derivatives(z, beta, where):
        tangent = jax.jvp(lambda z: f(z, beta, where), (z,), (w,))[1]
        return jax.grad(loss, (0, 1))(z, beta, where), tangent

    value, derivatives = jax.jit(value), jax.jit(derivatives)
    everywhere = jnp.ones(w.shape, bool)

    def engine(z, beta):
        return value(z, beta, None), derivatives(z, beta, None)

    def definition(z, beta):
        return value(z, beta, everywhere), derivatives(z, beta, everywhere)

    return engine, definition


@pytest.mark.parametrize("rows", [None, FINITE_ROWS], ids=["every_kind", "finite"])
@pytest.mark.parametrize(
    "n", [64, pytest.param(4096, marks=pytest.mark.slow)], ids=["short", "long"]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_engine_equals_definition(name, dtype, n, rows):
    with jax.enable_x64(dtype == np.float64):
        z = jnp.asarray(battery(dtype, n, rows))
        w = jnp.asarray(np.random.default_rng(3).standard_normal(z.shape).astype(dtype))
        engine, definition = _paths(FUNCTIONS[name], w)
        for b in BETAS:
            beta = _beta(b, dtype, z.shape[0])
            got, want = engine(z, beta), definition(z, beta)
            labels = ["value", "d/dz", "d/dβ", "z-tangent"]
            pairs = zip(labels, jax.tree.leaves(got), jax.tree.leaves(want), strict=True)
            for label, x, y in pairs:
                assert_same(x, y, dtype, f"{name} beta={b}: {label}")


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_engine_equals_definition_in_16_bit(dtype):
    rows = battery(np.float32, 256)[[0, 3, 5, 10, 11, 12]]
    z = jnp.asarray(_served(rows)).astype(dtype)
    everywhere = jnp.ones(z.shape, bool)
    for f in FUNCTIONS.values():
        for b in [2.0, -1.0, INF, 0.0]:
            got = f(z, jnp.float32(b), None)
            want = f(z, jnp.float32(b), everywhere)
            assert got.dtype == want.dtype == dtype
            np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(want, np.float32))
