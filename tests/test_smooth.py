"""Tests of the kernel: softargmax and its relatives at every β, on every edge case."""

import decimal
from functools import partial

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sps
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import softjax as sjx

INF = float("inf")
NAN = float("nan")
transforms = pytest.mark.parametrize("jit", [jax.jit, lambda f: f], ids=["jit", "eager"])


def softargmax_b(z, b, **kw):
    return sjx.softargmax(z, beta=b, **kw)


# ------------------------------------------------------------------------------------------------
# 1. The first examples (those of the tour)


@transforms
def test_seed_examples(jit):
    onehot = jit(lambda z: sjx.argmax_onehot(z))
    np.testing.assert_array_equal(onehot(jnp.array([1.0, 5.0, 10.0])), [0, 0, 1])
    np.testing.assert_array_equal(onehot(jnp.array([1.0, 5.0, 5.0])), [0, 0.5, 0.5])
    np.testing.assert_array_equal(onehot(jnp.full(4, 3.0)), [0.25] * 4)
    sm = jit(softargmax_b)
    np.testing.assert_allclose(sm(jnp.array([0.0, 10.0]), 1.0), [0.0000454, 0.9999546], atol=1e-7)
    np.testing.assert_allclose(sm(jnp.array([0.0, 10.0]), 1 / 100), [0.475, 0.525], atol=1e-3)
    for b in [0.0, 1.0, -1.0, 1e30, -1e30, INF, -INF]:
        np.testing.assert_array_equal(sm(jnp.array([1.0, 1.0]), b), [0.5, 0.5])
    np.testing.assert_array_equal(sm(jnp.array([1.0, 1.0001]), 1e7), [0, 1])
    np.testing.assert_array_equal(sm(jnp.array([1.0, 0.9999]), 1e7), [1, 0])
    # the argmin mirror
    np.testing.assert_array_equal(sjx.argmin_onehot(jnp.array([1.0, 5.0, 10.0])), [1, 0, 0])
    np.testing.assert_array_equal(sjx.argmin_onehot(jnp.array([5.0, 1.0, 1.0])), [0, 0.5, 0.5])
    smin = jit(lambda z, b: sjx.softargmin(z, beta=b))
    np.testing.assert_allclose(smin(jnp.array([0.0, 10.0]), 1.0), [0.9999546, 0.0000454], atol=1e-7)
    np.testing.assert_array_equal(smin(jnp.array([1.0, 1.0001]), 1e7), [1, 0])
    np.testing.assert_array_equal(smin(jnp.array([1.0, 0.9999]), 1e7), [0, 1])


# ------------------------------------------------------------------------------------------------
# 2. Exact limits from one compiled function


def _tied_data(seed=0, shape=(16, 7)):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.integers(-3, 4, size=shape).astype(np.float32))  # many ties


def test_limits_bit_for_bit_and_no_recompile():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(z, b):
        return sjx.softargmax(z, beta=b)

    z = _tied_data()
    z = z.at[0, 0].set(INF).at[1].set(-INF).at[2, 3].set(-INF)
    np.testing.assert_array_equal(f(z, INF), sjx.argmax_onehot(z))
    np.testing.assert_array_equal(f(z, -INF), sjx.argmin_onehot(z))
    np.testing.assert_array_equal(f(z, 0.0), jnp.full(z.shape, 1 / 7, jnp.float32))
    for b in [1.0, -2.0, 1e-30, 1e30]:
        f(z, b)  # no retrace for any β


