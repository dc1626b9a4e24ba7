"""Tests of softjax.dp against brute-force enumeration and plain numpy float64 recursions."""

import functools
import itertools
import math

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from scipy.sparse.csgraph import floyd_warshall
from scipy.special import logsumexp, softmax

from softjax import dp
from softjax.semiring import LogSemiring, MaxPlus, MinPlus, Real

INF = math.inf
TRANSFORMS = [jax.jit, lambda f: f]
HYP = settings(max_examples=8, deadline=None, derandomize=True)


def _value_and_grad(f):
    """Batched values of ``f`` and the gradient of their sum (batch elements are independent)."""

    def total(x, *args, **kwargs):
        value = f(x, *args, **kwargs)
        return jnp.sum(value), value

    def both(x, *args, **kwargs):
        grad, value = jax.grad(total, has_aux=True)(x, *args, **kwargs)
        return value, grad

    return both


# One compiled program per (semiring class, method, shape): β is a traced leaf of the semiring.
# One jitted function per semiring class: in jax 0.10.2 the treedefs of MaxPlus(), MinPlus() and
# Real() (dataclasses with no fields) compare equal, and a shared jit cache can mix them up.
@functools.cache
def _jitted(fn, cls):
    return jax.jit(
        _value_and_grad(fn), static_argnames=("method",) if fn is dp.linear_chain else ()
    )


def _chain(pot, semiring, **kwargs):
    return _jitted(dp.linear_chain, type(semiring))(pot, semiring, **kwargs)


def _dtw(cost, semiring):
    return _jitted(dp.dtw, type(semiring))(cost, semiring)


# (semiring, kind, beta) for the brute-force comparisons; kind picks the reference reduction.
CHAIN_SEMIRINGS = [
    pytest.param(LogSemiring(1.0), "log", 1.0, id="log1"),
    pytest.param(LogSemiring(2.5), "log", 2.5, id="log2.5"),
    pytest.param(LogSemiring(-0.7), "log", -0.7, id="log-0.7"),
    pytest.param(LogSemiring(INF), "max", None, id="log+inf"),
    pytest.param(LogSemiring(-INF), "min", None, id="log-inf"),
    pytest.param(MaxPlus(), "max", None, id="maxplus"),
    pytest.param(MinPlus(), "min", None, id="minplus"),
    pytest.param(Real(), "real", None, id="real"),
]


# ------------------------------------------------------------------------------------------------
# Brute force


def _chain_paths(pot, init, final):
    """Every state sequence of a chain: (scores or products, edge indicators (N, T, K, K))."""
    t_len, k = pot.shape[0], pot.shape[-1]
    seqs = np.array(list(itertools.product(range(k), repeat=t_len + 1)))  # (N, T + 1)
    t_idx = np.arange(t_len)
    edges = np.zeros((len(seqs), t_len, k, k))
    edges[np.arange(len(seqs))[:, None], t_idx, seqs[:, :-1], seqs[:, 1:]] = 1.0
    terms = np.concatenate(
        [init[seqs[:, :1]], pot[t_idx, seqs[:, :-1], seqs[:, 1:]], final[seqs[:, -1:]]], axis=1
    )
    return terms, edges


def _reduce(terms, kind, beta):
    """⊕ over paths (axis 0) of ⊗ over each path's terms (axis 1)."""
    if kind == "real":
        return np.sum(np.prod(terms, axis=1))
    scores = np.sum(terms, axis=1)
    if kind == "max":
        return np.max(scores)
    if kind == "min":
        return np.min(scores)
    return logsumexp(beta * scores) / beta


def _gibbs(scores, beta):
    return softmax(beta * scores)


def _alignments(n, m):
    """All monotone alignment matrices from (0, 0) to (n - 1, m - 1), shape (N, n, m)."""
    out = []

    def walk(i, j, cells):
        cells = cells + [(i, j)]
        if (i, j) == (n - 1, m - 1):
            a = np.zeros((n, m))
            a[tuple(np.array(cells).T)] = 1.0
            out.append(a)
            return
        for di, dj in ((1, 0), (0, 1), (1, 1)):
            if i + di < n and j + dj < m:
                walk(i + di, j + dj, cells)

    walk(0, 0, [])
    return np.stack(out)


def _delannoy(n, m):
    return sum(math.comb(n - 1, k) * math.comb(m - 1, k) * 2**k for k in range(min(n, m)))


def _soft_dtw_numpy(cost, gamma):
    """The soft-DTW recursion of Cuturi & Blondel in float64, with softmin_γ."""
    n, m = cost.shape
    r = np.full((n + 1, m + 1), np.inf)
    r[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            prev = np.array([r[i - 1, j], r[i, j - 1], r[i - 1, j - 1]])
            r[i, j] = cost[i - 1, j - 1] - gamma * logsumexp(-prev / gamma)
    return r[n, m]


def _sq_dist(x, y):
    return np.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)


# ------------------------------------------------------------------------------------------------
# linear_chain, viterbi, node_marginals


@pytest.mark.parametrize("method", ["sequential", "parallel"])
@pytest.mark.parametrize("semiring, kind, beta", CHAIN_SEMIRINGS)
def test_linear_chain_brute_force(semiring, kind, beta, method):
    rng = np.random.default_rng(0)
    pot = rng.normal(size=(2, 3, 3, 3))  # batch 2, T = 3, K = 3
    init, final = rng.normal(size=(2, 3)), rng.normal(size=(3,))
    if kind == "real":
        pot, init, final = np.exp(pot), np.exp(init), np.exp(final)
    with jax.enable_x64(True):
        value, grad = jax.device_get(
            _chain(pot, semiring, initial=init, final=final, method=method)
        )
        chex.assert_shape(value, (2,))
        for b in range(2):
            terms, edges = _chain_paths(pot[b], init[b], final)
            np.testing.assert_allclose(value[b], _reduce(terms, kind, beta), rtol=1e-12)
            if kind == "real":
                # ∂/∂ψ_t(i, j) of a sum of products: the products through that edge over ψ_t(i, j).
                want = np.einsum("n,ntij->tij", np.prod(terms, axis=1), edges) / pot[b]
                np.testing.assert_allclose(grad[b], want, rtol=1e-12)
                continue
            scores = np.sum(terms, axis=1)
            if kind == "log":
                weights = _gibbs(scores, beta)  # the gradient is the edge marginals at β
            else:
                best = np.argmax(scores) if kind == "max" else np.argmin(scores)
                weights = np.eye(len(scores))[best]  # the gradient is the best path's edges
            want = np.einsum("n,ntij->tij", weights, edges)
            np.testing.assert_allclose(grad[b], want, rtol=1e-10, atol=1e-12)


