"""Tests of softjax.random: exact Gumbel-max samples, their relaxation, straight-through."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import softjax as sjx

INF = float("inf")
NAN = float("nan")
transforms = pytest.mark.parametrize("jit", [jax.jit, lambda f: f], ids=["jit", "eager"])

N = 20_000  # draws per frequency test
KEYS = jax.random.split(jax.random.key(1234), N)


@jax.jit
def _frequencies(z, beta, where):
    """Frequencies of N draws of sample_onehot, one key per draw (vmapped)."""
    draws = jax.vmap(lambda k: sjx.sample_onehot(k, z, beta=beta, where=where))(KEYS)
    return draws.mean(axis=0)


def _probabilities(z, beta, where=None):
    """softargmax(z, beta) along the last axis in float64 NumPy: an independent reference."""
    z = np.asarray(z, np.float64)
    beta = np.asarray(beta, np.float64)
    live = np.ones(z.shape, bool) if where is None else np.asarray(where)
    if np.isinf(beta).any() or (beta == 0).any():
        assert beta.ndim == 0
        if beta == 0:
            p = live.astype(np.float64)
        else:
            s = np.where(live, np.sign(beta) * z, -np.inf)
            p = (s == s.max(axis=-1, keepdims=True)).astype(np.float64)
    else:
        logits = np.where(live, beta * z, -np.inf)
        p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


def _assert_matches(freq, p, n=N, sigmas=5.0):
    """Every frequency within `sigmas` binomial standard deviations (plus one count) of p."""
    freq, p = np.asarray(freq, np.float64), np.asarray(p, np.float64)
    bound = sigmas * np.sqrt(p * (1 - p) / n) + 1.0 / n
    assert np.all(np.abs(freq - p) <= bound), (freq, p)


# ------------------------------------------------------------------------------------------------
# sample_onehot


@pytest.mark.parametrize("beta", [1.0, 0.4, -0.7, 2.5])
def test_sample_frequencies_match_softargmax(beta):
    z = jnp.array([1.0, 0.0, 2.5, -1.0, 0.5, 2.0])
    mask = jnp.ones(6, bool)
    freq = _frequencies(z, beta, mask)
    p = _probabilities(z, beta)
    _assert_matches(freq, p)
    # A chi-square test of the counts (fixed seed: deterministic).
    counts = np.round(np.asarray(freq, np.float64) * N)
    expected = np.asarray(p, np.float64) / np.sum(np.asarray(p, np.float64)) * N
    assert scipy.stats.chisquare(counts, expected).pvalue > 1e-4


def test_sample_limits_and_masks():
    z = jnp.array([1.0, 3.0, 3.0, 0.0, 3.0, -jnp.inf])
    all_live = jnp.ones(6, bool)
    # β = +∞: the arg max, ties broken uniformly at random.
    freq = _frequencies(z, INF, all_live)
    np.testing.assert_array_equal(np.asarray(freq)[[0, 3, 5]], 0.0)
    _assert_matches(freq, [0, 1 / 3, 1 / 3, 0, 1 / 3, 0])
    # β = −∞: the arg min (here the −∞ entry).
    np.testing.assert_array_equal(_frequencies(z, -INF, all_live), [0, 0, 0, 0, 0, 1])
    # β = 0: uniform over the unmasked entries, −∞ included (as softargmax at β = 0).
    _assert_matches(_frequencies(z, 0.0, all_live), np.full(6, 1 / 6))
    mask = jnp.array([True, False, True, True, False, False])
    freq = _frequencies(z, 0.0, mask)
    np.testing.assert_array_equal(np.asarray(freq)[~np.asarray(mask)], 0.0)
    _assert_matches(freq, [1 / 3, 0, 1 / 3, 1 / 3, 0, 0])
    # Masked entries are never drawn, whatever β (here the masked ones are the best).
    for beta in [1.0, 1e30, INF, -2.0]:
        freq = _frequencies(z, beta, mask)
        np.testing.assert_array_equal(np.asarray(freq)[~np.asarray(mask)], 0.0)
        _assert_matches(freq, _probabilities(z, beta, mask))
    # Entries at −∞ are never drawn for β > 0.
    assert float(_frequencies(z, 1.0, all_live)[5]) == 0.0


@pytest.mark.parametrize("beta", [1e30, 3e38, 1e-30, 1e-45])
def test_sample_extreme_finite_beta(beta):
    """Huge β: the arg max with random tie-breaking, no overflow; tiny β: uniform."""
    z = jnp.array([0.5, 2.0, 2.0, -1e30, 1e-3])
    freq = _frequencies(z, beta, jnp.ones(5, bool))
    assert np.all(np.isfinite(freq))
    _assert_matches(freq, _probabilities(z, beta))
    if beta > 1:
        _assert_matches(freq, [0, 0.5, 0.5, 0, 0])


def test_sample_per_slice_beta_and_axes():
    z = jnp.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0], [5.0, 5.0, 1.0], [1.0, 1.0, 9.0]])
    beta = jnp.array([[1.0], [-1.0], [INF], [0.0]])
    draws = jax.jit(jax.vmap(lambda k: sjx.sample_onehot(k, z, beta=beta)))(KEYS[:5000])
    p = np.stack([_probabilities(row, b) for row, b in zip(z, beta[:, 0], strict=True)])
    _assert_matches(draws.mean(axis=0), p, n=5000)
    # Several axes: one draw per slice over axes (0, 2).
    z3 = jax.random.normal(jax.random.key(0), (3, 2, 4))
    one = sjx.sample_onehot(jax.random.key(1), z3, axis=(0, 2))
    np.testing.assert_array_equal(one.sum(axis=(0, 2)), [1.0, 1.0])
    draws = jax.jit(jax.vmap(lambda k: sjx.sample_onehot(k, z3, axis=(2, 0))))(KEYS[:5000])
    p = _probabilities(jnp.transpose(z3, (1, 0, 2)).reshape(2, 12), 1.0)
    _assert_matches(draws.mean(axis=0), p.reshape(2, 3, 4).transpose(1, 0, 2), n=5000)


def test_sample_is_one_hot_exactly_and_dtypes():
    z = jax.random.normal(jax.random.key(3), (64, 10))
    one = jax.jit(lambda k, z: sjx.sample_onehot(k, z, beta=3.0))(jax.random.key(4), z)
    assert one.dtype == jnp.float32
    assert set(np.unique(np.asarray(one))) <= {0.0, 1.0}
    np.testing.assert_array_equal(one.sum(axis=-1), np.ones(64))
    # A row of independent draws: the 64 rows are not all the same.
    assert len({int(i) for i in np.argmax(np.asarray(one), axis=-1)}) > 3
    shape = jax.eval_shape(sjx.sample_onehot, jax.random.key(4), z.astype(jnp.bfloat16))
    assert shape.dtype == jnp.bfloat16
    shape = jax.eval_shape(sjx.sample_onehot, jax.random.key(4), jnp.array([1, 2, 3]))
    assert shape.dtype == jnp.result_type(float)
    draw = jax.jit(sjx.sample_onehot)
    # Old-style uint32 keys work too.
    np.testing.assert_array_equal(draw(jax.random.PRNGKey(0), z[0]).sum(), 1.0)
    # The sample carries no gradient (it is piecewise constant): d/dz Σ onehot·z = onehot.
    grad = jax.jit(jax.grad(lambda z: jnp.sum(sjx.sample_onehot(jax.random.key(0), z) * z)))
    np.testing.assert_array_equal(grad(z[0]), draw(jax.random.key(0), z[0]))


def test_sample_empty_and_nan_slices():
    z = jnp.array([[1.0, 2.0, 3.0], [1.0, NAN, 3.0], [1.0, 2.0, 3.0]])
    mask = jnp.array([[True, True, True], [True, True, True], [False, False, False]])
    out = jax.jit(lambda k: sjx.sample_onehot(k, z, where=mask))(jax.random.key(0))
    np.testing.assert_array_equal(out[0].sum(), 1.0)
    assert np.all(np.isnan(out[1]))
    np.testing.assert_array_equal(out[2], [0.0, 0.0, 0.0])


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4)])
def test_empty_arrays(shape):
    z = jnp.zeros(shape)
    key = jax.random.key(2)
    for f in [
        lambda z: sjx.sample_onehot(key, z),
        lambda z: sjx.gumbel_softargmax(key, z),
        lambda z: sjx.gumbel_softargmax(key, z, hard=True),
    ]:
        for g in [f, jax.jit(f)]:
            assert g(z).shape == shape
    grad = jax.grad(lambda z: sjx.gumbel_softargmax(key, z, tau=0.5).sum())(z)
    assert grad.shape == shape


def test_nan_slice_on_a_large_array():
    # Large enough for XLA's vectorised CPU reductions, which may skip a NaN.
    z = np.random.default_rng(13).standard_normal((8, 1024)).astype(np.float32)
    z[1, 5] = NAN
    z = jnp.asarray(z)
    key = jax.random.key(1)
    for out in (
        sjx.sample_onehot(key, z),
        sjx.gumbel_softargmax(key, z, tau=INF),
        sjx.gumbel_softargmax(key, z, hard=True),
    ):
        assert jnp.isnan(out[1]).all()
        np.testing.assert_allclose(out[jnp.arange(8) != 1].sum(axis=-1), 1.0, rtol=1e-5)


@transforms
def test_sample_jit_vmap_no_retrace(jit):
    z = jnp.array([0.3, -1.0, 2.0, 2.0])

    @jit
    @chex.assert_max_traces(n=1)
    def draw(key, beta):
        return sjx.sample_onehot(key, z, beta=beta)

    chex.clear_trace_counter()
    for beta in [1.0, 0.0, INF, -INF, 1e30, -3.0]:
        one = draw(jax.random.key(0), jnp.float32(beta))
        np.testing.assert_array_equal(one.sum(), 1.0)
    betas = jnp.array([0.0, 1.0, INF])
    keys = jax.random.split(jax.random.key(1), 3)
    out = jax.vmap(lambda k, b: sjx.sample_onehot(k, z, beta=b))(keys, betas)
    chex.assert_shape(out, (3, 4))
    np.testing.assert_array_equal(out[2, :2], [0.0, 0.0])


def test_sample_argument_errors():
    with pytest.raises(ValueError, match="axis"):
        sjx.sample_onehot(jax.random.key(0), jnp.ones(3), axis=1)
    with pytest.raises(TypeError, match="where"):
        sjx.sample_onehot(jax.random.key(0), jnp.ones(3), where=jnp.ones(3))


# ------------------------------------------------------------------------------------------------
# gumbel_softargmax


@jax.jit
def _relax(key, z, tau, beta=1.0):
    return sjx.gumbel_softargmax(key, z, tau=tau, beta=beta)


@jax.jit
def _relax_hard(key, z, tau, beta=1.0):
    return sjx.gumbel_softargmax(key, z, tau=tau, beta=beta, hard=True)


def test_gumbel_softargmax_formula():
    """y = softmax((β z + g)/τ) with g = jax.random.gumbel(key, z.shape): the documented form."""
    key = jax.random.key(7)
    z = jnp.array([[1.0, 2.0, 0.5, -1.0], [0.0, 0.0, 3.0, 1.0]])
    g = jax.random.gumbel(key, z.shape)
    for tau, beta in [(2.0, 1.0), (1.0, 1.0), (1 / 3, 1.0), (0.5, 2.5), (1.0, -1.5), (-0.5, 1.0)]:
        y = _relax(key, z, tau, beta)
        want = jax.nn.softmax((beta * z + g) / tau, axis=-1)
        chex.assert_trees_all_close(y, want, atol=1e-6)
        np.testing.assert_allclose(y.sum(axis=-1), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(_relax(key, z, INF), np.full((2, 4), 0.25))


def test_gumbel_softargmax_limits_and_hard():
    z = jnp.array([1.0, 2.0, 0.5, -1.0, 2.0])
    keys = KEYS[:200]
    for beta in [1.0, 3.0, INF, -INF]:
        one = jax.vmap(lambda k, beta=beta: sjx.sample_onehot(k, z, beta=beta))(keys)
        # τ = 0: the Gumbel-max sample of σ_β(z) itself, bit for bit (same key, same noise).
        relax = jax.vmap(_relax, (0, None, None, None))
        np.testing.assert_array_equal(relax(keys, z, 0.0, beta), one)
        for tau in [10.0, 1.0, 0.1]:
            # hard=True: that sample, bit for bit, for any τ.
            hard = jax.vmap(_relax_hard, (0, None, None, None))(keys, z, tau, beta)
            np.testing.assert_array_equal(hard, one)
            # The relaxation's arg max is the sample (τ > 0).
            soft = relax(keys, z, tau, beta)
            np.testing.assert_array_equal(np.argmax(soft, axis=-1), np.argmax(one, axis=-1))
    # Small τ: close to the sample.
    one = jax.vmap(lambda k: sjx.sample_onehot(k, z))(keys)
    soft = jax.vmap(_relax, (0, None, None))(keys, z, 1e-4)
    assert np.mean(np.abs(np.asarray(soft) - np.asarray(one)).max(axis=-1) < 1e-3) > 0.9


def test_gumbel_softargmax_straight_through_gradient():
    key = jax.random.key(3)
    z = jnp.array([1.0, 2.0, 0.5, -1.0])
    w = jnp.array([0.3, -1.0, 2.0, 0.5])
    hard = jax.jit(jax.grad(lambda z, t, b: w @ _relax_hard(key, z, t, b), argnums=(0, 1, 2)))
    soft = jax.jit(jax.grad(lambda z, t, b: w @ _relax(key, z, t, b), argnums=(0, 1, 2)))
    for tau, beta in [(2.0, 1.0), (0.5, 1.0), (0.5, 3.0)]:
        for g_h, g_s in zip(hard(z, tau, beta), soft(z, tau, beta), strict=True):
            np.testing.assert_array_equal(g_h, g_s)
        gz, gt, gb = hard(z, tau, beta)
        assert np.all(np.isfinite(gz)) and np.any(gz != 0) and np.isfinite(gt) and np.isfinite(gb)
    # τ = 0 and ∞, β = ±∞: finite gradients (zero in τ at τ = 0, where the sample is flat).
    for tau, beta in [(0.0, 1.0), (INF, 1.0), (1.0, INF), (1.0, -INF)]:
        gz, gt, gb = hard(z, tau, beta)
        assert np.all(np.isfinite(gz)) and np.isfinite(gt) and np.isfinite(gb)
    assert hard(z, 0.0, 1.0)[1] == 0.0


def test_gumbel_softargmax_masks_and_samples():
    z = jnp.array([1.0, 5.0, 0.5, 2.0])
    mask = jnp.array([True, False, True, True])
    relax = jax.jit(lambda z, t: sjx.gumbel_softargmax(jax.random.key(0), z, tau=t, where=mask))
    for tau in [INF, 1.0, 0.0]:
        y = relax(z, tau)
        assert float(y[1]) == 0.0
        np.testing.assert_allclose(y.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(relax(z, INF), [1 / 3, 0, 1 / 3, 1 / 3])
    g = jax.jit(jax.grad(lambda z: relax(z, 0.5)[0]))(z)
    assert float(g[1]) == 0.0 and np.all(np.isfinite(g))
    # The hard samples are distributed as softargmax(z, β) over the live entries.
    for beta in [1.0, 2.0]:
        draws = jax.jit(
            jax.vmap(
                lambda k, beta=beta: sjx.gumbel_softargmax(k, z, beta=beta, hard=True, where=mask)
            )
        )(KEYS[:10_000])
        _assert_matches(draws.mean(axis=0), _probabilities(z, beta, mask), n=10_000)


def test_gumbel_softargmax_tau_checks():
    z = jnp.array([0.3, -1.0, 2.0])
    for bad in (-1.0, jnp.array(-0.5), float("nan")):
        with pytest.raises(ValueError, match="tau must be >= 0"):
            sjx.gumbel_softargmax(jax.random.key(0), z, tau=bad)


def test_gumbel_softargmax_transforms():
    z = jnp.array([0.3, -1.0, 2.0])

    @jax.jit
    @chex.assert_max_traces(n=1)
    def relax(key, tau):
        return sjx.gumbel_softargmax(key, z, tau=tau, hard=True)

    chex.clear_trace_counter()
    for tau in [1.0, INF, 0.0, 0.1]:
        np.testing.assert_array_equal(relax(jax.random.key(0), jnp.float32(tau)).sum(), 1.0)
    keys = jax.random.split(jax.random.key(0), 5)
    out = jax.vmap(_relax, (0, None, None))(keys, z, 0.5)
    chex.assert_shape(out, (5, 3))
    with pytest.raises(TypeError, match="hard"):
        sjx.gumbel_softargmax(jax.random.key(0), z, hard=1)


# ------------------------------------------------------------------------------------------------
# straight_through


def test_straight_through_forward_is_bit_exact():
    rng = np.random.default_rng(0)
    hard = jnp.asarray(rng.normal(size=1000).astype(np.float32))
    soft = jnp.asarray((rng.normal(size=1000) * 1e6).astype(np.float32))
    out = jax.jit(sjx.straight_through)(hard, soft)
    np.testing.assert_array_equal(out, hard)
    assert out.dtype == jnp.float32
    # The arithmetic form rounds: it is not `hard` bit for bit on these inputs.
    naive = soft + jax.lax.stop_gradient(hard - soft)
    assert not np.array_equal(naive, hard)
    # A one-hot stays exactly one-hot.
    z = jnp.array([0.1, 0.7, 0.2])
    np.testing.assert_array_equal(
        sjx.straight_through(sjx.argmax_onehot(z), sjx.softargmax(z)), [0.0, 1.0, 0.0]
    )


def test_straight_through_gradient_is_the_soft_gradient():
    z = jnp.array([0.1, 0.7, 0.2, -0.4])
    w = jnp.array([1.0, -2.0, 0.5, 3.0])

    def st(z):
        return sjx.straight_through(sjx.argmax_onehot(z) * z, sjx.softargmax(z, beta=2.0) * z)

    def soft(z):
        return sjx.softargmax(z, beta=2.0) * z

    def grad(f):
        return jax.jit(jax.grad(lambda z: w @ f(z)))

    def hess(f):
        return jax.jit(jax.hessian(lambda z: w @ f(z)))

    np.testing.assert_array_equal(grad(st)(z), grad(soft)(z))
    chex.assert_trees_all_close(hess(st)(z), hess(soft)(z), atol=1e-5)  # forward over reverse
    # No gradient flows into `hard`.
    g_hard = jax.grad(lambda h: jnp.sum(sjx.straight_through(h, z)))(jnp.ones(4))
    np.testing.assert_array_equal(g_hard, np.zeros(4))
    # vmap.
    zs = jnp.stack([z, -z, 2 * z])
    out = jax.jit(jax.vmap(st))(zs)
    np.testing.assert_array_equal(out, jax.vmap(lambda z: sjx.argmax_onehot(z) * z)(zs))


def test_straight_through_dtypes_and_errors():
    out = sjx.straight_through(jnp.array([0, 1]), jnp.array([0.2, 0.8], jnp.bfloat16))
    assert out.dtype == jnp.bfloat16
    assert sjx.straight_through(jnp.array([0, 1]), jnp.array([0, 1])).dtype == jnp.result_type(
        float
    )
    with pytest.raises(ValueError, match="shape"):
        sjx.straight_through(jnp.ones(3), jnp.ones(4))
