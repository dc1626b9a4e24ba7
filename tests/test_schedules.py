"""Tests of softjax.schedules: stateless β schedules, their transformations and stateful ones."""

import math
import re

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings

from softjax import schedules

TRANSFORMS = [jax.jit, lambda f: f]

# (name, schedule, init, end, first step of the transition, steps of the transition)
STATELESS = [
    ("linear_up", schedules.linear(0.5, 8.0, 20), 0.5, 8.0, 0, 20),
    ("linear_down", schedules.linear(8.0, -2.0, 15, transition_begin=5), 8.0, -2.0, 5, 15),
    ("exponential_up", schedules.exponential(0.01, 100.0, 30), 0.01, 100.0, 0, 30),
    ("exponential_down", schedules.exponential(50.0, 0.5, 10, 3), 50.0, 0.5, 3, 10),
    ("exponential_negative", schedules.exponential(-0.1, -10.0, 12), -0.1, -10.0, 0, 12),
    ("cosine_up", schedules.cosine(1.0, 10.0, 25, transition_begin=7), 1.0, 10.0, 7, 25),
    ("cosine_down", schedules.cosine(3.0, 0.0, 9), 3.0, 0.0, 0, 9),
    ("polynomial_up", schedules.polynomial(0.0, 4.0, 2.0, 16, 2), 0.0, 4.0, 2, 16),
    ("polynomial_down", schedules.polynomial(4.0, 1.0, 0.5, 11), 4.0, 1.0, 0, 11),
]

ALL_SCHEDULES = [
    *[s for _, s, *_ in STATELESS],
    schedules.constant(2.0),
    schedules.logarithmic(0.7, transition_begin=3, max_value=5.0),
    schedules.gumbel_softmax(rate=1e-2, every=4),
    schedules.from_temperature(schedules.linear(2.0, 0.0, 10)),
    schedules.to_temperature(schedules.linear(0.5, 4.0, 10)),
    schedules.clip(schedules.exponential(0.01, 100.0, 10), beta_min=0.1, beta_max=10.0),
]


def _entropy(beta, z):
    p = jax.nn.softmax(beta * z)
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(p), 0.0))


# ------------------------------------------------------------------------------------------------
# Stateless schedules


@pytest.mark.parametrize("name, schedule, init, end, begin, steps", STATELESS)
def test_endpoints_and_hold(name, schedule, init, end, begin, steps):
    before = schedule(jnp.arange(begin + 1))
    chex.assert_trees_all_close(before, jnp.full(begin + 1, init, jnp.float32), rtol=1e-6)
    after = schedule(jnp.arange(begin + steps, begin + steps + 10))
    chex.assert_trees_all_close(after, jnp.full(10, end, jnp.float32), rtol=1e-6)
    # The end is reached exactly, not within rounding.
    assert float(schedule(begin + steps)) == np.float32(end)


@pytest.mark.parametrize("name, schedule, init, end, begin, steps", STATELESS)
def test_monotone(name, schedule, init, end, begin, steps):
    values = np.asarray(schedule(jnp.arange(begin + steps + 5)))
    diffs = np.diff(values) * np.sign(end - init)
    assert np.all(diffs >= -1e-6 * np.max(np.abs(values)))
    # Strictly moving during the transition.
    inside = np.diff(values[begin : begin + steps + 1]) * np.sign(end - init)
    assert np.all(inside > 0)


def test_values_against_optax():
    counts = jnp.arange(40)
    chex.assert_trees_all_close(
        schedules.linear(1.0, 5.0, 20, 7)(counts),
        optax.linear_schedule(1.0, 5.0, 20, 7)(counts),
        rtol=1e-6,
    )
    chex.assert_trees_all_close(
        schedules.polynomial(1.0, 5.0, 3.0, 20, 7)(counts),
        optax.polynomial_schedule(1.0, 5.0, 3.0, 20, 7)(counts),
        rtol=1e-6,
    )
    chex.assert_trees_all_close(
        schedules.cosine(4.0, 1.0, 30)(counts),
        optax.cosine_decay_schedule(4.0, 30, alpha=0.25)(counts),
        rtol=1e-5,
    )


def test_exponential_is_geometric():
    schedule = schedules.exponential(0.1, 1000.0, 40)
    # Halfway in log space at half the steps, and a constant ratio between steps.
    chex.assert_trees_all_close(schedule(20), 10.0, rtol=1e-5)
    values = np.asarray(schedule(jnp.arange(41)), np.float64)
    np.testing.assert_allclose(values[1:] / values[:-1], 10 ** (4 / 40), rtol=1e-5)


def test_cosine_halfway():
    chex.assert_trees_all_close(schedules.cosine(2.0, 6.0, 10)(5), 4.0, rtol=1e-6)


def test_constant():
    schedule = schedules.constant(3.0)
    chex.assert_trees_all_close(schedule(jnp.arange(4)), jnp.full(4, 3.0))
    assert schedule(0).shape == ()
    assert float(schedules.constant(math.inf)(7)) == math.inf


def test_logarithmic():
    c = 0.7
    schedule = schedules.logarithmic(c, transition_begin=3)
    counts = jnp.arange(50)
    expected = np.log(np.maximum(np.arange(50) - 3, 0) + 2.0) / c
    chex.assert_trees_all_close(schedule(counts), expected.astype(np.float32), rtol=1e-6)
    assert np.all(np.diff(np.asarray(schedule(counts))) >= 0)
    capped = schedules.logarithmic(c, max_value=4.0)(jnp.array([0, 10, 10_000]))
    chex.assert_trees_all_close(capped, jnp.array([math.log(2) / c, math.log(12) / c, 4.0]))


