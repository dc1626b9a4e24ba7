"""The kernel against jax.nn in one process: softargmax forward, forward+backward, logsumexp.

Each ratio is the median over rounds of softjax's time over the alternative's time in the same
round (``paired_times``), so that the machine's load drift is shared. The floor is one elementwise
``exp`` pass over the input, timed in the same rounds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import softjax as sjx
from benchmarks._timing import median_ratio, paired_times, table

SHAPES = [((4096, 1024), jnp.float32), ((256, 65536), jnp.float32), ((4096, 1024), jnp.bfloat16)]


def _cases(beta):
    def ours_fwd(x, b):
        return sjx.softargmax(x, beta=b)

    def jax_fwd(x, b):
        return jax.nn.softmax(b.astype(x.dtype) * x)

    def ours_vjp(x, b, g):
        return jax.vjp(lambda x: sjx.softargmax(x, beta=b), x)[1](g)[0]

    def jax_vjp(x, b, g):
        return jax.vjp(lambda x: jax.nn.softmax(b.astype(x.dtype) * x), x)[1](g)[0]

    def ours_lse(x, b):
        return sjx.logsumexp(x, axis=-1)

    def jax_lse(x, b):
        return jax.nn.logsumexp(x, axis=-1)

    return {
        "softargmax fwd": (ours_fwd, jax_fwd, False),
        "softargmax fwd+bwd": (ours_vjp, jax_vjp, True),
        "logsumexp": (ours_lse, jax_lse, False),
    }


def _floor(x, b, *_):
    """One elementwise exp pass over the input: the least a softmax can cost."""
    return jnp.exp(x)


def run(quick: bool = False) -> list[dict]:
    """Prints and returns the table of ratios (softjax time / jax.nn time)."""
    rng = np.random.default_rng(0)
    rows = []
    shapes = SHAPES[:1] if quick else SHAPES
    rounds = 5 if quick else 61
    for shape, dtype in shapes:
        x = jnp.asarray(rng.standard_normal(shape), dtype)
        g = jnp.asarray(rng.standard_normal(shape), dtype)
        b = jnp.asarray(2.0, jnp.float32)
        cases = _cases(b)
        for name, (ours, theirs, needs_g) in cases.items():
            args = (x, b, g) if needs_g else (x, b)
            fns = {"ours": jax.jit(ours), "jax": jax.jit(theirs), "exp": jax.jit(_floor)}
            t = paired_times(fns, *args, rounds=rounds)
            rows.append(
                {
                    "op": name,
                    "shape": f"{shape[0]}x{shape[1]} {jnp.dtype(dtype).name}",
                    "softjax ms": 1e3 * min(t["ours"]),
                    "jax.nn ms": 1e3 * min(t["jax"]),
                    "ratio": median_ratio(t, "ours", "jax"),
                    "ratio to exp": median_ratio(t, "ours", "exp"),
                }
            )
    cols = ["op", "shape", "softjax ms", "jax.nn ms", "ratio", "ratio to exp"]
    print("softargmax / logsumexp against jax.nn (ratio = softjax / jax.nn; target <= 1.10)")
    print(table(rows, cols))
    return rows


if __name__ == "__main__":
    run()