def test_linear_chain_defaults_and_marginals():
    """Without initial/final scores; the node marginals derived from the edges sum to one."""
    rng = np.random.default_rng(1)
    pot = rng.normal(size=(4, 2, 2))
    with jax.enable_x64(True):
        value, grad = jax.device_get(_chain(pot, LogSemiring(1.0)))
    terms, _ = _chain_paths(pot, np.zeros(2), np.zeros(2))
    np.testing.assert_allclose(value, _reduce(terms, "log", 1.0), rtol=1e-12)
    np.testing.assert_allclose(np.sum(grad, axis=(-1, -2)), np.ones(4), rtol=1e-12)
    # Consistency of consecutive edge marginals: Σ_i μ_t(i, j) = Σ_k μ_{t+1}(j, k).
    np.testing.assert_allclose(np.sum(grad[:-1], axis=-2), np.sum(grad[1:], axis=-1))


def test_linear_chain_no_transitions():
    init, final = jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 0.0, 0.0])
    pot = jnp.zeros((0, 3, 3))
    for method in ["sequential", "parallel"]:
        chex.assert_trees_all_close(
            dp.linear_chain(pot, MaxPlus(), initial=init, final=final, method=method), 2.0
        )
        chex.assert_trees_all_close(
            dp.linear_chain(pot, LogSemiring(1.0), method=method), jnp.log(3.0)
        )


def test_linear_chain_viterbi_ties_split():
    """Two tied best paths: the MaxPlus gradient splits the weight between their edges."""
    pot = jnp.array([[[1.0, 1.0], [0.0, 0.0]]])  # from state 0, both next states score 1
    grad = jax.grad(dp.linear_chain)(pot, MaxPlus())
    chex.assert_trees_all_close(grad, jnp.array([[[0.5, 0.5], [0.0, 0.0]]]))


@pytest.mark.parametrize("semiring", [MaxPlus(), Real()], ids=["maxplus", "real"])
@pytest.mark.parametrize("t_len", [5, 6])  # trees 5 -> 3 -> 2 -> 1 and 6 -> 3 -> 2 -> 1
@settings(max_examples=5, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**16))
def test_linear_chain_sequential_equals_parallel(semiring, t_len, seed):
    rng = np.random.default_rng(seed)
    pot = rng.normal(size=(2, t_len, 3, 3))
    if isinstance(semiring, Real):
        pot = np.exp(pot) / 3
    with jax.enable_x64(True):
        seq = _chain(pot, semiring, method="sequential")
        par = _chain(pot, semiring, method="parallel")
        chex.assert_trees_all_close(seq, par, rtol=1e-11, atol=1e-12)


def test_forbidden_transitions_and_cells_have_zero_gradient():
    """-inf potentials (forbidden transitions) and +inf DTW costs (a band): finite values and
    gradients, exactly zero on the forbidden entries."""
    pot = jnp.asarray(np.random.default_rng(6).normal(size=(5, 3, 3)), jnp.float32)
    pot = pot.at[:, 0, 2].set(-jnp.inf).at[:, 2, 0].set(-jnp.inf)
    f = jax.jit(jax.value_and_grad(dp.linear_chain), static_argnames="method")
    for semiring, method in [(LogSemiring(1.0), "sequential"), (MaxPlus(), "parallel")]:
        value, grad = f(pot, semiring, method=method)
        assert np.isfinite(value) and np.all(np.isfinite(grad))
        assert np.all(grad[:, 0, 2] == 0) and np.all(grad[:, 2, 0] == 0)
    cost = jnp.asarray(np.random.default_rng(7).uniform(size=(6, 6)), jnp.float32)
    band = np.abs(np.arange(6)[:, None] - np.arange(6)[None, :]) <= 1
    value, grad = jax.jit(jax.value_and_grad(dp.dtw))(
        jnp.where(band, cost, jnp.inf), LogSemiring(-1.0)
    )
    assert np.isfinite(value) and np.all(np.isfinite(grad)) and np.all(grad[~band] == 0)


def test_bfloat16_in_bfloat16_out():
    """16-bit inputs are accumulated in float32; values and gradients keep the input dtype."""
    rng = np.random.default_rng(15)
    pot = jnp.asarray(rng.normal(size=(20, 3, 3)), jnp.bfloat16)
    value, grad = jax.value_and_grad(dp.linear_chain)(pot, LogSemiring(1.0))
    assert value.dtype == grad.dtype == jnp.bfloat16
    ref = dp.linear_chain(pot.astype(jnp.float32), LogSemiring(1.0))
    np.testing.assert_allclose(float(value), float(ref), rtol=1e-2)
    cost = jnp.asarray(rng.uniform(size=(4, 5)), jnp.bfloat16)
    assert dp.dtw(cost).dtype == dp.shortest_paths(cost[:, :4]).dtype == jnp.bfloat16


def test_linear_chain_long_float32():
    """A long float32 chain agrees with float64, and the parallel tree with the sequential scan."""
    rng = np.random.default_rng(3)
    pot = 3.0 * rng.normal(size=(300, 4, 4))
    f = jax.jit(dp.linear_chain, static_argnames="method")
    got = f(pot.astype(np.float32), LogSemiring(1.0))
    with jax.enable_x64(True):
        ref = float(f(pot, LogSemiring(1.0)))
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    par = f(pot.astype(np.float32), MaxPlus(), method="parallel")  # 9 rounds, odd ones included
    np.testing.assert_allclose(par, f(pot.astype(np.float32), MaxPlus()), rtol=1e-5)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_linear_chain_transforms(transform):
    rng = np.random.default_rng(4)
    pot = jnp.asarray(rng.normal(size=(3, 4, 2, 2)), jnp.float32)
    f = transform(dp.linear_chain)
    batched = f(pot, LogSemiring(0.5))
    mapped = jax.vmap(f, in_axes=(0, None))(pot, LogSemiring(0.5))
    chex.assert_trees_all_close(batched, mapped, rtol=1e-6)
    grad = jax.grad(lambda p: jnp.sum(f(p, LogSemiring(0.5))))(pot)
    chex.assert_trees_all_close(jnp.sum(grad, axis=(-1, -2)), jnp.ones((3, 4)), rtol=1e-5)


