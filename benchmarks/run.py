"""Runs every benchmark in one process and prints its table: ``python -m benchmarks.run``.

Figures are ratios against the alternative measured in the same process (these machines are
noisy; absolute times are printed only for context). ``--quick`` runs a reduced set.
"""

from __future__ import annotations

import argparse
import importlib
import platform

import jax

MODULES = [
    "benchmarks.bench_smooth",
    "benchmarks.bench_semiring",
    "benchmarks.bench_dp",
    "benchmarks.bench_order",
    "benchmarks.bench_sparse",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a reduced, faster set")
    parser.add_argument("--only", default=None, help="run only the module with this suffix")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {platform.processor() or ''}")
    for name in MODULES:
        if args.only and not name.endswith(args.only):
            continue
        print()
        importlib.import_module(name).run(quick=args.quick)


if __name__ == "__main__":
    main()
