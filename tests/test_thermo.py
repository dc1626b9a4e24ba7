"""Tests of softjax.thermo: the Boltzmann distribution and its thermodynamic quantities."""

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special as sps
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import softjax as sjx

INF = float("inf")
NAN = float("nan")
BETAS = [-3.0, -0.5, -1e-3, 1e-3, 0.3, 1.0, 4.0]
ENERGIES = [0.3, -1.2, 2.0, 0.5, -1.2, 5.0]


FUNCTIONS = {
    "log_z": sjx.log_partition,
    "f": sjx.free_energy,
    "mean": sjx.mean_energy,
    "c": sjx.heat_capacity,
    "s": sjx.gibbs_entropy,
}


def _quantities(energies, beta, where=None):
    """Every quantity at one β, as a dict (jit and vmap it)."""
    kw = dict(beta=beta, where=where)
    return dict(
        log_z=sjx.log_partition(energies, **kw),
        f=sjx.free_energy(energies, **kw),
        mean=sjx.mean_energy(energies, **kw),
        c=sjx.heat_capacity(energies, **kw),
        s=sjx.gibbs_entropy(energies, **kw),
        p=sjx.boltzmann(energies, **kw),
    )


_over_betas = jax.jit(jax.vmap(_quantities, (None, 0, None)))


def _derivatives(energies, beta):
    """∂ log Z/∂β, ∂² log Z/∂β², ∂⟨E⟩/∂β, ∂F/∂β and ∂ log Z/∂E by autodiff."""

    def log_z(b):
        return sjx.log_partition(energies, beta=b)

    return dict(
        dlogz=jax.grad(log_z)(beta),
        d2logz=jax.grad(jax.grad(log_z))(beta),
        d2logz_fwd=jax.jacfwd(jax.jacrev(log_z))(beta),
        dmean=jax.grad(lambda b: sjx.mean_energy(energies, beta=b))(beta),
        df=jax.grad(lambda b: sjx.free_energy(energies, beta=b))(beta),
        dlogz_de=jax.grad(lambda e: sjx.log_partition(e, beta=beta))(energies),
    )


_derivatives_over_betas = jax.jit(jax.vmap(_derivatives, (None, 0)))


def test_log_partition_matches_scipy():
    with jax.enable_x64(True):
        e = jnp.asarray(ENERGIES)
        betas = jnp.asarray([*BETAS, 0.0, 50.0, -50.0])
        q = _over_betas(e, betas, None)
        for i, b in enumerate(np.asarray(betas)):
            expected = sps.logsumexp(-b * np.asarray(e))
            np.testing.assert_allclose(q["log_z"][i], expected, rtol=1e-13)
            np.testing.assert_allclose(q["p"][i], sps.softmax(-b * np.asarray(e)), rtol=1e-12)
            if b != 0:
                np.testing.assert_allclose(q["f"][i], -expected / b, rtol=1e-13)
        # Large energies and β: the shift comes first, nothing overflows.
        big = jnp.array([1e3, 1e3 + 1.0, 1e3 + 5.0], jnp.float32)
        log_z = jax.jit(lambda b: sjx.log_partition(big, beta=b))
        np.testing.assert_allclose(log_z(1e3), -1e6, rtol=1e-7)
        np.testing.assert_allclose(log_z(1e30), -1e33, rtol=1e-6)


def test_thermodynamic_identities_by_autodiff():
    """⟨E⟩ = −∂ log Z/∂β, C = β² ∂² log Z/∂β², S = β(⟨E⟩ − F), ∂F/∂β = S/β², ∂ log Z/∂E = −βp."""
    with jax.enable_x64(True):
        e = jnp.asarray(ENERGIES)
        betas = jnp.asarray(BETAS)
        q = _over_betas(e, betas, None)
        d = _derivatives_over_betas(e, betas)
        b = betas
        chex.assert_trees_all_close(q["mean"], -d["dlogz"], rtol=1e-12)
        chex.assert_trees_all_close(q["c"], b**2 * d["d2logz"], rtol=1e-10)
        chex.assert_trees_all_close(q["c"], b**2 * d["d2logz_fwd"], rtol=1e-10)
        chex.assert_trees_all_close(q["c"], -(b**2) * d["dmean"], rtol=1e-10)
        chex.assert_trees_all_close(q["s"], b * (q["mean"] - q["f"]), rtol=1e-9, atol=1e-14)
        chex.assert_trees_all_close(q["s"], q["log_z"] + b * q["mean"], rtol=1e-10, atol=1e-14)
        chex.assert_trees_all_close(d["df"], q["s"] / b**2, rtol=1e-8)
        chex.assert_trees_all_close(d["dlogz_de"], -b[:, None] * q["p"], rtol=1e-12)
        # Free energy below the mean energy for β > 0, above it for β < 0 (S ≥ 0).
        assert np.all(np.sign(q["mean"] - q["f"]) == np.sign(b))