def test_linear_chain_vmap_and_grad_over_beta():
    """The semiring is a pytree whose leaf is β: vmap over β (±inf included) and d/dβ."""
    pot = jnp.asarray(np.random.default_rng(4).normal(size=(4, 2, 2)), jnp.float32)
    f = jax.jit(dp.linear_chain)
    betas = [0.5, 2.0, -1.0, INF, -INF]
    per_beta = jax.jit(jax.vmap(lambda b: f(pot, LogSemiring(b))))(jnp.array(betas))
    for i, b in enumerate(betas):
        chex.assert_trees_all_close(per_beta[i], f(pot, LogSemiring(b)), rtol=1e-6)
    # d/dβ of (1/β) log Z(β) = (⟨s⟩_β − V)/β, checked by brute force.
    dbeta = jax.jit(jax.grad(lambda b: f(pot, LogSemiring(b))))(2.0)
    scores = np.sum(_chain_paths(np.asarray(pot, np.float64), np.zeros(2), np.zeros(2))[0], axis=1)
    want = (np.dot(_gibbs(scores, 2.0), scores) - logsumexp(2.0 * scores) / 2.0) / 2.0
    np.testing.assert_allclose(dbeta, want, rtol=1e-4)


def test_linear_chain_no_recompile_when_beta_changes():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(pot, s):
        return dp.linear_chain(pot, s)

    pot = jnp.asarray(np.random.default_rng(5).normal(size=(3, 2, 2)), jnp.float32)
    values = [f(pot, LogSemiring(b)) for b in [1.0, 0.25, -2.0, INF, -INF, 0.0]]
    chex.assert_trees_all_close(values[3], dp.linear_chain(pot, MaxPlus()))
    chex.assert_trees_all_close(values[4], dp.linear_chain(pot, MinPlus()))
    assert values[5] == jnp.inf  # β = 0: smooth_max's right-hand limit


def test_linear_chain_validation():
    pot = jnp.zeros((3, 2, 2))
    with pytest.raises(ValueError, match="method must be .* got 'fast'"):
        dp.linear_chain(pot, MaxPlus(), method="fast")
    with pytest.raises(ValueError, match=r"potentials must have shape .* got shape \(3, 2, 3\)"):
        dp.linear_chain(jnp.zeros((3, 2, 3)), MaxPlus())
    with pytest.raises(ValueError, match=r"got shape \(2, 2\)"):
        dp.linear_chain(jnp.zeros((2, 2)), MaxPlus())
    with pytest.raises(ValueError, match="K >= 1"):
        dp.linear_chain(jnp.zeros((3, 0, 0)), MaxPlus())
    with pytest.raises(ValueError, match=r"initial must be broadcastable .* got shape \(3,\)"):
        dp.linear_chain(pot, MaxPlus(), initial=jnp.zeros(3))
    with pytest.raises(ValueError, match=r"final must be broadcastable .* got shape \(4, 2\)"):
        dp.linear_chain(pot, MaxPlus(), final=jnp.zeros((4, 2)))
    with pytest.raises(TypeError, match="semiring must be .* got 1.0"):
        dp.linear_chain(pot, 1.0)
    with pytest.raises(TypeError, match="got the class MaxPlus"):
        dp.linear_chain(pot, MaxPlus)
    with pytest.raises(TypeError, match="potentials must be real"):
        dp.linear_chain(jnp.zeros((3, 2, 2), jnp.complex64), MaxPlus())
    with pytest.raises(TypeError):
        dp.linear_chain(pot, MaxPlus(), "parallel")  # options are keyword-only


# ------------------------------------------------------------------------------------------------
# shortest_paths


def _random_graph(rng, n, p=0.5):
    w = rng.uniform(0.5, 3.0, size=(n, n))
    w[rng.uniform(size=(n, n)) > p] = np.inf
    np.fill_diagonal(w, 0.0)
    return w


@pytest.mark.parametrize("n", [1, 2, 7])
def test_shortest_paths_floyd_warshall(n):
    rng = np.random.default_rng(n)
    w = np.stack([_random_graph(rng, n) for _ in range(3)])
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(dp.shortest_paths)(w))
    chex.assert_shape(got, (3, n, n))
    for b in range(3):
        np.testing.assert_allclose(got[b], floyd_warshall(w[b]), rtol=1e-12)


def test_shortest_paths_diagonal_is_ignored():
    w = _random_graph(np.random.default_rng(8), 5)
    f = jax.jit(dp.shortest_paths)
    base = f(w)
    for d in [np.inf, 2.0, -1.0]:
        w2 = w.copy()
        np.fill_diagonal(w2, d)
        chex.assert_trees_all_equal(f(w2), base)
        np.testing.assert_allclose(f(w2), floyd_warshall(w2), rtol=1e-6)


def test_shortest_paths_soft():
    """Soft shortest paths: the closed form, below the hard ones, converging to them as β grows."""
    w = _random_graph(np.random.default_rng(9), 6, p=0.6)
    hard = floyd_warshall(w)
    off = np.where(np.eye(6, dtype=bool), np.inf, w)

    def row0(w, s):
        d = dp.shortest_paths(w, s)
        return d[0, 5], d

    f = jax.jit(jax.grad(row0, has_aux=True))  # D and the gradient of D[0, 5], one program
    with jax.enable_x64(True):
        prev = -np.inf
        for beta in [2.0, 5.0, 20.0, 100.0]:
            g, soft = jax.device_get(f(w, LogSemiring(-beta)))
            want = -np.log(np.linalg.inv(np.eye(6) - np.exp(-beta * off))) / beta
            np.testing.assert_allclose(soft, want, rtol=1e-9, atol=1e-12)
            assert np.all(soft <= hard + 1e-12)
            assert np.all(soft >= prev - 1e-12)  # increases with β towards the hard values
            prev = soft
            # The gradient counts the expected traversals of each edge: ≥ 0, none on the diagonal.
            assert np.all(g >= 0) and np.all(np.diagonal(g) == 0) and np.all(g[np.isinf(w)] == 0)
            assert g[0, 1] + g[0, 2] + g[0, 3] + g[0, 4] + g[0, 5] >= 1 - 1e-9  # paths leave 0
        np.testing.assert_allclose(prev, hard, atol=0.05)
        # LogSemiring(-inf) is MinPlus, bit for bit, from the same compiled program.
        np.testing.assert_array_equal(f(w, LogSemiring(-INF))[1], dp.shortest_paths(w))