def test_gumbel_softmax():
    schedule = schedules.gumbel_softmax(tau0=1.0, rate=1e-3, tau_min=0.5, every=100)
    counts = jnp.arange(0, 2000, 7)
    beta = np.asarray(schedule(counts))
    t = (np.arange(0, 2000, 7) // 100) * 100
    expected = 1.0 / np.maximum(0.5, np.exp(-1e-3 * t))
    np.testing.assert_allclose(beta, expected, rtol=1e-6)
    # Constant inside each block of `every` steps, β = 1/τ0 at the start and 1/τ_min at the end.
    chex.assert_trees_all_close(schedule(jnp.arange(100)), jnp.ones(100))
    assert float(schedule(1_000_000)) == 2.0
    assert np.all(np.diff(beta) >= 0)
    # Defaults of Jang et al. (2017).
    default = schedules.gumbel_softmax()
    chex.assert_trees_all_close(default(10_000), 1.0 / math.exp(-0.3), rtol=1e-6)


def test_temperature_conversions():
    temperature = optax.linear_schedule(2.0, 0.0, transition_steps=4)
    beta = schedules.from_temperature(temperature)
    chex.assert_trees_all_close(
        beta(jnp.arange(6)), jnp.array([0.5, 2 / 3, 1.0, 2.0, jnp.inf, jnp.inf])
    )
    back = schedules.to_temperature(beta)
    chex.assert_trees_all_close(back(jnp.arange(6)), temperature(jnp.arange(6)))
    # -0.0 is a zero temperature too; an infinite temperature is β = 0.
    assert float(schedules.from_temperature(lambda c: -0.0 * c)(1)) == math.inf
    assert float(schedules.from_temperature(lambda c: jnp.inf * c)(1)) == 0.0
    assert float(schedules.to_temperature(schedules.constant(0.0))(3)) == math.inf
    assert float(schedules.to_temperature(schedules.constant(math.inf))(3)) == 0.0
    # Works on an optax temperature schedule as it is.
    decay = schedules.from_temperature(optax.exponential_decay(1.0, 10, 0.5))
    chex.assert_trees_all_close(decay(10), 2.0, rtol=1e-6)


def test_clip():
    base = schedules.linear(-5.0, 5.0, 10)
    clipped = schedules.clip(base, beta_min=-1.0, beta_max=2.0)
    expected = np.clip(np.asarray(base(jnp.arange(12))), -1.0, 2.0)
    chex.assert_trees_all_close(clipped(jnp.arange(12)), expected)
    only_max = schedules.clip(base, beta_max=0.0)
    assert float(only_max(10)) == 0.0 and float(only_max(0)) == -5.0
    assert math.isnan(float(schedules.clip(lambda c: jnp.nan * c, beta_min=0.0)(1)))


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("schedule", ALL_SCHEDULES)
def test_jit_and_vmap_over_count(transform, schedule):
    counts = jnp.arange(0, 60, 3, dtype=jnp.int32)
    reference = np.stack([np.asarray(schedule(int(c))) for c in counts])
    out = transform(schedule)(counts)
    chex.assert_shape(out, counts.shape)
    chex.assert_trees_all_close(out, reference, rtol=1e-6)
    batched = jax.vmap(transform(schedule))(counts)
    chex.assert_trees_all_close(batched, reference, rtol=1e-6)
    assert batched.dtype == jnp.float32


def test_no_retrace_when_count_changes():
    schedule = schedules.exponential(0.1, 10.0, 100)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def beta_at(count):
        return schedule(count)

    for count in range(0, 200, 17):
        beta_at(jnp.asarray(count, jnp.int32))


def test_join_schedules():
    warmup = schedules.constant(0.5)
    anneal = schedules.exponential(0.5, 50.0, 20)
    joined = optax.join_schedules([warmup, anneal, schedules.constant(math.inf)], [10, 40])
    values = joined(jnp.arange(50))
    chex.assert_trees_all_close(values[:11], jnp.full(11, 0.5))
    chex.assert_trees_all_close(values[20], jnp.asarray(5.0), rtol=1e-5)
    chex.assert_trees_all_close(values[30:40], jnp.full(10, 50.0))
    assert np.all(np.isinf(np.asarray(values[40:])))
    chex.assert_trees_all_close(jax.jit(joined)(jnp.arange(50)), values)


def test_inject_hyperparams_stateless():
    # SGD on a quadratic with a learning rate from a softjax schedule.
    schedule = schedules.cosine(0.2, 0.01, 20)
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=schedule)
    params = jnp.array([3.0, -2.0])

    def loss(p):
        return jnp.sum(p**2)

    state = opt.init(params)
    chex.assert_trees_all_close(state.hyperparams["learning_rate"], 0.2)

    @jax.jit
    def step(params, state):
        updates, state = opt.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    for k in range(30):
        params, state = step(params, state)
        chex.assert_trees_all_close(state.hyperparams["learning_rate"], schedule(k), rtol=1e-6)
    assert float(loss(params)) < 1e-3


# ------------------------------------------------------------------------------------------------
# entropy_target


ENTROPY_CASES = [
    jnp.array([2.0, 1.0, 0.0, -1.0]),
    jnp.array([0.3, -0.2]),
    jnp.asarray(np.random.default_rng(0).normal(size=50), jnp.float32),
    jnp.asarray(30.0 * np.random.default_rng(1).normal(size=1000), jnp.float32),
    jnp.asarray(0.01 * np.random.default_rng(2).normal(size=200), jnp.float32),
]


def _settle(schedule, z, steps=300, lag=0):
    """Runs the controller on the fixed logits z; the entropy may arrive `lag` updates late."""

    @jax.jit
    def run(z):
        def body(carry, _):
            state, history = carry
            history = jnp.concatenate([schedule(state)[None], history[:-1]])
            state = schedule.update(state, entropy=_entropy(history[lag], z))
            return (state, history), None

        init = schedule.init()
        (state, _), _ = jax.lax.scan(body, (init, jnp.full(3, schedule(init))), length=steps)
        return state

    return run(z)


@pytest.mark.parametrize("z", ENTROPY_CASES, ids=["n4", "n2", "n50", "n1000_wide", "n200_narrow"])
@pytest.mark.parametrize("where", ["near_zero", "low", "middle", "high", "near_log_n"])
def test_entropy_target_reaches_target(z, where):
    log_n = math.log(z.shape[0])
    target = {
        "near_zero": 0.01,
        "low": 0.2 * log_n,
        "middle": 0.5 * log_n,
        "high": 0.9 * log_n,
        "near_log_n": log_n - 0.01,
    }[where]
    schedule = schedules.entropy_target(target)
    state = _settle(schedule, z)
    assert abs(float(_entropy(schedule(state), z)) - target) < 0.05


