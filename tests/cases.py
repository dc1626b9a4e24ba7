"""The public functions of the β family as test cases: one table for the export and sharding tests.

Each case maps scores ``x`` of shape (batch, n) to arrays; ``DIFFERENTIABLE`` lists the cases whose
gradient is checked. The semiring products and dynamic programs have tables of their own.
"""

import jax
import jax.numpy as jnp

import softjax as sjx

KEY = jax.random.key(0)

CASES = {
    "softargmax": lambda x: sjx.softargmax(x, beta=2.0),
    "softargmin": lambda x: sjx.softargmin(x, beta=2.0),
    "log_softargmax": lambda x: sjx.log_softargmax(x, beta=-1.5),
    "argmax_onehot": lambda x: sjx.argmax_onehot(x),
    "argmin_onehot": lambda x: sjx.argmin_onehot(x),
    "smooth_max": lambda x: sjx.smooth_max(x, beta=2.0),
    "smooth_min": lambda x: sjx.smooth_min(x, beta=2.0),
    "mellowmax": lambda x: sjx.mellowmax(x, beta=0.5),
    "logsumexp": lambda x: sjx.logsumexp(x, axis=-1),
    "logsumexp_weighted": lambda x: sjx.logsumexp(x, axis=-1, b=jnp.cos(x)),
    "softargmax_where": lambda x: sjx.softargmax(x, beta=2.0, where=x > -1.0),
    "smooth_max_all_axes": lambda x: sjx.smooth_max(x, beta=0.7, axis=None),
    "margin": lambda x: sjx.margin(x),
    "is_singular": lambda x: sjx.is_singular(x).astype(x.dtype),
    "beta_for_tolerance": lambda x: sjx.beta_for_tolerance(x, 0.1),
    "boltzmann": lambda x: sjx.boltzmann(x, beta=2.0),
    "entropy": lambda x: sjx.entropy(x, beta=2.0),
    "free_energy": lambda x: sjx.free_energy(x, beta=2.0),
    "mean_energy": lambda x: sjx.mean_energy(x, beta=2.0),
    "heat_capacity": lambda x: sjx.heat_capacity(x, beta=2.0),
    "log_partition": lambda x: sjx.log_partition(x, beta=2.0),
    "sample_onehot": lambda x: sjx.sample_onehot(KEY, x, beta=2.0),
    "gumbel_softargmax": lambda x: sjx.gumbel_softargmax(KEY, x, tau=0.5, beta=1.5),
    "gumbel_softargmax_hard": lambda x: sjx.gumbel_softargmax(KEY, x, tau=0.5, hard=True),
    "soft_topk": lambda x: sjx.soft_topk(x, 3, beta=2.0),
    "soft_topk_where": lambda x: sjx.soft_topk(x, 2.5, beta=-1.0, where=x > -1.0),
    "soft_sort": lambda x: sjx.soft_sort(x, beta=0.7),
    "soft_rank": lambda x: sjx.soft_rank(x, beta=1.5, descending=True),
    "soft_sort_desc": lambda x: sjx.soft_sort(x, beta=2.0, descending=True),
    "topk_onehot": lambda x: sjx.topk_onehot(x, 3),
    "soft_topk_inf": lambda x: sjx.soft_topk(x, 3, beta=jnp.inf),
    "fermi_level": lambda x: sjx.fermi_level(x, 3, beta=2.0),
    "sparsemax": lambda x: sjx.sparsemax(x, beta=2.0),
    "entmax": lambda x: sjx.entmax(x, beta=2.0),
    "entmax_alpha": lambda x: sjx.entmax(x, alpha=jnp.asarray(2.5), beta=-1.0),
    "tsallis_max": lambda x: sjx.tsallis_max(x, alpha=2.0, beta=0.5),
    "fenchel_young_loss": lambda x: sjx.fenchel_young_loss(x, jax.nn.softmax(0.3 * x), alpha=1.5),
}

# Piecewise constant in x (zero gradient) or not differentiable at all.
CONSTANT = {
    "argmax_onehot",
    "argmin_onehot",
    "is_singular",
    "sample_onehot",
    "topk_onehot",
    "soft_topk_inf",
    "fermi_level",
}
DIFFERENTIABLE = sorted(set(CASES) - CONSTANT)


def per_row_beta(x):
    """softargmax with one β per row: the β array's shape follows the batch."""
    beta = 2.0 * jnp.cos(3.0 * x[:, :1])  # both signs
    return sjx.softargmax(x, beta=beta)


def loss(case):
    """A scalar of the case's output, whose gradient exercises every output entry."""

    def f(x):
        out = CASES[case](x) if isinstance(case, str) else case(x)
        return jnp.sum(jnp.sin(out))

    return f