def test_shortest_paths_negative_cycle_is_visible_on_the_diagonal():
    inf = np.inf
    w = np.array([[0.0, 1.0, inf], [inf, 0.0, -3.0], [1.0, inf, 0.0]])  # cycle 0→1→2→0 of -1
    f = jax.jit(dp.shortest_paths, static_argnames="num_squarings")
    d = f(w)
    assert np.all(np.diagonal(d) < 0)
    # More squarings reach longer walks around the cycle: lower values.
    d_more = f(w, num_squarings=5)
    assert np.all(d_more <= d) and np.any(d_more < d)


def test_shortest_paths_transforms_and_validation():
    rng = np.random.default_rng(10)
    w = jnp.asarray(np.stack([_random_graph(rng, 4) for _ in range(2)]), jnp.float32)
    f = jax.jit(dp.shortest_paths)
    chex.assert_trees_all_close(jax.vmap(f)(w), dp.shortest_paths(w))
    with pytest.raises(ValueError, match=r"weights must have shape .* got shape \(2, 3\)"):
        dp.shortest_paths(jnp.zeros((2, 3)))
    with pytest.raises(TypeError, match="semiring must be"):
        dp.shortest_paths(w, "minplus")
    with pytest.raises(TypeError, match="num_squarings must be an int"):
        dp.shortest_paths(w, num_squarings=2.0)


# ------------------------------------------------------------------------------------------------
# dtw


@pytest.mark.parametrize("n, m", [(1, 1), (1, 4), (3, 3), (4, 2)])
@pytest.mark.parametrize(
    "semiring, kind, beta",
    [
        pytest.param(MinPlus(), "min", None, id="minplus"),
        pytest.param(MaxPlus(), "max", None, id="maxplus"),
        pytest.param(LogSemiring(-1.0), "log", -1.0, id="soft-gamma1"),
        pytest.param(LogSemiring(-10.0), "log", -10.0, id="soft-gamma0.1"),
        pytest.param(LogSemiring(0.5), "log", 0.5, id="log0.5"),
        pytest.param(Real(), "real", None, id="real"),
    ],
)
def test_dtw_brute_force(semiring, kind, beta, n, m):
    rng = np.random.default_rng(n * 10 + m)
    cost = rng.uniform(0.0, 2.0, size=(2, n, m))
    paths = _alignments(n, m)
    assert len(paths) == _delannoy(n, m)
    with jax.enable_x64(True):
        value, grad = jax.device_get(_dtw(cost, semiring))
    chex.assert_shape(value, (2,))
    for b in range(2):
        if kind == "real":
            terms = np.where(paths > 0, cost[b], 1.0).reshape(len(paths), -1)
        else:
            terms = (paths * cost[b]).reshape(len(paths), -1)
        np.testing.assert_allclose(value[b], _reduce(terms, kind, beta), rtol=1e-12)
        scores = np.sum(paths * cost[b], axis=(1, 2))
        if kind == "log":  # the gradient is the expected alignment
            want = np.einsum("p,pij->ij", _gibbs(scores, beta), paths)
            np.testing.assert_allclose(grad[b], want, rtol=1e-10, atol=1e-12)
        elif kind in ("min", "max"):
            best = np.argmin(scores) if kind == "min" else np.argmax(scores)
            np.testing.assert_allclose(grad[b], paths[best], atol=1e-12)


@HYP
@given(gamma=st.sampled_from([0.01, 0.3, 1.0, 10.0]), seed=st.integers(0, 2**16))
def test_dtw_soft_matches_numpy_recursion(gamma, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(8, 2)), rng.normal(size=(5, 2))
    cost = _sq_dist(x, y)
    with jax.enable_x64(True):
        value, grad = jax.device_get(_dtw(cost, LogSemiring(-1.0 / gamma)))
        assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, _soft_dtw_numpy(cost, gamma), rtol=1e-12)
    # The expected alignment has mass 1 in the corners and at least one cell per row and column.
    assert abs(grad[0, 0] - 1.0) < 1e-12 and abs(grad[-1, -1] - 1.0) < 1e-12
    assert np.all(np.sum(grad, axis=1) >= 1 - 1e-12) and np.all(np.sum(grad, axis=0) >= 1 - 1e-12)


def test_dtw_hard_limit_and_transpose():
    rng = np.random.default_rng(11)
    cost = jnp.asarray(rng.uniform(size=(5, 9)), jnp.float32)
    f = jax.jit(dp.dtw)
    hard = f(cost)
    chex.assert_trees_all_equal(f(cost, LogSemiring(-INF)), hard)
    chex.assert_trees_all_close(f(cost.T), hard)
    chex.assert_trees_all_close(f(cost.T, LogSemiring(-2.0)), f(cost, LogSemiring(-2.0)), rtol=1e-6)
    # Soft-DTW is a lower bound of DTW that tends to it as γ → 0.
    soft = [f(cost, LogSemiring(-b)) for b in [1.0, 10.0, 1000.0]]
    assert soft[0] <= soft[1] <= soft[2] <= hard
    np.testing.assert_allclose(soft[2], hard, atol=1e-2)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_dtw_transforms(transform):
    rng = np.random.default_rng(12)
    cost = jnp.asarray(rng.uniform(size=(3, 4, 6)), jnp.float32)
    f = transform(dp.dtw)
    s = LogSemiring(-2.0)
    chex.assert_trees_all_close(jax.vmap(f, in_axes=(0, None))(cost, s), f(cost, s), rtol=1e-6)
    g = jax.grad(lambda c: jnp.sum(f(c, s)))(cost)
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g) >= 0)
    chex.assert_trees_all_close(g[:, 0, 0], jnp.ones(3), rtol=1e-6)


