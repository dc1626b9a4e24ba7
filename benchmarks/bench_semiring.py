"""Semiring matrix products at n = 512, float32: ratios against BLAS, the broadcast form and
``tropical_gemm``, all measured in one process; and the temporary memory of the gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._timing import best_time, median_ratio, paired_times, table
from softjax.semiring import LogSemiring, MaxPlus, MinPlus, _log_matmul_cpu, _log_matmul_definition


def _temp_mib(fn, *args) -> float:
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled.memory_analysis().temp_size_in_bytes / 2**20


def run(quick: bool = False) -> list[dict]:
    """Times the products, prints a table of ratios and returns its rows."""
    n = 256 if quick else 512
    rounds = 3 if quick else 11
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((n, n)).astype(np.float32)
    b_np = rng.standard_normal((n, n)).astype(np.float32)
    a, b = jnp.asarray(a_np), jnp.asarray(b_np)

    log_mm = jax.jit(lambda a, b, beta: LogSemiring(beta).matmul(a, b))
    blas = jax.jit(lambda a, b: a @ b)
    broadcast = jax.jit(lambda a, b: jax.nn.logsumexp(a[:, :, None] + b[None], axis=1))
    rows = []

    def beta_fn(beta):
        beta = jnp.float32(beta)
        return lambda a, b: log_mm(a, b, beta)

    t = paired_times({"blas": blas, "log1": beta_fn(1.0)}, a, b, rounds=rounds)
    t_bcast = best_time(broadcast, a, b, repeat=1 if quick else 2)
    rows.append(
        {
            "case": "LogSemiring(1).matmul / f32 A @ B",
            "ratio": median_ratio(t, "log1", "blas"),
            "target": "<= 3",
            "ms": 1e3 * min(t["log1"]),
        }
    )
    rows.append(
        {
            "case": "broadcast logsumexp / LogSemiring(1).matmul",
            "ratio": t_bcast / min(t["log1"]),
            "target": ">= 50",
            "ms": 1e3 * t_bcast,
        }
    )
    betas = [0.01, 10.0, 30.0, 50.0, 100.0, 1000.0, float("inf"), -1.0, -100.0]
    fns = {"log1": beta_fn(1.0)} | {str(beta): beta_fn(beta) for beta in betas}
    tb = paired_times(fns, a, b, rounds=max(3, rounds // 2))
    for beta in betas:
        rows.append(
            {
                "case": f"LogSemiring({beta:g}).matmul / LogSemiring(1).matmul",
                "ratio": median_ratio(tb, str(beta), "log1"),
                "target": "<= 3 (beta = 100)",
                "ms": 1e3 * min(tb[str(beta)]),
            }
        )

    maxplus = jax.jit(MaxPlus().matmul)
    minplus = jax.jit(MinPlus().matmul)
    fns = {"maxplus": maxplus, "minplus": minplus}
    try:
        import tropical_gemm

        fns["tg_max"] = lambda a, b: tropical_gemm.maxplus_matmul_2d(a_np, b_np)
        fns["tg_min"] = lambda a, b: tropical_gemm.minplus_matmul_2d(a_np, b_np)
    except ImportError:  # an optional test dependency
        pass
    tt = paired_times(fns, a, b, rounds=rounds)
    if "tg_max" in tt:
        rows.append(
            {
                "case": "MaxPlus().matmul / tropical_gemm",
                "ratio": median_ratio(tt, "maxplus", "tg_max"),
                "target": "<= 1.5",
                "ms": 1e3 * min(tt["maxplus"]),
            }
        )
        rows.append(
            {
                "case": "MinPlus().matmul / tropical_gemm",
                "ratio": median_ratio(tt, "minplus", "tg_min"),
                "target": "<= 1.5",
                "ms": 1e3 * min(tt["minplus"]),
            }
        )

    grads = {}
    for beta in [1.0, 100.0, float("inf")]:
        b32 = jnp.float32(beta)

        def loss(a, b, beta=b32):
            return LogSemiring(beta).matmul(a, b).sum()

        grad = jax.grad(loss, argnums=(0, 1))
        grads[beta] = jax.jit(grad)
        mib = _temp_mib(grad, a, b)
        t_grad = best_time(grads[beta], a, b, repeat=1 if quick else 3)
        rows.append(
            {
                "case": f"grad LogSemiring({beta:g}).matmul: temp MiB",
                "ratio": mib,
                "target": "<= 16 (n = 512)",
                "ms": 1e3 * t_grad,
            }
        )
    # Forward and backward together, against the same at β = 1.
    tg = paired_times({str(k): f for k, f in grads.items()}, a, b, rounds=max(3, rounds // 2))
    for beta in [100.0, float("inf")]:
        rows.append(
            {
                "case": f"grad LogSemiring({beta:g}) / grad LogSemiring(1)",
                "ratio": median_ratio(tg, str(beta), "1.0"),
                "target": "-",
                "ms": 1e3 * min(tg[str(beta)]),
            }
        )
    mib = _temp_mib(
        jax.grad(lambda a, b, beta: LogSemiring(beta).matmul(a, b).sum(), argnums=(0, 1, 2)),
        a,
        b,
        jnp.float32(1.0),
    )
    rows.append(
        {
            "case": "grad in (A, B, beta), traced beta: temp MiB",
            "ratio": mib,
            "target": "<= 16 (n = 512)",
        }
    )
    mib = _temp_mib(jax.grad(lambda a, b: MaxPlus().matmul(a, b).sum(), argnums=(0, 1)), a, b)
    rows.append(
        {"case": "grad MaxPlus().matmul: temp MiB", "ratio": mib, "target": "<= 16 (n = 512)"}
    )
    mib = _temp_mib(
        jax.grad(lambda a, b: jax.nn.logsumexp(a[:, :, None] + b[None], axis=1).sum(), (0, 1)),
        a,
        b,
    )
    rows.append({"case": "grad of the broadcast form: temp MiB", "ratio": mib, "target": "-"})

    rows += crossover(quick)

    print(f"n = {n}, float32, {jax.devices()[0].platform}")
    print(table(rows, ["case", "ratio", "target", "ms"]))
    return rows


def crossover(quick: bool = False) -> list[dict]:
    """The definition against the CPU engine, value and gradient at β = 1, on (s, s) @ (s, s):
    where the engine starts to pay (``_ENGINE_MIN_TERMS`` in softjax/semiring.py)."""
    rows = []
    rng = np.random.default_rng(1)
    for s in (16, 32) if quick else (16, 32, 48, 64, 128):
        a = jnp.asarray(rng.standard_normal((1, s, s)), jnp.float32)
        b = jnp.asarray(rng.standard_normal((1, s, s)), jnp.float32)
        beta = jnp.float32(1.0)
        fns = {"definition": _log_matmul_definition, "engine": _log_matmul_cpu}
        value = {k: jax.jit(f) for k, f in fns.items()}
        grad = {
            k + " grad": jax.jit(jax.grad(lambda a, b, beta, f=f: f(a, b, beta).sum(), (0, 1, 2)))
            for k, f in fns.items()
        }
        t = paired_times(value | grad, a, b, beta, rounds=3 if quick else 7)
        for suffix in ("", " grad"):
            rows.append(
                {
                    "case": f"definition / engine{suffix}, {s}x{s}x{s}",
                    "ratio": median_ratio(t, "definition" + suffix, "engine" + suffix),
                    "target": "-",
                    "ms": 1e3 * min(t["engine" + suffix]),
                }
            )
    return rows


if __name__ == "__main__":
    run()
