"""Top-k, sort and rank under jit with NamedSharding on an 8-device CPU mesh equal the
single-device result, with Auto and Explicit mesh axes.

Run in its own process with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from softjax.order import fermi_level, soft_rank, soft_sort, soft_topk, topk_onehot

jax.config.update("jax_numpy_rank_promotion", "raise")

CASES = {
    "topk_onehot": lambda x: topk_onehot(x, 3),
    "soft_topk": lambda x: soft_topk(x, 3, beta=2.0),
    "soft_topk_where": lambda x: soft_topk(x, 2.5, beta=-1.0, where=x > -1.0),
    "soft_topk_inf": lambda x: soft_topk(x, 3, beta=jnp.inf),
    "fermi_level": lambda x: fermi_level(x, 3, beta=2.0),
    "soft_sort": lambda x: soft_sort(x, beta=0.7),
    "soft_rank": lambda x: soft_rank(x, beta=1.5, descending=True),
}
DIFFERENTIABLE = ["soft_topk", "soft_topk_where", "soft_sort", "soft_rank"]


def _loss(case):
    w = jnp.cos(jnp.arange(64.0))[None, :]
    return lambda x: jnp.sum(CASES[case](x) * w)


@pytest.mark.parametrize("spec", [P("x", None), P(None, "y"), P("x", "y")], ids=str)
@pytest.mark.parametrize("case", list(CASES))
def test_order_under_auto_and_explicit_meshes(typed_mesh, spec, case):
    x = jnp.asarray(np.random.default_rng(0).standard_normal((16, 64)), jnp.float32)
    x = x.at[6, :8].set(1.0)  # ties
    xs = jax.device_put(x, NamedSharding(typed_mesh, spec))
    functions = [CASES[case]] + ([jax.grad(_loss(case))] if case in DIFFERENTIABLE else [])
    for f in functions:
        with jax.set_mesh(typed_mesh):
            got = jax.jit(f)(xs)
        chex.assert_trees_all_close(got, jax.jit(f)(x), rtol=1e-5, atol=1e-5)
