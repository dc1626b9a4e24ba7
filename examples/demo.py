"""``make demo``: the live tour of the β family, then the annealing example, figures in one folder.

Run with ``python -m examples.demo --out out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from examples import deterministic_annealing, tour


def main(out_dir: str | Path = "out", steps: int = 3000) -> None:
    out = Path(out_dir).resolve()
    print("softjax demo: every function takes the inverse temperature beta as a JAX value.\n")
    tour.main(out)
    print("\n== Annealing beta with an optax optimiser: deterministic-annealing clustering ==")
    deterministic_annealing.main(out, steps=steps)
    print(f"\nFigures are in {out}/")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="out", help="folder for the figures")
    parser.add_argument("--steps", type=int, default=3000, help="annealing steps")
    args = parser.parse_args()
    main(args.out, args.steps)
