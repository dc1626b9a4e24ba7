"""Engines: faster ways to compute a definition on one platform.

A definition is the exact, readable implementation of a concept and lives in the concept's module;
every platform can lower it. An engine computes the same thing faster on one platform (XLA CPU
fusion tricks, BLAS with an exact repair). It takes the same arguments as its definition, is chosen
with :func:`on_cpu` (``jax.lax.platform_dependent``) only where it was measured faster, and is
tested equal to the definition on one shared battery of edge cases through the public API.

Engines may compute a NaN or an infinity inside (a sentinel that sends a rare slice to the
definition, a padding term). Under ``jax_debug_nans`` or ``jax_debug_infs``, which check every
operation when run eagerly, the definitions are used everywhere: they compute neither on finite
input.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from jax import lax


def on_cpu(engine: Callable, definition: Callable, *args):
    """``engine(*args)`` when the computation runs on CPU, ``definition(*args)`` elsewhere.

    The choice is made when the computation is lowered for a platform (or, for an export to
    several platforms, just before it is compiled): no run-time branch, and a lowering for a GPU
    or TPU never carries the CPU engine. Under the debug flags, always ``definition(*args)``.
    """
    if jax.config.jax_debug_nans or jax.config.jax_debug_infs:
        return definition(*args)
    return lax.platform_dependent(*args, cpu=engine, default=definition)