@pytest.mark.parametrize("lag", [1, 2])
@pytest.mark.parametrize("z", ENTROPY_CASES[:4], ids=["n4", "n2", "n50", "n1000_wide"])
def test_entropy_target_with_late_measurements(z, lag):
    target = 0.4 * math.log(z.shape[0])
    schedule = schedules.entropy_target(target)
    state = _settle(schedule, z, lag=lag)
    assert abs(float(_entropy(schedule(state), z)) - target) < 0.05


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(2, 300),
    scale=st.floats(0.05, 50.0),
    fraction=st.floats(0.02, 0.98),
)
def test_entropy_target_property(seed, n, scale, fraction):
    z = jnp.asarray(scale * np.random.default_rng(seed).normal(size=n), jnp.float32)
    target = fraction * math.log(n)
    schedule = schedules.entropy_target(target)
    state = _settle(schedule, z)
    assert abs(float(_entropy(schedule(state), z)) - target) < 0.05


def test_entropy_target_direction_and_bounds():
    schedule = schedules.entropy_target(0.5, init_value=2.0, beta_min=0.5, beta_max=4.0)
    state = schedule.init()
    chex.assert_trees_all_close(schedule(state), 2.0, rtol=1e-6)
    assert float(schedule(schedule.update(state, entropy=1.0))) > 2.0
    assert float(schedule(schedule.update(state, entropy=0.1))) < 2.0
    assert float(schedule(schedule.update(state, entropy=0.5))) == pytest.approx(2.0)
    # A NaN measurement is skipped.
    chex.assert_trees_all_equal(schedule.update(state, entropy=jnp.nan), state)
    # An unreachable target drives β to its bound.
    up, down = state, state
    for _ in range(100):
        up = schedule.update(up, entropy=3.0)
        down = schedule.update(down, entropy=0.0)
    chex.assert_trees_all_close(schedule(up), 4.0, rtol=1e-5)
    chex.assert_trees_all_close(schedule(down), 0.5, rtol=1e-5)


def test_entropy_target_step_adaptation():
    schedule = schedules.entropy_target(1.0, step_size=0.1, increase=1.5, decrease=0.5)
    state = schedule.update(schedule.init(), entropy=2.0)
    chex.assert_trees_all_close(state.step, 0.1)
    state = schedule.update(state, entropy=2.0)
    chex.assert_trees_all_close(state.step, 0.15, rtol=1e-6)
    chex.assert_trees_all_close(schedule(state), math.exp(0.25), rtol=1e-6)
    state = schedule.update(state, entropy=0.0)  # crossing: halve, move back, do not grow next
    chex.assert_trees_all_close(state.step, 0.075, rtol=1e-6)
    chex.assert_trees_all_close(schedule(state), math.exp(0.175), rtol=1e-6)
    state = schedule.update(state, entropy=0.0)
    chex.assert_trees_all_close(state.step, 0.075, rtol=1e-6)


def test_entropy_target_requires_entropy():
    schedule = schedules.entropy_target(0.5)
    with pytest.raises(TypeError, match="entropy"):
        schedule.update(schedule.init())


def test_stateful_schedules_follow_optax_protocol():
    for schedule in (schedules.entropy_target(0.5), schedules.on_plateau()):
        assert isinstance(schedule, optax.schedules.StatefulSchedule)
        state = schedule.init()
        assert isinstance(state, tuple) and hasattr(state, "_fields")
        # Extra arguments meant for other schedules are ignored.
        schedule.update(state, entropy=0.3, value=1.0, other=5)
        schedule(state, entropy=0.3, other=5)


def _tempered_sgd(learning_rate, beta):
    """SGD whose step is scaled by softmax(beta * z)[0] for a fixed z: a hyperparameter β."""
    weight = jax.nn.softmax(beta * jnp.array([1.0, 0.0]))[0]
    return optax.sgd(learning_rate * weight)


def test_inject_hyperparams_entropy_target():
    z = jnp.array([2.0, 1.0, 0.0, -1.0])
    target = 0.6
    schedule = schedules.entropy_target(target)
    opt = optax.inject_hyperparams(_tempered_sgd)(learning_rate=0.1, beta=schedule)
    params = jnp.array([1.0, -1.0])
    state = opt.init(params)
    chex.assert_trees_all_close(state.hyperparams["beta"], 1.0)

    @jax.jit
    def step(params, state):
        # The distribution is measured at the β the optimiser shows.
        entropy = _entropy(state.hyperparams["beta"], z)
        grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        updates, state = opt.update(grads, state, params, entropy=entropy)
        return optax.apply_updates(params, updates), state

    params, state = step(params, state)
    betas = [float(state.hyperparams["beta"])]
    for _ in range(200):
        params, state = step(params, state)
        betas.append(float(state.hyperparams["beta"]))
    # H(1) > target, so β rises first; the shown β is the schedule's value before each update.
    assert betas[0] == pytest.approx(1.0)
    assert betas[1] == pytest.approx(math.exp(0.1), rel=1e-6)
    chex.assert_trees_all_close(
        state.hyperparams["beta"], schedule(state.hyperparams_states["beta"]), rtol=0.2
    )
    assert abs(float(_entropy(state.hyperparams["beta"], z)) - target) < 0.05
    assert float(jnp.sum(params**2)) < 1.0


def test_inject_hyperparams_on_plateau():
    schedule = schedules.on_plateau(1.0, factor=2.0, patience=2, max_value=8.0)
    opt = optax.inject_hyperparams(_tempered_sgd)(learning_rate=0.1, beta=schedule)
    params = jnp.zeros(2)
    state = opt.init(params)
    update = jax.jit(lambda g, s, p, v: opt.update(g, s, p, value=v))
    shown = []
    for loss in [3.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]:
        _, state = update(jnp.ones(2), state, params, loss)
        shown.append(float(state.hyperparams["beta"]))
    assert shown == [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 8.0]
    assert float(schedule(state.hyperparams_states["beta"])) == 8.0


# ------------------------------------------------------------------------------------------------
# on_plateau


def _run_plateau(schedule, values):
    update = jax.jit(lambda s, v: schedule.update(s, value=v))
    state = schedule.init()
    betas = []
    for v in values:
        state = update(state, v)
        betas.append(float(schedule(state)))
    return betas, state


