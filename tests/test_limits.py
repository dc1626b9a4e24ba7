"""Tests of softjax.limits: margin, the singular set, and the β needed for a given accuracy."""

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import softjax as sjx

INF = float("inf")
NAN = float("nan")


def _off_mass(z, beta, where=None):
    """1 − Σ_{argmax} softargmax(z, β) along the last axis, one β per row."""
    beta = jnp.asarray(beta)[..., None]
    p = sjx.softargmax(z, beta=beta, where=where)
    top = sjx.argmax_onehot(z, where=where) > 0
    return jnp.sum(jnp.where(top, 0.0, p), axis=-1)


@jax.jit
def _tightness(z, eps):
    beta = sjx.beta_for_tolerance(z, eps)
    return beta, _off_mass(z, beta), _off_mass(z, 0.99 * beta)


def _random_rows(seed, dtype, shape=(300, 9)):
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.uniform(-6, 4, size=(shape[0], 1)))  # margins from 1e-3 to 1e2
    z = rng.normal(size=shape) * scale
    z[::7, 1] = z[::7].max(axis=-1)  # ties for the maximum
    z[::5, 2] = -np.inf
    return jnp.asarray(z.astype(dtype))


# ------------------------------------------------------------------------------------------------
# margin and is_singular


@pytest.mark.slow
def test_margin_and_is_singular_basics():
    z = jnp.array(
        [
            [1.0, 4.0, 2.5, 0.0],
            [3.0, 0.0, 3.0, 1.0],  # tie
            [INF, 1.0, 2.0, 0.0],
            [INF, INF, 1.0, 0.0],  # tie at +∞
            [1.0, -INF, -INF, -INF],
            [-INF, -INF, -INF, -INF],  # all tie
            [2.0, 2.0, 2.0, 2.0],
            [1.0, NAN, 0.0, 0.0],
        ]
    )
    np.testing.assert_array_equal(sjx.margin(z), [1.5, 0, INF, 0, INF, 0, 0, NAN])
    np.testing.assert_array_equal(
        sjx.is_singular(z), [False, True, False, True, False, True, True, False]
    )
    # One entry, or none: no competitor.
    np.testing.assert_array_equal(sjx.margin(jnp.array([[5.0]])), [INF])
    assert not bool(sjx.is_singular(jnp.array([5.0])))
    mask = jnp.array([True, False, False, False])
    assert float(sjx.margin(z[1], where=mask)) == INF
    assert float(sjx.margin(z[1], where=~jnp.ones(4, bool))) == INF
    # Masks remove the competitor or the tie.
    assert float(sjx.margin(z[1], where=jnp.array([True, True, False, True]))) == 2.0
    assert not bool(sjx.is_singular(z[1], where=jnp.array([True, True, False, True])))
    assert float(sjx.margin(z[0], where=jnp.array([True, False, True, True]))) == 1.5
    # Axes, ints, shapes.
    z3 = jnp.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(sjx.margin(z3, axis=(0, 2)), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(sjx.margin(z3, axis=None), 1.0)
    np.testing.assert_array_equal(sjx.margin(jnp.array([1, 7, 3])), 4.0)
    chex.assert_shape(sjx.is_singular(z3, axis=1), (2, 4))
    # The gradient away from ties: e_(1) − e_(2).
    np.testing.assert_array_equal(jax.grad(sjx.margin)(z[0]), [0, 1, -1, 0])


@settings(max_examples=30, deadline=None)
@given(z=hnp.arrays(np.float32, (4, 5), elements=st.sampled_from([-1.0, 0.0, 0.5, 2.0, 3.0])))
def test_margin_agrees_with_sorting(z):
    s = np.sort(z, axis=-1)
    np.testing.assert_array_equal(_margin_singular(jnp.asarray(z))[0], s[:, -1] - s[:, -2])
    np.testing.assert_array_equal(_margin_singular(jnp.asarray(z))[1], s[:, -1] == s[:, -2])


_margin_singular = jax.jit(lambda z: (sjx.margin(z), sjx.is_singular(z)))


# ------------------------------------------------------------------------------------------------
# beta_for_tolerance


@pytest.mark.parametrize("eps", [1e-6, 1e-3, 0.05, 0.4])
def test_tight_float32(eps):
    z = _random_rows(0, np.float32)
    beta, off, off_below = _tightness(z, eps)
    beta, off, off_below = map(np.asarray, (beta, off, off_below))
    assert np.all(np.isfinite(beta)) and np.all(beta >= 0)
    assert np.all(off <= eps * (1 + 1e-4)), off.max() / eps
    searched = beta > 1e-30  # rows where β is not 0 (or the smallest normal)
    assert searched.sum() > 200
    assert np.all(off_below[searched] > eps)


@pytest.mark.parametrize("eps", [1e-12, 1e-4, 0.3])
def test_tight_float64(eps):
    with jax.enable_x64(True):
        z = _random_rows(1, np.float64)
        beta, off, off_below = map(np.asarray, _tightness(z, eps))
        assert np.all(off <= eps * (1 + 1e-9))
        searched = beta > 1e-300
        assert np.all(off_below[searched] > eps)
        # Tighter than 1%: just below the answer the tolerance fails.
        below = np.asarray(_off_mass(z, beta * (1 - 1e-6)))
        assert np.all(below[searched] > eps * (1 - 1e-9))


@pytest.mark.slow
def test_closed_form_cases():
    # Two entries: off = 1/(1 + e^{β g}) ≤ ε  ⇔  β = log((1 − ε)/ε)/g.
    z = jnp.array([[0.0, 1.0], [0.0, 0.25], [3.0, -1.0]])
    np.testing.assert_allclose(
        sjx.beta_for_tolerance(z, 0.1), np.log(9.0) / np.array([1.0, 0.25, 4.0]), rtol=1e-5
    )
    # k tied maxima and m losers at one gap g: off = m e^{−βg}/(k + m e^{−βg}).
    z = jnp.array([2.0, 2.0, 2.0, 0.0, 0.0])
    eps = 0.01
    expected = np.log(2 * (1 - eps) / (3 * eps)) / 2.0
    np.testing.assert_allclose(sjx.beta_for_tolerance(z, eps), expected, rtol=1e-5)


@pytest.mark.slow
def test_special_cases():
    z = jnp.array(
        [
            [1.0, 1.0, 1.0],  # all equal: 0
            [5.0, 0.0, 0.0],  # needs a search
            [5.0, -INF, -INF],  # the losers vanish for any β > 0
            [5.0, 5.0, 0.0],  # off mass 1/3 at β = 0
            [INF, 0.0, 1.0],  # an infinite maximum: the losers vanish for β > 0
            [NAN, 0.0, 1.0],
        ]
    )
    beta = np.asarray(sjx.beta_for_tolerance(z, 0.4))
    tiny = np.finfo(np.float32).tiny
    assert beta[0] == 0.0 and beta[1] > 0 and beta[2] == tiny and beta[3] == 0.0
    assert beta[4] == tiny and np.isnan(beta[5])
    np.testing.assert_array_equal(_off_mass(z[:5], beta[:5]) <= 0.4 * (1 + 1e-6), True)
    # The answer is 0 exactly when ε ≥ 1 − k/n.
    z1 = jnp.array([3.0, 1.0, 0.0, -2.0])
    assert float(sjx.beta_for_tolerance(z1, 0.75)) == 0.0
    assert float(sjx.beta_for_tolerance(z1, 0.7499)) > 0.0
    # Fewer than two live entries, masked entries.
    assert float(sjx.beta_for_tolerance(jnp.array([2.0]), 0.1)) == 0.0
    mask = jnp.array([True, False, True, False])
    np.testing.assert_allclose(
        sjx.beta_for_tolerance(z1, 0.1, where=mask), np.log(9.0) / 3.0, rtol=1e-5
    )
    assert float(sjx.beta_for_tolerance(z1, 0.1, where=jnp.zeros(4, bool))) == 0.0
    # The result carries no gradient.
    g = jax.grad(lambda z: sjx.beta_for_tolerance(z, 0.1))(z1)
    np.testing.assert_array_equal(g, 0.0)


def test_traced_eps():
    f = jax.jit(sjx.beta_for_tolerance)
    z = jnp.array([[0.0, 1.0], [1.0, 1.0], [0.0, -INF]])
    out = np.asarray(jax.vmap(f, (None, 0))(z, jnp.array([0.0, -0.5, 1.0, 2.0, NAN])))
    np.testing.assert_array_equal(out[0], [INF, 0.0, np.finfo(np.float32).tiny])
    np.testing.assert_array_equal(out[1], [INF, INF, INF])
    np.testing.assert_array_equal(out[2:4], 0.0)
    assert np.all(np.isnan(out[4]))
    # One ε per row.
    eps = jnp.array([0.1, 0.2, 0.3])
    z = jnp.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(f(z, eps[:, None]), np.log((1 - eps) / eps), rtol=1e-5)


def test_static_eps_validation():
    z = jnp.array([0.0, 1.0])
    for bad in [0.0, 1.0, -0.1, 1.5, np.array([0.1, 1.0]), NAN]:
        with pytest.raises(ValueError, match="eps"):
            sjx.beta_for_tolerance(z, bad)
    for bad in [True, "0.1", 0.1 + 0.1j]:
        with pytest.raises(TypeError, match="eps"):
            sjx.beta_for_tolerance(z, bad)
    with pytest.raises(ValueError, match="eps"):
        sjx.beta_for_tolerance(jnp.ones((2, 3)), jnp.array([0.1, 0.2, 0.3]))


def test_vectorised_rows_jit_and_axes():
    z = _random_rows(2, np.float32, shape=(6, 5))
    one_row = jax.jit(lambda row: sjx.beta_for_tolerance(row, 0.01))
    rows = jnp.stack([one_row(row) for row in z])
    batch = jax.jit(lambda z: sjx.beta_for_tolerance(z, 0.01))(z)
    np.testing.assert_allclose(batch, rows, rtol=1e-6)
    vmapped = jax.jit(jax.vmap(lambda z: sjx.beta_for_tolerance(z, 0.01)))(z)
    np.testing.assert_allclose(vmapped, rows, rtol=1e-6)
    # Several axes: the same as flattening them.
    z3 = z.reshape(2, 3, 5)
    grouped = sjx.beta_for_tolerance(jnp.transpose(z3, (1, 0, 2)), 0.01, axis=(0, 2))
    np.testing.assert_allclose(grouped, sjx.beta_for_tolerance(z3.reshape(2, 15), 0.01), rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    z=hnp.arrays(np.float64, 6, elements=st.floats(-20, 20)),
    c=st.floats(0.01, 100.0),
    shift=st.floats(-100, 100),
)
def test_monotone_convergence_and_scaling(z, c, shift):
    """The off mass decreases in β; β*(cz + s) = β*(z)/c; β* decreases as ε grows."""
    with jax.enable_x64(True):
        z = jnp.asarray(z)
        off = np.asarray(_off_grid(z))
        assert np.all(np.diff(off) <= 1e-12)
        b = np.asarray(_scaled(z, c, shift))
        s = np.sort(np.asarray(z))
        if s[-1] - s[-2] > 1e-6:  # a margin that survives the shift
            np.testing.assert_allclose(b[1], b[0] / c, rtol=1e-6)
        assert np.all(np.diff(b[2:]) <= 1e-12 * (1 + b[2:-1]))


_BETAS = jnp.array([0.0, 1e-3, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0, 1e4, INF])
_off_grid = jax.jit(lambda z: jax.vmap(lambda b: _off_mass(z, b))(_BETAS))


@jax.jit
def _scaled(z, c, shift):
    eps = jnp.array([1e-6, 1e-3, 0.1, 0.3])
    return jnp.concatenate(
        [
            sjx.beta_for_tolerance(z, 0.01)[None],
            sjx.beta_for_tolerance(c * z + shift, 0.01)[None],
            jax.vmap(lambda e: sjx.beta_for_tolerance(z, e))(eps),
        ]
    )


def test_nan_slice_on_a_large_array():
    # Large enough for XLA's vectorised CPU reductions, which may skip a NaN.
    z = np.random.default_rng(12).standard_normal((8, 1024)).astype(np.float32)
    z[1, 5] = np.nan
    z = jnp.asarray(z)
    for out in (sjx.margin(z), sjx.beta_for_tolerance(z, 0.01)):
        assert jnp.isnan(out[1]) and not jnp.isnan(out[jnp.arange(8) != 1]).any()
    assert not sjx.is_singular(z)[1]


@pytest.mark.parametrize("x64", [False, True])
def test_integers_decide_ties_and_gaps_in_their_own_dtype(x64):
    with jax.enable_x64(x64):
        z = jnp.array([[16777217, 16777216, 3], [5, 5, -7]])  # 2**24 + 1 and 2**24
        np.testing.assert_array_equal(sjx.is_singular(z), [False, True])
        np.testing.assert_array_equal(sjx.margin(z), [1.0, 0.0])
        extremes = jnp.array([2**31 - 1, -(2**31)], jnp.int32)
        assert sjx.margin(extremes) == np.float32(2**32 - 1)
        assert sjx.margin(jnp.array([7], jnp.int8)) == np.inf
        np.testing.assert_array_equal(
            sjx.margin(jnp.array([4, 9, 1], jnp.uint8), where=jnp.array([True, False, True])), 3.0
        )
        assert sjx.margin(z).dtype == jnp.exp(z).dtype