def test_limits_ground_state_and_infinite_temperature():
    e = jnp.array([2.0, 0.5, 3.0, 0.5, 7.0])
    q = _over_betas(e, jnp.array([INF, -INF, 0.0, 1e30, 1e3]), None)
    # β = +∞: the two degenerate ground states.
    assert float(q["mean"][0]) == 0.5 and float(q["f"][0]) == 0.5
    assert float(q["c"][0]) == 0.0
    np.testing.assert_allclose(q["s"][0], np.log(2), rtol=1e-7)
    assert float(q["log_z"][0]) == -INF
    np.testing.assert_array_equal(q["p"][0], [0, 0.5, 0, 0.5, 0])
    # β = −∞: the highest level.
    assert float(q["mean"][1]) == 7.0 and float(q["f"][1]) == 7.0 and float(q["c"][1]) == 0.0
    assert float(q["log_z"][1]) == INF and float(q["s"][1]) == 0.0
    # β = 0: uniform.
    np.testing.assert_allclose(q["mean"][2], np.mean(e), rtol=1e-7)
    np.testing.assert_allclose(q["log_z"][2], np.log(5), rtol=1e-7)
    np.testing.assert_allclose(q["s"][2], np.log(5), rtol=1e-7)
    assert float(q["c"][2]) == 0.0 and float(q["f"][2]) == -INF
    # Huge finite β: the ground state, with no overflow or NaN; F = E₀ − log(k)/β.
    for i, b in [(3, 1e30), (4, 1e3)]:
        assert float(q["mean"][i]) == 0.5 and float(q["c"][i]) == 0.0
        np.testing.assert_allclose(q["f"][i], 0.5 - np.log(2) / b, rtol=1e-6)
        np.testing.assert_allclose(q["s"][i], np.log(2), rtol=1e-6)
    # log Z at β = ±∞ is log k when the ground energy is exactly 0.
    q = _over_betas(e - 0.5, jnp.array([INF, 1e30, 0.0, -INF]), None)
    np.testing.assert_allclose(q["log_z"][:2], [np.log(2)] * 2, rtol=1e-7)
    assert float(q["log_z"][3]) == INF
    # One state: F is its energy at β = 0 too.
    np.testing.assert_array_equal(sjx.free_energy(jnp.array([1.5]), beta=0.0), 1.5)


def test_derivatives_at_the_limits_are_finite():
    e = jnp.array([2.0, 0.5, 3.0, 0.5, 7.0])
    d = jax.tree.map(np.asarray, _derivatives_over_betas(e, jnp.array([INF, -INF, 0.0, 1e30])))
    np.testing.assert_array_equal(d["dlogz"], [-0.5, -7.0, -np.mean(e, dtype=np.float32), -0.5])
    np.testing.assert_array_equal(d["dmean"][[0, 1, 3]], [0.0, 0.0, 0.0])
    assert np.all(np.isfinite(d["df"][[0, 1, 3]]))
    # ∂ log Z/∂E = −βp: exactly 0 on the excited states also at β = ±∞.
    np.testing.assert_array_equal(d["dlogz_de"][0, [0, 2, 4]], [0.0, 0.0, 0.0])

    def grads(b):
        return dict(
            c=jax.grad(lambda b, e: sjx.heat_capacity(e, beta=b), argnums=(0, 1))(b, e),
            s=jax.grad(lambda b, e: sjx.entropy(-e, beta=b), argnums=(0, 1))(b, e),
            mean=jax.grad(lambda e: sjx.mean_energy(e, beta=b))(e),
        )

    out = jax.jit(jax.vmap(grads))(jnp.array([INF, -INF, 0.0, 1e30, -1e30, 3.0]))
    for leaf in jax.tree.leaves(out):
        assert np.all(np.isfinite(leaf)), out