def test_beta_zero_uniform_over_unmasked_with_infinities():
    z = jnp.array([INF, -INF, 1.0, 2.0, NAN])
    mask = jnp.array([True, True, True, False, False])
    np.testing.assert_allclose(sjx.softargmax(z, beta=0.0, where=mask), [1 / 3, 1 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(sjx.softargmax(z[:3], beta=0.0), [1 / 3] * 3)


def test_argmax_onehot_with_mask_and_axes():
    z = jnp.array([[1.0, 9.0], [3.0, 2.0]])
    np.testing.assert_array_equal(sjx.argmax_onehot(z, axis=None), [[0, 1], [0, 0]])
    np.testing.assert_array_equal(sjx.argmax_onehot(z, axis=0), [[0, 1], [1, 0]])
    mask = jnp.array([[True, False], [True, True]])
    np.testing.assert_array_equal(sjx.argmax_onehot(z, where=mask), [[1, 0], [1, 0]])
    assert jnp.all(jax.grad(lambda z: (sjx.argmax_onehot(z) * jnp.arange(2.0)[None]).sum())(z) == 0)


# ------------------------------------------------------------------------------------------------
# 3. No NaN for huge |β z| under jit


def test_huge_beta_times_z_under_jit():
    ours = jax.jit(lambda z, b: sjx.softargmax(z, beta=b))
    z = jnp.array([0.0, 10.0])
    for b in [3e9, 1e10, 1e30, 3e38]:
        np.testing.assert_array_equal(ours(z, b), [0, 1])
        np.testing.assert_array_equal(ours(z, -b), [1, 0])
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((64, 128)), jnp.float32)
    for b in [1e8, 3e9, 1e20]:
        np.testing.assert_array_equal(ours(x, b), sjx.argmax_onehot(x))
    lse = jax.jit(lambda z, b: sjx.smooth_max(z, beta=b))
    np.testing.assert_allclose(lse(x, 1e20), x.max(-1))


@pytest.mark.parametrize("beta", [2e-38, 1e-37, 1e-36, 1e-30, 0.5])
def test_spread_beyond_the_largest_float_at_small_beta(beta):
    # z − M overflows to −inf, yet β(z − M) is finite: the weights are those of float64.
    z = np.array([[-3e38, 3e38, 1.0], [2e38, -2e38, 0.0]], np.float32)
    for b in (beta, -beta):
        m = np.where(b > 0, z.max(-1, keepdims=True), z.min(-1, keepdims=True)).astype(np.float64)
        y = b * (z.astype(np.float64) - m)
        log_p = y - np.log(np.exp(y).sum(-1, keepdims=True))
        with np.errstate(under="ignore"):
            p = np.exp(log_p)
        np.testing.assert_allclose(sjx.softargmax(z, beta=b), p, rtol=1e-5, atol=1e-37)
        finite = log_p > -1e30
        np.testing.assert_allclose(
            np.asarray(sjx.log_softargmax(z, beta=b))[finite], log_p[finite], rtol=1e-5, atol=1e-6
        )
        smooth = m[:, 0] + np.log(np.exp(y).sum(-1)) / b
        np.testing.assert_allclose(sjx.smooth_max(z, beta=b), smooth, rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# 4. Non-finite input


@transforms
def test_all_minus_inf_is_a_tie_with_finite_gradients(jit):
    z = jnp.full((3,), -INF)
    for b in [1.0, -1.0, 0.0, INF, -INF]:
        np.testing.assert_allclose(jit(softargmax_b)(z, b), [1 / 3] * 3, rtol=1e-7)
    assert jit(sjx.logsumexp)(z) == -INF
    assert jit(lambda z: sjx.smooth_max(z, beta=2.0))(z) == -INF
    for f in [
        lambda z: sjx.logsumexp(z),
        lambda z: sjx.smooth_max(z, beta=2.0),
        lambda z: sjx.softargmax(z, beta=2.0)[0],
        lambda z: sjx.log_softargmax(z, beta=2.0)[0],
    ]:
        g = jit(jax.grad(f))(z)
        assert jnp.isfinite(g).all(), g
    np.testing.assert_allclose(jax.grad(sjx.logsumexp)(z), [1 / 3] * 3)


def test_plus_inf_entries_share_the_mass():
    z = jnp.array([INF, 0.0, INF, -INF])
    for b in [0.5, 3.0, INF]:
        np.testing.assert_array_equal(sjx.softargmax(z, beta=b), [0.5, 0, 0.5, 0])
    assert sjx.smooth_max(z) == INF
    assert sjx.logsumexp(z) == INF
    np.testing.assert_array_equal(jax.grad(sjx.logsumexp)(z), [0.5, 0, 0.5, 0])


def _row_with_nan():
    # Large enough for XLA's vectorised CPU reductions, which may skip a NaN.
    z = np.random.default_rng(11).standard_normal((8, 1024)).astype(np.float32)
    z[1, 5] = NAN
    return jnp.asarray(z)


def _edge_rows(dtype):
    fi = np.finfo(dtype)
    z = np.random.default_rng(16).standard_normal((12, 1024)).astype(dtype)
    z[1, 5] = NAN
    z[2, :] = -INF
    z[3, [7, 9]] = INF
    z[4, :] = 0.0
    z[4, 3], z[4, 4] = fi.max, INF  # the largest float loses to +inf
    z[5, :2] = -INF
    z[6, :] = INF
    z[7, :10], z[7, 10:] = 4 * fi.tiny, 0.0  # β = ∞ must still separate them
    z[8, 3:5], z[8, 100] = -INF, fi.min
    z[9, :] = np.arange(1024) * 1e30
    z[10, :] = 1.0
    z[11, :500] = -INF
    return z


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_differentiated_output_equals_the_plain_one(dtype):
    # Under differentiation σ is recomputed from select-free forms of the kernel (so that XLA
    # fuses the backward pass with it): the output and tangent of softargmax and the gradient of
    # smooth_max must agree with the plain call on every edge case.
    with jax.enable_x64(dtype == np.float64):
        z = jnp.asarray(_edge_rows(dtype))
        eps = np.finfo(dtype).eps
        row_betas = np.array([2, -1, INF, -INF, 0, 3, -2, INF, -INF, 1e-3, -5, 1], dtype)[:, None]
        betas = [2.0, INF, -INF, 0.0, -3.0, 1e-40, 1e30, -1e30, row_betas]
        for b in betas:
            b = jnp.asarray(b, dtype)
            plain = np.asarray(sjx.softargmax(z, beta=b))
            primal, tangent = jax.jvp(partial(softargmax_b, b=b), (z,), (jnp.ones_like(z),))
            primal = np.asarray(primal)
            same = np.isclose(primal, plain, rtol=4 * eps, atol=0) | (
                np.isnan(primal) & np.isnan(plain)
            )
            assert same.all(), (b, np.nonzero(~same.all(axis=1)))
            exact = (plain == 0) | (plain == 1) | np.isnan(plain)
            np.testing.assert_array_equal(primal[exact], plain[exact])
            assert np.isnan(primal[1]).all()
            # a constant tangent moves nothing
            t = np.asarray(tangent)
            assert np.all((np.abs(t) <= 1e-6) | np.isnan(t)), b
            v, vjp = jax.vjp(partial(sjx.smooth_max, beta=b), z)
            np.testing.assert_array_equal(v, sjx.smooth_max(z, beta=b))
            g = np.asarray(vjp(jnp.ones_like(v))[0])  # the gradient is the softargmax
            np.testing.assert_allclose(g, plain, rtol=4 * eps, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_z_derivative_matches_the_closed_form_on_every_edge_case(dtype):
    # The z-derivative recomputes its weights with a form of its own (_tangent_logits); in both
    # modes it must equal β·(diag σ − σσᵀ)·ġ with σ the plain output (0 at β = 0 and ±∞).
    with jax.enable_x64(dtype == np.float64):
        z = jnp.asarray(_edge_rows(dtype))
        g = np.random.default_rng(3).standard_normal(z.shape).astype(dtype)
        eps = np.finfo(dtype).eps
        row_betas = np.array([2, -1, INF, -INF, 0, 3, -2, INF, -INF, 1e-3, -5, 1], dtype)[:, None]
        for b in [2.0, INF, -INF, 0.0, -3.0, 1e-40, 1e30, -1e30, 1e-3, row_betas]:
            b = jnp.asarray(b, dtype)
            p = np.asarray(sjx.softargmax(z, beta=b), np.float64)
            flat = np.isinf(b) | (np.abs(b) < np.finfo(dtype).tiny)  # a subnormal β acts as 0
            bf = np.where(flat, 0.0, np.asarray(b, np.float64))
            pg = p * g
            want = bf * (pg - p * pg.sum(-1, keepdims=True))
            spread = p * (np.abs(g) + np.abs(pg).sum(-1, keepdims=True))
            scale = (np.abs(bf) * spread.max(-1, keepdims=True))[:, 0]
            f = partial(softargmax_b, b=b)
            rev = np.asarray(jax.vjp(f, z)[1](jnp.asarray(g))[0], np.float64)
            fwd = np.asarray(jax.jvp(f, (z,), (jnp.asarray(g),))[1], np.float64)
            for got in (rev, fwd):
                assert np.isnan(got[1]).all()  # the NaN row
                ok = np.delete(np.arange(len(z)), 1)
                err = np.abs(got[ok] - want[ok]).max(-1)
                assert np.all(err <= 64 * eps * scale[ok]), (b, err, scale[ok])


@pytest.mark.parametrize("b", [0.0, 1.0, INF, -INF, -2.0])
def test_nan_poisons_its_slice_on_large_arrays(b):
    z = _row_with_nan()
    outs = {
        "softargmax": sjx.softargmax(z, beta=b),
        "log_softargmax": sjx.log_softargmax(z, beta=b),
        "smooth_max": sjx.smooth_max(z, beta=b),
        "smooth_min": sjx.smooth_min(z, beta=b),
        "mellowmax": sjx.mellowmax(z, beta=b),
    }
    for name, out in outs.items():
        assert jnp.isnan(out[1]).all(), name
        others = jnp.concatenate([out[:1], out[2:]])
        assert not jnp.isnan(others).any(), name
    mask = jnp.ones(z.shape, bool).at[1, 5].set(False)
    assert jnp.isfinite(sjx.softargmax(z, beta=b, where=mask)).all()


def test_nan_propagates_unless_masked():
    z = jnp.array([[NAN, 1.0, 2.0], [0.0, 1.0, 2.0]])
    for b in [1.0, 0.0, INF, -3.0]:
        out = sjx.softargmax(z, beta=b)
        assert jnp.isnan(out[0]).all() and jnp.isfinite(out[1]).all()
        assert jnp.isnan(sjx.smooth_max(z, beta=b)[0])
    mask = jnp.array([[False, True, True], [True, True, True]])
    out = sjx.softargmax(z, where=mask)
    np.testing.assert_allclose(out[0], [0, *jax.nn.softmax(jnp.array([1.0, 2.0]))], rtol=1e-6)
    for f in [sjx.softargmax, sjx.log_softargmax]:
        g = jax.grad(lambda z, f=f: jnp.where(mask, f(z, where=mask), 0.0).sum())(z)
        assert jnp.isfinite(g).all() and g[0, 0] == 0
    g = jax.grad(lambda z: sjx.smooth_max(z, where=mask).sum())(z)
    assert g[0, 0] == 0 and jnp.isfinite(g).all()


@transforms
def test_fully_masked_slice(jit):
    z = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    mask = jnp.array([[False, False], [True, True]])
    np.testing.assert_array_equal(jit(lambda z: sjx.softargmax(z, where=mask))(z)[0], [0, 0])
    np.testing.assert_array_equal(
        jit(lambda z: sjx.log_softargmax(z, where=mask))(z)[0], [-INF] * 2
    )
    assert jit(lambda z: sjx.logsumexp(z, axis=-1, where=mask))(z)[0] == -INF
    for b in [1.0, -1.0, 0.0, INF]:
        assert jit(lambda z, b: sjx.smooth_max(z, beta=b, where=mask))(z, b)[0] == -INF
    for f in [
        lambda z: sjx.smooth_max(z, where=mask)[0],
        lambda z: sjx.logsumexp(z, axis=-1, where=mask)[0],
        lambda z: sjx.softargmax(z, where=mask)[0].sum(),
        lambda z: jnp.where(mask, sjx.log_softargmax(z, where=mask), 0.0).sum(),
    ]:
        g = jit(jax.grad(f))(z)
        assert jnp.isfinite(g).all() and (g[0] == 0).all(), g


# ------------------------------------------------------------------------------------------------
# 5. Masking


@pytest.mark.parametrize("beta", [0.7, -2.0, 0.0, INF, -INF])
def test_mask_equals_function_of_the_kept_entries(beta):
    rng = np.random.default_rng(2)
    z = jnp.asarray(rng.standard_normal(9), jnp.float32)
    m = np.array([1, 0, 1, 1, 0, 0, 1, 1, 0], bool)
    out = sjx.softargmax(z, beta=beta, where=m)
    np.testing.assert_allclose(out[m], sjx.softargmax(z[m], beta=beta), rtol=1e-6)
    np.testing.assert_array_equal(out[~m], 0)
    lout = sjx.log_softargmax(z, beta=beta, where=m)
    np.testing.assert_allclose(lout[m], sjx.log_softargmax(z[m], beta=beta), rtol=1e-6)
    for f in [sjx.smooth_max, sjx.smooth_min, sjx.mellowmax]:
        np.testing.assert_allclose(f(z, beta=beta, where=m), f(z[m], beta=beta), rtol=1e-6)


def test_masked_gradient_is_exactly_zero_for_huge_values():
    z = jnp.array([1e30, 1.0, 2.0, 3e38])
    m = jnp.array([False, True, True, False])
    for f in [
        lambda z: sjx.smooth_max(z, where=m),
        lambda z: sjx.logsumexp(z, where=m),
        lambda z: (sjx.softargmax(z, where=m) * jnp.arange(4.0)).sum(),
        lambda z: jnp.where(m, sjx.log_softargmax(z, where=m), 0.0).sum(),
    ]:
        g = jax.grad(f)(z)
        assert g[0] == 0 and g[3] == 0 and jnp.isfinite(g).all(), g


# ------------------------------------------------------------------------------------------------
# 6. 16-bit input


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_16_bit_accumulates_in_float32(dtype):
    x = jnp.zeros(2**17, dtype)
    p = sjx.softargmax(x)
    assert p.dtype == dtype
    np.testing.assert_allclose(float(p.astype(jnp.float32).sum()), 1.0, rtol=2e-3)
    lse = sjx.logsumexp(x)
    assert lse.dtype == dtype
    np.testing.assert_allclose(float(lse), np.log(2**17), rtol=1e-2)
    g = jax.grad(lambda x: sjx.smooth_max(x).astype(jnp.float32))(x)
    assert g.dtype == dtype
    for f in [sjx.log_softargmax, sjx.softargmin]:
        assert f(x[:4]).dtype == dtype


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
@pytest.mark.parametrize("axis", [-1, (0, 1)])
def test_z_derivative_in_every_dtype_and_over_several_axes(dtype, axis):
    rng = np.random.default_rng(5)
    z = rng.standard_normal((6, 300)) * 3
    g = rng.standard_normal((6, 300))
    beta = 1.7 if axis != -1 else rng.uniform(-3, 3, (6, 1))
    zz, gg = jnp.asarray(z, dtype), jnp.asarray(g, dtype)
    bb = jnp.asarray(beta, jnp.float32)
    f = partial(sjx.softargmax, beta=bb, axis=axis)
    rev = jax.vjp(f, zz)[1](gg)[0]
    fwd = jax.jvp(f, (zz,), (gg,))[1]
    assert rev.dtype == fwd.dtype == dtype
    # the closed form in float64, from the rounded input
    z64, g64 = np.asarray(zz, np.float64), np.asarray(gg, np.float64)
    p = np.asarray(sps.softmax(np.asarray(beta) * z64, axis=axis))
    pg = p * g64
    want = np.asarray(beta) * (pg - p * pg.sum(axis=axis, keepdims=True))
    tol = 4 * float(jnp.finfo(dtype).eps) * np.abs(want).max()
    for got in (rev, fwd):
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0, atol=tol)


# ------------------------------------------------------------------------------------------------
# 7. Integers and empty axes


def test_integers_promote_and_empty_axes():
    out = sjx.softargmax(jnp.array([1, 2, 3]))
    assert out.dtype == jnp.zeros(()).dtype
    np.testing.assert_allclose(out, sps.softmax([1.0, 2.0, 3.0]), rtol=1e-6)
    assert sjx.softargmax(jnp.zeros((0,))).shape == (0,)
    assert sjx.log_softargmax(jnp.zeros((3, 0))).shape == (3, 0)
    assert sjx.logsumexp(jnp.zeros((0,))) == -INF
    assert sjx.smooth_max(jnp.zeros((2, 0)), beta=3.0).shape == (2,)
    np.testing.assert_array_equal(sjx.smooth_max(jnp.zeros((2, 0))), [-INF, -INF])
    np.testing.assert_array_equal(sjx.argmax_onehot([True, False]), [1.0, 0.0])


@pytest.mark.parametrize("x64", [False, True])
def test_integers_decide_ties_in_their_own_dtype_and_promote_like_jax(x64):
    with jax.enable_x64(x64):
        big = jnp.array([[16777217, 16777216, 3], [5, 5, -7]])  # 2**24 + 1 and 2**24
        np.testing.assert_array_equal(sjx.argmax_onehot(big), [[1, 0, 0], [0.5, 0.5, 0]])
        np.testing.assert_array_equal(sjx.argmin_onehot(big), [[0, 0, 1], [0, 0, 1]])
        mask = jnp.array([False, True, True])
        np.testing.assert_array_equal(sjx.argmax_onehot(big, where=mask), [[0, 1, 0], [0, 1, 0]])
        np.testing.assert_array_equal(sjx.argmin_onehot(big, axis=0), [[0, 0, 0], [1, 1, 1]])
        # The β = ±∞ limits of the kernel are the same one-hot vectors, under jit too, also with
        # one β per row and a mask; finite β is computed in floating point.
        beta = jnp.array([[INF], [-INF]])
        for f in (sjx.softargmax, jax.jit(sjx.softargmax)):
            np.testing.assert_array_equal(f(big, beta=INF), sjx.argmax_onehot(big))
            np.testing.assert_array_equal(f(big, beta=-INF), sjx.argmin_onehot(big))
            np.testing.assert_array_equal(f(big, beta=beta), [[1, 0, 0], sjx.argmin_onehot(big)[1]])
            np.testing.assert_array_equal(
                f(big, beta=INF, where=mask), sjx.argmax_onehot(big, where=mask)
            )
        np.testing.assert_array_equal(sjx.softargmin(big, beta=INF), sjx.argmin_onehot(big))
        np.testing.assert_array_equal(
            sjx.log_softargmax(big, beta=INF), jnp.log(sjx.argmax_onehot(big))
        )
        np.testing.assert_allclose(
            sjx.softargmax(big, beta=0.5)[1], sps.softmax([2.5, 2.5, -3.5]), rtol=1e-6
        )
        for dtype in [jnp.int8, jnp.int32, jnp.uint16, jnp.bool_] + ([jnp.int64] if x64 else []):
            z = jnp.array([1, 0, 1]).astype(dtype)
            want = jnp.exp(z).dtype  # JAX's own promotion of the integer
            for f in [sjx.softargmax, sjx.log_softargmax, sjx.argmax_onehot, sjx.logsumexp]:
                assert f(z).dtype == want, (f, dtype)
            assert sjx.logsumexp(z).dtype == jax.nn.logsumexp(z).dtype
        a, b = jnp.array([1.0, 2.0], jnp.float32), jnp.array([1, 2])
        assert sjx.logsumexp(a, b=b).dtype == jax.nn.logsumexp(a, b=b).dtype == jnp.float32


# ------------------------------------------------------------------------------------------------
# 8. logsumexp: SciPy's cases and the derivative with respect to a zero weight


def _close(ours, ref, **kw):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), **kw)


