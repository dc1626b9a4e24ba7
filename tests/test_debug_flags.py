"""With ``jax_debug_nans`` or ``jax_debug_infs`` on, finite input raises nothing: users turn these
flags on to find their own bugs. As with ``jax.nn``, whose functions are jitted, a public function
is checked on its outputs: called eagerly, under ``jit`` and under ``grad``. ``jax_debug_nans``
is also silent op by op (``jax.disable_jit()``): no NaN constant is ever formed, not even in an
unused branch. (Op by op, ``jax_debug_infs`` trips on the identity of max, −inf, as in
``jax.nn``.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cases import CASES, DIFFERENTIABLE, loss

import softjax as sjx
from softjax import dp
from softjax.semiring import LogSemiring, MaxPlus, MinPlus


@pytest.fixture(params=["jax_debug_nans", "jax_debug_infs"])
def debug_flag(request):
    jax.config.update(request.param, True)
    yield request.param
    jax.config.update(request.param, False)


MODES = ["op_by_op", "eager", "jit"]


def _run(f, x, mode, debug_flag):
    if mode == "op_by_op" and debug_flag == "jax_debug_infs":
        pytest.skip("op by op, the identity of max (−inf) trips jax_debug_infs, as in jax.nn")
    with jax.disable_jit(mode == "op_by_op"):
        out = (jax.jit(f) if mode == "jit" else f)(x)
    assert np.all(np.isfinite(np.asarray(out, np.float64)))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(CASES))
def test_finite_input_raises_nothing(debug_flag, case, mode):
    x = jnp.asarray(np.random.default_rng(0).standard_normal((3, 5)), jnp.float32)
    functions = [CASES[case]] + ([jax.grad(loss(case))] if case in DIFFERENTIABLE else [])
    for f in functions:
        _run(f, x, mode, debug_flag)


def _programs():
    """The semiring products and dynamic programs, each a function of one finite array."""
    semirings = {
        "log": LogSemiring(jnp.float32(1.5)),
        "log_neg": LogSemiring(-0.7),
        "maxplus": MaxPlus(),
        "minplus": MinPlus(),
    }
    y = jnp.asarray(np.random.default_rng(1).standard_normal((4, 5)), jnp.float32)
    out = {
        "smooth_max_array_beta": lambda x: sjx.smooth_max(
            x, beta=jnp.array([[1.0], [-2.0], [0.5]])
        ),
        "softargmax_array_beta": lambda x: sjx.softargmax(x, beta=jnp.float32(3.0)),
        "mellowmax_tiny_beta": lambda x: sjx.mellowmax(x, beta=jnp.float32(1e-6)),
        "soft_dtw_divergence": lambda x: dp.soft_dtw_divergence(x[:, :2], y[:, :2], gamma=0.5),
    }
    for name, sr in semirings.items():
        out[f"matmul_{name}"] = lambda x, sr=sr: sr.matmul(x, x.T)
        out[f"linear_chain_{name}"] = lambda x, sr=sr: dp.linear_chain(
            jnp.stack([x[:, :3], x[:, 1:4]]), sr
        )
        out[f"linear_chain_parallel_{name}"] = lambda x, sr=sr: dp.linear_chain(
            jnp.stack([x[:, :3], x[:, 1:4]]), sr, method="parallel"
        )
        out[f"dtw_{name}"] = lambda x, sr=sr: dp.dtw(x, sr)
        # Edge weights of the sign that makes every cycle lose: the path sums converge.
        sign = -1.0 if name in ("log", "maxplus") else 1.0
        out[f"shortest_paths_{name}"] = lambda x, sr=sr, sign=sign: dp.shortest_paths(
            sign * (jnp.abs(x[:, :3]) + 2.0), sr
        )
    return out


PROGRAMS = _programs()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(PROGRAMS))
def test_programs_on_finite_input_raise_nothing(debug_flag, name, mode):
    x = jnp.asarray(np.random.default_rng(0).standard_normal((3, 5)), jnp.float32)
    f = PROGRAMS[name]
    _run(f, x, mode, debug_flag)
    grad = jax.grad(lambda x: jnp.sum(jnp.sin(f(x))))
    if debug_flag == "jax_debug_infs" and mode == "eager" and name.startswith("shortest_paths_log"):
        # Documented: this gradient keeps the excluded self-loops as the semiring's zero, −inf.
        with pytest.raises(FloatingPointError):
            grad(x)
        return
    _run(grad, x, mode, debug_flag)
