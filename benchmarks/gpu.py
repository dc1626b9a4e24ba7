"""The accelerator benchmark: one prepared script for a machine with a GPU.

On the default JAX device it times each definition against its CPU engine (both forced, whatever
the platform, so that an engine is enabled on a platform only if it wins there) and against the
alternative users would write:

- softargmax (value, value + gradient) and logsumexp: GB/s (bytes read + written per second),
  as a fraction of the device's copy bandwidth (``x + 0`` into a new buffer), and as a ratio to
  ``jax.nn``;
- the log-semiring matmul at β = 1 and β = 100 (value and gradient) against ``A @ B``, and the
  max-plus matmul.

Run with ``python -m benchmarks.gpu``; ``--quick`` is a dry run at small sizes (also on the CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import sys

import jax
import jax.numpy as jnp
import numpy as np

import softjax as sjx
import softjax.semiring
import softjax.smooth
from benchmarks._timing import interleaved_times, table
from softjax.semiring import LogSemiring, MaxPlus

_CHOOSERS = (softjax.smooth, softjax.semiring)


@contextlib.contextmanager
def _forced(path: str):
    """Traces with the platform choice forced to ``path`` ("engine" or "definition")."""
    saved = [m.on_cpu for m in _CHOOSERS]

    def choose(engine, definition, *args):
        return (engine if path == "engine" else definition)(*args)

    for m in _CHOOSERS:
        m.on_cpu = choose
    try:
        yield
    finally:
        for m, f in zip(_CHOOSERS, saved, strict=True):
            m.on_cpu = f


def _jit_with(path: str, fn):
    """``fn`` compiled with the choice forced to ``path``, at its first call.

    The library's inner ``jax.jit`` caches would hand one path's trace to the other, so they are
    cleared around the compilation; the compiled executable is kept here.
    """
    compiled = None

    def call(*args):
        nonlocal compiled
        if compiled is None:
            jax.clear_caches()
            with _forced(path):
                compiled = jax.jit(fn).lower(*args).compile()
            jax.clear_caches()
        return compiled(*args)

    return call


def _print(text: str) -> None:
    print(text)
    sys.stdout.flush()


def kernel(quick: bool) -> list[dict]:
    rows = []
    shapes = [(4096, 1024)] if quick else [(16384, 4096), (1024, 65536), (65536, 1024)]
    rng = np.random.default_rng(0)

    def softargmax(x, b):
        return sjx.softargmax(x, beta=b)

    def softargmax_vjp(x, b):
        return jax.vjp(lambda x: sjx.softargmax(x, beta=b), x)[1](x)[0]

    def logsumexp(x, b):
        return sjx.logsumexp(x, axis=-1)

    ours = {"softargmax": softargmax, "softargmax fwd+bwd": softargmax_vjp, "logsumexp": logsumexp}
    theirs = {
        "softargmax": lambda x, b: jax.nn.softmax(b.astype(x.dtype) * x),
        "softargmax fwd+bwd": lambda x, b: jax.vjp(
            lambda x: jax.nn.softmax(b.astype(x.dtype) * x), x
        )[1](x)[0],
        "logsumexp": lambda x, b: jax.nn.logsumexp(x, axis=-1),
    }
    for shape in shapes:
        for dtype in [jnp.float32, jnp.bfloat16]:
            x = jnp.asarray(rng.standard_normal(shape), dtype)
            b = jnp.asarray(2.0, jnp.float32)
            nbytes = x.size * x.dtype.itemsize
            moved = {
                "softargmax": 2 * nbytes,
                "softargmax fwd+bwd": 4 * nbytes,
                "logsumexp": nbytes,
            }
            copy = {"copy": jax.jit(lambda x, b: x + jnp.zeros((), x.dtype))}
            t_copy = interleaved_times(copy, x, b, rounds=3)["copy"]
            copy_bw = 2 * nbytes / t_copy / 1e9
            for op, fn in ours.items():
                fns = {
                    "definition": _jit_with("definition", fn),
                    "engine": _jit_with("engine", fn),
                    "jax.nn": jax.jit(theirs[op]),
                }
                t = interleaved_times(fns, x, b, rounds=3)
                for path in ("definition", "engine"):
                    gbs = moved[op] / t[path] / 1e9
                    rows.append(
                        {
                            "op": op,
                            "path": path,
                            "shape": f"{shape[0]}x{shape[1]} {jnp.dtype(dtype).name}",
                            "GB/s": gbs,
                            "of copy": gbs / copy_bw,
                            "/ jax.nn": t[path] / t["jax.nn"],
                        }
                    )
                _print(table(rows[-2:], ["op", "path", "shape", "GB/s", "of copy", "/ jax.nn"]))
    return rows


def matmuls(quick: bool) -> list[dict]:
    rows = []
    rng = np.random.default_rng(1)
    for n in [256] if quick else [1024, 4096]:
        a = jnp.asarray(rng.standard_normal((n, n)), jnp.float32)
        c = jnp.asarray(rng.standard_normal((n, n)), jnp.float32)

        def product(s):
            return lambda x, y: s.matmul(x, y)

        def gradient(s):
            return jax.grad(lambda x, y: s.matmul(x, y).sum(), argnums=(0, 1))

        cases = {
            "LogSemiring(1)": LogSemiring(1.0),
            "LogSemiring(100)": LogSemiring(100.0),
            "MaxPlus": MaxPlus(),
        }
        for kind, make in (("value", product), ("gradient", gradient)):
            base = (
                jax.jit(lambda a, c: a @ c)
                if kind == "value"
                else jax.jit(jax.grad(lambda a, c: (a @ c).sum(), argnums=(0, 1)))
            )
            fns = {"A @ B": base}
            for name, s in cases.items():
                for path in ("definition", "engine"):
                    fns[f"{name} {path}"] = _jit_with(path, make(s))
            t = interleaved_times(fns, a, c, rounds=3)
            for name in cases:
                for path in ("definition", "engine"):
                    key = f"{name} {path}"
                    rows.append(
                        {
                            "matmul": name,
                            "kind": kind,
                            "path": path,
                            "n": n,
                            "ms": 1e3 * t[key],
                            "/ A @ B": t[key] / t["A @ B"],
                        }
                    )
            _print(table(rows[-2 * len(cases) :], ["matmul", "kind", "path", "n", "ms", "/ A @ B"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["kernel", "matmuls"], default=None)
    args = parser.parse_args()
    device = jax.devices()[0]
    _print(f"{datetime.date.today()}  jax {jax.__version__}  device: {device.device_kind}")
    if args.only in (None, "kernel"):
        kernel(args.quick)
    if args.only in (None, "matmuls"):
        matmuls(args.quick)


if __name__ == "__main__":
    main()