def test_logsumexp_scipy_cases():
    with jax.enable_x64(True):
        a = np.arange(200.0)
        _close(sjx.logsumexp(a), np.log(np.sum(np.exp(a))), rtol=1e-12)
        a = np.array([1000.0, 1000.0])
        _close(sjx.logsumexp(a), 1000.0 + np.log(2.0), rtol=1e-12)
        x = np.array([1e-40] * 1000000)
        logx = np.log(x)
        _close(np.exp(sjx.logsumexp(logx)), x.sum(), rtol=1e-10)
        # the log1p form: the terms below the maximum count even below the rounding of 1 + …
        for z in ([0.0, -40.0], [0.0, -40.0, -50.0], [-7.5, -60.0]):
            want = z[0] + np.log1p(np.sum(np.exp(np.asarray(z[1:]) - z[0])))
            _close(sjx.logsumexp(np.asarray(z)), want, rtol=1e-15)
            _close(sjx.smooth_max(np.asarray(z), beta=1.0), want, rtol=1e-15)
            _close(sjx.logsumexp(np.asarray(z, np.float32)), want, rtol=1e-6)
        big = np.array([[1e10, 1e-10], [-1e10, -np.inf]])
        _close(sjx.logsumexp(big, axis=-1), [1e10, -1e10])
        _close(sjx.logsumexp(big, axis=-1, keepdims=True), [[1e10], [-1e10]])
        _close(sjx.logsumexp(big, axis=(-1, -2)), 1e10)
        X = np.random.default_rng(3).random((3, 4)) + 0.5
        for axis in [None, 0, 1]:
            _close(np.exp(sjx.logsumexp(np.log(X), axis=axis)), X.sum(axis=axis), rtol=1e-12)
        # weights, negative weights, return_sign
        a = np.arange(200.0)
        b = np.arange(200.0, 0, -1.0)
        _close(sjx.logsumexp(a, b=b), np.log(np.sum(b * np.exp(a))), rtol=1e-12)
        B = np.random.default_rng(4).random((3, 4))
        for axis in [None, 0, 1]:
            ref = (B * X).sum(axis=axis)
            _close(np.exp(sjx.logsumexp(np.log(X), b=B, axis=axis)), ref, rtol=1e-12)
        r, s = sjx.logsumexp(np.array([1.0, 2.0]), b=np.array([1.0, -1.0]), return_sign=True)
        _close(r, np.log(np.e**2 - np.e), rtol=1e-12)
        assert s == -1
        r, s = sjx.logsumexp(np.array([1.0, 1.0]), b=np.array([1.0, -1.0]), return_sign=True)
        assert r == -INF and s == 0
        r, s = sjx.logsumexp(np.ones((1, 2, 4)), axis=-1, keepdims=True, return_sign=True)
        assert r.shape == s.shape == (1, 2, 1)
        # infinities and NaN
        assert sjx.logsumexp(np.array([INF])) == INF
        assert sjx.logsumexp(np.array([-INF])) == -INF
        assert np.isnan(sjx.logsumexp(np.array([NAN])))
        for x, y in [(-INF, -INF), (-INF, INF), (INF, -INF), (INF, INF)]:
            with np.errstate(divide="ignore"):
                ref = np.log(np.sum(np.exp([x, y])))
            assert sjx.logsumexp(np.array([x, y])) == ref
        # b == 0 removes the entry whatever a is
        _close(sjx.logsumexp(np.array([1.0, 10000.0]), b=np.array([1.0, 0.0])), 1.0)
        # the sign of the log of a positive or negative sum
        a = np.array([3.06409428, 0.37251854, 3.87471931])
        b = np.array([1.88190708, 2.84174795, -0.85016884])
        _close(sjx.logsumexp(a, b=b), sps.logsumexp(a, b=b), rtol=1e-12)
        b = np.array([1.88190708, 2.84174795, -3.85016884])
        assert np.isnan(sjx.logsumexp(a, b=b))
        for b, sign in [(None, 1.0), (np.array([-1.0]), -1.0)]:
            val, s = sjx.logsumexp(np.array([INF]), b=b, return_sign=True)
            assert np.isinf(val) and s == sign
        # an undefined sum, inf − inf, has no value and no sign
        val, s = sjx.logsumexp(
            np.array([INF, INF, 1.0]), b=np.array([1.0, -1.0, 1.0]), return_sign=True
        )
        assert np.isnan(val) and np.isnan(s)
        # against scipy on random data with broadcast weights
        rng = np.random.default_rng(5)
        a = rng.standard_normal((4, 5))
        b = rng.standard_normal((4, 5))
        for axis in [None, 0, 1, (0, 1)]:
            r, s = sjx.logsumexp(a, b=b, axis=axis, return_sign=True)
            rr, ss = sps.logsumexp(a, b=b, axis=axis, return_sign=True)
            _close(r, rr, rtol=1e-12)
            _close(s, ss)


