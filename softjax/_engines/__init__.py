"""Engines: faster ways to compute a definition on one platform.

A definition is the exact, readable implementation of a concept and lives in the concept's module;
every platform can lower it. An engine computes the same thing faster on one platform (XLA CPU
fusion tricks, BLAS with an exact repair). It takes the same arguments as its definition, is chosen
with :func:`on_cpu` (``jax.lax.platform_dependent``) only where it was measured faster, and is
tested equal to the definition on one shared battery of edge cases through the public API.
"""

from __future__ import annotations

from collections.abc import Callable

from jax import lax


def on_cpu(engine: Callable, definition: Callable, *args):
    """``engine(*args)`` when the computation runs on CPU, ``definition(*args)`` elsewhere.

    The choice is made when the computation is lowered for a platform (or, for an export to
    several platforms, just before it is compiled): no run-time branch, and a lowering for a GPU
    or TPU never carries the CPU engine.
    """
    return lax.platform_dependent(*args, cpu=engine, default=definition)