def test_on_plateau_raises_after_patience():
    schedule = schedules.on_plateau(0.5, factor=3.0, patience=3)
    betas, state = _run_plateau(schedule, [5.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0])
    assert betas == pytest.approx([0.5] * 5 + [1.5] * 3 + [4.5])
    assert int(state.plateau_count) == 0
    chex.assert_trees_all_close(state.best_value, 3.0)


def test_on_plateau_improvement_resets_patience():
    schedule = schedules.on_plateau(1.0, factor=2.0, patience=3)
    betas, _ = _run_plateau(schedule, [5.0, 5.0, 5.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0])
    assert betas == [1.0] * 9
    betas, _ = _run_plateau(schedule, [5.0, 5.0, 5.0, 5.0])
    assert betas == [1.0, 1.0, 1.0, 2.0]


def test_on_plateau_cooldown():
    schedule = schedules.on_plateau(1.0, factor=2.0, patience=2, cooldown=3)
    betas, _ = _run_plateau(schedule, [1.0] * 12)
    # Raised at update 3; 3 updates of cooldown; then 2 more bad updates: update 8.
    assert betas == [1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]


def test_on_plateau_respects_max():
    schedule = schedules.on_plateau(1.0, factor=10.0, patience=1, max_value=50.0)
    betas, _ = _run_plateau(schedule, [1.0] * 6)
    assert betas == [1.0, 10.0, 50.0, 50.0, 50.0, 50.0]


def test_on_plateau_tolerances():
    # rtol: an improvement smaller than 10% of |best| does not count, also for negative values.
    schedule = schedules.on_plateau(1.0, patience=1, rtol=0.1)
    betas, _ = _run_plateau(schedule, [-10.0, -10.5])
    assert betas == [1.0, 2.0]
    betas, _ = _run_plateau(schedule, [-10.0, -11.5])
    assert betas == [1.0, 1.0]
    # atol: an improvement must exceed atol.
    schedule = schedules.on_plateau(1.0, patience=1, rtol=0.0, atol=0.5)
    betas, _ = _run_plateau(schedule, [2.0, 1.6, 1.0])
    assert betas == [1.0, 2.0, 2.0]
    # A NaN value is skipped: it neither improves nor counts towards the patience.
    schedule = schedules.on_plateau(1.0, patience=2)
    betas, state = _run_plateau(schedule, [1.0, jnp.nan, jnp.nan, 1.0, jnp.nan, 1.0])
    assert betas == [1.0, 1.0, 1.0, 1.0, 1.0, 2.0]
    chex.assert_trees_all_close(state.best_value, 1.0)


def test_on_plateau_requires_value():
    schedule = schedules.on_plateau()
    with pytest.raises(TypeError, match="value"):
        schedule.update(schedule.init())


# ------------------------------------------------------------------------------------------------
# Validation of static arguments


def _noop(count):
    return count


INVALID = [
    (lambda: schedules.constant(math.nan), ValueError, "value"),
    (lambda: schedules.constant("1"), TypeError, "value"),
    (lambda: schedules.linear(0.0, 1.0, 0), ValueError, "transition_steps must be > 0, got 0"),
    (lambda: schedules.linear(0.0, 1.0, -3), ValueError, "transition_steps"),
    (lambda: schedules.linear(0.0, 1.0, 10.0), TypeError, "transition_steps"),
    (lambda: schedules.linear(0.0, 1.0, 10, -1), ValueError, "transition_begin"),
    (lambda: schedules.linear(0.0, 1.0, 10, 1.5), TypeError, "transition_begin"),
    (lambda: schedules.linear(math.inf, 1.0, 10), ValueError, "init_value"),
    (lambda: schedules.linear(0.0, math.nan, 10), ValueError, "end_value"),
    (lambda: schedules.linear(None, 1.0, 10), TypeError, "init_value"),
    (lambda: schedules.linear(True, 1.0, 10), TypeError, "init_value"),
    (lambda: schedules.linear(jnp.ones(2), 1.0, 10), TypeError, "init_value"),
    (lambda: schedules.exponential(0.0, 1.0, 10), ValueError, "init_value"),
    (lambda: schedules.exponential(1.0, 0.0, 10), ValueError, "end_value"),
    (lambda: schedules.exponential(1.0, -1.0, 10), ValueError, "end_value"),
    (lambda: schedules.exponential(1.0, 2.0, 0), ValueError, "transition_steps"),
    (lambda: schedules.exponential(1.0, 2.0, 5, -2), ValueError, "transition_begin"),
    (lambda: schedules.cosine(1.0, 2.0, 0), ValueError, "transition_steps"),
    (lambda: schedules.cosine(1.0, math.inf, 5), ValueError, "end_value"),
    (lambda: schedules.polynomial(1.0, 2.0, 0.0, 5), ValueError, "power"),
    (lambda: schedules.polynomial(1.0, 2.0, -1.0, 5), ValueError, "power"),
    (lambda: schedules.polynomial(1.0, 2.0, 1.0, 0), ValueError, "transition_steps"),
    (lambda: schedules.logarithmic(0.0), ValueError, "c must be > 0"),
    (lambda: schedules.logarithmic(-1.0), ValueError, "c must be > 0"),
    (lambda: schedules.logarithmic(1.0, transition_begin=-1), ValueError, "transition_begin"),
    (lambda: schedules.logarithmic(1.0, max_value=0.0), ValueError, "max_value"),
    (lambda: schedules.gumbel_softmax(tau0=0.0), ValueError, "tau0"),
    (lambda: schedules.gumbel_softmax(rate=-1.0), ValueError, "rate"),
    (lambda: schedules.gumbel_softmax(tau_min=0.0), ValueError, "tau_min"),
    (lambda: schedules.gumbel_softmax(tau_min=2.0), ValueError, "tau_min"),
    (lambda: schedules.gumbel_softmax(every=0), ValueError, "every"),
    (lambda: schedules.gumbel_softmax(every=2.0), TypeError, "every"),
    (lambda: schedules.from_temperature(1.0), TypeError, "schedule"),
    (lambda: schedules.to_temperature("x"), TypeError, "schedule"),
    (lambda: schedules.clip(3.0), TypeError, "schedule"),
    (lambda: schedules.clip(_noop, beta_min=2.0, beta_max=1.0), ValueError, "beta_max"),
    (lambda: schedules.clip(_noop, beta_min=math.nan), ValueError, "beta_min"),
    (lambda: schedules.entropy_target(-0.1), ValueError, "target_entropy"),
    (lambda: schedules.entropy_target(math.inf), ValueError, "target_entropy"),
    (lambda: schedules.entropy_target(0.5, init_value=0.0), ValueError, "init_value"),
    (lambda: schedules.entropy_target(0.5, init_value=1e7), ValueError, "init_value"),
    (lambda: schedules.entropy_target(0.5, beta_min=0.0), ValueError, "beta_min"),
    (lambda: schedules.entropy_target(0.5, beta_max=math.inf), ValueError, "beta_max"),
    (lambda: schedules.entropy_target(0.5, beta_min=2.0, beta_max=2.0), ValueError, "beta_max"),
    (lambda: schedules.entropy_target(0.5, min_step=0.0), ValueError, "min_step"),
    (lambda: schedules.entropy_target(0.5, max_step=1e-4), ValueError, "max_step"),
    (lambda: schedules.entropy_target(0.5, step_size=2.0), ValueError, "step_size"),
    (lambda: schedules.entropy_target(0.5, increase=0.9), ValueError, "increase"),
    (lambda: schedules.entropy_target(0.5, decrease=1.0), ValueError, "decrease"),
    (lambda: schedules.entropy_target(0.5, decrease=0.0), ValueError, "decrease"),
    (lambda: schedules.on_plateau(0.0), ValueError, "init_value"),
    (lambda: schedules.on_plateau(factor=1.0), ValueError, "factor"),
    (lambda: schedules.on_plateau(patience=0), ValueError, "patience"),
    (lambda: schedules.on_plateau(patience=2.5), TypeError, "patience"),
    (lambda: schedules.on_plateau(cooldown=-1), ValueError, "cooldown"),
    (lambda: schedules.on_plateau(rtol=-0.1), ValueError, "rtol"),
    (lambda: schedules.on_plateau(atol=-0.1), ValueError, "atol"),
    (lambda: schedules.on_plateau(2.0, max_value=1.0), ValueError, "max_value"),
]


