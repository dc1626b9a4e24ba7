"""A live tour of the β family: first examples, a β sweep to argmax and argmin, and a figure.

Run with ``python -m examples.tour --out out`` (``make demo`` runs it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import softjax as sjx

INF = float("inf")


def _fmt(x) -> str:
    return "[" + ", ".join(f"{float(v):.7g}" for v in np.ravel(np.asarray(x))) + "]"


def examples_table() -> list[tuple[str, str]]:
    """First examples of the β family, computed live."""
    rows = [
        ("argmax_onehot([1, 5, 10])", sjx.argmax_onehot(jnp.array([1.0, 5.0, 10.0]))),
        ("argmax_onehot([1, 5, 5])", sjx.argmax_onehot(jnp.array([1.0, 5.0, 5.0]))),
        ("argmax_onehot([2, 2, 2, 2])", sjx.argmax_onehot(jnp.full(4, 2.0))),
        ("softargmax([0, 10])", sjx.softargmax(jnp.array([0.0, 10.0]))),
        ("softargmax([0, 10], beta=1/100)", sjx.softargmax(jnp.array([0.0, 10.0]), beta=0.01)),
        ("softargmax([1, 1], beta=0)", sjx.softargmax(jnp.array([1.0, 1.0]), beta=0.0)),
        ("softargmax([1, 1], beta=inf)", sjx.softargmax(jnp.array([1.0, 1.0]), beta=INF)),
        ("softargmax([1, 1.0001], beta=1e7)", sjx.softargmax(jnp.array([1.0, 1.0001]), beta=1e7)),
        ("softargmax([1, 0.9999], beta=1e7)", sjx.softargmax(jnp.array([1.0, 0.9999]), beta=1e7)),
        ("softargmin([0, 10])", sjx.softargmin(jnp.array([0.0, 10.0]))),
        ("argmin_onehot([1, 5, 1])", sjx.argmin_onehot(jnp.array([1.0, 5.0, 1.0]))),
        ("smooth_max([1, 2, 3], beta=1)", sjx.smooth_max(jnp.array([1.0, 2.0, 3.0]))),
        ("smooth_max([1, 2, 3], beta=inf)", sjx.smooth_max(jnp.array([1.0, 2.0, 3.0]), beta=INF)),
        ("mellowmax([1, 2, 6], beta=0)", sjx.mellowmax(jnp.array([1.0, 2.0, 6.0]), beta=0.0)),
        ("logsumexp([-inf, -inf])", sjx.logsumexp(jnp.array([-INF, -INF]))),
        (
            "softargmax([0, 10], beta=3e9) under jit",
            jax.jit(lambda z, b: sjx.softargmax(z, beta=b))(jnp.array([0.0, 10.0]), 3e9),
        ),
        (
            "jax.nn.softmax(3e9 * [0, 10]) under jit",
            jax.jit(lambda z, b: jax.nn.softmax(b * z))(jnp.array([0.0, 10.0]), 3e9),
        ),
    ]
    return [(name, _fmt(value)) for name, value in rows]


def beta_sweep(z: jax.Array, betas: jax.Array) -> np.ndarray:
    """softargmax(z, β) for each β, from one compiled function (β is traced and vmapped)."""
    return np.asarray(jax.jit(jax.vmap(lambda b: sjx.softargmax(z, beta=b)))(betas))


def _print_table(rows, headers):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def main(out_dir: str | Path = "out", quiet: bool = False) -> dict:
    """Prints the tour and writes ``tour_sweep.png`` to ``out_dir``; returns what it computed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if quiet else print

    rows = examples_table()
    if not quiet:
        print("== First examples, computed live ==")
        _print_table(rows, ["expression", "value"])

    z = jnp.array([1.0, 2.0, 2.5, 4.0])
    betas = jnp.array([-INF, -100.0, -10.0, -1.0, -0.1, 0.0, 0.1, 1.0, 10.0, 100.0, INF])
    sweep = beta_sweep(z, betas)
    say(f"\n== beta sweep of softargmax(z) for z = {_fmt(z)} (one compiled function) ==")
    sweep_rows = [
        (f"{float(b):g}", _fmt(np.round(p, 5))) for b, p in zip(betas, sweep, strict=True)
    ]
    if not quiet:
        _print_table(sweep_rows, ["beta", "softargmax(z, beta)"])
        print("beta -> +inf: the one-hot argmax; beta -> -inf: the argmin; beta = 0: uniform.")

    # A bare Figure draws straight to the file: no pyplot, so the caller's backend is left alone.
    from matplotlib.figure import Figure

    grid = jnp.concatenate([-jnp.logspace(2, -2, 200), jnp.logspace(-2, 2, 200)])
    curves = beta_sweep(z, grid)
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for i in range(z.shape[0]):
        ax.plot(np.asarray(grid), curves[:, i], label=f"z = {float(z[i]):g}")
    ax.set_xscale("symlog", linthresh=1e-2)
    ax.set_xlabel("inverse temperature β")
    ax.set_ylabel("softargmax(z, β)")
    ax.set_title("From the arg min (β → −∞) through uniform (β = 0) to the arg max (β → +∞)")
    ax.legend()
    path = out / "tour_sweep.png"
    fig.savefig(path, dpi=100)
    say(f"\nwrote {path}")
    return {"rows": rows, "sweep": sweep, "figure": str(path)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="out", help="folder for the figures")
    main(parser.parse_args().out)
