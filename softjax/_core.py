"""The private core the public modules share: argument checks, the compute dtype, β per slice."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

Axis = int | Sequence[int] | None


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


def as_float(x: ArrayLike, name: str) -> tuple[jax.Array, jnp.dtype]:
    """Converts ``x`` to its computation dtype and returns it with the dtype of the result.

    Integers and booleans promote to the default float dtype; 16-bit floats compute in float32 and
    return their own dtype; complex input is rejected.
    """
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {x.dtype}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    out_dtype = x.dtype
    if jnp.finfo(x.dtype).bits < 32:
        x = x.astype(jnp.float32)
    return x, out_dtype


def as_real(x: ArrayLike, name: str) -> tuple[jax.Array, jnp.dtype]:
    """``x`` as a floating array in its own precision, and the dtype to compute in.

    Integers and booleans promote to the default float dtype; 16-bit floats are kept (so that the
    conversion fuses into the first pass over them) and compute in float32.
    """
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {x.dtype}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    compute = jnp.float32 if jnp.finfo(x.dtype).bits < 32 else x.dtype
    return x, jnp.dtype(compute)


def real_array(x: ArrayLike, name: str) -> jax.Array:
    """``x`` as a real floating array in its own precision (integers promote; complex raises)."""
    return as_real(x, name)[0]


def reduced_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with the reduced ``axes`` kept as size 1 (numpy's ``keepdims=True`` shape)."""
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


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
    padded = (1,) * (len(shape) - beta.ndim) + beta.shape
    try:
        ok = np.broadcast_shapes(padded, target) == target
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name} of shape {beta.shape} does not broadcast to {target}, the input shape "
            f"{shape} with the reduced axes {axes} kept"
        )
    return beta.reshape(padded)


def as_mask(
    where: ArrayLike | None, shape: tuple[int, ...], name: str = "where"
) -> jax.Array | None:
    """``where`` as a boolean array broadcast to ``shape`` (or None when no mask is given)."""
    if where is None:
        return None
    where = jnp.asarray(where)
    if where.dtype != jnp.bool_:
        raise TypeError(f"{name} must be a boolean array, got dtype {where.dtype}")
    if where.ndim > len(shape):
        raise ValueError(f"{name} of shape {where.shape} does not broadcast to {shape}")
    padded = (1,) * (len(shape) - where.ndim) + where.shape
    try:
        np.broadcast_shapes(padded, shape)
    except ValueError:
        raise ValueError(f"{name} of shape {where.shape} does not broadcast to {shape}") from None
    if np.broadcast_shapes(padded, shape) != tuple(shape):
        raise ValueError(f"{name} of shape {where.shape} does not broadcast to {shape}")
    return jnp.broadcast_to(where.reshape(padded), shape)


def sum_keep(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """Sum over ``axes`` keeping them as size 1."""
    return jnp.sum(x, axis=axes, keepdims=True)


def nan_max(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """The maximum over ``axes`` (kept as size 1; −inf when empty), NaN where the slice holds one.

    XLA's CPU reductions may skip NaN on large arrays, so the propagation is made explicit.
    """
    top = jnp.max(x, axis=axes, keepdims=True, initial=-float("inf"))
    return jnp.where(jnp.any(jnp.isnan(x), axis=axes, keepdims=True), jnp.nan, top)


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