def test_dtw_no_recompile_and_validation():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(cost, s):
        return dp.dtw(cost, s)

    cost = jnp.asarray(np.random.default_rng(13).uniform(size=(4, 5)), jnp.float32)
    for gamma in [0.1, 1.0, 10.0]:
        f(cost, LogSemiring(-1.0 / gamma))
    chex.assert_trees_all_equal(f(cost, LogSemiring(-INF)), dp.dtw(cost))
    with pytest.raises(ValueError, match=r"cost must have shape .* got shape \(3,\)"):
        dp.dtw(jnp.zeros(3))
    with pytest.raises(ValueError, match=r"got shape \(0, 3\)"):
        dp.dtw(jnp.zeros((0, 3)))
    with pytest.raises(TypeError, match="semiring must be"):
        dp.dtw(cost, -1.0)


# ------------------------------------------------------------------------------------------------
# soft_dtw_divergence


@jax.jit
def _divergence_checks(x, y, gamma):
    """D(x, y), D(x, x), D(y, x) and the gradient of D(·, x) at x, in one program."""
    d = functools.partial(dp.soft_dtw_divergence, gamma=gamma)
    return d(x, y), d(x, x), d(y, x), jax.grad(d)(x, x)


@HYP
@given(gamma=st.sampled_from([0.01, 0.1, 1.0, 10.0]), seed=st.integers(0, 2**16))
def test_divergence_matches_recursion_and_vanishes_on_the_diagonal(gamma, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(6, 3)), 0.5 * rng.normal(size=(4, 3))
    with jax.enable_x64(True):
        d, d_xx, d_yx, g = jax.device_get(_divergence_checks(x, y, gamma))
    want = _soft_dtw_numpy(_sq_dist(x, y), gamma) - 0.5 * (
        _soft_dtw_numpy(_sq_dist(x, x), gamma) + _soft_dtw_numpy(_sq_dist(y, y), gamma)
    )
    np.testing.assert_allclose(d, want, rtol=1e-10, atol=1e-12)
    assert d_xx == 0.0
    np.testing.assert_allclose(d_yx, d, rtol=1e-10)  # symmetric
    np.testing.assert_allclose(g, np.zeros_like(x), atol=1e-10)  # x = y is a minimum


@pytest.mark.slow
def test_divergence_options_batch_and_transforms():
    rng = np.random.default_rng(14)
    x = jnp.asarray(rng.normal(size=(2, 5, 3)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
    # γ is traced (one program for every γ, γ = 0 included) and differentiable.
    f = jax.jit(jax.value_and_grad(lambda g: jnp.sum(dp.soft_dtw_divergence(x, y, gamma=g))))
    d, dg = f(0.5)
    assert d > 0 and np.isfinite(dg)
    # Batch dimensions broadcast; γ = 0 is DTW (the squared Euclidean cost vanishes on x = y).
    hard = dp.dtw(jnp.sum((x[:, :, None, :] - y[None, None, :, :]) ** 2, axis=-1))
    chex.assert_shape(hard, (2,))
    chex.assert_trees_all_close(f(0.0)[0], jnp.sum(hard), rtol=1e-6)

    # A custom cost: the absolute difference; it still vanishes at x = y.
    def l1(a, b):
        return jnp.sum(jnp.abs(a[..., :, None, :] - b[..., None, :, :]), axis=-1)

    assert dp.soft_dtw_divergence(y, y, gamma=0.5, cost_fn=l1) == 0.0
    with pytest.raises(ValueError, match="gamma must be >= 0, got -1.0"):
        dp.soft_dtw_divergence(x, y, gamma=-1.0)
    with pytest.raises(TypeError, match="cost_fn must be callable, got 3"):
        dp.soft_dtw_divergence(x, y, gamma=1.0, cost_fn=3)
    with pytest.raises(ValueError, match=r"same d, got shapes \(4, 3\) and \(4, 2\)"):
        dp.soft_dtw_divergence(y, jnp.zeros((4, 2)), gamma=1.0)
    with pytest.raises(ValueError, match="batch dimensions of x and y must broadcast"):
        dp.soft_dtw_divergence(x, jnp.zeros((3, 4, 3)), gamma=1.0)
    with pytest.raises(TypeError):
        dp.soft_dtw_divergence(x, y, 1.0)  # gamma is keyword-only


@pytest.mark.parametrize("band", [None, 0, 1, 2])
def test_dtw_band_and_lengths_brute_force(band):
    rng = np.random.default_rng(11)
    cost = rng.random((2, 4, 6))
    lengths = (np.array([4, 3]), np.array([5, 6]))
    with jax.enable_x64(True):
        for semiring, kind, beta in [(MinPlus(), "min", None), (LogSemiring(-2.0), "log", -2.0)]:
            value, grad = jax.jit(
                _value_and_grad(lambda c, s: dp.dtw(c, s, band=band, lengths=lengths))
            )(cost, semiring)
            for b in range(2):
                n, m = lengths[0][b], lengths[1][b]
                a = _alignments(n, m)
                if band is not None:  # only the alignments that stay within the band
                    i, j = np.indices((n, m))
                    a = a[np.all((a == 0) | (np.abs(i - j) <= band), axis=(1, 2))]
                if len(a) == 0:
                    assert value[b] == INF and np.all(grad[b] == 0)
                    continue
                scores = np.sum(a * cost[b, :n, :m], axis=(1, 2))
                want = _reduce(scores[:, None], kind, beta)
                np.testing.assert_allclose(value[b], want, rtol=1e-10)
                w = np.eye(len(a))[np.argmin(scores)] if kind == "min" else _gibbs(scores, beta)
                np.testing.assert_allclose(grad[b, :n, :m], np.tensordot(w, a, 1), atol=1e-10)
                np.testing.assert_array_equal(grad[b, n:], 0.0)
                np.testing.assert_array_equal(grad[b, :, m:], 0.0)
    with pytest.raises(ValueError, match="band must be None or an int >= 0"):
        dp.dtw(cost, band=-1)
    with pytest.raises(TypeError, match="lengths must be a pair"):
        dp.dtw(cost, lengths=np.array([1, 2]))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_soft_dtw_from_series(dtype):
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(7, 2))
    with jax.enable_x64(dtype == jnp.float64):
        xs, ys = jnp.asarray(x, dtype), jnp.asarray(y, dtype)
        rtol = 1e-10 if dtype == jnp.float64 else 1e-5
        f = jax.jit(lambda x, y, g: dp.soft_dtw(x, y, gamma=g))
        for gamma in (0.1, 1.0):
            np.testing.assert_allclose(
                f(xs, ys, gamma), _soft_dtw_numpy(_sq_dist(x, y), gamma), rtol=rtol
            )
        # γ = 0 is DTW (no division by zero), from the same program; γ = ∞ is -∞ (N ≥ 2 paths).
        np.testing.assert_allclose(f(xs, ys, 0.0), dp.dtw(_sq_dist(x, y)), rtol=rtol)
        assert f(xs, ys, jnp.inf) == -INF
        assert dp.soft_dtw(xs[:1], ys[:1], gamma=jnp.inf) == np.sum((x[0] - y[0]) ** 2).astype(
            dtype
        )
        # Differentiable in x, y and γ; batched with one γ per problem; lengths and a band.
        gx, gy, gg = jax.jit(jax.grad(lambda x, y, g: dp.soft_dtw(x, y, gamma=g), (0, 1, 2)))(
            xs, ys, 0.5
        )
        assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gy)) and np.isfinite(gg)
        eps = 1e-4 if dtype == jnp.float64 else 1e-2
        slope = (f(xs, ys, 0.5 + eps) - f(xs, ys, 0.5 - eps)) / (2 * eps)
        np.testing.assert_allclose(gg, slope, rtol=1e-3 if dtype == jnp.float64 else 5e-2)
        both = jax.jit(dp.soft_dtw)(
            jnp.stack([xs, xs]),
            ys,
            gamma=jnp.array([0.1, 1.0], dtype),
            lengths=(None, jnp.array([7, 4])),
        )
        np.testing.assert_allclose(both[0], f(xs, ys, 0.1), rtol=rtol)
        np.testing.assert_allclose(both[1], f(xs, ys[:4], 1.0), rtol=rtol)
        banded = dp.soft_dtw(xs, ys, gamma=0.0, band=2)
        np.testing.assert_allclose(banded, dp.dtw(_sq_dist(x, y), band=2), rtol=rtol)
        assert dp.soft_dtw(xs, ys, gamma=1.0, band=1) == INF  # |n - m| = 2 > 1: no path


