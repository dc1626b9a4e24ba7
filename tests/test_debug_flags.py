"""With ``jax_debug_nans`` or ``jax_debug_infs`` on, finite input raises nothing: users turn these
flags on to find their own bugs, so no public function may compute a NaN or an infinity inside
(a sentinel, a constant, an unused branch) on finite input. Checked eagerly (every primitive is
checked) and under ``jit`` (the outputs are checked)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cases import CASES, DIFFERENTIABLE, loss


@pytest.fixture(params=["jax_debug_nans", "jax_debug_infs"])
def debug_flag(request):
    jax.config.update(request.param, True)
    yield request.param
    jax.config.update(request.param, False)


@pytest.mark.parametrize("eager", [True, False], ids=["eager", "jit"])
@pytest.mark.parametrize("case", list(CASES))
def test_finite_input_raises_nothing(debug_flag, case, eager):
    x = jnp.asarray(np.random.default_rng(0).standard_normal((3, 5)), jnp.float32)
    functions = [CASES[case]] + ([jax.grad(loss(case))] if case in DIFFERENTIABLE else [])
    for f in functions:
        with jax.disable_jit(eager):
            out = (f if eager else jax.jit(f))(x)
        assert np.all(np.isfinite(np.asarray(out, np.float64)))