@pytest.mark.parametrize("make, error, match", INVALID)
def test_invalid_static_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_error_message_names_value():
    with pytest.raises(ValueError, match=r"^transition_steps must be > 0, got 0$"):
        schedules.linear(0.0, 1.0, transition_steps=0)
    with pytest.raises(ValueError, match=r"factor must be > 1 .*got 0.5"):
        schedules.on_plateau(factor=0.5)


def test_numpy_and_jax_scalars_are_accepted():
    schedule = schedules.linear(np.float32(1.0), jnp.asarray(3.0), np.int64(4), np.int32(1))
    chex.assert_trees_all_close(schedule(jnp.arange(6)), jnp.array([1.0, 1.0, 1.5, 2.0, 2.5, 3.0]))


# ------------------------------------------------------------------------------------------------
# Counts of every dtype, extreme endpoints and large static arguments, in float32 and float64

PRECISIONS = [False, True]  # jax_enable_x64

# (name, factory) with a transition from step 100 to step 110; each built inside the x64 setting.
COUNTED = [
    ("linear", lambda: schedules.linear(0.0, 1.0, 10, transition_begin=100)),
    ("cosine", lambda: schedules.cosine(2.0, 1.0, 10, transition_begin=100)),
    ("exponential", lambda: schedules.exponential(0.5, 8.0, 10, transition_begin=100)),
    ("polynomial", lambda: schedules.polynomial(1.0, 3.0, 2.0, 10, transition_begin=100)),
    ("logarithmic", lambda: schedules.logarithmic(0.5, transition_begin=100)),
    ("gumbel_softmax", lambda: schedules.gumbel_softmax(rate=0.01, every=100)),
    ("late_linear", lambda: schedules.linear(0.0, 1.0, 10, transition_begin=1000)),
    ("late_gumbel_softmax", lambda: schedules.gumbel_softmax(rate=0.01, every=1000)),
]
COUNT_DTYPES = ["uint8", "uint16", "uint32", "int8", "int16", "int32", "float32"]


@pytest.mark.parametrize("x64", PRECISIONS)
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", COUNT_DTYPES)
@pytest.mark.parametrize("name, make", COUNTED, ids=[name for name, _ in COUNTED])
def test_counts_of_every_dtype_do_not_wrap(name, make, dtype, transform, x64):
    with jax.enable_x64(x64):
        schedule = make()
        dtypes = [dtype] + (["uint64", "int64", "float64"] if x64 and dtype == "int32" else [])
        for count_dtype in dtypes:
            largest = jnp.iinfo(count_dtype).max if "int" in count_dtype else 2000
            smallest = jnp.iinfo(count_dtype).min if "int" in count_dtype else -3.0
            counts = [c for c in (0, 5, 99, 100, 105, 110, 127, 255, 1200) if c <= largest]
            counts = [smallest, *counts, largest]
            out = transform(schedule)(jnp.asarray(counts, count_dtype))
            # The reference: the same schedule at the same steps as floats (negatives held at 0).
            reference = [schedule(jnp.asarray(max(float(c), 0.0), float)) for c in counts]
            chex.assert_trees_all_close(out, jnp.stack(reference), rtol=1e-6)
            assert out.dtype == jnp.zeros((), float).dtype
            assert np.all(np.isfinite(np.asarray(out)))


def test_counts_before_a_late_begin_hold_the_initial_value():
    schedule = schedules.linear(0.0, 1.0, 10, transition_begin=100)
    for dtype in (jnp.uint8, jnp.uint16, jnp.uint32, jnp.int8):
        assert float(schedule(jnp.asarray(5, dtype))) == 0.0
        assert float(jax.jit(schedule)(jnp.asarray(5, dtype))) == 0.0
    # A float count is accepted (fractional steps interpolate); a NaN count gives NaN.
    chex.assert_trees_all_close(schedule(jnp.float32(102.5)), 0.25)
    assert math.isnan(float(schedule(jnp.float32(jnp.nan))))
    with pytest.raises(TypeError, match="count must be an integer or floating array, got dtype"):
        schedule(jnp.asarray(True))