@pytest.mark.slow
def test_divergence_with_band_and_lengths():
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(2, 6, 2)), rng.normal(size=(2, 5, 2))
    lengths = (jnp.array([6, 4]), jnp.array([5, 4]))
    with jax.enable_x64(True):
        divergence = jax.jit(dp.soft_dtw_divergence, static_argnames="band")
        d = divergence(x, y, gamma=0.3, band=2, lengths=lengths)
        for b in range(2):
            n, m = int(lengths[0][b]), int(lengths[1][b])
            want = divergence(x[b, :n], y[b, :m], gamma=0.3, band=2)
            np.testing.assert_allclose(d[b], want, rtol=1e-10)
        # γ = ∞ per problem: lengths 6 and 5 differ (+∞), 4 and 4 are equal (finite).
        limit = divergence(x, y, gamma=jnp.inf, lengths=lengths)
        assert limit[0] == INF and np.isfinite(limit[1])


@pytest.mark.slow
def test_nan_padding_reaches_no_gradient():
    # Ragged series are often padded with NaN: the padding is invisible to values and gradients.
    rng = np.random.default_rng(21)
    x = rng.normal(size=(5, 2))
    x[3:] = np.nan
    y = rng.normal(size=(4, 2))
    for f in (dp.soft_dtw, dp.soft_dtw_divergence):
        value, grad = jax.jit(
            jax.value_and_grad(lambda x, f=f: f(x, y, gamma=0.5, lengths=(jnp.array(3), None)))
        )(jnp.asarray(x))
        want, want_grad = jax.jit(jax.value_and_grad(lambda x, f=f: f(x, y, gamma=0.5)))(x[:3])
        np.testing.assert_allclose(value, want, rtol=1e-6)
        np.testing.assert_allclose(grad[:3], want_grad, rtol=1e-5)
        np.testing.assert_array_equal(grad[3:], 0.0)
    cost = rng.random((4, 5))
    cost[3:, :] = cost[:, 4:] = np.nan
    g = jax.jit(jax.grad(lambda c: dp.dtw(c, LogSemiring(-1.0), lengths=(3, 4))))(cost)
    assert np.all(np.isfinite(g)) and np.all(g[3:] == 0) and np.all(g[:, 4:] == 0)
    pot = rng.normal(size=(4, 2, 2))
    pot[2:] = np.nan
    for method in ("sequential", "parallel"):
        g = jax.jit(
            jax.grad(
                lambda p, method=method: dp.linear_chain(
                    p, LogSemiring(1.0), lengths=3, method=method
                )
            )
        )(jnp.asarray(pot))
        assert np.all(np.isfinite(g)) and np.all(g[2:] == 0), method


@pytest.mark.slow
def test_gamma_derivative_at_zero_is_that_of_the_hard_minimum():
    rng = np.random.default_rng(22)
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(4, 2))
    for f in (dp.soft_dtw, dp.soft_dtw_divergence):
        assert jax.grad(lambda g, f=f: f(x, y, gamma=g))(0.0) == 0.0


def test_divergence_can_be_negative():
    # The documented counterexample to non-negativity under the squared Euclidean cost.
    t = np.linspace(0, 2 * np.pi, 30)
    x, y = 1.289 * np.sin(t - 1.088), 1.3 * np.sin(t - 1)
    with jax.enable_x64(True):
        d = dp.soft_dtw_divergence(x[:, None], y[:, None], gamma=0.05)
    want = _soft_dtw_numpy(_sq_dist(x[:, None], y[:, None]), 0.05) - 0.5 * (
        _soft_dtw_numpy(_sq_dist(x[:, None], x[:, None]), 0.05)
        + _soft_dtw_numpy(_sq_dist(y[:, None], y[:, None]), 0.05)
    )
    np.testing.assert_allclose(d, want, rtol=1e-9)
    np.testing.assert_allclose(d, -0.011347, atol=5e-7)