@pytest.mark.parametrize("delta", [1.0, 0.3, 7.0])
def test_schottky_anomaly(delta):
    """Two levels Δ apart: C(β) = (βΔ)² e^{βΔ} / (1 + e^{βΔ})², peaked at βΔ ≈ 2.3994."""
    with jax.enable_x64(True):
        e = jnp.array([0.0, delta])
        x = np.linspace(-12.0, 12.0, 2401)
        betas = jnp.asarray(x / delta)
        c = np.asarray(_over_betas(e, betas, None)["c"])
        closed = x**2 * np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))) ** 2
        np.testing.assert_allclose(c, closed, rtol=1e-12, atol=1e-300)
        peak = scipy.optimize.brentq(lambda x: x * np.tanh(x / 2) - 2, 1.0, 4.0)
        np.testing.assert_allclose(abs(x[np.argmax(c)]), peak, atol=0.01)
        c_peak = sjx.heat_capacity(e, beta=peak / delta)
        np.testing.assert_allclose(c_peak, peak**2 * np.exp(peak) / (1 + np.exp(peak)) ** 2)
        np.testing.assert_allclose(c_peak, 0.43922, atol=1e-5)


@pytest.mark.parametrize("beta", [-1.3, 0.7])
def test_check_grads_custom_jvps(beta):
    """The closed-form JVPs of log_partition and entropy against finite differences (order 2)."""
    with jax.enable_x64(True):
        mask = jnp.array([True, True, False, True])

        def f(x):  # energies and β in one vector: fewer transformations to compile
            e, b = x[:4], x[4]
            return jnp.stack(
                [
                    sjx.log_partition(e, beta=b, where=mask),
                    sjx.entropy(-e, beta=b, where=mask),
                    sjx.heat_capacity(e, beta=b, where=mask),
                ]
            )

        check_grads(jax.jit(f), (jnp.array([0.3, -1.2, 2.0, -1.2, beta]),), order=2, modes=["rev"])


def test_masked_states_are_invisible():
    e = jnp.array([0.3, -5.0, 2.0, NAN, 0.5])
    mask = jnp.array([True, False, True, False, True])
    kept = jnp.array([0.3, 2.0, 0.5])
    betas = jnp.array([-2.0, 0.0, 1.0, INF])
    full = _over_betas(e, betas, mask)
    ref = _over_betas(kept, betas, None)
    for name in ["log_z", "f", "mean", "c", "s"]:
        chex.assert_trees_all_close(full[name], ref[name], rtol=1e-6)
    np.testing.assert_array_equal(full["p"][:, [1, 3]], 0.0)
    g = jax.jit(jax.grad(lambda e: sjx.log_partition(e, beta=1.0, where=mask)))(e)
    np.testing.assert_array_equal(g[jnp.array([1, 3])], [0.0, 0.0])
    # A slice with no live state: Z = 0.
    assert float(sjx.log_partition(e, beta=1.0, where=jnp.zeros(5, bool))) == -INF


def test_shapes_axes_and_batched_beta():
    e = jax.random.normal(jax.random.key(0), (3, 4, 5))
    beta = jnp.array([[[0.5]], [[INF]], [[-2.0]]])

    @jax.jit
    def both(e, beta):
        grouped = {k: f(e, beta=beta, axis=(1, 2), keepdims=True) for k, f in FUNCTIONS.items()}
        flat = {k: f(e.reshape(3, 20), beta=beta[:, 0], axis=-1) for k, f in FUNCTIONS.items()}
        return grouped, flat

    grouped, flat = both(e, beta)
    for k in FUNCTIONS:
        chex.assert_shape(grouped[k], (3, 1, 1))
        chex.assert_trees_all_close(grouped[k][:, 0, 0], flat[k], rtol=1e-5)
    chex.assert_shape(jax.eval_shape(lambda e: sjx.entropy(e, axis=0), e), (4, 5))
    chex.assert_shape(jax.eval_shape(lambda e: sjx.boltzmann(e, beta=1.0, axis=(0, 2)), e), e.shape)
    for f in FUNCTIONS.values():
        out = jax.eval_shape(lambda e, f=f: f(e.astype(jnp.bfloat16), beta=1.0), e)
        assert out.dtype == jnp.bfloat16 and out.shape == (3, 4)
    bf = jax.jit(lambda e: sjx.mean_energy(e.astype(jnp.bfloat16), beta=1.0))(e)
    np.testing.assert_allclose(bf.astype(jnp.float32), sjx.mean_energy(e, beta=1.0), atol=0.05)