EXTREME_EXPONENTIAL = [
    (1e-30, 1e30, False),
    (1e30, 1e-30, False),
    (2e-38, 3e38, False),
    (-1e-30, -1e30, False),
    (0.25, 0.25, False),
    (-3.0, -3.0, False),
    (1e-40, 1.0, True),
    (1e-300, 1e300, True),
    (1e300, 1e-300, True),
]


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("init, end, x64", EXTREME_EXPONENTIAL)
def test_exponential_interpolates_in_log_space(init, end, x64, transform):
    with jax.enable_x64(x64):
        schedule = transform(schedules.exponential(init, end, 10, transition_begin=2))
        values = np.asarray(schedule(jnp.arange(15)), np.float64)
        dtype = jnp.zeros((), float).dtype
        assert np.all(np.isfinite(values)) and np.all(values != 0.0)
        # Exact ends, held before and after the transition.
        assert np.all(values[:3] == np.asarray(init, dtype))
        assert np.all(values[12:] == np.asarray(end, dtype))
        # Every value between the ends; log|β| linear in the step (geometric mean halfway).
        low, high = sorted((abs(init), abs(end)))
        low, high = np.asarray(low, dtype), np.asarray(high, dtype)
        assert np.all((np.abs(values) >= low) & (np.abs(values) <= high))
        logs = np.log(np.abs(values[2:13]))
        expected = np.linspace(math.log(abs(init)), math.log(abs(end)), 11)
        np.testing.assert_allclose(logs, expected, atol=1e-5 * max(1.0, np.max(np.abs(expected))))
        if init == end:
            assert np.all(values == np.asarray(init, dtype))


def test_exponential_signs_and_zero_are_rejected_clearly():
    for init, end in [(0.0, 1.0), (1.0, 0.0), (1.0, -1.0), (-1.0, 1.0)]:
        with pytest.raises(ValueError, match="nonzero"):
            schedules.exponential(init, end, 10)
    with pytest.raises(ValueError, match=r"init_value must be of magnitude >= .*float32.*1e-40"):
        schedules.exponential(1e-40, 1.0, 10)
    with jax.enable_x64(True):
        schedules.exponential(1e-40, 1.0, 10)  # a normal float64


LARGE_STATIC = [
    (lambda: schedules.linear(0.0, 1.0, 10, transition_begin=3_000_000_000), "transition_begin"),
    (lambda: schedules.linear(0.0, 1.0, 3_000_000_000), "transition_steps"),
    (lambda: schedules.cosine(0.0, 1.0, 2**31), "transition_steps"),
    (lambda: schedules.exponential(1.0, 2.0, 10, 2**31), "transition_begin"),
    (lambda: schedules.polynomial(0.0, 1.0, 2.0, 10, 2**40), "transition_begin"),
    (lambda: schedules.logarithmic(1.0, transition_begin=2**31), "transition_begin"),
    (lambda: schedules.gumbel_softmax(every=2**31), "every"),
    (lambda: schedules.on_plateau(patience=2**31), "patience"),
    (lambda: schedules.on_plateau(cooldown=2**31), "cooldown"),
]


@pytest.mark.parametrize("x64", PRECISIONS)
@pytest.mark.parametrize("make, name", LARGE_STATIC)
def test_static_steps_beyond_int32_are_rejected(make, name, x64):
    with jax.enable_x64(x64), pytest.raises(ValueError, match=rf"^{name} must be <= 2147483647"):
        make()
    # The largest int32 itself is fine.
    schedule = schedules.linear(0.0, 1.0, 2**31 - 1, transition_begin=2**31 - 1)
    assert float(jax.jit(schedule)(jnp.uint32(2**32 - 1))) == pytest.approx(1.0, abs=1e-6)


UNREPRESENTABLE_IN_FLOAT32 = [
    (lambda: schedules.linear(0.0, 1e39, 4), "end_value", "1e+39"),
    (lambda: schedules.linear(-1e39, 0.0, 4), "init_value", "-1e+39"),
    (lambda: schedules.cosine(0.0, 1e39, 4), "end_value", "1e+39"),
    (lambda: schedules.polynomial(0.0, 1e39, 2.0, 4), "end_value", "1e+39"),
    (lambda: schedules.exponential(1.0, 1e39, 4), "end_value", "1e+39"),
    (lambda: schedules.constant(1e39), "value", "1e+39"),
    (lambda: schedules.logarithmic(1e-38), "c", "1e-38"),
    (lambda: schedules.logarithmic(1.0, max_value=1e39), "max_value", "1e+39"),
    (lambda: schedules.gumbel_softmax(tau0=1e-39, tau_min=1e-39), "tau0", "1e-39"),
    (lambda: schedules.gumbel_softmax(tau_min=1e-39), "tau_min", "1e-39"),
    (lambda: schedules.clip(_noop, beta_max=1e39), "beta_max", "1e+39"),
    (lambda: schedules.entropy_target(0.5, beta_max=1e39), "beta_max", "1e+39"),
    (lambda: schedules.entropy_target(0.5, init_value=1e-39, beta_min=1e-40), "beta_min", "1e-40"),
    (lambda: schedules.on_plateau(1e-39), "init_value", "1e-39"),
    (lambda: schedules.on_plateau(1.0, max_value=1e39), "max_value", "1e+39"),
]


@pytest.mark.parametrize("make, name, value", UNREPRESENTABLE_IN_FLOAT32)
def test_endpoints_not_representable_in_the_default_float(make, name, value):
    with pytest.raises(ValueError, match=rf"^{name} must .*float32.*got {re.escape(value)}$"):
        make()
    with jax.enable_x64(True):
        make()  # representable in float64


def test_large_representable_endpoints_stay_finite():
    for schedule in (
        schedules.linear(-3e38, 3e38, 4),
        schedules.cosine(3e38, -3e38, 4),
        schedules.polynomial(-3e38, 3e38, 3.0, 4),
        schedules.exponential(1.2e-38, 3.4e38, 4),
    ):
        values = np.asarray(jax.jit(schedule)(jnp.arange(6)))
        assert np.all(np.isfinite(values))


# ------------------------------------------------------------------------------------------------
# Measurements of the stateful schedules: shape and non-finite values


