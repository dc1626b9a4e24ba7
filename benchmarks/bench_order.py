"""Top-k, sort and rank: soft_topk against softargmax, soft_sort / soft_rank against jnp.sort and
against ott-jax's soft sort, ranks and top-k mask (softjax value and gradient, defaults).

Ratios are medians over rounds of per-round ratios in one process (``paired_times``). The ott-jax
rows are skipped, with a note, when ott-jax is not installed (it is in the ``bench`` extra).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import softjax as sjx
from benchmarks._timing import median_ratio, paired_times, table
from softjax.order import soft_rank, soft_sort, soft_topk

TOPK_SHAPE = (4096, 1024)
SORT_SHAPE = (128, 1000)


def _vjp(f):
    return lambda x, g: jax.vjp(f, x)[1](g)[0]


def _topk_rows(rounds):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(TOPK_SHAPE), jnp.float32)
    g = jnp.asarray(rng.standard_normal(TOPK_SHAPE), jnp.float32)
    ours = lambda x: soft_topk(x, 8.0, beta=2.0)  # noqa: E731
    base = lambda x: sjx.softargmax(x, beta=2.0)  # noqa: E731
    rows = []
    for op, fns, args in [
        ("soft_topk fwd", {"ours": ours, "base": base}, (x,)),
        ("soft_topk fwd+bwd", {"ours": _vjp(ours), "base": _vjp(base)}, (x, g)),
    ]:
        t = paired_times({k: jax.jit(f) for k, f in fns.items()}, *args, rounds=rounds)
        rows.append(
            {
                "op": op,
                "against": "softargmax",
                "softjax ms": 1e3 * min(t["ours"]),
                "other ms": 1e3 * min(t["base"]),
                "ratio": median_ratio(t, "ours", "base"),
            }
        )
    return rows


def _sort_rows(rounds):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal(SORT_SHAPE), jnp.float32)
    g = jnp.asarray(rng.standard_normal(SORT_SHAPE), jnp.float32)
    ours = {
        "soft_sort": lambda x: soft_sort(x, beta=1.0),
        "soft_rank": lambda x: soft_rank(x, beta=1.0),
        "soft_topk": lambda x: soft_topk(x, 10.0, beta=1.0),
    }
    rows = []
    for name in ["soft_sort", "soft_rank"]:
        fns = {"ours": jax.jit(ours[name]), "base": jax.jit(lambda x: jnp.sort(x, axis=-1))}
        t = paired_times(fns, x, rounds=rounds)
        rows.append(
            {
                "op": f"{name} fwd",
                "against": "jnp.sort",
                "softjax ms": 1e3 * min(t["ours"]),
                "other ms": 1e3 * min(t["base"]),
                "ratio": median_ratio(t, "ours", "base"),
            }
        )
    try:
        from ott.tools import soft_sort as ott_sort
    except ImportError:
        print("sort/rank: ott-jax is not installed (pip install '.[bench]'); skipped")
        return rows
    theirs = {
        "soft_sort": lambda x: ott_sort.sort(x, axis=-1),
        "soft_rank": lambda x: ott_sort.ranks(x, axis=-1),
        "soft_topk": lambda x: ott_sort.topk_mask(x, axis=-1, k=10),
    }
    # ott-jax's operators at their default settings cannot be differentiated with the installed
    # version (reverse mode meets a while_loop with dynamic bounds, forward mode a custom_vjp), so
    # softjax's value and gradient are timed against ott-jax's value alone: a lower bound on the
    # speed-up for value and gradient.
    for name in ["soft_sort", "soft_rank", "soft_topk"]:
        fns = {"ours": jax.jit(_vjp(ours[name])), "ott": jax.jit(lambda x, g, f=theirs[name]: f(x))}
        t = paired_times(fns, x, g, rounds=max(3, rounds // 4))
        rows.append(
            {
                "op": f"{name} value+grad (ott: value)",
                "against": "ott-jax",
                "softjax ms": 1e3 * min(t["ours"]),
                "other ms": 1e3 * min(t["ott"]),
                "ratio": median_ratio(t, "ours", "ott"),
            }
        )
    return rows


def run(quick: bool = False) -> list[dict]:
    """Prints and returns the table of ratios (softjax time / the other's time)."""
    rounds = 5 if quick else 21
    rows = _topk_rows(rounds) + _sort_rows(rounds)
    cols = ["op", "against", "softjax ms", "other ms", "ratio"]
    print(
        "top-k / sort / rank (ratio = softjax / other; targets: soft_topk <= 4 x softargmax, "
        "sort and rank <= 10 x jnp.sort, <= 0.1 x ott-jax)"
    )
    print(table(rows, cols))
    return rows


if __name__ == "__main__":
    run(quick=True)