def test_no_retrace_when_beta_changes():
    e = jnp.array([0.3, -1.2, 2.0, 0.5])

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(b):
        return _quantities(e, b)

    chex.clear_trace_counter()
    for b in [1.0, 0.0, INF, -INF, -2.0, 1e30]:
        out = f(jnp.float32(b))
        assert not any(np.isnan(v).any() for v in out.values()), (b, out)


_entropy_grid = jax.jit(jax.vmap(lambda z, b: sjx.entropy(z, beta=b), (None, 0)))
_mean_grid = jax.jit(jax.vmap(lambda e, b: sjx.mean_energy(e, beta=b), (None, 0)))
_GRID = jnp.array([0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 20.0, 1e3, INF])


@settings(max_examples=40, deadline=None)
@given(
    z=hnp.arrays(np.float32, 6, elements=st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]))
    | hnp.arrays(np.float32, 6, elements=st.floats(-10, 10, width=32))
)
def test_entropy_bounds_and_monotone(z):
    """log k ≤ H ≤ log n, non-increasing in |β|, log k at β = ∞; ⟨E⟩ non-increasing in β."""
    z = jnp.asarray(z)
    k = int(np.sum(z == z.max()))
    h = np.asarray(_entropy_grid(z, _GRID), np.float64)
    assert np.all(h >= np.log(k) - 1e-5) and np.all(h <= np.log(6) + 1e-5)
    assert np.all(np.diff(h) <= 1e-5)
    np.testing.assert_allclose(h[0], np.log(6), rtol=1e-6)
    np.testing.assert_allclose(h[-1], np.log(k), rtol=1e-6, atol=1e-7)
    h_neg = np.asarray(_entropy_grid(z, -_GRID), np.float64)
    assert np.all(np.diff(h_neg) <= 1e-5)
    mean = np.asarray(_mean_grid(z, jnp.concatenate([-_GRID[::-1], _GRID])), np.float64)
    assert np.all(np.diff(mean) <= 1e-5 * (1 + np.abs(mean[:-1])))


def test_entropy_gradients_finite_everywhere():
    z = jnp.array([1.0, 3.0, 3.0, -INF, 0.5, 9.0])
    mask = jnp.array([True, True, True, True, True, False])

    def grads(b):
        return jax.grad(lambda z, b: sjx.entropy(z, beta=b, where=mask), argnums=(0, 1))(z, b)

    betas = jnp.array([0.0, 1.0, -1.0, INF, -INF, 1e30, 3e38, 1e-30])
    gz, gb = jax.jit(jax.vmap(grads))(betas)
    assert np.all(np.isfinite(gz)) and np.all(np.isfinite(gb))
    np.testing.assert_array_equal(gz[:, 5], 0.0)  # masked
    np.testing.assert_array_equal(gz[3:5], 0.0)  # β = ±∞: locally constant
    # Values: log n at 0 (the −∞ entry counts), log k on the k-way tie.
    h = _entropy_grid(jnp.array([1.0, 3.0, 3.0, -INF, 0.5]), jnp.array([0.0, INF, 1e30, -INF]))
    np.testing.assert_allclose(h, [np.log(5), np.log(2), np.log(2), 0.0], rtol=1e-6)


def test_entropy_accuracy_at_large_beta():
    """Far from β = 0, where most probabilities underflow, against a float64 reference."""
    z = jnp.array([0.0, -1.0, -1.5, -30.0], jnp.float32)
    betas = np.array([3.0, 10.0, 30.0, 80.0])
    h = np.asarray(_entropy_grid(z, jnp.asarray(betas, jnp.float32)), np.float64)
    for hi, b in zip(h, betas, strict=True):
        logp = b * np.asarray(z, np.float64) - sps.logsumexp(b * np.asarray(z, np.float64))
        expected = -np.sum(np.exp(logp) * logp)
        np.testing.assert_allclose(hi, expected, rtol=2e-4)


def test_nan_slice_on_a_large_array():
    # Large enough for XLA's vectorised CPU reductions, which may skip a NaN.
    e = np.random.default_rng(14).standard_normal((8, 1024)).astype(np.float32)
    e[1, 5] = np.nan
    e = jnp.asarray(e)
    for b in [0.0, 1.0, float("inf")]:
        for f in (sjx.log_partition, sjx.free_energy, sjx.mean_energy, sjx.entropy):
            out = f(e, beta=b)
            assert jnp.isnan(out[1]), (f.__name__, b)
            assert not jnp.isnan(out[jnp.arange(8) != 1]).any(), (f.__name__, b)