CONTROLLERS = [
    ("entropy", lambda: schedules.entropy_target(0.5)),
    ("value", lambda: schedules.on_plateau(1.0, patience=1)),
]


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("argument, make", CONTROLLERS, ids=[a for a, _ in CONTROLLERS])
def test_non_scalar_measurement_is_rejected(argument, make, transform):
    schedule = make()
    update = transform(lambda state, x: schedule.update(state, **{argument: x}))
    for shape in [(3,), (1,), (2, 2)]:
        match = f"^{argument} must be a scalar, got an array of shape {re.escape(str(shape))}"
        with pytest.raises(ValueError, match=match):
            update(schedule.init(), jnp.ones(shape))


@pytest.mark.parametrize("x64", PRECISIONS)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_entropy_target_keeps_the_whole_state_on_nan_or_inf(transform, x64):
    with jax.enable_x64(x64):
        schedule = schedules.entropy_target(0.5, init_value=2.0)
        update = transform(lambda state, entropy: schedule.update(state, entropy=entropy))
        state = update(schedule.init(), 1.0)  # last_sign = +1
        assert float(state.last_sign) == 1.0
        for bad in (jnp.nan, jnp.inf, -jnp.inf):
            chex.assert_trees_all_equal(update(state, bad), state)
        # The next finite measurement continues as if nothing had happened in between.
        chex.assert_trees_all_equal(update(update(state, jnp.nan), 1.0), update(state, 1.0))
        assert state.log_beta.dtype == jnp.zeros((), float).dtype


@pytest.mark.parametrize("x64", PRECISIONS)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_on_plateau_keeps_the_whole_state_on_nan(transform, x64):
    with jax.enable_x64(x64):
        schedule = schedules.on_plateau(1.0, patience=2)
        update = transform(lambda state, value: schedule.update(state, value=value))
        state = update(update(schedule.init(), 1.0), 1.0)  # one update without improvement
        assert int(state.plateau_count) == 1
        chex.assert_trees_all_equal(update(state, jnp.nan), state)
        # +inf is a value (a diverged loss): it does not improve and counts towards the patience.
        raised = update(state, jnp.inf)
        assert float(raised.beta) == 2.0 and float(raised.best_value) == 1.0


# ------------------------------------------------------------------------------------------------
# with_beta and beta_of


def _run_with_beta(optimizer, steps, transform=jax.jit, **extra_args):
    """The β read by beta_of before each of `steps` updates, and the final state."""
    params = jnp.zeros(2)
    state = optimizer.init(params)

    @transform
    def step(params, state, extra_args):
        beta = schedules.beta_of(state)
        updates, state = optimizer.update(jnp.ones(2), state, params, **extra_args)
        return optax.apply_updates(params, updates), state, beta

    betas = []
    for _ in range(steps):
        params, state, beta = step(params, state, extra_args)
        betas.append(float(beta))
    return betas, state


@pytest.mark.parametrize("x64", PRECISIONS)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_with_beta_schedule_has_no_lag(transform, x64):
    with jax.enable_x64(x64):
        schedule = schedules.linear(0.0, 10.0, 10)
        betas, state = _run_with_beta(schedules.with_beta(optax.adam(1e-2), schedule), 4, transform)
        if x64:
            # Under jit, XLA may divide by the number of steps as a product with its reciprocal.
            np.testing.assert_allclose(betas, [0.0, 1.0, 2.0, 3.0], rtol=1e-15)
        else:
            assert betas == [0.0, 1.0, 2.0, 3.0]
        assert isinstance(state, schedules.WithBetaState) and int(state.count) == 4
        assert schedules.beta_of(state).dtype == jnp.zeros((), float).dtype
        assert float(schedules.beta_of(state)) == 4.0
    # Read before each update, optax.inject_hyperparams shows the β of the previous update.
    lagging = optax.inject_hyperparams(_tempered_sgd)(learning_rate=0.1, beta=schedule)
    state = lagging.init(jnp.zeros(2))
    shown = []
    for _ in range(4):
        shown.append(float(state.hyperparams["beta"]))
        _, state = lagging.update(jnp.ones(2), state)
    assert shown == [0.0, 0.0, 1.0, 2.0]


def test_with_beta_constant_and_optax_schedule():
    betas, _ = _run_with_beta(schedules.with_beta(optax.sgd(0.1), 2.5), 3)
    assert betas == [2.5, 2.5, 2.5]
    betas, _ = _run_with_beta(schedules.with_beta(optax.sgd(0.1), math.inf), 2)
    assert betas == [math.inf, math.inf]
    betas, _ = _run_with_beta(schedules.with_beta(optax.sgd(0.1), np.float32(-1.0)), 2)
    assert betas == [-1.0, -1.0]
    schedule = optax.exponential_decay(8.0, 1, 0.5)
    betas, _ = _run_with_beta(schedules.with_beta(optax.sgd(0.1), schedule), 4)
    assert betas == [8.0, 4.0, 2.0, 1.0]


def test_with_beta_updates_are_those_of_the_optimizer():
    params = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(3.0)}
    grads = {"a": jnp.array([0.5, 0.1]), "b": jnp.array(-1.0)}
    plain, wrapped = optax.adam(0.1), schedules.with_beta(optax.adam(0.1), 1.0)
    plain_state, wrapped_state = plain.init(params), wrapped.init(params)
    for _ in range(3):
        expected, plain_state = plain.update(grads, plain_state, params)
        updates, wrapped_state = wrapped.update(grads, wrapped_state, params, entropy=0.3)
        chex.assert_trees_all_close(updates, expected)
    chex.assert_trees_all_close(wrapped_state.inner_state, plain_state)


