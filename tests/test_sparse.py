"""Tests of the sparse family: sparsemax, α-entmax, the Tsallis smooth max, Fenchel–Young losses."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import softjax as sjx
from softjax.sparse import entmax, fenchel_young_loss, sparsemax, tsallis_max

INF = float("inf")
NAN = float("nan")
transforms = pytest.mark.parametrize("jit", [jax.jit, lambda f: f], ids=["jit", "eager"])


def _data(shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def _sparsemax_sorted(v):
    """The float64 reference: the sorting-based projection onto the simplex."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u)
    k = np.arange(1, len(v) + 1)
    support = u - (css - 1) / k > 0
    rho = k[support][-1]
    tau = (css[rho - 1] - 1) / rho
    return np.maximum(v - tau, 0)


def _entmax_bisect(v, alpha):
    """The float64 reference: p = [(α − 1)v − τ]_+^{1/(α−1)} with τ by bisection."""
    x = (alpha - 1) * (v - v.max())
    lo, hi = -1.0, 0.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if np.sum(np.maximum(x - mid, 0) ** (1 / (alpha - 1))) > 1:
            lo = mid
        else:
            hi = mid
    p = np.maximum(x - lo, 0) ** (1 / (alpha - 1))
    return p / p.sum()


# ------------------------------------------------------------------------------------------------
# Values against references


@transforms
@pytest.mark.parametrize("beta", [0.3, 1.0, 7.0, -2.0])
def test_sparsemax_matches_sorting_reference_and_optax(jit, beta):
    with jax.enable_x64(True):
        x = _data((5, 9), scale=2.0)
        out = np.asarray(jit(lambda z: sparsemax(z, beta=beta))(jnp.asarray(x)))
        ref = np.stack([_sparsemax_sorted(beta * r) for r in x])
        np.testing.assert_allclose(out, ref, atol=1e-13)
        proj = jax.vmap(optax.projections.projection_simplex)(beta * jnp.asarray(x))
        np.testing.assert_allclose(out, proj, atol=1e-12)
    x32 = jnp.asarray(x, jnp.float32)
    np.testing.assert_allclose(sparsemax(x32, beta=beta), ref, atol=2e-6)


@pytest.mark.parametrize("alpha", [1.5, 1.25, 2.0, 3.0, 6.0])
@pytest.mark.parametrize("traced", [False, True])
def test_entmax_matches_bisection_reference(alpha, traced):
    with jax.enable_x64(True):
        x = _data((4, 8), seed=1, scale=1.5)
        a = jnp.asarray(alpha) if traced else alpha
        out = np.asarray(entmax(jnp.asarray(x), alpha=a, beta=1.3))
        ref = np.stack([_entmax_bisect(1.3 * r, alpha) for r in x])
        np.testing.assert_allclose(out, ref, atol=1e-12)
        np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-14)


def test_entmax_at_one_and_two_are_softargmax_and_sparsemax():
    x = jnp.asarray(_data((3, 11), seed=2), jnp.float32)
    np.testing.assert_array_equal(entmax(x, alpha=1.0, beta=2.0), sjx.softargmax(x, beta=2.0))
    chex.assert_trees_all_close(entmax(x, alpha=jnp.asarray(1.0)), sjx.softargmax(x), rtol=1e-6)
    np.testing.assert_array_equal(entmax(x, alpha=2.0, beta=0.7), sparsemax(x, beta=0.7))
    chex.assert_trees_all_close(entmax(x, alpha=jnp.asarray(2.0)), sparsemax(x), atol=1e-6)
    # α → ∞ tends to the arg max; a traced α ≤ 1 acts as α = 1.
    np.testing.assert_allclose(entmax(x, alpha=60.0, beta=50.0), sjx.argmax_onehot(x), atol=1e-3)
    chex.assert_trees_all_close(entmax(x, alpha=jnp.asarray(0.5)), sjx.softargmax(x), rtol=1e-6)