def _uniform_mean_cost(c):
    """The mean of ⟨A, C⟩ over the DTW alignments A, by enumeration."""
    c = np.asarray(c, np.float64)
    return np.mean(np.sum(_alignments(*c.shape) * c, axis=(1, 2)))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_divergence_at_infinite_gamma(dtype):
    rng = np.random.default_rng(3)
    x, y, z = rng.normal(size=(4, 2)), rng.normal(size=(4, 2)), rng.normal(size=(6, 2))
    with jax.enable_x64(dtype == jnp.float64):
        x, y, z = (jnp.asarray(v, dtype) for v in (x, y, z))
        # Equal lengths: the mean cost of a uniform alignment, debiased; the limit of large γ.
        want = _uniform_mean_cost(_sq_dist(x, y)) - 0.5 * (
            _uniform_mean_cost(_sq_dist(x, x)) + _uniform_mean_cost(_sq_dist(y, y))
        )
        d = jax.jit(lambda g: dp.soft_dtw_divergence(x, y, gamma=g))
        np.testing.assert_allclose(d(jnp.inf), want, rtol=1e-5)
        np.testing.assert_allclose(d(1e4 if dtype == jnp.float64 else 1e2), want, rtol=2e-2)
        grad_inf = jax.jit(jax.grad(lambda x: dp.soft_dtw_divergence(x, y, gamma=jnp.inf)))(x)
        assert np.all(np.isfinite(grad_inf))
        # Different lengths: N(n, m)² < N(n, n)·N(m, m), so the divergence grows without bound.
        dz = jax.jit(lambda g: dp.soft_dtw_divergence(x, z, gamma=g))
        assert dz(jnp.inf) == np.inf
        assert dz(1e3) > 100
        # One γ per problem, the infinite one among them.
        both = jax.jit(dp.soft_dtw_divergence)(
            jnp.stack([x, x]), jnp.stack([y, y]), gamma=jnp.array([0.5, jnp.inf], dtype)
        )
        np.testing.assert_allclose(both[0], d(0.5), rtol=1e-6)
        np.testing.assert_allclose(both[1], d(jnp.inf), rtol=1e-6)


def test_divergence_gamma_validation():
    x, y = jnp.zeros((3, 1)), jnp.ones((4, 1))
    for bad in (-1.0, jnp.array(-0.5), np.array([1.0, -2.0]), float("nan")):
        with pytest.raises(ValueError, match="gamma must be >= 0"):
            dp.soft_dtw_divergence(x, y, gamma=bad)
    with pytest.raises(TypeError, match="gamma must be a real number"):
        dp.soft_dtw_divergence(x, y, gamma=True)
    with pytest.raises(ValueError, match=r"broadcast to the batch shape \(\)"):
        dp.soft_dtw_divergence(x, y, gamma=jnp.ones(2))
    # Traced, a negative γ is NaN (a definite answer, never a different loss).
    d = jax.jit(lambda g: dp.soft_dtw_divergence(x, y, gamma=g))
    assert np.isnan(d(-1.0)) and np.isnan(d(jnp.nan)) and np.isfinite(d(1.0))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sequential", "parallel"])
def test_one_semiring_per_problem(method):
    # A semiring whose β is an array over the batch gives one problem per β: the same as a loop.
    rng = np.random.default_rng(5)
    beta = jnp.array([-1.0, 5.0, jnp.inf])
    cost = jnp.asarray(rng.random((3, 4, 5)), jnp.float32)
    pot = jnp.asarray(rng.normal(size=(3, 4, 3, 3)), jnp.float32)
    weights = jnp.asarray(rng.random((3, 3, 3)) + 1.0, jnp.float32)
    programs = {
        "dtw": (lambda c, s: dp.dtw(c, s), cost),
        "chain": (lambda p, s: dp.linear_chain(p, s, method=method), pot),
        "paths": (lambda w, s: dp.shortest_paths(-w, s), weights),
    }
    for f, arg in programs.values():
        f = jax.jit(f)
        batched = f(arg, LogSemiring(beta))
        for i in range(3):
            chex.assert_trees_all_close(batched[i], f(arg[i], LogSemiring(beta[i])), rtol=1e-6)
        grad = jax.jit(jax.grad(lambda b, f=f, arg=arg: jnp.sum(f(arg[:2], LogSemiring(b)))))
        grad = grad(beta[:2])
        assert np.all(np.isfinite(grad))
    # One β per problem broadcasts; a β that does not fit the batch is an error naming both.
    chex.assert_trees_all_close(
        dp.dtw(cost, LogSemiring(jnp.full((1,), -2.0))), dp.dtw(cost, LogSemiring(-2.0))
    )
    with pytest.raises(ValueError, match=r"batch shape \(3,\).*shape \(2,\)"):
        dp.dtw(cost, LogSemiring(jnp.ones(2)))


def _brute_best(pot, init, final, n_pos):
    """(best score, lexicographically smallest best path) over the first n_pos positions."""
    pot, init, final = (np.asarray(v, np.float64) for v in (pot, init, final))
    terms, _ = _chain_paths(pot[: n_pos - 1], init, final)
    scores = np.sum(terms, axis=1)
    best = np.max(scores)
    seqs = list(itertools.product(range(pot.shape[-1]), repeat=n_pos))  # lexicographic order
    return best, np.array(seqs[int(np.flatnonzero(scores == best)[0])])


