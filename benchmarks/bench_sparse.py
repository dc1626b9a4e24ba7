"""The sparse family against softargmax and optax's simplex projection, in one process.

Each ratio is the median over rounds of one function's time over the reference's time in the same
round (``paired_times``): sparsemax and entmax over :func:`softjax.softargmax` (forward, and
forward + backward), and sparsemax over ``optax.projections.projection_simplex`` applied row by
row (its sorting-based projection). Targets: forward <= 4x softargmax, forward + backward <= 4x
softargmax's, sparsemax no slower than the optax projection.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import softjax as sjx
from benchmarks._timing import median_ratio, paired_times, table
from softjax.sparse import entmax, sparsemax

SHAPES = [((4096, 1024), jnp.float32)]


def _fwd(f):
    return lambda x, b: f(x, b)


def _vjp(f):
    return lambda x, b, g: jax.vjp(lambda x: f(x, b), x)[1](g)[0]


FUNCTIONS = {
    "softargmax": lambda x, b: sjx.softargmax(x, beta=b),
    "sparsemax": lambda x, b: sparsemax(x, beta=b),
    "entmax 1.5": lambda x, b: entmax(x, alpha=1.5, beta=b),
    "entmax 1.7": lambda x, b: entmax(x, alpha=1.7, beta=b),
    "optax projection_simplex": lambda x, b: jax.vmap(optax.projections.projection_simplex)(
        b.astype(x.dtype) * x
    ),
}


def run(quick: bool = False) -> list[dict]:
    """Prints and returns the table of ratios to softargmax (and to the optax projection)."""
    rng = np.random.default_rng(0)
    rows = []
    rounds = 3 if quick else 15
    for shape, dtype in SHAPES:
        x = jnp.asarray(rng.standard_normal(shape), dtype)
        g = jnp.asarray(rng.standard_normal(shape), dtype)
        b = jnp.asarray(2.0, jnp.float32)
        label = f"{shape[0]}x{shape[1]} {jnp.dtype(dtype).name}"
        fwd = {name: jax.jit(_fwd(f)) for name, f in FUNCTIONS.items()}
        t = paired_times(fwd, x, b, rounds=rounds)
        for name in FUNCTIONS:
            rows.append(
                {
                    "op": f"{name} fwd",
                    "shape": label,
                    "ms": 1e3 * min(t[name]),
                    "ratio to softargmax": median_ratio(t, name, "softargmax"),
                    "ratio to optax": median_ratio(t, name, "optax projection_simplex"),
                }
            )
        names = ["softargmax", "sparsemax", "entmax 1.5"]
        bwd = {name: jax.jit(_vjp(FUNCTIONS[name])) for name in names}
        t = paired_times(bwd, x, b, g, rounds=rounds)
        for name in names:
            rows.append(
                {
                    "op": f"{name} fwd+bwd",
                    "shape": label,
                    "ms": 1e3 * min(t[name]),
                    "ratio to softargmax": median_ratio(t, name, "softargmax"),
                    "ratio to optax": float("nan"),
                }
            )
    cols = ["op", "shape", "ms", "ratio to softargmax", "ratio to optax"]
    print("sparse family (ratio = time / reference; targets: <= 4 to softargmax, <= 1 to optax)")
    print(table(rows, cols))
    return rows


if __name__ == "__main__":
    run()