def test_kkt_conditions_and_exact_zeros():
    with jax.enable_x64(True):
        x = jnp.asarray(_data((6, 30), seed=3, scale=2.0))
        for alpha in [1.5, 2.0, 2.5]:
            p = np.asarray(entmax(x, alpha=alpha))
            assert np.all(p >= 0) and np.any(p == 0)
            # Stationarity: (α − 1)z_i − p_i^{α−1} = τ on the support, ≤ τ off it.
            g = (alpha - 1) * np.asarray(x) - p ** (alpha - 1)
            for row_g, row_p in zip(g, p, strict=True):
                tau = row_g[row_p > 0]
                np.testing.assert_allclose(tau, tau[0], atol=1e-12)
                assert np.all(row_g[row_p == 0] <= tau[0] + 1e-12)


# ------------------------------------------------------------------------------------------------
# Limits in β (bitwise where exact), ties, infinities, masks


@transforms
def test_beta_limits_are_exact(jit):
    x = jnp.array([[1.0, 5.0, 5.0, -2.0], [3.0, -1.0, 0.0, -1.0]])
    for f in [
        lambda z, b: sparsemax(z, beta=b),
        lambda z, b: entmax(z, beta=b),
        lambda z, b: entmax(z, alpha=jnp.asarray(1.7), beta=b),
    ]:
        f = jit(f)
        np.testing.assert_array_equal(f(x, INF), sjx.argmax_onehot(x))
        np.testing.assert_array_equal(f(x, -INF), sjx.argmin_onehot(x))
        np.testing.assert_array_equal(f(x, 0.0), jnp.full(x.shape, 0.25))
        # Per-slice β: one row at +∞, one finite.
        both = f(x, jnp.array([[INF], [1.0]]))
        np.testing.assert_array_equal(both[0], sjx.argmax_onehot(x[0]))
        np.testing.assert_allclose(both[1], f(x[1], 1.0), atol=1e-7)
    # Large finite β tends to the limit without overflow.
    np.testing.assert_array_equal(sparsemax(x, beta=1e30), sjx.argmax_onehot(x))


def test_support_shrinks_as_beta_grows():
    x = jnp.asarray(_data((64,), seed=4))
    sizes = [int(jnp.sum(sparsemax(x, beta=b) > 0)) for b in [0.001, 0.1, 1.0, 10.0, INF]]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 64 and sizes[-1] == 1


@pytest.mark.parametrize("gap", [2e-6, 3e-6, 5e-6])
def test_sparsemax_threshold_just_above_a_large_tie(gap):
    # Ten entries share the mass (τ = −0.1 exactly) and 990 tied entries sit just below τ: the
    # threshold's secant slopes span a change of support of 990 entries near the root, and the
    # iteration must still end at the root, not after a step that looks small.
    z = np.concatenate([np.zeros(10), np.full(990, -0.1 - gap)]).astype(np.float32)
    p = np.asarray(jax.jit(sparsemax)(jnp.asarray(z)), np.float64)
    np.testing.assert_allclose(p[:10], 0.1, rtol=4 * np.finfo(np.float32).eps)
    np.testing.assert_array_equal(p[10:], 0.0)