def test_logsumexp_matches_jax_signature():
    import inspect

    ours = inspect.signature(sjx.logsumexp)
    theirs = inspect.signature(jax.nn.logsumexp)
    assert list(ours.parameters) == list(theirs.parameters)
    for name, p in theirs.parameters.items():
        assert ours.parameters[name].default == p.default
        assert ours.parameters[name].kind == p.kind


def test_logsumexp_gradient_with_respect_to_a_zero_weight():
    with jax.enable_x64(True):
        a = jnp.array([1.0, 2.0, -0.5])
        b = jnp.array([0.0, 1.0, 2.0])
        g = jax.grad(lambda b: sjx.logsumexp(a, b=b))(b)
        total = np.sum(np.asarray(b) * np.exp(np.asarray(a)))
        _close(g, np.exp(np.asarray(a)) / total, rtol=1e-12)
        ga = jax.grad(lambda a: sjx.logsumexp(a, b=b))(a)
        _close(ga, np.asarray(b) * np.exp(np.asarray(a)) / total, rtol=1e-12)
        check_grads(lambda a, b: sjx.logsumexp(a, b=b), (a, b + 0.5), order=2, modes=["fwd", "rev"])


# ------------------------------------------------------------------------------------------------
# 9. Gradients


def test_softargmax_saves_one_residual():
    x = jnp.ones((4, 8))
    _, vjp = jax.vjp(lambda x: sjx.softargmax(x, beta=2.0), x)
    big = [leaf for leaf in jax.tree_util.tree_leaves(vjp) if np.shape(leaf) == x.shape]
    assert len(big) == 1
    _, vjp = jax.vjp(lambda x: sjx.smooth_max(x, beta=2.0), x)
    big = [leaf for leaf in jax.tree_util.tree_leaves(vjp) if np.shape(leaf) == x.shape]
    assert len(big) == 1


