"""The private core the public modules share: argument checks, the compute dtype, β per slice,
and the kernel's shared arithmetic (the extreme, the exact exponents, counts).

Public functions validate their arguments once, here, and then call private functions that trust
their inputs. Shapes may be symbolic (``jax.export`` shape polymorphism): nothing here compares a
dimension with a number except for equality, which is decided symbolically.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

Axis = int | Sequence[int] | None

_INF = float("inf")


def debug_checked(fn: Callable) -> Callable:
    """Under ``jax_debug_nans`` or ``jax_debug_infs``, ``fn`` runs as one compiled computation.

    With a debug flag on, JAX checks the output of every compiled computation, and, run
    eagerly, of every operation. Like ``jax.nn``'s functions (which are jitted), each public
    function is then checked on its outputs only: its internals may use infinities (the
    identities of max and of the tropical semirings, saturating arithmetic) without tripping
    the flag, and finite input gives no error. NaN constants are never used, so
    ``jax_debug_nans`` stays silent on finite input also under ``jax.disable_jit()``.

    Array arguments are traced; everything else (Python numbers, axes, callables) is static,
    so that the argument checks on static values still raise. Without a flag: ``fn`` itself.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not (jax.config.jax_debug_nans or jax.config.jax_debug_infs):
            return fn(*args, **kwargs)
        leaves, tree = jax.tree.flatten((args, kwargs))
        traced = [i for i, x in enumerate(leaves) if isinstance(x, jax.Array | np.ndarray)]

        def call(*values):
            full = list(leaves)
            for i, v in zip(traced, values, strict=True):
                full[i] = v
            a, k = jax.tree.unflatten(tree, full)
            return fn(*a, **k)

        return jax.jit(call)(*(leaves[i] for i in traced))

    return wrapper


def normalize_axis(axis: Axis, ndim: int, name: str = "axis") -> tuple[int, ...]:
    """Turns ``axis`` (an int, a sequence of ints or None) into a sorted tuple of non-negative ints.

    Raises:
      TypeError: if ``axis`` is not an int, a sequence of ints or None.
      ValueError: if an axis is out of range for ``ndim`` dimensions or repeated.
    """
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, bool) or not isinstance(axis, int | Sequence | np.integer):
        raise TypeError(f"{name} must be an int, a tuple of ints or None, got {axis!r}")
    items = (axis,) if not isinstance(axis, Sequence) else tuple(axis)
    out = []
    for a in items:
        if isinstance(a, bool):
            raise TypeError(f"{name} must be an int, a tuple of ints or None, got {axis!r}")
        try:
            a = operator.index(a)
        except TypeError:
            raise TypeError(
                f"{name} must be an int, a tuple of ints or None, got {axis!r}"
            ) from None
        if not -ndim <= a < ndim:
            raise ValueError(f"{name}={axis!r} is out of range for an array with {ndim} dimensions")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}={axis!r} repeats an axis")
    return tuple(sorted(out))


def compute_dtype(dtype) -> jnp.dtype:
    """The one dtype rule: what an input of ``dtype`` is computed in.

    Floating inputs compute in their own precision, except 16-bit ones, which accumulate in
    float32 (and are returned in their own dtype); integers and booleans promote as JAX's
    ``jnp.exp`` promotes them (:func:`inexact`).
    """
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = inexact(dtype)
    return jnp.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else dtype


def inexact(dtype) -> jnp.dtype:
    """The floating dtype JAX computes ``jnp.exp`` of ``dtype`` in (int32 → float32, int64 →
    float64, booleans → float32): integer input follows JAX's own rule."""
    return jnp.dtype(jax.eval_shape(jnp.exp, jax.ShapeDtypeStruct((), dtype)).dtype)


def as_real(x: ArrayLike, name: str) -> tuple[jax.Array, jnp.dtype]:
    """``x`` as a floating array in its own precision, and the dtype to compute in.

    Integers and booleans promote as in :func:`inexact`; 16-bit floats are kept (so that the
    conversion fuses into the first pass over them) and compute in float32; complex input raises.
    """
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {x.dtype}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(inexact(x.dtype))
    return x, compute_dtype(x.dtype)


def real_array(x: ArrayLike, name: str) -> jax.Array:
    """``x`` as a real floating array in its own precision (integers promote; complex raises)."""
    return as_real(x, name)[0]