def test_ties_infinities_nan_and_masks():
    np.testing.assert_array_equal(sparsemax(jnp.array([2.0, 2.0, -5.0])), [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(sparsemax(jnp.array([INF, 1.0, INF])), [0.5, 0.0, 0.5])
    np.testing.assert_allclose(entmax(jnp.array([-INF, -INF])), [0.5, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(sparsemax(jnp.array([-INF, 0.0])), [0.0, 1.0])
    out = sparsemax(jnp.array([[0.0, NAN, 1.0], [0.0, 1.0, 2.0]]))
    assert np.all(np.isnan(out[0])) and not np.any(np.isnan(out[1]))
    # Masked entries are invisible to values and gradients, also a masked NaN.
    z = jnp.array([0.3, NAN, 0.5, 9.0])
    where = jnp.array([True, False, True, False])
    for f in [sparsemax, entmax, lambda z, **k: entmax(z, alpha=2.5, **k)]:
        out = f(z, where=where)
        chex.assert_trees_all_close(out[jnp.array([0, 2])], f(jnp.array([0.3, 0.5])), atol=1e-7)
        np.testing.assert_array_equal(out[jnp.array([1, 3])], [0.0, 0.0])
        g = jax.grad(lambda z: jnp.sum(f(z, where=where) * jnp.arange(4.0)))(z)  # noqa: B023
        np.testing.assert_array_equal(g[jnp.array([1, 3])], [0.0, 0.0])
        assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(sparsemax(z, where=jnp.zeros(4, bool)), jnp.zeros(4))


def test_sixteen_bit_input():
    x = _data((4, 16), seed=5)
    for dtype in [jnp.bfloat16, jnp.float16]:
        for f in [sparsemax, entmax]:
            out = f(jnp.asarray(x, dtype), beta=2.0)
            assert out.dtype == dtype
            ref = f(jnp.asarray(jnp.asarray(x, dtype), jnp.float32), beta=2.0)
            np.testing.assert_allclose(np.asarray(out, np.float32), ref, atol=1e-2)
        assert tsallis_max(jnp.asarray(x, dtype)).dtype == dtype


# ------------------------------------------------------------------------------------------------
# Gradients


@pytest.mark.slow
def test_check_grads_float64():
    """Order 2 in (z, β, α) jointly for entmax (α in the traced path), order 1 elsewhere."""
    with jax.enable_x64(True):
        x = jnp.asarray(_data((2, 5), seed=6))
        w = jnp.asarray(_data((2, 5), seed=7))

        @jax.jit
        def ent(z, b, a):
            return jnp.sum(w * entmax(z, alpha=a, beta=b))

        @jax.jit
        def tmax(z, b, a):
            return jnp.sum(w[:, 0] * tsallis_max(z, alpha=a, beta=b))

        check_grads(ent, (x, 1.3, jnp.asarray(1.5)), order=2, modes="rev", eps=1e-6)
        for alpha in [1.3, 3.0]:
            check_grads(ent, (x, -0.8, jnp.asarray(alpha)), order=1, eps=1e-6)
            check_grads(tmax, (x, 1.3, jnp.asarray(alpha)), order=1, eps=1e-6)
        # The static exact paths (α = 1.5, 2) have the same derivatives.
        static = jax.jit(lambda z, b: jnp.sum(w * entmax(z, alpha=1.5, beta=b)))
        sparse = jax.jit(lambda z, b: jnp.sum(w * sparsemax(z, beta=b)))
        check_grads(static, (x, 0.7), order=1, eps=1e-6)
        check_grads(sparse, (x, 0.7), order=2, modes="rev", eps=1e-6)


def test_closed_form_jacobian_of_sparsemax():
    with jax.enable_x64(True):
        z = jnp.array([0.1, 0.5, 0.4, -1.0])
        beta = 2.0
        jac = jax.jacfwd(lambda z: sparsemax(z, beta=beta))(z)
        s = (sparsemax(z, beta=beta) > 0).astype(float)
        np.testing.assert_allclose(jac, beta * (np.diag(s) - np.outer(s, s) / s.sum()), atol=1e-14)
        np.testing.assert_allclose(jax.jacrev(lambda z: sparsemax(z, beta=beta))(z), jac)


def test_alpha_derivative_at_one_is_the_limit():
    with jax.enable_x64(True):
        x = jnp.asarray(_data((5,), seed=8))
        f = lambda a: entmax(x, alpha=a)  # noqa: E731
        h = 1e-6
        fd = (f(jnp.asarray(1.0 + h)) - f(jnp.asarray(1.0))) / h
        np.testing.assert_allclose(jax.jacfwd(f)(jnp.asarray(1.0)), fd, atol=1e-5)
        g = lambda a: tsallis_max(x, alpha=a)  # noqa: E731
        np.testing.assert_allclose(
            jax.grad(g)(jnp.asarray(1.0)), (g(1.0 + h) - g(1.0)) / h, atol=1e-5
        )


def test_gradients_finite_at_limits():
    x = jnp.array([1.0, 5.0, 5.0, -2.0])
    for beta in [INF, -INF, 0.0]:
        g = jax.grad(lambda z, b: jnp.sum(entmax(z, beta=b) ** 2), argnums=(0, 1))(x, beta)
        assert all(np.all(np.isfinite(v)) for v in g)
        np.testing.assert_array_equal(g[0], jnp.zeros(4)) if beta != 0 else None


# ------------------------------------------------------------------------------------------------
# The smooth max and the Fenchel–Young loss


def test_tsallis_max_limits_and_gradient():
    x = jnp.asarray(_data((3, 7), seed=9), jnp.float32)
    np.testing.assert_array_equal(tsallis_max(x, alpha=1.0, beta=2.0), sjx.smooth_max(x, beta=2.0))
    np.testing.assert_array_equal(tsallis_max(x, beta=INF), jnp.max(x, -1))
    np.testing.assert_array_equal(tsallis_max(x, alpha=2.0, beta=-INF), jnp.min(x, -1))
    assert np.all(np.isinf(tsallis_max(x, beta=0.0)))
    for alpha in [1.5, 2.0, 2.7]:
        value = tsallis_max(x, alpha=alpha, beta=3.0)
        # max z ≤ tmax ≤ max z + H_α(uniform)/β
        n = x.shape[-1]
        bound = (1 - n ** (1 - alpha)) / (alpha * (alpha - 1)) / 3.0
        assert np.all(value >= jnp.max(x, -1)) and np.all(value <= jnp.max(x, -1) + bound + 1e-6)
        g = jax.grad(lambda z: jnp.sum(tsallis_max(z, alpha=alpha, beta=3.0)))(x)  # noqa: B023
        chex.assert_trees_all_close(g, entmax(x, alpha=alpha, beta=3.0), atol=1e-7)


@pytest.mark.slow
def test_fenchel_young_loss():
    z = jnp.asarray(_data((4, 6), seed=10), jnp.float32)
    labels = jax.nn.one_hot(jnp.array([0, 3, 5, 2]), 6)
    np.testing.assert_allclose(
        fenchel_young_loss(z, labels), optax.softmax_cross_entropy(z, labels), rtol=1e-6
    )
    soft = sjx.softargmax(z * 0.5)
    ent = -jnp.sum(soft * jnp.log(soft), -1)
    np.testing.assert_allclose(
        fenchel_young_loss(z, soft), optax.softmax_cross_entropy(z, soft) - ent, rtol=1e-5
    )
    np.testing.assert_allclose(
        fenchel_young_loss(z, labels, beta=INF), jnp.max(z, -1) - jnp.sum(labels * z, -1)
    )
    # optax's construction: the same loss less H_α(y)/β, constant in z.
    optax_fy = optax.losses.make_fenchel_young_loss(lambda s: tsallis_max(s, alpha=2.0))
    np.testing.assert_allclose(optax_fy(z, labels), fenchel_young_loss(z, labels, alpha=2.0))
    for alpha, beta in [(1.5, 2.0), (2.0, -1.5), (3.0, 1.0)]:
        loss = fenchel_young_loss(z, soft, alpha=alpha, beta=beta)
        assert np.all(loss >= -1e-6)
        p = entmax(z, alpha=alpha, beta=beta)
        np.testing.assert_allclose(fenchel_young_loss(z, p, alpha=alpha, beta=beta), 0, atol=2e-6)
        g = jax.grad(lambda z: jnp.sum(fenchel_young_loss(z, soft, alpha=alpha, beta=beta)))(z)  # noqa: B023
        chex.assert_trees_all_close(g, np.sign(beta) * (p - soft), atol=2e-6)
    np.testing.assert_array_equal(fenchel_young_loss(z, soft, beta=0.0), jnp.full(4, INF))
    np.testing.assert_array_equal(fenchel_young_loss(z, jnp.full(6, 1 / 6), beta=0.0), 0.0)


# ------------------------------------------------------------------------------------------------
# Properties, transformations, arguments


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.floats(-20, 20), min_size=2, max_size=12),
    st.sampled_from([0.5, 1.0, 4.0]),
    st.sampled_from([1.5, 2.0, 2.5]),
)
def test_properties(values, beta, alpha):
    z = jnp.asarray(values, jnp.float32)
    p = entmax(z, alpha=alpha, beta=beta)
    assert np.all(p >= 0)
    np.testing.assert_allclose(jnp.sum(p), 1.0, rtol=1e-5)
    chex.assert_trees_all_close(entmax(z + 3.0, alpha=alpha, beta=beta), p, atol=2e-5)
    perm = np.random.default_rng(len(values)).permutation(len(values))
    chex.assert_trees_all_close(entmax(z[perm], alpha=alpha, beta=beta), p[perm], atol=1e-6)


def test_vmap_per_slice_and_axes():
    x = jnp.asarray(_data((4, 3, 5), seed=11), jnp.float32)
    betas = jnp.array([0.5, 1.0, 2.0, INF])
    alphas = jnp.array([1.2, 1.5, 2.0, 3.0])
    out = jax.vmap(lambda z, b, a: entmax(z, alpha=a, beta=b))(x, betas, alphas)
    per_slice = entmax(x, alpha=alphas[:, None, None], beta=betas[:, None, None])
    chex.assert_trees_all_close(out, per_slice, atol=1e-6)
    for i in range(4):
        chex.assert_trees_all_close(out[i], entmax(x[i], alpha=alphas[i], beta=betas[i]), atol=1e-6)
    moved = sparsemax(x, axis=1)
    chex.assert_trees_all_close(moved, jnp.moveaxis(sparsemax(jnp.moveaxis(x, 1, -1)), -1, 1))
    both = sparsemax(x, axis=(1, 2))
    chex.assert_trees_all_close(both, sparsemax(x.reshape(4, 15)).reshape(4, 3, 5), atol=1e-7)


def test_no_recompile_when_beta_or_alpha_change():
    f = jax.jit(chex.assert_max_traces(lambda z, b, a: entmax(z, alpha=a, beta=b), n=1))
    z = jnp.arange(5.0)
    for b, a in [(1.0, 1.5), (INF, 2.0), (0.0, 1.0), (-3.0, 4.0)]:
        f(z, jnp.asarray(b), jnp.asarray(a))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="alpha must be >= 1, got 0.5"):
        entmax(jnp.ones(3), alpha=0.5)
    with pytest.raises(ValueError, match="alpha"):
        tsallis_max(jnp.ones(3), alpha=NAN)
    with pytest.raises(TypeError, match="alpha"):
        entmax(jnp.ones(3), alpha=True)
    with pytest.raises(ValueError, match="axis"):
        sparsemax(jnp.ones(3), axis=2)
    with pytest.raises(ValueError, match="beta"):
        sparsemax(jnp.ones((2, 3)), beta=jnp.ones(3))
    with pytest.raises(TypeError, match="y must be real"):
        fenchel_young_loss(jnp.ones(3), jnp.ones(3, jnp.complex64))


def test_alpha_at_its_edges():
    z = jnp.array([0.3, -0.2, 1.0, 1.0, -1.5])
    # α = +∞ (static or traced): the arg max, ties split; its smooth max is the max, slopes 0.
    for alpha in (INF, jnp.asarray(INF)):
        chex.assert_trees_all_equal(entmax(z, alpha=alpha), sjx.argmax_onehot(z))
        assert float(tsallis_max(z, alpha=alpha)) == 1.0
        assert float(jax.grad(lambda a: tsallis_max(z, alpha=a))(jnp.asarray(INF))) == 0.0
    # A traced NaN α gives NaN; a static α that rounds to 1 is softargmax.
    assert np.isnan(np.asarray(entmax(z, alpha=jnp.asarray(NAN)))).all()
    assert np.isnan(float(tsallis_max(z, alpha=jnp.asarray(NAN))))
    chex.assert_trees_all_equal(entmax(z, alpha=1 + 1e-9), sjx.softargmax(z))
    # Near α = 1 the Tsallis entropy does not cancel: the smooth max tends to smooth_max.
    near = tsallis_max(z, alpha=jnp.float32(1 + 2**-20))
    np.testing.assert_allclose(near, sjx.smooth_max(z), rtol=1e-5)


def test_large_alpha_with_a_root_far_below_one():
    # The root of the threshold equation is about −n^{1−α}: the bracket and the geometric
    # bisection reach it within the step cap.
    with jax.enable_x64(True):
        z = np.zeros(4096)
        z[2048:] = -1e-34
        p = np.asarray(entmax(jnp.asarray(z), alpha=10.0))
        np.testing.assert_allclose([p[0], p[-1]], [2.48092e-4, 2.40189e-4], rtol=1e-5)
        np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-12)