@pytest.mark.slow
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("beta", [0.8, -1.3])
def test_check_grads_order_2(masked, beta):
    with jax.enable_x64(True):
        rng = np.random.default_rng(6)
        z = jnp.asarray(rng.standard_normal((3, 5)))
        w = jnp.asarray(rng.standard_normal((3, 5)))
        mask = jnp.asarray(rng.random((3, 5)) > 0.3).at[:, 0].set(True) if masked else None

        def fns(name):
            if name == "softargmax":
                return lambda z, b: (sjx.softargmax(z, beta=b, where=mask) * w).sum()
            if name == "log_softargmax":
                return lambda z, b: jnp.where(
                    mask if masked else True, sjx.log_softargmax(z, beta=b, where=mask), 0.0
                ).sum()
            if name == "mellowmax":
                return lambda z, b: (sjx.mellowmax(z, beta=b, where=mask) * w[:, 0]).sum()
            return lambda z, b: (sjx.smooth_max(z, beta=b, where=mask) * w[:, 0]).sum()

        for name in ["softargmax", "log_softargmax", "smooth_max", "mellowmax"]:
            modes = ["fwd", "rev"] if name == "softargmax" else ["rev"]
            check_grads(jax.jit(fns(name)), (z, jnp.asarray(beta)), order=2, modes=modes)
        # a β per row
        b = jnp.asarray([[beta], [2 * beta], [-0.5]])
        check_grads(jax.jit(fns("smooth_max")), (z, b), order=2, modes=["rev"])


