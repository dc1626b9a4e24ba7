"""Soft-DTW from series: ``dp.soft_dtw`` against ott-jax's ``SoftDTW`` cost, value and gradient.

A batch of 32 pairs of series of 100 steps in 3 dimensions (``--quick``: 8 pairs of 50), float32,
γ = 1; ott-jax's cost is one pair at a time, so it is vmapped over the batch. Rows are skipped,
with a note, when ott-jax is not installed (it is in the ``bench`` extra).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._timing import median_ratio, paired_times, table
from softjax import dp


def _ott_soft_dtw(gamma):
    from ott.geometry.costs import SoftDTW

    cost = SoftDTW(gamma)
    return jax.vmap(cost)


def run(quick: bool = False) -> list[dict]:
    """Times both, prints a table of ratios and returns its rows."""
    batch, n = (8, 50) if quick else (32, 100)
    rounds = 5 if quick else 15
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, n, 3)), jnp.float32)
    y = jnp.asarray(rng.standard_normal((batch, n, 3)), jnp.float32)
    gamma = 1.0
    try:
        theirs = _ott_soft_dtw(gamma)
    except ImportError:
        print("soft-DTW: ott-jax is not installed (pip install '.[bench]'); skipped")
        return []

    def ours(x, y):
        return dp.soft_dtw(x, y, gamma=gamma)

    value = {"softjax": jax.jit(ours), "ott": jax.jit(theirs)}
    grad = {
        name: jax.jit(jax.grad(lambda x, y, f=f: jnp.sum(f(x, y))))
        for name, f in (("softjax", ours), ("ott", theirs))
    }
    np.testing.assert_allclose(value["softjax"](x, y), value["ott"](x, y), rtol=1e-4)
    np.testing.assert_allclose(grad["softjax"](x, y), grad["ott"](x, y), rtol=1e-3, atol=1e-4)
    rows = []
    for what, fns in (("value", value), ("gradient", grad)):
        t = paired_times(fns, x, y, rounds=rounds)
        rows.append(
            {
                "case": f"soft_dtw {what} / ott-jax SoftDTW ({batch} x {n}x{n}x3)",
                "ratio": median_ratio(t, "softjax", "ott"),
                "target": "<= 1",
                "ms": 1e3 * min(t["softjax"]),
            }
        )
    print(table(rows, ["case", "ratio", "target", "ms"]))
    return rows


if __name__ == "__main__":
    run()
