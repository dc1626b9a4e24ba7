"""The sparse family under jit with NamedSharding on an 8-device CPU mesh equals the single-device
result, under Auto and Explicit mesh axes: β = ∞, one traced α per row, and the functions whose
gradient on the rows at ±inf the shared table (``test_sharding.py``) leaves NaN; here the loss
skips non-finite outputs, so those gradients are finite and compared.

Run in its own process with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from softjax.sparse import entmax, fenchel_young_loss, sparsemax, tsallis_max

jax.config.update("jax_numpy_rank_promotion", "raise")

FUNCTIONS = {
    "sparsemax-inf": lambda x: sparsemax(x, beta=jnp.inf),
    "entmax-traced": lambda x: entmax(x, alpha=jnp.full((x.shape[0], 1), 2.5), beta=-1.0),
    "tsallis_max": lambda x: tsallis_max(x, alpha=2.0, beta=0.5),
    "fenchel_young_loss": lambda x: fenchel_young_loss(
        x, jax.nn.one_hot(jnp.arange(x.shape[0]) % x.shape[1], x.shape[1]), alpha=1.5
    ),
}


@pytest.mark.parametrize("spec", [P("x", None), P(None, "y"), P("x", "y")], ids=str)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_sparse_functions_under_auto_and_explicit_meshes(typed_mesh, spec, name):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((16, 64)), jnp.float32)
    x = x.at[3].set(-jnp.inf).at[5, 7].set(jnp.inf).at[6, :8].set(1.0)
    xs = jax.device_put(x, NamedSharding(typed_mesh, spec))
    f = FUNCTIONS[name]
    g = jax.grad(lambda x: jnp.sum(jnp.where(jnp.isfinite(f(x)), f(x), 0.0) ** 2))
    for fn in [f, g]:
        with jax.set_mesh(typed_mesh):
            got = jax.jit(fn)(xs)
        chex.assert_trees_all_close(got, jax.jit(fn)(x), rtol=1e-5, atol=1e-6)
