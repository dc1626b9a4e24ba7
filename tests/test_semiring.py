"""Tests of softjax.semiring: exactness of the products at every β, the semiring laws, the tropical
limits bit for bit, the Kleene star, gradients and their memory, and the absence of recompiles."""

from __future__ import annotations

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse.csgraph
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads
from scipy.special import logsumexp

from softjax.semiring import (
    LogSemiring,
    MaxPlus,
    MinPlus,
    Real,
    dequantize,
)
from softjax.smooth import smooth_max

INF = np.inf
TRANSFORMS = [jax.jit, lambda f: f]


def reference_matmul(a, b, beta):
    """float64 (1/β) log Σ_k exp(β(A_ik + B_kj)), with the tropical limits at β = ±inf."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):  # +inf − inf is a NaN term
        x = a[..., :, :, None] + b[..., None, :, :]
    if beta == INF:
        return x.max(axis=-2)
    if beta == -INF:
        return x.min(axis=-2)
    if beta == 0:  # the right-hand limit, as smooth_max: +inf wherever a term is live (k >= 2)
        mx = x.max(axis=-2)
        return np.where(mx > -INF, INF, mx)
    with np.errstate(invalid="ignore", divide="ignore"):
        return logsumexp(beta * x, axis=-2) / beta


def assert_exact(c, ref, atol=2e-5, rtol=2e-6):
    c = np.asarray(c, np.float64)
    np.testing.assert_array_equal(np.isposinf(c), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(c), np.isneginf(ref))
    fin = np.isfinite(ref)
    np.testing.assert_allclose(c[fin], ref[fin], atol=atol, rtol=rtol)


def normal(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def with_zeros(a, value, seed):
    """Sprinkles the semiring zero (and a full row) into ``a``."""
    a = a.copy()
    rng = np.random.default_rng(seed)
    a[rng.random(a.shape) < 0.1] = value
    a[..., 1, :] = value
    return a


log_matmul = jax.jit(lambda a, b, beta: LogSemiring(beta).matmul(a, b))

BETAS = [1e-2, 1.0, 30.0, 100.0, 1e3, INF, -1.0, -100.0, -1e3, -INF]


@pytest.mark.parametrize("beta", BETAS)
def test_matmul_exact_at_every_beta(beta):
    zero = -INF if beta > 0 else INF
    a = with_zeros(normal((144, 136), 1), zero, 1)
    b = with_zeros(normal((136, 128), 2).T, zero, 2).T
    b[:, 3] = zero
    c = log_matmul(a, b, jnp.float32(beta))
    assert c.dtype == jnp.float32
    assert_exact(c, reference_matmul(a, b, beta))


@pytest.mark.parametrize("beta", [100.0, 1e3, -300.0])
def test_matmul_exact_at_n_160(beta):
    a, b = normal((160, 160), 3), normal((160, 160), 4)
    assert_exact(LogSemiring(beta).matmul(a, b), reference_matmul(a, b, beta))


@pytest.mark.slow
@pytest.mark.parametrize("beta", [30.0, 60.0, 100.0, 150.0, 300.0, 1e3, -100.0])
def test_matmul_exact_at_large_beta_batched(beta):
    # Large β times the spread: the head/tail passes (and at 1e3 the second, deeper one) with the
    # semiring zero sprinkled in, a dead row and column, and batch broadcasting.
    zero = -INF if beta > 0 else INF
    a = with_zeros(normal((3, 130, 200), 40), zero, 4)
    b = with_zeros(normal((200, 110), 41).T, zero, 5).T
    b[:, 7] = zero
    c = log_matmul(a, b, jnp.float32(beta))
    chex.assert_shape(c, (3, 130, 110))
    assert_exact(c, reference_matmul(a, b, beta))


def test_matmul_many_dead_entries_and_nan():
    beta = 100.0
    a, b = normal((136, 128), 42), normal((128, 128), 43)
    a[:60] = -INF  # 60 of 136 rows without a finite term: the dense repair with dead detection
    assert_exact(log_matmul(a, b, jnp.float32(beta)), reference_matmul(a, b, beta))
    a, b = normal((136, 128), 44), normal((128, 128), 45)
    a[3, 5] = np.nan
    b[7, 9] = np.nan
    c = np.asarray(log_matmul(a, b, jnp.float32(beta)))
    ref = reference_matmul(a, b, beta)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(ref))
    assert_exact(c, ref)


@pytest.mark.parametrize("beta", [1.0, 100.0, -100.0])
def test_matmul_infinities_of_both_signs(beta):
    # +inf and -inf in both operands: entries with a term +inf − inf are NaN, and the rows and
    # columns holding an infinity in the direction of β go to the exact repair.
    a, b = normal((136, 128), 46), normal((128, 128), 47)
    a[2, 4], a[5, :3], a[9, 7] = INF, -INF, -INF
    b[4, 6], b[7, 1], b[11, :] = -INF, INF, -INF
    c = np.asarray(log_matmul(a, b, jnp.float32(beta)))
    ref = reference_matmul(a, b, beta)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(ref))
    assert np.isnan(ref).any() and np.isinf(ref).any()
    assert_exact(c, ref)
    # A column of A at +inf: every entry has an infinite term, so the dense repair serves them all.
    a, b = normal((136, 128), 1), normal((128, 128), 2)
    a[:, 0] = INF if beta > 0 else -INF
    b[0, 0], b[1, 0] = -a[0, 0], a[0, 0]
    c = np.asarray(log_matmul(a, b, jnp.float32(beta)))
    ref = reference_matmul(a, b, beta)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(ref))
    assert np.isnan(ref[:, 0]).all()
    assert_exact(c, ref)


@pytest.mark.parametrize("beta", [1e30, 1e38, -1e38, 3e38])
def test_matmul_at_beta_near_the_largest_float_is_the_tropical_product(beta):
    a, b = normal((136, 128), 48), normal((128, 128), 49)
    tropical = LogSemiring(INF if beta > 0 else -INF).matmul(a, b)
    assert_exact(log_matmul(a, b, jnp.float32(beta)), np.asarray(tropical, np.float64))


def test_matmul_repairs_few_damaged_entries():
    # Small spread except two outlying rows and a column: only those entries underflow in BLAS.
    a, b = 0.1 * normal((144, 136), 5), 0.1 * normal((136, 128), 6)
    a[3, :7] = 40.0
    a[9, 20:] = -30.0
    b[5, 11] = 35.0
    for beta in (5.0, -5.0):
        assert_exact(log_matmul(a, b, jnp.float32(beta)), reference_matmul(a, b, beta))


def test_matmul_large_values_and_small_beta():
    a, b = 1e3 * normal((144, 136), 7), 1e3 * normal((136, 128), 8)
    for beta in (1e-2, 1.0, 1e3):
        assert_exact(log_matmul(a, b, jnp.float32(beta)), reference_matmul(a, b, beta))


def test_matmul_float64():
    with jax.enable_x64(True):
        a, b = normal((30, 20), 9, np.float64), normal((20, 25), 10, np.float64)
        for beta in (0.5, 700.0, -3.0):
            c = LogSemiring(beta).matmul(a, b)
            assert c.dtype == jnp.float64
            np.testing.assert_allclose(c, reference_matmul(a, b, beta), rtol=1e-12, atol=1e-12)


def test_matmul_at_beta_zero_matches_smooth_max():
    a, b = normal((5, 4), 11), normal((4, 3), 12)
    a[0] = -INF
    c = LogSemiring(0.0).matmul(a, b)
    expected = smooth_max(a[:, :, None] + b[None], beta=0.0, axis=1)
    np.testing.assert_array_equal(c, expected)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_tropical_limits_bit_for_bit(transform):
    a = with_zeros(normal((3, 33, 40), 13), -INF, 3)
    b = normal((40, 17), 14)
    f = transform(lambda a, b, beta: LogSemiring(beta).matmul(a, b))
    np.testing.assert_array_equal(f(a, b, jnp.float32(INF)), MaxPlus().matmul(a, b))
    np.testing.assert_array_equal(f(a, b, jnp.float32(-INF)), MinPlus().matmul(a, b))
    x = a[:, :, :, None] + b[None, None, :, :]  # float32, as the kernel adds
    np.testing.assert_array_equal(MaxPlus().matmul(a, b), x.max(axis=2))
    np.testing.assert_array_equal(MinPlus().matmul(a, b), x.min(axis=2))


def test_tropical_gemm_agrees():
    tropical_gemm = pytest.importorskip("tropical_gemm")
    a, b = normal((64, 48), 15), normal((48, 40), 16)
    np.testing.assert_array_equal(MaxPlus().matmul(a, b), tropical_gemm.maxplus_matmul_2d(a, b))
    np.testing.assert_array_equal(MinPlus().matmul(a, b), tropical_gemm.minplus_matmul_2d(a, b))


def test_matmul_shapes_like_at_operator():
    a, b = normal((2, 1, 4, 5), 17), normal((3, 5, 6), 18)
    chex.assert_shape(LogSemiring(2.0).matmul(a, b), (2, 3, 4, 6))
    S = MaxPlus()
    chex.assert_shape(S.matmul(a, b), (2, 3, 4, 6))
    np.testing.assert_array_equal(S.matmul(a, b), reference_matmul(a, b, INF).astype(np.float32))
    v = normal((5,), 19)
    chex.assert_shape(S.matmul(a, v), (2, 1, 4))
    chex.assert_shape(S.matmul(v, b), (3, 6))
    chex.assert_shape(S.matmul(v, v), ())
    np.testing.assert_array_equal(S.matmul(v, v), S.sum(v + v))
    np.testing.assert_allclose(Real().matmul(a, b), a @ b, rtol=1e-5, atol=1e-5)


def test_matmul_errors():
    with pytest.raises(ValueError, match="contraction"):
        LogSemiring(1.0).matmul(jnp.ones((2, 3)), jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="scalar beta"):
        LogSemiring(jnp.ones(2)).matmul(jnp.ones((2, 3)), jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="rank"):
        MaxPlus().matmul(1.0, jnp.ones(3))
    with pytest.raises(TypeError, match="real"):
        MaxPlus().matmul(jnp.ones((2, 2), jnp.complex64), jnp.ones((2, 2)))


# ----------------------------------------------------------------------------------------------
# Semiring laws


def semirings():
    finite = st.floats(0.1, 10.0) | st.floats(-10.0, -0.1)
    logs = st.one_of(finite, st.sampled_from([INF, -INF])).map(LogSemiring)
    return st.one_of(logs, st.just(MaxPlus()), st.just(MinPlus()), st.just(Real()))


values = hnp.arrays(np.float64, (3,), elements=st.floats(-5.0, 5.0))


@jax.jit
def laws(S, x, y, z):
    """Pairs (left, right) that the semiring axioms say are equal."""
    return [
        (S.add(S.add(x, y), z), S.add(x, S.add(y, z))),
        (S.mul(S.mul(x, y), z), S.mul(x, S.mul(y, z))),
        (S.add(x, y), S.add(y, x)),
        (S.mul(x, y), S.mul(y, x)),
        (S.mul(x, S.add(y, z)), S.add(S.mul(x, y), S.mul(x, z))),
        (S.add(x, S.zero), x),
        (S.mul(x, S.one), x),
        (S.mul(x, S.zero), jnp.broadcast_to(S.zero, x.shape)),
        (S.add(x, y), S.sum(jnp.stack([x, y]), axis=0)),
        (S.prod(jnp.stack([x, y]), axis=0), S.mul(x, y)),
    ]


@settings(max_examples=40, deadline=None)
@given(S=semirings(), x=values, y=values, z=values)
def test_semiring_laws(S, x, y, z):
    with jax.enable_x64(True):
        for left, right in laws(S, x, y, z):
            chex.assert_trees_all_close(left, right, rtol=1e-9, atol=1e-9)


@jax.jit
def homomorphism(beta, x, y):
    S = LogSemiring(beta)
    a = x.reshape(3, 1) + y.reshape(1, 3)
    b = y.reshape(3, 1) - x.reshape(1, 3)
    return [
        (dequantize(S.add(x, y), beta), dequantize(x, beta) + dequantize(y, beta)),
        (dequantize(S.mul(x, y), beta), dequantize(x, beta) * dequantize(y, beta)),
        (dequantize(S.zero, beta), jnp.zeros(())),
        (dequantize(S.one, beta), jnp.ones(())),
        (dequantize(S.matmul(a, b), beta), Real().matmul(dequantize(a, beta), dequantize(b, beta))),
    ]


@settings(max_examples=25, deadline=None)
@given(
    beta=st.floats(0.05, 20.0) | st.floats(-20.0, -0.05),
    x=values,
    y=values,
)
def test_dequantize_is_a_homomorphism(beta, x, y):
    with jax.enable_x64(True):
        for left, right in homomorphism(beta, x, y):
            chex.assert_trees_all_close(left, right, rtol=1e-9, atol=0.0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dequantize_takes_zero_times_infinity_as_zero(dtype):
    with jax.enable_x64(dtype == jnp.float64):
        x = jnp.array([0.0, 1.0, -1.0, INF, -INF], dtype)
        for beta, want in [
            (INF, [1.0, INF, 0.0, INF, 0.0]),
            (-INF, [1.0, 0.0, INF, 0.0, INF]),
            (0.0, [1.0, 1.0, 1.0, 1.0, 1.0]),
        ]:
            for f in (dequantize, jax.jit(dequantize)):
                out = f(x, jnp.asarray(beta, dtype))
                assert out.dtype == dtype
                np.testing.assert_array_equal(out, np.asarray(want, dtype))
        # The derivative at x = 0 is β, as for any x: the convention only fills in 0 · ∞.
        assert jax.grad(dequantize)(jnp.asarray(0.0, dtype), jnp.asarray(2.5, dtype)) == 2.5


@pytest.mark.parametrize("beta", [1j, jnp.array(0.5j), True, "1.0"])
def test_log_semiring_rejects_a_beta_that_is_not_real(beta):
    S = LogSemiring(beta)  # a pytree: rebuilt freely by transformations, checked where used
    a = jnp.zeros((2, 2))
    for use in (lambda: S.matmul(a, a), lambda: S.add(a, a), lambda: S.sum(a), lambda: S.zero):
        with pytest.raises(TypeError, match="beta must be a real number or array, got"):
            use()
    with pytest.raises(TypeError, match="beta must be real"):
        dequantize(1.0, jnp.asarray(1j))


def test_log_semiring_rebuilds_with_any_leaves():
    # Filtering and masking libraries rebuild a semiring with placeholder leaves (bools, None).
    S = LogSemiring(jnp.float32(2.0))
    flags = jax.tree.map(lambda _: True, S)
    assert flags.beta is True
    assert jax.tree.map(lambda _: None, S).beta is None


def test_zero_and_one():
    assert LogSemiring(2.0).zero == -INF and LogSemiring(-2.0).zero == INF
    assert LogSemiring(2.0).one == 0.0
    assert MaxPlus().zero == -INF and MinPlus().zero == INF and Real().zero == 0.0
    assert Real().one == 1.0


# ----------------------------------------------------------------------------------------------
# einsum and closure


@pytest.mark.parametrize("S", [LogSemiring(-0.5), MaxPlus(), MinPlus(), Real()])
def test_einsum_matches_broadcast(S):
    a, b, c = normal((3, 4, 5), 20), normal((5, 6), 21), normal((6, 3), 22)
    if isinstance(S, Real):
        expected = np.einsum("bij,jk,kl->bil", a, b, c)
    else:
        # ⊗ is + and ⊕ is S.sum, over j and k.
        x = a[:, :, :, None, None] + b[None, None, :, :, None] + c[None, None, None, :, :]
        expected = S.sum(S.sum(x, axis=3), axis=2)
    got = S.einsum("bij,jk,kl->bil", a, b, c)
    chex.assert_trees_all_close(got, expected, rtol=1e-5, atol=1e-5)
    chex.assert_trees_all_close(S.einsum("ij,jk", b, c), S.matmul(b, c), rtol=1e-6, atol=1e-6)
    chex.assert_trees_all_close(S.einsum("bij->ib", a), jnp.transpose(S.sum(a, axis=2)))


def test_einsum_errors():
    with pytest.raises(ValueError, match="operands"):
        MaxPlus().einsum("ij,jk->ik", jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="ellipsis"):
        MaxPlus().einsum("...ij->...i", jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="sizes"):
        MaxPlus().einsum("ij,jk->ik", jnp.ones((2, 2)), jnp.ones((3, 2)))
    with pytest.raises(TypeError, match="subscripts"):
        MaxPlus().einsum(3, jnp.ones((2, 2)))


def test_closure_is_floyd_warshall():
    rng = np.random.default_rng(23)
    n = 24
    w = rng.uniform(1.0, 10.0, (n, n))
    w[rng.random((n, n)) < 0.7] = INF
    np.fill_diagonal(w, INF)
    dense = np.where(np.isinf(w), 0.0, w)
    expected = scipy.sparse.csgraph.floyd_warshall(dense, directed=True)
    np.testing.assert_allclose(MinPlus().closure(w), expected, rtol=1e-6)
    np.testing.assert_allclose(LogSemiring(-INF).closure(w, num_squarings=5), expected, rtol=1e-6)
    np.testing.assert_allclose(-MaxPlus().closure(-w), expected, rtol=1e-6)


def test_closure_log_semiring_is_the_dequantised_inverse():
    with jax.enable_x64(True):
        beta = 2.0
        a = normal((6, 6), 24, np.float64) - 2.0
        e = np.exp(beta * a)
        assert np.max(np.abs(np.linalg.eigvals(e))) < 1
        expected = np.log(np.linalg.inv(np.eye(6) - e)) / beta
        np.testing.assert_allclose(LogSemiring(beta).closure(a), expected, rtol=1e-10)
        np.testing.assert_allclose(Real().closure(e), np.linalg.inv(np.eye(6) - e), rtol=1e-10)


def test_closure_errors():
    with pytest.raises(ValueError, match="square"):
        MaxPlus().closure(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="num_squarings"):
        MaxPlus().closure(jnp.ones((2, 2)), num_squarings=-1)
    with pytest.raises(TypeError, match="num_squarings"):
        MaxPlus().closure(jnp.ones((2, 2)), num_squarings=1.5)


# ----------------------------------------------------------------------------------------------
# Gradients


def broadcast_matmul(a, b, beta):
    return smooth_max(a[..., :, :, None] + b[..., None, :, :], beta=beta, axis=-2)


@pytest.mark.parametrize("beta", [0.3, 2.0, -1.5, 40.0, 500.0, -500.0, INF, -INF])
def test_gradients_match_autodiff_of_broadcast(beta):
    with jax.enable_x64(True):
        a, b = normal((2, 7, 9), 25, np.float64), normal((1, 9, 5), 26, np.float64)
        w = normal((2, 7, 5), 27, np.float64)
        a[0, 2, 3] = -INF if beta > 0 else INF
        b[0, 4, :] = -INF if beta > 0 else INF

        def loss(f):
            return lambda a, b, beta: jnp.sum(w * f(a, b, beta))

        got = jax.grad(loss(lambda a, b, beta: LogSemiring(beta).matmul(a, b)), (0, 1, 2))(
            a, b, beta
        )
        want = jax.grad(loss(broadcast_matmul), (0, 1, 2))(a, b, beta)
        chex.assert_trees_all_close(got, want, rtol=1e-9, atol=1e-9)


def test_gradients_with_few_damaged_entries():
    with jax.enable_x64(True):
        a, b = 0.1 * normal((16, 16), 28, np.float64), 0.1 * normal((16, 16), 29, np.float64)
        a[3, :5] = 500.0
        w = normal((16, 16), 30, np.float64)
        for beta in (3.0, -3.0):
            got = jax.grad(lambda a, b, t: jnp.sum(w * LogSemiring(t).matmul(a, b)), (0, 1))
            want = jax.grad(lambda a, b, t: jnp.sum(w * broadcast_matmul(a, b, t)), (0, 1))
            got, want = got(a, b, beta), want(a, b, beta)
            chex.assert_trees_all_close(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("beta", [1500.0, -1500.0])
def test_gradients_at_large_beta_by_the_head_tail_split(beta):
    # β·spread beyond float64's exponent range: the head/tail VJP, with the semiring zero, a dead
    # row and batch broadcasting.
    zero = -INF if beta > 0 else INF
    with jax.enable_x64(True):
        a = with_zeros(normal((2, 40, 64), 33, np.float64), zero, 6)
        b = normal((1, 64, 30), 34, np.float64)
        w = normal((2, 40, 30), 35, np.float64)

        def loss(f):
            return lambda a, b, beta: jnp.sum(w * f(a, b, beta))

        got = jax.grad(loss(lambda a, b, beta: LogSemiring(beta).matmul(a, b)), (0, 1, 2))(
            a, b, beta
        )
        want = jax.grad(loss(broadcast_matmul), (0, 1, 2))(a, b, beta)
        chex.assert_trees_all_close(got[:2], want[:2], rtol=1e-9, atol=1e-9)
        chex.assert_trees_all_close(got[2], want[2], rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("beta", [100.0, -100.0])
def test_gradients_float32_at_beta_100(beta):
    # Most entries underflow the first pass: the head/tail VJP in float32, against float64
    # weights from the float32 product (the weights' own rounding, β·ε·|C|, is the floor).
    a, b, w = normal((150, 170), 36), normal((170, 140), 37), normal((150, 140), 38)
    da, db = jax.jit(jax.grad(lambda a, b: jnp.sum(w * LogSemiring(beta).matmul(a, b)), (0, 1)))(
        a, b
    )
    c = np.asarray(LogSemiring(beta).matmul(a, b), np.float64)
    x = np.asarray(a, np.float64)[:, :, None] + np.asarray(b, np.float64)[None]
    weights = np.exp(beta * (x - c[:, None, :]))
    wg = weights * np.asarray(w, np.float64)[:, None, :]
    scale = weights * np.abs(np.asarray(w, np.float64))[:, None, :]
    eps = np.finfo(np.float32).eps
    rel = 4 * abs(beta) * eps * np.max(np.abs(c))  # per weight; plus ε of weight dropped per entry
    absw = np.abs(np.asarray(w, np.float64))
    for got, want, bound, dropped in (
        (da, wg.sum(2), scale.sum(2), eps * absw.sum(1, keepdims=True)),
        (db, wg.sum(0), scale.sum(0), eps * absw.sum(0, keepdims=True)),
    ):
        np.testing.assert_array_less(np.abs(np.asarray(got) - want), rel * bound + dropped)


@pytest.mark.parametrize("beta", [30.0, 100.0, 300.0, -100.0])
def test_beta_gradient_float32_at_large_beta(beta):
    # ∂/∂β is a small difference of large sums at large β: no worse than float32 autodiff of the
    # broadcast form (JAX's own logsumexp), against float64.
    a, b, w = normal((128, 160), 39), normal((160, 96), 40), normal((128, 96), 41)
    x = np.asarray(a, np.float64)[:, :, None] + np.asarray(b, np.float64)[None]
    top = x.max(1, keepdims=True) if beta > 0 else x.min(1, keepdims=True)
    e = np.exp(beta * (x - top))
    p = e / e.sum(1, keepdims=True)
    c = top[:, 0] + np.log(e.sum(1)) / beta
    want = np.sum(np.asarray(w, np.float64) * ((p * x).sum(1) - c) / beta)
    ours = jax.jit(jax.grad(lambda t: jnp.sum(w * LogSemiring(t).matmul(a, b))))(jnp.float32(beta))

    def broadcast(t):
        return jnp.sum(w * jax.nn.logsumexp(t * (a[:, :, None] + b[None]), axis=1) / t)

    theirs = jax.jit(jax.grad(broadcast))(jnp.float32(beta))
    assert abs(ours - want) <= max(4 * abs(theirs - want), 2e-4 * abs(want)), (ours, theirs, want)


@pytest.mark.parametrize("beta", [0.7, -40.0])
def test_check_grads(beta):
    with jax.enable_x64(True):
        a, b = normal((4, 6), 31, np.float64), normal((6, 3), 32, np.float64)
        check_grads(
            lambda a, b, beta: LogSemiring(beta).matmul(a, b),
            (a, b, beta),
            order=1,
            modes=["rev"],
        )


def test_maxplus_gradient_splits_ties():
    a = jnp.array([[1.0, 1.0, 0.0]])
    b = jnp.array([[2.0], [2.0], [3.0]])  # three-way tie at 3
    for S in (MaxPlus(), LogSemiring(INF)):
        da, db = jax.grad(lambda a, b, S=S: S.matmul(a, b).sum(), (0, 1))(a, b)
        np.testing.assert_allclose(da, [[1 / 3, 1 / 3, 1 / 3]])
        np.testing.assert_allclose(db, [[1 / 3], [1 / 3], [1 / 3]])
        expected = jax.grad(lambda a: jnp.max(a[:, :, None] + b[None], axis=1).sum())(a)
        np.testing.assert_allclose(da, expected)
    da = jax.grad(lambda a: MinPlus().matmul(a, -b).sum())(-a)
    np.testing.assert_allclose(da, [[1 / 3, 1 / 3, 1 / 3]])


@pytest.mark.slow
@pytest.mark.parametrize("ties", [False, True])
def test_tropical_gradient_with_dead_entries_matches_jnp_max(ties):
    # Entries with no finite term tie all k; elsewhere one k attains the maximum (the scatter
    # path) or, with small integers, several do (the blockwise path).
    rng = np.random.default_rng(42)
    a, b = normal((2, 24, 18), 43), normal((2, 18, 16), 44)
    if ties:
        a, b = np.round(2 * a), np.round(2 * b)
    a[0, 3, :] = -INF  # a dead row of C
    b[1, :, 5] = -INF  # a dead column
    a[1, 7, 4] = -INF
    w = rng.standard_normal((2, 24, 16)).astype(np.float32)
    for S, sign in ((MaxPlus(), 1.0), (MinPlus(), -1.0), (LogSemiring(-INF), -1.0)):
        got = jax.grad(lambda a, b, S=S: jnp.sum(w * S.matmul(a, b)), (0, 1))(sign * a, sign * b)

        def reference(a, b, sign=sign):
            return jnp.sum(w * sign * jnp.max(sign * (a[..., :, :, None] + b[..., None, :, :]), -2))

        want = jax.grad(reference, (0, 1))(sign * a, sign * b)
        chex.assert_trees_all_close(got, want, rtol=1e-6, atol=1e-6)


def test_gradient_temp_memory_is_quadratic():
    a = jax.ShapeDtypeStruct((512, 512), jnp.float32)
    beta = jax.ShapeDtypeStruct((), jnp.float32)
    grad = jax.grad(lambda a, b, beta: LogSemiring(beta).matmul(a, b).sum(), (0, 1, 2))
    mib = jax.jit(grad).lower(a, a, beta).compile().memory_analysis().temp_size_in_bytes / 2**20
    assert mib <= 16, mib  # the broadcast form needs over 512 MiB


# ----------------------------------------------------------------------------------------------
# β as data: jit, vmap, no recompiles


def test_no_recompile_when_beta_changes():
    a, b = normal((8, 6), 33), normal((6, 5), 34)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(S, a, b):
        return S.matmul(a, b), S.sum(a, axis=1), S.add(a, a)

    for beta in [1.0, 100.0, 0.0, -3.0, INF, -INF]:
        f(LogSemiring(jnp.float32(beta)), a, b)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def g(beta, a, b):
        return jax.grad(lambda a: LogSemiring(beta).matmul(a, b).sum())(a)

    for beta in [1.0, 1e3, INF, -2.0]:
        g(jnp.float32(beta), a, b)


def test_vmap_over_beta():
    a, b = normal((7, 6), 35), normal((6, 5), 36)
    betas = jnp.array([0.5, 50.0, INF, -2.0, -INF], jnp.float32)
    f = jax.jit(jax.vmap(lambda beta: LogSemiring(beta).matmul(a, b)))
    got = f(betas)
    for beta, c in zip(betas, got, strict=True):
        np.testing.assert_allclose(c, LogSemiring(beta).matmul(a, b), rtol=1e-6, atol=1e-6)


def test_semiring_is_a_pytree():
    leaves, treedef = jax.tree_util.tree_flatten(LogSemiring(3.0))
    assert leaves == [3.0]
    assert jax.tree_util.tree_unflatten(treedef, [4.0]) == LogSemiring(4.0)
    assert jax.tree_util.tree_leaves(MaxPlus()) == []


def test_stateless_semirings_have_distinct_tree_structures():
    # a jitted function called with one semiring must never be reused for another
    structures = [jax.tree_util.tree_structure(s) for s in (MaxPlus(), MinPlus(), Real())]
    assert len({(hash(t), str(t)) for t in structures}) == 3
    for i, t in enumerate(structures):
        for j, u in enumerate(structures):
            assert (t == u) == (i == j)
    f = jax.jit(lambda x, s: s.sum(x, axis=-1))
    x = jnp.array([1.0, 2.0, 3.0])
    for _ in range(3):
        assert [float(f(x, s)) for s in (MaxPlus(), MinPlus(), Real())] == [3.0, 1.0, 6.0]


def test_tropical_sum_nan_on_a_large_array():
    # Large enough for XLA's vectorised CPU reductions, which may skip a NaN.
    x = np.random.default_rng(15).standard_normal((8, 1024)).astype(np.float32)
    x[1, 5] = np.nan
    for sr in (MaxPlus(), MinPlus(), LogSemiring(1.0), LogSemiring(float("inf"))):
        out = sr.sum(jnp.asarray(x), axis=1)
        assert jnp.isnan(out[1]) and not jnp.isnan(out[jnp.arange(8) != 1]).any(), sr


# ----------------------------------------------------------------------------------------------
# One battery of edge cases, at a size that the CPU engine computes and at one that the definition
# computes, both against the float64 broadcast formula (value, and gradient in A, B and β).

ENGINE_SIZE, DEFINITION_SIZE = (128, 136, 128), (12, 9, 10)


def _battery_case(name, size, beta):
    m, k, n = size
    zero = -INF if beta >= 0 else INF
    rng = np.random.default_rng(abs(hash((name, size))) % 2**32)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    if name == "ties":
        a, b = rng.integers(-3, 4, (m, k)) * 1.0, rng.integers(-3, 4, (k, n)) * 1.0
    elif name == "zeros":  # the semiring zero sprinkled in, a dead row of A and column of B
        a[rng.random(a.shape) < 0.1], b[rng.random(b.shape) < 0.1] = zero, zero
        a[1, :], b[:, 2] = zero, zero
    elif name == "nan_and_inf":
        a[0, 0], b[3, 1], a[2, 4] = np.nan, -zero, zero
    elif name == "spread":  # large β·spread: most BLAS sums underflow
        a, b = 30.0 * a, 30.0 * b
    return a, b


def broadcast_grads(a, b, beta, g):
    """float64 dA, dB, dβ of Σ g C: Gibbs weights, ties split at β = ±inf, uniform at β = 0."""
    x = a[:, :, None] + b[None, :, :]
    c = reference_matmul(a, b, beta)[:, None, :]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if np.isinf(beta):
            w = (x == c) / np.sum(x == c, axis=1, keepdims=True)
            dbeta = 0.0
        elif beta == 0:
            w = np.full(x.shape, 1.0 / x.shape[1])
            dbeta = None
        else:  # entries with no live term (C infinite): uniform weights, as smooth_max
            dead = np.isinf(c)
            log_w = np.where(dead, -np.log(x.shape[1]), beta * (x - c))
            w = np.exp(log_w)
            dbeta = np.sum(g[:, None, :] * np.where(w == 0, 0.0, w * log_w)) / beta**2
    gw = g[:, None, :] * w
    return gw.sum(axis=2), gw.sum(axis=0), dbeta


BATTERY_BETAS = [1.0, 100.0, 1e3, 1e4, -100.0, 0.0, INF, -INF]
BATTERY = ["normal", "ties", "zeros", "nan_and_inf", "spread"]


@pytest.mark.parametrize("size", [ENGINE_SIZE, DEFINITION_SIZE], ids=["engine", "definition"])
@pytest.mark.parametrize("name", BATTERY)
@pytest.mark.parametrize("beta", BATTERY_BETAS)
def test_battery_values(beta, name, size):
    a, b = _battery_case(name, size, beta)
    c = np.asarray(log_matmul(a.astype(np.float32), b.astype(np.float32), jnp.float32(beta)))
    ref = reference_matmul(a.astype(np.float32), b.astype(np.float32), beta)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(ref))
    scale = 1.0 if abs(beta) < 1e3 else 10.0  # float32 rounding of A + B, times (1 + log k/β)
    nan = np.isnan(ref)
    assert_exact(np.where(nan, 0.0, c), np.where(nan, 0.0, ref), atol=2e-5 * scale)


@pytest.mark.parametrize("size", [ENGINE_SIZE, DEFINITION_SIZE], ids=["engine", "definition"])
@pytest.mark.parametrize("name", ["normal", "ties", "zeros", "spread"])
@pytest.mark.parametrize("beta", [1.0, 100.0, -100.0, 0.0, INF, -INF])
def test_battery_gradients_float64(beta, name, size):
    # The CPU engine serves float32 only: in float64 both sizes check the definition.
    if name == "ties" and np.isfinite(beta) and beta != 0:
        pytest.skip("ties matter only in the tropical limits")
    a, b = _battery_case(name, size, beta)
    g = normal((size[0], size[2]), 5, np.float64)
    with jax.enable_x64(True):
        grads = jax.grad(
            lambda a, b, beta: jnp.sum(jnp.asarray(g) * LogSemiring(beta).matmul(a, b)), (0, 1, 2)
        )(a, b, beta)
    da, db, dbeta = broadcast_grads(a, b, beta, g)
    np.testing.assert_allclose(grads[0], da, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(grads[1], db, rtol=1e-7, atol=1e-9)
    if dbeta is not None:
        np.testing.assert_allclose(grads[2], dbeta, rtol=1e-6, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("size", [ENGINE_SIZE, DEFINITION_SIZE], ids=["engine", "definition"])
def test_battery_float32_gradients_and_batch(size):
    m, k, n = size
    a, b = normal((3, m, k), 6), normal((k, n), 7)
    for beta in (1.0, -100.0, INF):
        grads = jax.grad(lambda a, b, beta: LogSemiring(beta).matmul(a, b).sum(), (0, 1))(
            a, b, jnp.float32(beta)
        )
        want = [
            broadcast_grads(a[i].astype(np.float64), b, beta, np.ones((m, n))) for i in range(3)
        ]
        np.testing.assert_allclose(grads[0], np.stack([w[0] for w in want]), rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(grads[1], sum(w[1] for w in want), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("beta", [1.0, -2.0, 0.0, INF])
def test_empty_contraction_value_and_gradient(beta):
    a, b = jnp.zeros((2, 0)), jnp.zeros((0, 3))
    zero = -INF if beta >= 0 else INF
    np.testing.assert_array_equal(LogSemiring(beta).matmul(a, b), np.full((2, 3), zero))
    grads = jax.grad(
        lambda a, b, beta: jnp.sum(jnp.where(jnp.isinf(c := LogSemiring(beta).matmul(a, b)), 0, c)),
        (0, 1, 2),
    )(a, b, jnp.float32(beta))
    assert grads[0].shape == (2, 0) and grads[1].shape == (0, 3) and grads[2] == 0
    assert MaxPlus().matmul(a, b).shape == (2, 3)
    jax.grad(lambda a: jnp.sum(jnp.exp(MinPlus().matmul(a, b) * 0.0)))(a)
