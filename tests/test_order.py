"""Top-k, sort and rank: exact limits, float64 references, closed-form derivatives, edge cases."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import softjax as sjx
from softjax.order import fermi_level, soft_rank, soft_sort, soft_topk, topk_onehot

INF = float("inf")
TRANSFORMS = [jax.jit, lambda f: f]


def _data(shape, seed=0, dtype=jnp.float32):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


# ---------------------------------------------------------------------------------------------
# float64 references


def _mu_bisection(z, k, beta):
    """μ with Σ σ(β(z − μ)) = k by 200 bisections in float64."""
    lo, hi = z.min() - 50 / abs(beta), z.max() + 50 / abs(beta)
    for _ in range(200):
        mid = (lo + hi) / 2
        total = scipy.special.expit(beta * (z - mid)).sum()
        if (total > k) == (beta > 0):
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _isotonic_decreasing(y):
    """The O(n²) pool adjacent violators: restart the scan after every merge."""
    blocks = [[float(v)] for v in y]
    merged = True
    while merged:
        merged = False
        for i in range(len(blocks) - 1):
            if np.mean(blocks[i]) <= np.mean(blocks[i + 1]):
                blocks[i] = blocks[i] + blocks.pop(i + 1)
                merged = True
                break
    return np.concatenate([[np.mean(b)] * len(b) for b in blocks])


def _projection(z, w):
    """argmin over the permutahedron of w of ½‖μ − z‖² (Blondel et al. 2020, Prop. 3)."""
    order = np.argsort(-z, kind="stable")
    w = np.sort(w)[::-1]
    v = _isotonic_decreasing(z[order] - w)
    out = np.empty_like(z)
    out[order] = z[order] - v
    return out


def _sort_ref(z, beta):
    rho = np.arange(len(z), 0, -1, dtype=np.float64)
    return _projection(beta * rho, z)[::-1]  # ascending


def _rank_ref(z, beta):
    rho = np.arange(len(z), 0, -1, dtype=np.float64)
    return _projection(beta * z, rho)


# ---------------------------------------------------------------------------------------------
# top-k


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_topk_onehot_splits_ties_and_sums_to_k(transform):
    f = transform(lambda z, k: topk_onehot(z, k))
    z = jnp.array([3.0, 1.0, 2.0, 2.0, 0.0])
    np.testing.assert_array_equal(f(z, 2), [1, 0, 0.5, 0.5, 0])
    np.testing.assert_array_equal(f(z, 2.5), [1, 0, 0.75, 0.75, 0])
    np.testing.assert_array_equal(f(z, 0), np.zeros(5))
    np.testing.assert_array_equal(f(z, 9), np.ones(5))  # fewer live entries than k: all of them
    x = _data((6, 9))
    np.testing.assert_array_equal(topk_onehot(x, 1), sjx.argmax_onehot(x))
    ref = np.zeros((6, 9), np.float32)
    np.put_along_axis(ref, np.argsort(-np.asarray(x), axis=-1)[:, :3], 1.0, axis=-1)
    np.testing.assert_array_equal(topk_onehot(x, 3), ref)


def test_topk_onehot_integers_masks_nan_and_axis():
    np.testing.assert_array_equal(topk_onehot([2**24 + 1, 2**24, 0], 1), [1, 0, 0])
    z = jnp.array([5.0, 1.0, 2.0, 3.0])
    live = jnp.array([False, True, True, True])
    np.testing.assert_array_equal(topk_onehot(z, 2, where=live), [0, 0, 1, 1])
    np.testing.assert_array_equal(topk_onehot(z, 5, where=live), [0, 1, 1, 1])
    out = topk_onehot(jnp.array([[1.0, jnp.nan, 0.0], [1.0, 2.0, 0.0]]), 1)
    assert np.isnan(out[0]).all() and not np.isnan(out[1]).any()
    x = _data((5, 4))
    np.testing.assert_array_equal(topk_onehot(x, 2, axis=0), topk_onehot(x.T, 2).T)
    np.testing.assert_array_equal(topk_onehot(jnp.array([-INF, -INF, 1.0]), 2), [0.5, 0.5, 1.0])
    np.testing.assert_array_equal(topk_onehot(jnp.array([INF, INF, 1.0]), 1), [0.5, 0.5, 0.0])


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_soft_topk_limits_are_exact(transform):
    f = transform(lambda z, b: soft_topk(z, 3, beta=b))
    x = _data((4, 10))
    x = x.at[0, 2].set(x[0, 5])  # a tie
    np.testing.assert_array_equal(f(x, INF), topk_onehot(x, 3))
    np.testing.assert_array_equal(f(x, -INF), topk_onehot(-x, 3))
    np.testing.assert_array_equal(f(x, 0.0), np.full((4, 10), 0.3, np.float32))


def test_soft_topk_matches_the_float64_bisection_and_kkt():
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        for beta in [0.05, 1.0, -3.0, 40.0]:
            for k in [1.0, 2.5, 7.0]:
                z = rng.standard_normal(9)
                p = np.asarray(soft_topk(jnp.asarray(z), k, beta=beta))
                mu = _mu_bisection(z, k, beta)
                np.testing.assert_allclose(p, scipy.special.expit(beta * (z - mu)), atol=1e-12)
                np.testing.assert_allclose(p.sum(), k, rtol=1e-13)
                # KKT of the entropic problem: β z_i − logit p_i is the same for all i.
                inner = (p > 1e-6) & (p < 1 - 1e-6)
                kkt = (beta * z - scipy.special.logit(p))[inner]
                np.testing.assert_allclose(kkt, kkt.mean(), atol=1e-6)
                level = float(fermi_level(jnp.asarray(z), k, beta=beta))
                np.testing.assert_allclose(level, mu, atol=1e-10)


@pytest.mark.parametrize("x64", [False, True])
def test_soft_topk_plain_path_equals_the_general_reference(x64):
    # Finite levels, no mask, 0 < k < n, moderate β·spread: the fast path (no exponential per
    # pass, solved for the fewer of particles and holes) against the reference for every case.
    from softjax import order

    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        rng = np.random.default_rng(7)
        z = jnp.asarray(rng.standard_normal((6, 300)), dtype)
        spread = float(jnp.max(jnp.max(z, -1) - jnp.min(z, -1)))
        topk = jax.jit(lambda z, k, beta: soft_topk(z, k, beta=beta))
        general = jax.jit(lambda z, k, beta: order._topk_general(z, k, beta, None))
        for beta in [0.05, 1.0, -2.5, 30.0 / spread]:
            for k in [1e-3, 1.0, 8.0, 150.0, 291.5, 300 - 1e-3]:
                p = topk(z, jnp.asarray(k, dtype), jnp.asarray(beta, dtype))
                assert p.dtype == dtype
                z64 = np.asarray(z, np.float64)
                k_in = float(np.asarray(k, dtype))  # 300 − 1e-3 is 300 − 1.007e-3 in float32
                truth = np.stack(
                    [scipy.special.expit(beta * (r - _mu_bisection(r, k_in, beta))) for r in z64]
                )
                tol = 1e-12 if x64 else 2e-6
                np.testing.assert_allclose(p, truth, atol=tol, rtol=tol)
                # At least as close to the truth as the reference (which loses digits of 1 − p
                # when the holes are few).
                b = jnp.asarray(beta, dtype).reshape(1, 1)
                ref = general(z, jnp.asarray(k, dtype), b)
                err_ref = np.abs(np.asarray(ref, np.float64) - truth).max()
                assert np.abs(np.asarray(p, np.float64) - truth).max() <= max(err_ref, tol)
        # A spread beyond the fast path's range goes to the reference, with the same answer.
        wide = z * 100.0
        np.testing.assert_array_equal(
            soft_topk(wide, 8.0, beta=2.0),
            order._topk_general(wide, jnp.asarray(8.0, dtype), jnp.ones((1, 1), dtype) * 2, None),
        )


@settings(max_examples=6, deadline=None)
@given(
    st.lists(st.floats(-5, 5, width=32), min_size=2, max_size=12),
    st.floats(0.2, 0.95),
    st.sampled_from([0.3, 2.0, 50.0]),
)
def test_soft_topk_sums_to_k_and_value_grows_with_beta(z, frac, beta):
    z = jnp.asarray(z, jnp.float32)
    k = frac * len(z)
    p = soft_topk(z, k, beta=beta)
    assert bool(((p >= 0) & (p <= 1)).all())
    np.testing.assert_allclose(float(p.sum()), k, rtol=2e-5, atol=2e-5)
    values = [float(soft_topk(z, k, beta=b) @ z) for b in [0.0, beta / 4, beta, INF]]
    assert all(a <= b + 1e-4 for a, b in zip(values, values[1:], strict=False))


def test_soft_topk_fermi_step_sharpens_with_beta():
    z = jnp.linspace(-1.0, 1.0, 21)
    widths = []
    for beta in [1.0, 4.0, 16.0, 64.0]:
        p = soft_topk(z, 10.5, beta=beta)
        widths.append(float(jnp.sum(p * (1 - p))))
    assert widths == sorted(widths, reverse=True)


@pytest.mark.slow
def test_soft_topk_gradients_in_float64():
    with jax.enable_x64(True):
        z = jnp.asarray(np.random.default_rng(2).standard_normal(6))
        w = jnp.asarray(np.random.default_rng(3).standard_normal(6))
        topk = jax.jit(lambda z, k, b: soft_topk(z, k, beta=b) @ w)
        check_grads(topk, (z, 2.3, 0.7), order=2)
        check_grads(topk, (z, 2.3, -2.0), order=1)
        # At β = 0: ∂p/∂k = 1/n, ∂p/∂z = 0.
        dk = jax.grad(lambda k: soft_topk(z, k, beta=0.0)[0])(2.0)
        np.testing.assert_allclose(dk, 1 / 6)
        dz = jax.grad(lambda z: soft_topk(z, 2.0, beta=0.0) @ w)(z)
        np.testing.assert_array_equal(dz, np.zeros(6))
        dinf = jax.grad(lambda z: soft_topk(z, 2.0, beta=INF) @ w)(z)
        np.testing.assert_array_equal(dinf, np.zeros(6))


def test_soft_topk_masks_infinities_nan_and_few_entries():
    z = jnp.array([1.0, 9.0, 0.5, -1.0, 2.0])
    live = jnp.array([True, False, True, True, True])
    p = soft_topk(z, 2.0, beta=1.5, where=live)
    assert p[1] == 0
    chex.assert_trees_all_close(
        jnp.delete(p, 1), soft_topk(jnp.delete(z, 1), 2.0, beta=1.5), rtol=1e-6
    )
    g = jax.grad(lambda z: soft_topk(z, 2.0, beta=1.5, where=live) @ jnp.arange(5.0))(z)
    assert g[1] == 0 and jnp.isfinite(g).all()
    np.testing.assert_array_equal(soft_topk(z, 7.0, beta=1.5, where=live), live.astype(float))
    p = soft_topk(jnp.array([INF, 0.0, 1.0, -INF]), 2.0, beta=1.0)
    assert p[0] == 1 and p[3] == 0
    np.testing.assert_allclose(float(p.sum()), 2.0, rtol=1e-6)
    out = soft_topk(jnp.array([[1.0, jnp.nan, 0.0], [1.0, 2.0, 0.0]]), 1, beta=1.0)
    assert np.isnan(out[0]).all() and not np.isnan(out[1]).any()


@pytest.mark.slow
def test_soft_topk_per_slice_beta_k_vmap_and_16_bit():
    x = _data((4, 8))
    betas = jnp.array([[-INF], [0.0], [2.0], [INF]])
    ks = jnp.array([[1.0], [2.0], [3.5], [4.0]])
    out = soft_topk(x, ks, beta=betas)
    for i in range(4):
        np.testing.assert_allclose(out[i], soft_topk(x[i], ks[i, 0], beta=betas[i, 0]), rtol=1e-6)
    vm = jax.vmap(lambda z, b: soft_topk(z, 3, beta=b))(x, betas[:, 0])
    chex.assert_trees_all_close(vm, soft_topk(x, 3, beta=betas), rtol=1e-6)
    h = soft_topk(x.astype(jnp.bfloat16), 3, beta=2.0)
    assert h.dtype == jnp.bfloat16
    chex.assert_trees_all_close(
        h.astype(jnp.float32),
        soft_topk(x.astype(jnp.bfloat16).astype(jnp.float32), 3, beta=2.0),
        atol=1e-2,
    )


def test_soft_topk_no_recompile_when_beta_changes():
    f = jax.jit(chex.assert_max_traces(lambda z, b: soft_topk(z, 2, beta=b), n=1))
    x = _data((3, 5))
    for b in [0.0, 1.0, INF, -INF, -2.0]:
        f(x, b)


def test_argument_errors():
    with pytest.raises(ValueError, match="k must be >= 0, got -1"):
        soft_topk(jnp.ones(3), -1)
    with pytest.raises(TypeError, match="axis must be an int"):
        soft_topk(jnp.ones((2, 3)), 1, axis=(0, 1))
    with pytest.raises(ValueError, match="axis=2 is out of range"):
        topk_onehot(jnp.ones((2, 3)), 1, axis=2)
    with pytest.raises(TypeError, match="descending must be a bool"):
        soft_sort(jnp.ones(3), descending=1)
    with pytest.raises(ValueError, match="beta of shape"):
        soft_rank(jnp.ones((2, 3)), beta=jnp.ones(3))


# ---------------------------------------------------------------------------------------------
# sort and rank


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_sort_and_rank_limits_are_exact(transform):
    x = np.array(_data((3, 11)))
    x[0, [1, 4, 7]] = x[0, 2]  # ties
    x[1, :5] = 0.25
    x = jnp.asarray(x)
    sort = transform(lambda z, b: soft_sort(z, beta=b))
    rank = transform(lambda z, b: soft_rank(z, beta=b))
    np.testing.assert_array_equal(sort(x, INF), jnp.sort(x, axis=-1))
    np.testing.assert_array_equal(sort(x, -INF), jnp.sort(x, axis=-1)[:, ::-1])
    ranks = scipy.stats.rankdata(np.asarray(x), method="average", axis=-1)
    np.testing.assert_array_equal(rank(x, INF), ranks)
    np.testing.assert_array_equal(rank(x, -INF), 12 - ranks)
    np.testing.assert_allclose(
        sort(x, 0.0), np.broadcast_to(x.mean(-1, keepdims=True), x.shape), rtol=1e-6
    )
    np.testing.assert_array_equal(rank(x, 0.0), np.full(x.shape, 6.0))
    np.testing.assert_array_equal(soft_sort(x, beta=INF, descending=True), -jnp.sort(-x))
    np.testing.assert_array_equal(soft_rank(x, beta=INF, descending=True), 12 - ranks)


def test_sort_and_rank_match_the_quadratic_pav_reference_in_float64():
    with jax.enable_x64(True):
        rng = np.random.default_rng(4)
        for n in [1, 2, 5, 13]:
            z = rng.standard_normal(n)
            if n > 4:
                z[3] = z[1]
            for beta in [0.05, 0.4, 1.0, 3.0, 30.0, -0.7]:
                sort = np.asarray(soft_sort(jnp.asarray(z), beta=beta))
                ref = _sort_ref(z, beta) if beta > 0 else _sort_ref(z, -beta)[::-1]
                np.testing.assert_allclose(sort, ref, atol=1e-12)
                rank = np.asarray(soft_rank(jnp.asarray(z), beta=beta))
                np.testing.assert_allclose(rank, _rank_ref(z, beta), atol=1e-12)
                np.testing.assert_allclose(sort.sum(), z.sum(), rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(rank.sum(), n * (n + 1) / 2, rtol=1e-12)


@pytest.mark.slow
def test_sort_and_rank_gradients_in_float64():
    with jax.enable_x64(True):
        z = jnp.asarray(np.random.default_rng(5).standard_normal(7))
        w = jnp.asarray(np.random.default_rng(6).standard_normal(7))
        sort = jax.jit(lambda z, b: soft_sort(z, beta=b) @ w)
        rank = jax.jit(lambda z, b: soft_rank(z, beta=b) @ w)
        check_grads(sort, (z, 0.4), order=2)
        check_grads(rank, (z, -0.9), order=2)
        check_grads(sort, (z, -1.3), order=1)
        check_grads(rank, (z, 2.1), order=1)
        for f in [soft_sort, soft_rank]:
            g = jax.grad(lambda z, f=f: f(z, beta=INF) @ w)(z)
            assert jnp.isfinite(g).all()
        # The Jacobian of the sort at β = ∞ is the permutation.
        jac = jax.jacobian(lambda z: soft_sort(z, beta=INF))(z)
        np.testing.assert_array_equal(jac, np.eye(7)[np.argsort(np.asarray(z))])


def test_soft_ranks_converge_to_ranks_monotonically():
    z = jnp.array([0.0, 1.0, 1.001, 3.0, -2.0])
    exact = scipy.stats.rankdata(np.asarray(z))
    errors = [float(jnp.abs(soft_rank(z, beta=b) - exact).max()) for b in [0.1, 1.0, 10.0, 1e4]]
    assert errors == sorted(errors, reverse=True) and errors[-1] == 0.0
    # Near the tie, convergence is slow: at β = 10 the close pair is still pooled.
    r = soft_rank(z, beta=10.0)
    np.testing.assert_allclose(r[1], r[2] - 10 * 0.001, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(r)[[0, 3, 4]], exact[[0, 3, 4]])


def test_sort_rank_axis_per_slice_beta_vmap_and_16_bit():
    x = _data((5, 6), seed=7)
    chex.assert_trees_all_close(
        soft_sort(x, beta=1.3, axis=0), soft_sort(x.T, beta=1.3).T, rtol=1e-6
    )
    betas = jnp.array([[-INF], [0.0], [0.5], [2.0], [INF]])
    out = soft_rank(x, beta=betas)
    for i in range(5):
        np.testing.assert_allclose(out[i], soft_rank(x[i], beta=betas[i, 0]), rtol=1e-6)
    vm = jax.vmap(lambda z, b: soft_sort(z, beta=b))(x, betas[:, 0])
    chex.assert_trees_all_close(vm, soft_sort(x, beta=betas), rtol=1e-6)
    h = soft_sort(x.astype(jnp.float16), beta=1.0)
    assert h.dtype == jnp.float16


def test_topk_and_sort_agree_in_the_limits():
    x = _data((3, 9), seed=8)
    for beta, k in [(INF, 3), (0.0, 4)]:
        top = jnp.sum(soft_topk(x, k, beta=beta) * x, axis=-1)
        srt = jnp.sum(soft_sort(x, beta=beta, descending=True)[:, :k], axis=-1)
        chex.assert_trees_all_close(top, srt, rtol=1e-5, atol=1e-5)


def test_rank_blocks_keep_their_digits_beside_large_entries():
    # Block means from each block's own sum: a large entry before a block does not cancel it.
    chex.assert_trees_all_close(
        soft_rank(jnp.array([1e8, 1.0, 1.5]), beta=1.0), jnp.array([3.0, 1.25, 1.75])
    )
    z = jnp.asarray(np.random.default_rng(5).standard_normal(50) + 1e6, jnp.float32)
    ranks = np.asarray(soft_rank(z, beta=3.0), np.float64)
    np.testing.assert_allclose(ranks.sum(), 50 * 51 / 2, rtol=1e-6)


def test_soft_topk_small_k_and_infinite_levels():
    z = jnp.asarray(np.random.default_rng(0).standard_normal(10), jnp.float32)
    for k in (1e-8, 1e-6, 1e-4):
        np.testing.assert_allclose(float(soft_topk(z, k, beta=1.0).sum()), k, rtol=1e-5)
    # +inf levels hold at most k fermions between them, as in the β = ∞ limit.
    z = jnp.array([INF, INF, INF, 0.0])
    for beta in (1.0, INF):
        chex.assert_trees_all_close(soft_topk(z, 1.0, beta=beta), jnp.array([1, 1, 1, 0]) / 3)


def test_sort_and_rank_of_an_empty_axis_are_empty():
    z = jnp.zeros((3, 0))
    for fn in (soft_sort, soft_rank):
        out = fn(z, beta=1.5)
        assert out.shape == (3, 0)
        assert jax.grad(lambda z, fn=fn: fn(z, beta=1.5).sum())(z).shape == (3, 0)


def test_soft_topk_of_an_empty_axis_is_empty():
    for z in (jnp.zeros((3, 0)), jnp.zeros((0,))):
        assert soft_topk(z, 0.0).shape == z.shape
