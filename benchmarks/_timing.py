"""Timing helpers shared by the benchmarks: ratios measured in one process."""

from __future__ import annotations

import time
from collections.abc import Callable

import jax


def _per_call(fn: Callable, args, number: int) -> float:
    """Wall time in seconds of one call, from ``number`` calls blocked on the last result."""
    t0 = time.perf_counter()
    for _ in range(number):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / number


def _calls_for(fn: Callable, args, min_time: float, most: int) -> int:
    """Warms ``fn`` up and returns how many calls (a power of two) take about ``min_time``."""
    jax.block_until_ready(fn(*args))
    number = 1
    while number * _per_call(fn, args, number) < min_time and number < most:
        number *= 2
    return number


def best_time(
    fn: Callable, *args, repeat: int = 7, number: int = 0, min_time: float = 0.2
) -> float:
    """Best-of-``repeat`` wall time in seconds of one call of a compiled ``fn(*args)``.

    ``fn`` is called once to compile and warm up; each timing then runs ``number`` calls (chosen so
    that one timing lasts about ``min_time`` seconds when ``number`` is 0) and blocks on the result.
    """
    if number <= 0:
        number = _calls_for(fn, args, min_time, 1 << 16)
    else:
        jax.block_until_ready(fn(*args))
    return min(_per_call(fn, args, number) for _ in range(repeat))


def interleaved_times(fns: dict[str, Callable], *args, rounds: int = 5, **kw) -> dict[str, float]:
    """Best time of each function, alternating between them so drift in machine load is shared."""
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], best_time(fn, *args, repeat=1, **kw))
    return best


def paired_times(
    fns: dict[str, Callable], *args, rounds: int = 15, min_time: float = 0.02
) -> dict[str, list[float]]:
    """Per-round times of each function, the functions timed back to back in every round.

    The order alternates between rounds. A ratio of two functions is then best taken as the median
    over rounds of their per-round ratio (:func:`median_ratio`), which cancels the slow drifts and
    bursts of load on a shared machine better than a ratio of best times.
    """
    numbers = {name: _calls_for(fn, args, min_time, 1 << 12) for name, fn in fns.items()}
    times = {name: [] for name in fns}
    order = list(fns)
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            times[name].append(_per_call(fns[name], args, numbers[name]))
    return times


def median_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """The median over rounds of ``times[num] / times[den]`` (from :func:`paired_times`)."""
    ratios = sorted(a / b for a, b in zip(times[num], times[den], strict=True))
    mid = len(ratios) // 2
    return ratios[mid] if len(ratios) % 2 else 0.5 * (ratios[mid - 1] + ratios[mid])


def table(rows: list[dict], columns: list[str]) -> str:
    """A plain-text table (GitHub markdown) of ``rows`` with the given ``columns``."""

    def fmt(v):
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [
        "| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    return "\n".join(lines)