@pytest.mark.parametrize("seed", range(4))
def test_viterbi_brute_force_with_ties_and_lengths(seed):
    rng = np.random.default_rng(seed)
    t_len, k = 4, 3
    # Small integers: many exactly tied best paths, decided lexicographically.
    pot = rng.integers(-1, 2, size=(2, t_len, k, k)).astype(np.float64)
    init, final = rng.integers(0, 2, size=(2, k)), rng.integers(0, 2, size=(2, k))
    lengths = np.array([t_len + 1, 3])
    with jax.enable_x64(True):
        for f in (dp.viterbi, jax.jit(dp.viterbi)):
            score, path = f(pot, initial=init, final=final, lengths=lengths)
            assert path.dtype == jnp.int32 and path.shape == (2, t_len + 1)
            for b in range(2):
                want_score, want_path = _brute_best(pot[b], init[b], final[b], lengths[b])
                assert score[b] == want_score
                np.testing.assert_array_equal(path[b, : lengths[b]], want_path)
                np.testing.assert_array_equal(path[b, lengths[b] :], -1)
        # The score is the max-plus value of the chain, which stops at each length.
        value = dp.linear_chain(pot, MaxPlus(), initial=init, final=final, lengths=lengths)
        np.testing.assert_allclose(value, score, rtol=1e-12)


def test_viterbi_decodes_the_best_path_where_the_gradient_argmax_does_not():
    # Switching scores 1: the best paths alternate (0 1 0 and 1 0 1 tie; the smaller is returned).
    trans = jnp.array([[0.0, 1.0], [1.0, 0.0]])
    score, path = dp.viterbi(jnp.zeros((3, 2)), transitions=trans)
    assert score == 2.0
    np.testing.assert_array_equal(path, [0, 1, 0])
    # Forbidden transitions; and an all-forbidden chain (score -inf, the smallest path).
    pot = jnp.array([[[-INF, 0.0], [0.0, -INF]]] * 2)
    score, path = dp.viterbi(pot, initial=jnp.array([0.0, 1.0]))
    assert score == 1.0
    np.testing.assert_array_equal(path, [1, 0, 1])
    score, path = dp.viterbi(jnp.full((2, 2, 2), -INF))
    assert score == -INF
    np.testing.assert_array_equal(path, [0, 0, 0])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sequential", "parallel"])
def test_emissions_transitions_and_lengths_equal_the_unpadded_calls(method):
    rng = np.random.default_rng(8)
    n_pos, k = 5, 3
    emit = jnp.asarray(rng.normal(size=(3, n_pos, k)), jnp.float32)
    trans = jnp.asarray(rng.normal(size=(k, k)), jnp.float32)
    final = jnp.asarray(rng.normal(size=(k,)), jnp.float32)
    lengths = jnp.array([5, 1, 3])
    S = LogSemiring(1.0)
    f = jax.jit(
        lambda e: dp.linear_chain(
            e, S, transitions=trans, final=final, lengths=lengths, method=method
        )
    )
    value, grad = f(emit), jax.grad(lambda e: jnp.sum(f(e)))(emit)
    mu = dp.node_marginals(emit, transitions=trans, final=final, lengths=lengths, method=method)
    for b, n in enumerate(lengths.tolist()):
        e = emit[b, :n]
        # Full edge potentials: ψ_t(i, j) = A_ij + E_{t+1, j}, with E_0 as the initial scores.
        pot = trans[None] + e[1:, None, :]
        want = dp.linear_chain(pot, S, initial=e[0], final=final, method=method)
        chex.assert_trees_all_close(value[b], want, rtol=1e-6)
        unpadded = jax.jit(
            jax.grad(lambda e: dp.linear_chain(e, S, transitions=trans, final=final, method=method))
        )(e)
        chex.assert_trees_all_close(grad[b, :n], unpadded, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(grad[b, n:], 0.0)  # the padding is invisible
        # Node marginals are that gradient: rows sum to one, padded rows are 0.
        chex.assert_trees_all_close(mu[b, :n], unpadded, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.sum(mu[b, :n], axis=-1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(mu[b, n:], 0.0)


@pytest.mark.slow
def test_node_marginals_brute_force_and_limits():
    rng = np.random.default_rng(9)
    pot = rng.normal(size=(3, 2, 2))
    init, final = rng.normal(size=2), rng.normal(size=2)
    terms, _ = _chain_paths(pot, init, final)
    seqs = np.array(list(itertools.product(range(2), repeat=4)))
    with jax.enable_x64(True):
        for beta in (1.0, 2.5, -0.5):
            p = _gibbs(np.sum(terms, axis=1), beta)
            want = np.stack([np.bincount(seqs[:, t], weights=p, minlength=2) for t in range(4)])
            mu = dp.node_marginals(pot, LogSemiring(beta), initial=init, final=final)
            np.testing.assert_allclose(mu, want, rtol=1e-10)
        _, best = _brute_best(pot, init, final, 4)
        hot = dp.node_marginals(pot, MaxPlus(), initial=init, final=final)
        np.testing.assert_array_equal(hot, np.eye(2)[best])
    with pytest.raises(TypeError, match=r"semiring must be LogSemiring\(beta\), MaxPlus"):
        dp.node_marginals(pot, Real())


def test_chain_argument_checks():
    emit, trans = jnp.zeros((4, 3)), jnp.zeros((3, 3))
    with pytest.raises(ValueError, match=r"transitions must have shape \(\.\.\., K, K\)"):
        dp.linear_chain(emit, MaxPlus(), transitions=jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="emissions of shape"):
        dp.viterbi(jnp.zeros((0, 3)), transitions=trans)
    with pytest.raises(ValueError, match=r"lengths must be between 1 and .* 4, got \[0, 5\]"):
        dp.viterbi(jnp.zeros((2, 4, 3)), transitions=trans, lengths=jnp.array([0, 5]))
    with pytest.raises(TypeError, match="lengths must be an integer array"):
        dp.linear_chain(emit, MaxPlus(), transitions=trans, lengths=jnp.array(2.0))
    with pytest.raises(ValueError, match=r"broadcastable to the batch shape \(\)"):
        dp.linear_chain(emit, MaxPlus(), transitions=trans, lengths=jnp.array([1, 2]))


def test_parallel_chain_lowers_to_a_small_program():
    # The tree multiplies small K x K matrices: each product lowers to the definition's few fused
    # operations, not a BLAS engine with its loops (which made this program ~50,000 lines long).
    pot = jax.ShapeDtypeStruct((256, 8, 8), jnp.float32)
    grad = jax.grad(lambda p: dp.linear_chain(p, LogSemiring(1.0), method="parallel"))
    text = jax.jit(grad).lower(pot).as_text()
    assert len(text.splitlines()) < 12_000
    assert text.count("stablehlo.while") == 0