def reduced_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with the reduced ``axes`` kept as size 1 (numpy's ``keepdims=True`` shape)."""
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether ``shape`` broadcasts to exactly ``target`` (symbolic dimensions compare equal only
    to themselves)."""
    if len(shape) > len(target):
        return False
    tail = target[len(target) - len(shape) :]
    return all(
        (isinstance(d, int) and d == 1) or d is t or d == t
        for d, t in zip(shape, tail, strict=True)
    )


def as_beta(
    beta: ArrayLike, shape: tuple[int, ...], axes: tuple[int, ...], dtype, name: str = "beta"
) -> jax.Array:
    """Casts ``beta`` to ``dtype`` and gives it the rank of ``shape``, ready to broadcast.

    ``beta`` must be a scalar or broadcastable to the reduced shape (the reduced axes kept as size
    1): one inverse temperature per slice.
    """
    beta = jnp.asarray(beta)
    if jnp.issubdtype(beta.dtype, jnp.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {beta.dtype}")
    beta = beta.astype(dtype)
    if beta.ndim == 0:
        return beta
    target = reduced_shape(shape, axes)
    if beta.ndim > len(shape):
        raise ValueError(
            f"{name} of shape {beta.shape} has more dimensions than the input of shape {shape}"
        )
    if not broadcasts_to(beta.shape, target):
        raise ValueError(
            f"{name} of shape {beta.shape} does not broadcast to {target}, the input shape "
            f"{shape} with the reduced axes {axes} kept"
        )
    return beta.reshape((1,) * (len(shape) - beta.ndim) + beta.shape)


def as_mask(
    where: ArrayLike | None, shape: tuple[int, ...], name: str = "where"
) -> jax.Array | None:
    """``where`` as a boolean array broadcast to ``shape`` (or None when no mask is given)."""
    if where is None:
        return None
    where = jnp.asarray(where)
    if where.dtype != jnp.bool_:
        raise TypeError(f"{name} must be a boolean array, got dtype {where.dtype}")
    if not broadcasts_to(where.shape, tuple(shape)):
        raise ValueError(f"{name} of shape {where.shape} does not broadcast to {shape}")
    return jnp.broadcast_to(where, shape)


def nan_from(x: jax.Array, out: jax.Array, axes: tuple[int, ...] = ()) -> jax.Array:
    """``out``, NaN where ``x`` is NaN (on the slices over ``axes`` where ``x`` holds one).

    The NaN is taken from ``x`` itself, never from a NaN constant: under ``jax_debug_nans`` an
    eager run checks every operation, and finite input must compute no NaN at all.
    """
    if axes:
        x = jnp.sum(jnp.where(jnp.isnan(x), x, 0), axis=axes, keepdims=True)
    return jnp.where(jnp.isnan(x), x.astype(out.dtype), out)


def nan_max(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """The maximum over ``axes`` (kept as size 1; −inf when empty), NaN where the slice holds one.

    XLA's CPU reductions may skip NaN on large arrays, so the propagation is made explicit.
    """
    return nan_from(x, jnp.max(x, axis=axes, keepdims=True, initial=-_INF), axes)


def nan_min(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """The minimum over ``axes``, NaN where the slice holds one (see :func:`nan_max`)."""
    return -nan_max(-x, axes)


def squeeze(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """Removes the size-1 reduced ``axes``."""
    return lax.squeeze(x, axes)


def prepare(x: ArrayLike, beta: ArrayLike, axis: Axis, where: ArrayLike | None, name: str):
    """The common argument handling of the β family.

    Returns ``(x, beta, mask, axes, dtype)``: ``x`` as a real floating array in its own precision
    (16-bit kept, so that the upcast can fuse into the first pass), β in the dtype to compute in
    and shaped per slice, the mask (or None), the reduced axes and the output dtype.
    """
    x, compute = as_real(x, name)
    axes = normalize_axis(axis, x.ndim)
    beta = as_beta(beta, x.shape, axes, compute)
    mask = as_mask(where, x.shape)
    return x, beta, mask, axes, x.dtype


def finish(x: jax.Array, axes: tuple[int, ...], keepdims: bool, dtype) -> jax.Array:
    """A reduction's result: the reduced axes dropped unless ``keepdims``, cast to ``dtype``."""
    return (x if keepdims else squeeze(x, axes)).astype(dtype)


# ----------------------------------------------------------------------------------------------
# The kernel's shared arithmetic. Shapes: z (...), beta broadcastable to z with the reduced axes
# kept, mask like z or None; every reduction keeps its axes.


def extreme(z: jax.Array, beta: jax.Array, mask: jax.Array | None, axes) -> jax.Array:
    """M: the maximum of the live entries where β ≥ 0, their minimum where β < 0 (no gradient).

    The maximum of an all-masked slice is −inf (+inf for the minimum). XLA's CPU reductions may
    skip a NaN: callers propagate it through ``z − M`` instead.
    """
    # One reduction, min z = −max(−z): a single pass that XLA fuses with what follows.
    sign = jnp.where(beta < 0, -1.0, 1.0).astype(beta.dtype)
    signed = sign * z.astype(beta.dtype)
    if mask is not None:
        signed = jnp.where(mask, signed, -_INF)
    return lax.stop_gradient(sign * jnp.max(signed, axis=axes, keepdims=True, initial=-_INF))


def logits(z: jax.Array, beta: jax.Array, mask: jax.Array | None, axes):
    """(y, M): the exponents y = β(z − M) ≤ 0 of the kernel, with the limits spelled out.

    The difference comes first, so that β·z is never formed and differenced.
    Entries equal to M get exactly 0, so ties, +inf entries and all-(−inf) slices split the mass
    equally even at |β| = ∞; every live entry gets 0 at β = 0 (uniform); masked entries get −inf.
    A NaN entry gets NaN (also at β = 0), which poisons its slice's sum.
    """
    z = z.astype(beta.dtype)
    m = extreme(z, beta, mask, axes)
    # A spread beyond the largest float overflows z − M: then 2β·(z/2 − M/2), finite for small β.
    overflow = jnp.isinf(z - m) & jnp.isfinite(z)
    scale = jnp.where(overflow, 2 * beta, beta)
    diff = jnp.where(overflow, z / 2 - m / 2, z - m)
    y = jnp.where(((z == m) | (beta == 0)) & ~jnp.isnan(z), 0.0, scale * diff)
    if mask is not None:
        y = jnp.where(mask, y, -_INF)
    return y, m


def count(z: jax.Array, mask: jax.Array | None, axes) -> jax.Array:
    """The number of live entries per slice (kept axes), in the dtype of ``z``."""
    if mask is None:
        return jnp.asarray(math.prod(z.shape[a] for a in axes), z.dtype)
    return jnp.sum(mask, axis=axes, keepdims=True).astype(z.dtype)


def masked_mean(z: jax.Array, mask: jax.Array | None, axes) -> jax.Array:
    """The mean of the live entries per slice (NaN for a slice without any)."""
    live = z if mask is None else jnp.where(mask, z, 0.0)
    return jnp.sum(live, axis=axes, keepdims=True) / count(z, mask, axes)


def minus(z: jax.Array, m: jax.Array) -> jax.Array:
    """z − m, with 0 where z = m = ±inf; differentiable in z wherever m is finite."""
    return jnp.where(jnp.isfinite(m), z - m, jnp.where(z == m, 0.0, z - m))


def weighted(p: jax.Array, x: jax.Array, axes) -> jax.Array:
    """⟨p, x⟩ per slice with 0·x := 0 where p = 0 (x may be infinite there)."""
    live = p > 0
    return jnp.sum(jnp.where(live, p * jnp.where(live, x, 0.0), 0.0), axis=axes, keepdims=True)


def centred(z: jax.Array, beta: jax.Array, mask: jax.Array | None, axes, p: jax.Array):
    """z − ⟨p, z⟩, computed as d − ⟨p, d⟩ with d = z − M, finite wherever z is; and p > 0."""
    z = z.astype(beta.dtype)
    d = minus(z, extreme(z, beta, mask, axes))
    return d - weighted(p, d, axes), p > 0


def finite_beta(beta: jax.Array) -> jax.Array:
    """β where finite, 0 at ±inf: the slope of σ in z vanishes in the one-hot limit."""
    return jnp.where(jnp.isinf(beta), 0.0, beta)


def explicitly_sharded(x: jax.Array, axes=None) -> bool:
    """Whether ``x`` (or its ``axes``) is split over an explicit mesh axis: its type then carries
    the sharding, and slicing or looping along such an axis needs care."""
    spec = getattr(getattr(jax.typeof(x), "sharding", None), "spec", None) or ()
    axes = range(len(spec)) if axes is None else axes
    return any(spec[a] is not None for a in axes if a < len(spec))


def static_size(shape, axes) -> int | None:
    """The number of entries per slice when the reduced axes are static, else None (symbolic)."""
    dims = [shape[a] for a in axes]
    return math.prod(dims) if all(isinstance(d, int) for d in dims) else None