def test_gradient_identities():
    with jax.enable_x64(True):
        rng = np.random.default_rng(7)
        z = jnp.asarray(rng.standard_normal(6))
        for beta in [0.3, 2.0, -1.5]:
            p = sjx.softargmax(z, beta=beta)
            _close(jax.grad(lambda z, b=beta: sjx.smooth_max(z, beta=b))(z), p, rtol=1e-12)
            dsig = jax.jacfwd(lambda b: sjx.softargmax(z, beta=b))(beta)
            _close(dsig, p * (z - jnp.dot(p, z)), rtol=1e-10, atol=1e-14)
            h = -jnp.sum(p * jnp.log(p))
            _close(jax.grad(lambda b: sjx.smooth_max(z, beta=b))(beta), -h / beta**2, rtol=1e-10)
            hess = jax.hessian(lambda z, b=beta: sjx.smooth_max(z, beta=b))(z)
            _close(hess, beta * (jnp.diag(p) - jnp.outer(p, p)), rtol=1e-10, atol=1e-14)
            logp_b = jax.jacfwd(lambda b: sjx.log_softargmax(z, beta=b))(beta)
            _close(logp_b, z - jnp.dot(p, z), rtol=1e-10)


def test_mellowmax_limits_and_slope_at_zero():
    with jax.enable_x64(True):
        z = jnp.array([1.0, 2.0, 6.0])
        assert sjx.mellowmax(z, beta=0.0) == 3.0
        assert sjx.mellowmax(z, beta=INF) == 6.0
        assert sjx.mellowmax(z, beta=-INF) == 1.0
        _close(sjx.mellowmax(z, beta=1e-9), 3.0 + 1e-9 * np.var([1.0, 2.0, 6.0]) / 2, rtol=1e-14)
        _close(jax.grad(lambda b: sjx.mellowmax(z, beta=b))(0.0), np.var([1.0, 2.0, 6.0]) / 2)
        betas = jnp.linspace(-5, 5, 41)
        vals = jax.vmap(lambda b: sjx.mellowmax(z, beta=b))(betas)
        assert jnp.all(jnp.diff(vals) > 0)