def test_with_beta_passes_extra_args_to_an_extra_args_optimizer():
    def init_fn(params):
        return optax.EmptyState()

    def update_fn(updates, state, params=None, *, scale, **extra_args):
        del extra_args
        return jax.tree.map(lambda u: scale * u, updates), state

    optimizer = schedules.with_beta(optax.GradientTransformationExtraArgs(init_fn, update_fn), 1.0)
    state = optimizer.init(jnp.zeros(2))
    updates, _ = optimizer.update(jnp.ones(2), state, scale=3.0, entropy=0.5)
    chex.assert_trees_all_close(updates, jnp.full(2, 3.0))


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_with_beta_entropy_target_fed_through_update(transform):
    z = jnp.array([2.0, 1.0, 0.0, -1.0])
    target = 0.6
    controller = schedules.entropy_target(target)
    optimizer = schedules.with_beta(optax.sgd(0.1), controller)
    params = jnp.zeros(2)
    state = optimizer.init(params)
    reference = controller.init()

    @transform
    @chex.assert_max_traces(n=1)
    def step(params, state):
        beta = schedules.beta_of(state)
        entropy = _entropy(beta, z)  # measured at the β of this step
        updates, state = optimizer.update(jnp.ones(2), state, params, entropy=entropy)
        return optax.apply_updates(params, updates), state, beta, entropy

    for k in range(150):
        params, state, beta, entropy = step(params, state)
        # No lag: the β of step k is the controller's value after the k measurements before it.
        chex.assert_trees_all_close(beta, controller(reference), rtol=1e-6)
        reference = controller.update(reference, entropy=entropy)
        if k == 0:
            assert float(beta) == 1.0
    chex.assert_trees_all_close(state.beta_state, reference, rtol=1e-6)
    assert abs(float(_entropy(schedules.beta_of(state), z)) - target) < 0.05


def test_with_beta_on_plateau_fed_through_update():
    optimizer = schedules.with_beta(optax.sgd(0.1), schedules.on_plateau(1.0, patience=2))
    state = optimizer.init(jnp.zeros(2))
    update = jax.jit(lambda s, v: optimizer.update(jnp.ones(2), s, value=v)[1])
    betas = []
    for loss in [3.0, 2.0, 2.0, 2.0, 2.0, 2.0]:
        betas.append(float(schedules.beta_of(state)))
        state = update(state, loss)
    assert betas == [1.0, 1.0, 1.0, 1.0, 2.0, 2.0]
    with pytest.raises(TypeError, match="value"):
        optimizer.update(jnp.ones(2), state)


def _with_beta_sgd(learning_rate):
    return schedules.with_beta(optax.sgd(learning_rate), schedules.linear(0.0, 10.0, 10))


def test_beta_of_finds_the_state_in_chains_and_containers():
    schedule = schedules.linear(0.0, 10.0, 10)
    for optimizer in (
        optax.chain(optax.clip_by_global_norm(1.0), schedules.with_beta(optax.adam(0.1), schedule)),
        optax.chain(schedules.with_beta(optax.adam(0.1), schedule), optax.scale(0.5)),
        optax.named_chain(("beta", schedules.with_beta(optax.sgd(0.1), schedule))),
        optax.inject_hyperparams(_with_beta_sgd)(learning_rate=0.1),
    ):
        betas, state = _run_with_beta(optimizer, 4)
        assert betas == [0.0, 1.0, 2.0, 3.0]
        # Any container of states works, also under jit.
        for container in ({"opt": state}, [state, 1.0], (jnp.zeros(3), {"x": (state,)})):
            assert float(jax.jit(schedules.beta_of)(container)) == 4.0
            assert float(schedules.beta_of(container)) == 4.0


def test_beta_of_in_multi_steps_advances_per_applied_update():
    schedule = schedules.linear(0.0, 10.0, 10)
    optimizer = optax.MultiSteps(schedules.with_beta(optax.adam(0.1), schedule), every_k_schedule=3)
    betas, state = _run_with_beta(optimizer, 9)
    # β is constant over the 3 mini-steps of an update and advances when the update is applied.
    assert betas == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    assert float(schedules.beta_of(state)) == 3.0
    # Also with MultiSteps inside with_beta: β advances at every call of update.
    inside = schedules.with_beta(optax.MultiSteps(optax.adam(0.1), every_k_schedule=3), schedule)
    betas, _ = _run_with_beta(inside, 4)
    assert betas == [0.0, 1.0, 2.0, 3.0]


def test_beta_of_errors():
    state = optax.adam(0.1).init(jnp.zeros(2))
    with pytest.raises(ValueError, match="must contain the state of an optimiser built with"):
        schedules.beta_of(state)
    twice = optax.chain(
        schedules.with_beta(optax.sgd(0.1), 1.0), schedules.with_beta(optax.sgd(0.1), 2.0)
    )
    with pytest.raises(ValueError, match="exactly one .* got 2"):
        schedules.beta_of(twice.init(jnp.zeros(2)))
    nested = schedules.with_beta(schedules.with_beta(optax.sgd(0.1), 1.0), 2.0)
    with pytest.raises(ValueError, match="exactly one .* got 2"):
        schedules.beta_of(nested.init(jnp.zeros(2)))
    with pytest.raises(TypeError, match="optimizer must be an optax.GradientTransformation"):
        schedules.with_beta("adam", 1.0)
    with pytest.raises(TypeError, match="beta must be a real number, got 'x'"):
        schedules.with_beta(optax.sgd(0.1), "x")
    with pytest.raises(ValueError, match="beta must not be NaN"):
        schedules.with_beta(optax.sgd(0.1), math.nan)
    vector = schedules.with_beta(optax.sgd(0.1), lambda count: jnp.ones(3) * count)
    with pytest.raises(
        ValueError, match=r"beta must give a scalar β, got an array of shape \(3,\)"
    ):
        vector.init(jnp.zeros(2))


def test_training_loop_with_softargmax_at_beta_of():
    # Maximise the expected reward <softargmax(w, β), r> over the logits w while β rises.
    import softjax as sjx

    reward = jnp.array([1.0, 3.0, 2.0, 0.0])
    optimizer = schedules.with_beta(optax.adam(0.1), schedules.linear(1.0, 20.0, 100))
    params = jnp.zeros(4)
    state = optimizer.init(params)

    def loss(params, beta):
        return -jnp.dot(sjx.softargmax(params, beta=beta), reward)

    @jax.jit
    def step(params, state):
        grads = jax.grad(loss)(params, schedules.beta_of(state))
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(150):
        params, state = step(params, state)
    assert float(schedules.beta_of(state)) == 20.0
    p = sjx.softargmax(params, beta=schedules.beta_of(state))
    assert float(p[1]) > 0.99
    assert float(loss(params, jnp.inf)) == -3.0
