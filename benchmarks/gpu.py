"""The accelerator benchmark: one prepared script for a machine with a GPU.

Measures, on the default JAX device:

- softargmax and logsumexp throughput in GB/s (bytes read + written per second) against the
  device's copy bandwidth (``x + 0`` written to a new buffer) and against ``jax.nn``;
- the log-semiring matmul against a plain matmul of the same size, at β = 1 and β = 100, and the
  max-plus matmul.

Run with ``python -m benchmarks.gpu`` (it also runs on the CPU, for a dry run with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime

import jax
import jax.numpy as jnp
import numpy as np

import softjax as sjx
from benchmarks._timing import interleaved_times, table
from softjax.semiring import LogSemiring, MaxPlus


def throughput(quick: bool) -> list[dict]:
    rows = []
    shapes = [(4096, 1024)] if quick else [(16384, 4096), (1024, 65536), (65536, 1024)]
    rng = np.random.default_rng(0)
    for shape in shapes:
        for dtype in [jnp.float32, jnp.bfloat16]:
            x = jnp.asarray(rng.standard_normal(shape), dtype)
            b = jnp.asarray(2.0, jnp.float32)
            nbytes = x.size * x.dtype.itemsize
            fns = {
                "copy": jax.jit(lambda x, b: x + jnp.zeros((), x.dtype)),
                "softargmax": jax.jit(lambda x, b: sjx.softargmax(x, beta=b)),
                "jax.nn.softmax": jax.jit(lambda x, b: jax.nn.softmax(b.astype(x.dtype) * x)),
                "logsumexp": jax.jit(lambda x, b: sjx.logsumexp(x, axis=-1)),
                "jax.nn.logsumexp": jax.jit(lambda x, b: jax.nn.logsumexp(x, axis=-1)),
            }
            t = interleaved_times(fns, x, b, rounds=3)
            moved = {  # bytes read + written
                "copy": 2 * nbytes,
                "softargmax": 2 * nbytes,
                "jax.nn.softmax": 2 * nbytes,
                "logsumexp": nbytes,
                "jax.nn.logsumexp": nbytes,
            }
            copy_bw = moved["copy"] / t["copy"] / 1e9
            for name in ["softargmax", "logsumexp"]:
                ref = "jax.nn.softmax" if name == "softargmax" else "jax.nn.logsumexp"
                rows.append(
                    {
                        "op": name,
                        "shape": f"{shape[0]}x{shape[1]} {jnp.dtype(dtype).name}",
                        "GB/s": moved[name] / t[name] / 1e9,
                        "copy GB/s": copy_bw,
                        "fraction of copy": (moved[name] / t[name] / 1e9) / copy_bw,
                        "ratio to jax.nn": t[name] / t[ref],
                    }
                )
    print(table(rows, ["op", "shape", "GB/s", "copy GB/s", "fraction of copy", "ratio to jax.nn"]))
    return rows


def matmuls(quick: bool) -> list[dict]:
    rows = []
    rng = np.random.default_rng(1)
    for n in [512] if quick else [1024, 4096]:
        a = jnp.asarray(rng.standard_normal((n, n)), jnp.float32)
        c = jnp.asarray(rng.standard_normal((n, n)), jnp.float32)
        fns = {
            "A @ B": jax.jit(lambda a, c: a @ c),
            "LogSemiring(1)": jax.jit(lambda a, c: LogSemiring(1.0).matmul(a, c)),
            "LogSemiring(100)": jax.jit(lambda a, c: LogSemiring(100.0).matmul(a, c)),
            "MaxPlus": jax.jit(lambda a, c: MaxPlus().matmul(a, c)),
        }
        t = interleaved_times(fns, a, c, rounds=3)
        for name in list(fns)[1:]:
            rows.append(
                {
                    "matmul": name,
                    "n": n,
                    "ms": 1e3 * t[name],
                    "ratio to A @ B": t[name] / t["A @ B"],
                }
            )
    print(table(rows, ["matmul", "n", "ms", "ratio to A @ B"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    device = jax.devices()[0]
    print(f"{datetime.date.today()}  jax {jax.__version__}  device: {device.device_kind}")
    throughput(args.quick)
    print()
    matmuls(args.quick)


if __name__ == "__main__":
    main()