def test_fenchel_young_loss_never_negative_at_small_beta():
    z, uniform = jnp.array([1.0, 3.0, 3.0]), jnp.full(3, 1 / 3)
    for alpha in (1.0, 1.5, 2.0):
        for beta in (1e-5, 1e-6, -1e-6):
            assert float(fenchel_young_loss(z, uniform, alpha=alpha, beta=beta)) >= 0.0


def test_fenchel_young_loss_alpha_slope_at_one():
    # At α = 1 the target's entropy is Shannon's; its α-slope is the Tsallis family's limit.
    with jax.enable_x64(True):
        z, y = jnp.array([0.3, 1.0, 2.0]), jnp.array([0.2, 0.3, 0.5])

        def f(a):
            return fenchel_young_loss(z, y, alpha=a)

        one, h = jnp.asarray(1.0), 1e-6
        np.testing.assert_allclose(jax.grad(f)(one), (f(one + h) - f(one)) / h, rtol=1e-5)


@pytest.mark.slow
def test_second_derivatives_nan_slices_tangents_and_signed_zeros():
    # Hessians of α = 1.5 with entries off the support are finite (the support weights √p have
    # a finite derivative at p = 0); a NaN entry makes its whole slice NaN, at β = 0 too; a
    # non-finite tangent on a masked entry stays out of the slice; off-support zeros are +0.
    c = jnp.array([1.0, 2.0, 3.0, 5.0])
    z = jnp.array([1.0, -3.0, 0.8, 0.5])
    for alpha in (1.5, 2.0):
        h = jax.hessian(lambda z, a=alpha: entmax(z, alpha=a) @ c)(z)
        assert np.all(np.isfinite(h))
        d3 = jax.jacfwd(jax.hessian(lambda z, a=alpha: entmax(z, alpha=a) @ c))(z)
        assert np.all(np.isfinite(d3))
    big = jnp.asarray(np.random.default_rng(3).standard_normal(100_000), jnp.float32)
    big = big.at[33_333].set(jnp.nan)
    for alpha in (1.5, 2.0):
        assert np.all(np.isnan(entmax(big, alpha=alpha)))
        assert np.all(np.isnan(entmax(jnp.array([1.0, jnp.nan, 2.0, 0.5]), alpha=alpha, beta=0)))
    m = jnp.array([True, False, True, True])
    zm, dz = jnp.array([1.0, jnp.nan, 2.0, 0.5]), jnp.array([1.0, jnp.nan, 0.0, 0.0])
    for alpha in (1.5, 2.0):
        _, t = jax.jvp(lambda z, a=alpha: entmax(z, alpha=a, where=m), (zm,), (dz,))
        assert np.all(np.isfinite(t)) and t[1] == 0
    p = sparsemax(z)
    assert p[1] == 0 and not np.signbit(p[1])