# ------------------------------------------------------------------------------------------------
# Edges: forbidden states, masked non-finite entries, empty systems, NaN β, wide spreads


def _edge_systems():
    """(energies, mask) pairs with the states a thermodynamic quantity must step over."""
    e = jnp.array([0.3, -1.2, 2.0, 0.5])
    live = jnp.array([True, True, True, False])
    return {
        "forbidden state": (e.at[2].set(INF), None),
        "two forbidden states": (e.at[0].set(INF).at[3].set(INF), None),
        "masked nan": (e.at[3].set(NAN), live),
        "masked +inf": (e.at[3].set(INF), live),
        "masked -inf": (e.at[3].set(-INF), live),
        "empty": (e, jnp.zeros(4, bool)),
    }


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("jit", [jax.jit, lambda f: f], ids=["jit", "eager"])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_gradients_are_finite_on_every_edge(name, jit, dtype):
    # Away from β = 0 a forbidden (+inf) state has weight 0, masked states are invisible and an
    # empty system is constant: the gradient in E and β is finite, and 0 on those states.
    with jax.enable_x64(dtype == np.float64):
        f = FUNCTIONS[name]
        for case, (e, mask) in _edge_systems().items():
            e = e.astype(dtype)
            grad = jit(jax.grad(lambda e, b, mask: f(e, beta=b, where=mask), (0, 1)))
            for b in [1.0, 3.0, INF, -INF] + ([] if "forbidden" in case else [-1.0]):
                ge, gb = grad(e, jnp.asarray(b, dtype), mask)
                # at β = ±inf, ∂ log Z/∂E = −βp is ∓inf on the ground state: not NaN
                ok = np.isfinite if np.isfinite(b) else lambda x: ~np.isnan(x)
                assert np.all(ok(ge)) and ok(gb), (case, b, ge, gb)
                if mask is not None or b > 0:  # for β < 0 a +inf state is the ground state
                    off = ~np.isfinite(np.asarray(e)) if mask is None else ~np.asarray(mask)
                    np.testing.assert_array_equal(np.asarray(ge)[off], 0.0, err_msg=case)


def test_a_forbidden_state_at_infinite_temperature():
    # At β = 0 every state weighs 1/n: the mean energy is +inf and C = 0 (β² wins); their
    # derivatives are undefined (of an infinite value, or 0·inf) and documented as NaN.
    e = jnp.array([0.3, -1.2, INF])
    assert sjx.mean_energy(e, beta=0.0) == INF
    assert sjx.heat_capacity(e, beta=0.0) == 0.0
    for f in (sjx.mean_energy, sjx.heat_capacity):
        ge, gb = jax.grad(lambda e, b, f=f: f(e, beta=b), (0, 1))(e, 0.0)
        assert np.all(np.isnan(ge)) and np.isnan(gb), f.__name__
    # The free energy stays finite in its derivatives: -log n / β → -inf, slope in E uniform.
    ge = jax.grad(lambda e: sjx.free_energy(e, beta=0.0))(e)
    np.testing.assert_allclose(ge, [1 / 3] * 3, rtol=1e-6)


@pytest.mark.parametrize("name", list(FUNCTIONS) + ["p"])
def test_nan_beta_gives_nan(name):
    f = FUNCTIONS.get(name, sjx.boltzmann)
    out = jax.jit(lambda b: f(jnp.array([0.0, 1.0, 3.0]), beta=b))(NAN)
    assert np.all(np.isnan(out)), out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spreads_up_to_twice_the_largest_float(dtype):
    with jax.enable_x64(dtype == np.float64):
        big = np.finfo(dtype).max * 0.9
        e = jnp.asarray([big, -big, big / 2], dtype)
        scaled = np.asarray(e, np.float64) / big  # E / big, in [-1, 1]
        assert sjx.heat_capacity(e, beta=0.0) == 0.0
        np.testing.assert_allclose(sjx.mean_energy(e, beta=0.0), big * scaled.mean(), rtol=1e-6)
        for t in [5.0, 20.0, -8.0]:  # β·big (β must be normal: XLA flushes subnormals to 0)
            p = sps.softmax(-t * scaled)
            mean = big * np.sum(p * scaled)
            c = t**2 * np.sum(p * (scaled - np.sum(p * scaled)) ** 2)
            b = dtype(t / big)
            np.testing.assert_allclose(sjx.mean_energy(e, beta=b), mean, rtol=1e-5)
            np.testing.assert_allclose(sjx.heat_capacity(e, beta=b), c, rtol=1e-5)