def _mellowmax_decimal(z, beta):
    """mellowmax and its β-slope KL(σ ‖ u)/β² in 100-digit decimal arithmetic."""
    with decimal.localcontext() as ctx:
        ctx.prec = 100
        zs = [decimal.Decimal(float(v)) for v in z]
        b = decimal.Decimal(float(beta))
        e = [(b * v).exp() for v in zs]
        mean = sum(e) / len(e)
        value = mean.ln() / b
        kl = sum(w * (b * v) for w, v in zip(e, zs, strict=True)) / sum(e) - mean.ln()
        return float(value), float(kl / b**2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("jit", [jax.jit, lambda f: f], ids=["jit", "eager"])
def test_mellowmax_near_beta_zero(dtype, jit):
    # Value and β-slope stay right as β → 0 from either side, where β(z − max z) underflows and
    # KL(σ ‖ u) = log n − H cancels; the cumulant expansion takes over there.
    with jax.enable_x64(dtype == np.float64):
        eps = np.finfo(dtype).eps
        value = jit(lambda z, b: sjx.mellowmax(z, beta=b))
        slope = jit(jax.grad(lambda b, z: sjx.mellowmax(z, beta=b)))
        z = jnp.asarray([0.0, -0.01, -0.02], dtype)
        for b in [1e-37, -1e-37, 1e-30]:
            np.testing.assert_allclose(value(z, dtype(b)), -0.01, rtol=4 * eps)
        for z in ([0.3, -1.2, 2.0, 0.7], [5.0, 5.0, 5.5, -40.0, 1e-3], [1e3, -2e3, 0.5]):
            z = np.asarray(z, dtype)
            spread = np.max(np.abs(z - z.mean()))
            for bs in [1e-30, 1e-12, 1e-6, 1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5, 2.0]:
                for b in (bs / spread, -bs / spread):
                    want_value, want_slope = _mellowmax_decimal(z, b)
                    got = value(jnp.asarray(z), dtype(b))
                    np.testing.assert_allclose(got, want_value, rtol=8 * eps, atol=8 * eps * spread)
                    got = slope(dtype(b), jnp.asarray(z))
                    np.testing.assert_allclose(got, want_slope, rtol=2e3 * eps, err_msg=str(b))


def test_smooth_max_at_beta_zero_is_the_right_limit():
    z = jnp.array([1.0, 2.0])
    assert sjx.smooth_max(z, beta=0.0) == INF
    assert sjx.smooth_min(z, beta=0.0) == -INF
    assert sjx.smooth_max(jnp.array([5.0]), beta=0.0) == 5.0
    assert sjx.smooth_max(jnp.array([-INF, -INF]), beta=0.0) == -INF
    np.testing.assert_allclose(jax.grad(lambda z: sjx.smooth_max(z, beta=0.0))(z), [0.5, 0.5])


def test_limits_of_values_and_gradients_at_infinite_beta():
    z = jnp.array([1.0, 3.0, 3.0, -2.0])
    assert sjx.smooth_max(z, beta=INF) == 3.0
    assert sjx.smooth_max(z, beta=-INF) == -2.0
    assert sjx.smooth_min(z, beta=INF) == -2.0
    np.testing.assert_array_equal(
        jax.grad(lambda z: sjx.smooth_max(z, beta=INF))(z), [0, 0.5, 0.5, 0]
    )
    np.testing.assert_array_equal(jax.grad(lambda b: sjx.smooth_max(z, beta=b))(INF), 0.0)
    g = jax.grad(lambda z: (sjx.softargmax(z, beta=INF) * jnp.arange(4.0)).sum())(z)
    np.testing.assert_array_equal(g, 0)
    logp = sjx.log_softargmax(z, beta=INF)
    np.testing.assert_allclose(logp, [-INF, -np.log(2), -np.log(2), -INF], rtol=1e-7)


# ------------------------------------------------------------------------------------------------
# 10. Agreement with SciPy in float64


@pytest.mark.parametrize("beta", [1e-3, 0.1, 1.0, 7.5, 60.0, -1e-3, -0.5, -60.0])
def test_agrees_with_scipy_float64(beta):
    with jax.enable_x64(True):
        rng = np.random.default_rng(8)
        z = rng.standard_normal((5, 33)) * 3
        # XLA flushes subnormal results to zero, hence the tiny atol
        ref = sps.softmax(beta * z, axis=-1)
        _close(sjx.softargmax(z, beta=beta), ref, rtol=1e-10, atol=1e-300)
        _close(sjx.log_softargmax(z, beta=beta), sps.log_softmax(beta * z, axis=-1), rtol=1e-10)
        ref = sps.logsumexp(beta * z, axis=-1) / beta
        _close(sjx.smooth_max(z, beta=beta), ref, rtol=1e-10)
        _close(sjx.logsumexp(z * beta, axis=-1), sps.logsumexp(beta * z, axis=-1), rtol=1e-10)
        ref = (sps.logsumexp(beta * z, axis=-1) - np.log(33)) / beta
        _close(sjx.mellowmax(z, beta=beta), ref, rtol=1e-9)
        ref = sps.softmax(beta * z)
        _close(sjx.softargmax(z, beta=beta, axis=(0, 1)), ref, rtol=1e-10, atol=1e-300)


# ------------------------------------------------------------------------------------------------
# 11. Wrong static input


def test_errors_name_the_argument():
    z = jnp.ones((2, 3))
    with pytest.raises(ValueError, match="axis"):
        sjx.softargmax(z, axis=2)
    with pytest.raises(ValueError, match="axis.*repeats"):
        sjx.smooth_max(z, axis=(0, -2))
    with pytest.raises(TypeError, match="axis"):
        sjx.softargmax(z, axis=1.0)
    with pytest.raises(TypeError, match="axis"):
        sjx.softargmax(z, axis=True)
    with pytest.raises(TypeError, match="positional"):
        sjx.softargmax(z, -1.0)
    with pytest.raises(TypeError, match="positional"):
        sjx.smooth_max(z, 2.0)
    with pytest.raises(ValueError, match="beta"):
        sjx.softargmax(z, beta=jnp.ones(2))  # one β per row must keep the reduced axis
    with pytest.raises(ValueError, match="beta"):
        sjx.softargmax(z, beta=jnp.ones((1, 1, 1)))
    with pytest.raises(TypeError, match="where"):
        sjx.softargmax(z, where=jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="where"):
        sjx.softargmax(z, where=jnp.ones((2,), bool))
    with pytest.raises(TypeError, match="z"):
        sjx.softargmax(jnp.ones(3, jnp.complex64))


# ------------------------------------------------------------------------------------------------
# vmap, batches, per-row β


def test_vmap_over_beta_and_batches():
    rng = np.random.default_rng(9)
    z = jnp.asarray(rng.standard_normal((4, 6)), jnp.float32)
    betas = jnp.array([0.0, 0.5, -2.0, INF, -INF])
    out = jax.vmap(lambda b: sjx.softargmax(z, beta=b))(betas)
    for i, b in enumerate(betas):
        np.testing.assert_allclose(out[i], sjx.softargmax(z, beta=b), rtol=1e-6)
    out = jax.vmap(lambda zz: sjx.smooth_max(zz, beta=1.5))(z)
    np.testing.assert_allclose(out, sjx.smooth_max(z, beta=1.5), rtol=1e-6)
    per_row = jnp.array([[0.5], [INF], [0.0], [-1.0]])
    out = sjx.softargmax(z, beta=per_row)
    for i in range(4):
        np.testing.assert_allclose(out[i], sjx.softargmax(z[i], beta=per_row[i, 0]), rtol=1e-6)
    g = jax.grad(lambda b: sjx.smooth_max(z, beta=b).sum())(jnp.array([[0.5], [1.0], [2.0], [3.0]]))
    assert g.shape == (4, 1)


# ------------------------------------------------------------------------------------------------
# Properties

LENGTHS = [1, 2, 3, 5, 8]  # few shapes, so that few functions are compiled
finite_rows = st.sampled_from(LENGTHS).flatmap(
    lambda n: hnp.arrays(
        np.float64, (n,), elements=st.floats(-50, 50, allow_nan=False, allow_infinity=False)
    )
)
betas = st.floats(-20, 20, allow_nan=False)


@jax.jit
def _props(z, beta, shift, perm):
    p = sjx.softargmax(z, beta=beta)
    return (
        p,
        sjx.softargmax(z + shift, beta=beta),
        sjx.softargmax(z[perm], beta=beta),
        sjx.smooth_max(z, beta=beta),
        sjx.smooth_min(z, beta=beta),
    )


@settings(max_examples=60, deadline=None)
@given(z=finite_rows, beta=betas, shift=st.floats(-100, 100), seed=st.integers(0, 2**16))
@example(z=np.zeros(2), beta=1.1125369292536007e-308, shift=0.0, seed=0)  # subnormal β
@example(z=np.zeros(2), beta=2.3e-308, shift=0.0, seed=0)  # smallest normals: finite bound
def test_properties(z, beta, shift, seed):
    with jax.enable_x64(True):
        perm = np.random.default_rng(seed).permutation(len(z))
        p, p_shift, p_perm, smax, smin = map(np.asarray, _props(z, beta, shift, perm))
        assert np.all(p >= 0)
        np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-12)
        _close(p_shift, p, atol=1e-9)  # shift invariance
        _close(p_perm, p[perm], atol=1e-12)  # permutation equivariance
        if 0 < beta < np.finfo(np.float64).tiny:  # a subnormal β is flushed to 0
            np.testing.assert_array_equal(p, np.full(len(z), 1 / len(z)))
            assert smax == (np.inf if len(z) > 1 else z.max())
            assert smin == (-np.inf if len(z) > 1 else z.min())
        elif beta > 0:  # max <= smooth_max <= max + log(n)/β, and the mirror for the min
            with np.errstate(over="ignore"):  # log(n)/β may overflow to +inf
                slack = np.log(len(z)) / beta
            assert z.max() - 1e-9 <= smax <= z.max() + slack + 1e-9
            assert z.min() - slack - 1e-9 <= smin <= z.min() + 1e-9


@jax.jit
def _sweep(z):
    bs = jnp.array([0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 50.0])
    onehot = sjx.argmax_onehot(z)
    mass = jax.vmap(lambda b: jnp.sum(sjx.softargmax(z, beta=b) * (onehot > 0)))(bs)
    return mass, jax.vmap(lambda b: sjx.smooth_max(z, beta=b))(bs[1:])


@settings(max_examples=40, deadline=None)
@given(z=finite_rows)
def test_monotone_approach_to_the_limits(z):
    with jax.enable_x64(True):
        mass, sm = map(np.asarray, _sweep(z))
        assert np.all(np.diff(mass) >= -1e-12)  # the mass on the arg max set grows with β
        assert np.all(np.diff(sm) <= 1e-12)  # the smooth max decreases towards the max
        assert np.all(sm >= z.max() - 1e-9)
