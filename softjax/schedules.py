"""Annealing schedules for the inverse temperature β, as optax schedules.

Every function in softjax takes the inverse temperature ``beta`` as an ordinary JAX value: it may
be a Python float, a traced array, a batched array under ``vmap``, or ±∞. The schedules here produce
such values. Because β is data and not a static argument, feeding a new β from a schedule at every
step never recompiles anything::

    beta_fn = softjax.schedules.exponential(0.1, 100.0, transition_steps=10_000)
    p = softjax.softargmax(z, beta=beta_fn(step))   # same compiled code at every step

Two kinds of schedule are provided, both following optax's conventions so that they drop into
optax code unchanged:

- **Stateless** schedules (:func:`constant`, :func:`linear`, :func:`exponential`, :func:`cosine`,
  :func:`polynomial`, :func:`logarithmic`, :func:`gumbel_softmax`) are factories returning an
  ``optax.Schedule``: a function from an integer step ``count`` (starting at 0) to β. They work
  under ``jit`` and ``vmap`` (``count`` may be a traced or batched array) and compose with
  ``optax.join_schedules`` and ``optax.inject_hyperparams``. ``count`` may have any integer
  dtype, signed or unsigned, of any width (the steps since ``transition_begin`` are counted
  without wrapping around), or a floating dtype (a NaN count gives a NaN β).
  :func:`from_temperature`, :func:`to_temperature` and :func:`clip` transform schedules.
- **Stateful** schedules (:func:`entropy_target`, :func:`on_plateau`) follow
  ``optax.schedules.StatefulSchedule``: ``init()`` returns a ``NamedTuple`` state,
  ``update(state, **extra_args)`` advances it from a measurement (an entropy, a loss) and
  ``schedule(state)`` reads β. Passed to ``optax.inject_hyperparams``, they show their current β in
  ``state.hyperparams`` and are updated from the extra arguments given to the optimiser's
  ``update``.

:func:`with_beta` wraps an optax optimiser so that its state carries the β of the coming update, for
any of the schedules above or a plain number; :func:`beta_of` reads it from the optimiser state.

Static arguments are checked when the schedule is built: a wrong one raises ``ValueError`` or
``TypeError`` naming the argument, what was expected and what arrived.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

__all__ = [
    "EntropyTargetState",
    "OnPlateauState",
    "WithBetaState",
    "beta_of",
    "clip",
    "constant",
    "cosine",
    "entropy_target",
    "exponential",
    "from_temperature",
    "gumbel_softmax",
    "linear",
    "logarithmic",
    "on_plateau",
    "polynomial",
    "to_temperature",
    "with_beta",
]


# --------------------------------------------------------------------------------------------------
# Argument checks

_INT32_MAX = int(np.iinfo(np.int32).max)


def _default_float() -> np.dtype:
    """The default float dtype: float32, or float64 with x64 enabled."""
    return jnp.zeros((), dtype=float).dtype


def _real(name: str, value, *, finite: bool = True) -> float:
    """Returns ``value`` as a Python float, or raises naming ``name`` if it is not a real number.

    A finite value whose magnitude exceeds the largest finite number of the default float dtype is
    rejected: it would turn into ``inf`` inside the schedule.
    """
    is_real_array = (
        isinstance(value, np.ndarray | jax.Array)
        and value.shape == ()
        and (jnp.issubdtype(value.dtype, jnp.integer) or jnp.issubdtype(value.dtype, jnp.floating))
    )
    if isinstance(value, bool | np.bool_) or not (isinstance(value, numbers.Real) or is_real_array):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    out = float(value)
    if math.isnan(out):
        raise ValueError(f"{name} must not be NaN, got {out}")
    if finite and math.isinf(out):
        raise ValueError(f"{name} must be finite, got {out}")
    dtype = _default_float()
    largest = float(jnp.finfo(dtype).max)
    if math.isfinite(out) and abs(out) > largest:
        raise ValueError(
            f"{name} must be representable in the default float dtype {dtype} "
            f"(|{name}| <= {largest:.6g}; enable jax_enable_x64 for float64), got {out}"
        )
    return out


def _normal(name: str, value: float) -> float:
    """Raises unless the nonzero ``value`` is a normal number of the default float dtype.

    XLA may flush subnormal numbers to zero, which would turn a nonzero β, temperature or scale
    into zero.
    """
    dtype = _default_float()
    tiny = float(jnp.finfo(dtype).tiny)
    if abs(value) < tiny:
        raise ValueError(
            f"{name} must be of magnitude >= {tiny:.6g}, the smallest normal number of the "
            f"default float dtype {dtype} (enable jax_enable_x64 for float64), got {value}"
        )
    return value


def _int(name: str, value) -> int:
    """Returns ``value`` as a Python int, or raises naming ``name`` if it is not an integer.

    The value must fit in int32, the dtype of optax step counts.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    out = int(value)
    if out > _INT32_MAX:
        raise ValueError(
            f"{name} must be <= {_INT32_MAX} (the largest int32, the dtype of step counts), "
            f"got {out}"
        )
    return out


def _steps(transition_steps, transition_begin) -> tuple[int, int]:
    steps = _int("transition_steps", transition_steps)
    begin = _int("transition_begin", transition_begin)
    if steps <= 0:
        raise ValueError(f"transition_steps must be > 0, got {steps}")
    if begin < 0:
        raise ValueError(f"transition_begin must be >= 0, got {begin}")
    return steps, begin


def _callable(name: str, schedule) -> None:
    if not callable(schedule):
        raise TypeError(f"{name} must be a callable schedule count -> value, got {schedule!r}")


def _float(x: ArrayLike) -> jax.Array:
    """``x`` in the default float dtype (float32, or float64 with x64 enabled)."""
    return jnp.asarray(x, dtype=float)


def _steps_since(count: ArrayLike, begin: int, cap: int | None = None) -> jax.Array:
    """The steps done since ``begin``, ``clip(count - begin, 0, cap)``, without wrapping.

    An integer ``count`` keeps its dtype (signed or unsigned, any width): the difference is formed
    only where ``count >= begin``, so it cannot wrap around or overflow, and a ``begin`` beyond the
    range of the dtype means no step is done yet. A floating ``count`` is computed in at least the
    default float dtype; a NaN count gives NaN.
    """
    count = jnp.asarray(count)
    dtype = count.dtype
    if jnp.issubdtype(dtype, jnp.integer):
        largest = int(jnp.iinfo(dtype).max)
        if begin > largest:
            return jnp.zeros_like(count)
        begin_in_dtype = jnp.asarray(begin, dtype)
        done = jnp.maximum(count, begin_in_dtype) - begin_in_dtype  # in [0, largest - begin]
        if cap is not None and cap < largest - begin:
            done = jnp.minimum(done, jnp.asarray(cap, dtype))
        return done
    if jnp.issubdtype(dtype, jnp.floating):
        count = count.astype(jnp.promote_types(dtype, _default_float()))
        done = jnp.maximum(count - begin, 0.0)
        return done if cap is None else jnp.minimum(done, cap)
    raise TypeError(f"count must be an integer or floating array, got dtype {dtype}")


def _interpolate(
    init_value: float,
    end_value: float,
    transition_steps: int,
    transition_begin: int,
    weight,
) -> optax.Schedule:
    """A schedule holding ``init_value``, moving along ``weight(frac)`` and holding ``end_value``.

    ``weight`` maps the fraction of the transition done, in [0, 1], to the weight of ``end_value``.
    The endpoints are returned exactly.
    """

    def schedule(count: ArrayLike) -> jax.Array:
        done = _steps_since(count, transition_begin, transition_steps)
        w = weight(_float(done) / transition_steps)
        value = (1.0 - w) * init_value + w * end_value
        value = jnp.where(done <= 0, init_value, value)
        return jnp.where(done >= transition_steps, end_value, value)

    return schedule


# --------------------------------------------------------------------------------------------------
# Stateless schedules


def constant(value: float) -> optax.Schedule:
    r"""A schedule that returns the same β at every step.

    .. math::
        \beta_t = \text{value}

    Args:
      value: the inverse temperature; ``±inf`` is allowed (the hard arg max or arg min).

    Returns:
      A schedule ``count -> β``; the result has the shape of ``count``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax import schedules
      >>> schedule = schedules.constant(2.5)
      >>> print(jnp.round(schedule(jnp.arange(3)), 4))
      [2.5 2.5 2.5]

    References:
      Kirkpatrick, Gelatt & Vecchi, "Optimization by simulated annealing", Science 220 (1983),
      doi:10.1126/science.220.4598.671.
    """
    value = _real("value", value, finite=False)

    def schedule(count: ArrayLike) -> jax.Array:
        return jnp.full(jnp.shape(count), value, dtype=_float(0.0).dtype)

    return schedule


def linear(
    init_value: float,
    end_value: float,
    transition_steps: int,
    transition_begin: int = 0,
) -> optax.Schedule:
    r"""A schedule that moves β linearly from ``init_value`` to ``end_value``.

    With :math:`s = \mathrm{clip}(t - t_0, 0, S) / S` the fraction of the transition done,

    .. math::
        \beta_t = (1 - s)\, \beta_\text{init} + s\, \beta_\text{end}.

    Like ``optax.linear_schedule``: β holds ``init_value`` for ``count < transition_begin`` and
    ``end_value`` from ``count >= transition_begin + transition_steps`` on.

    Args:
      init_value: β at the start; a finite real number.
      end_value: β at the end; a finite real number.
      transition_steps: :math:`S`, the number of steps of the transition; must be > 0.
      transition_begin: :math:`t_0`, the number of steps before the transition starts; must be
        >= 0.

    Returns:
      A schedule ``count -> β``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax import schedules
      >>> schedule = schedules.linear(1.0, 5.0, transition_steps=4)
      >>> print(jnp.round(schedule(jnp.arange(6)), 4))
      [1. 2. 3. 4. 5. 5.]

    References:
      Kirkpatrick, Gelatt & Vecchi, "Optimization by simulated annealing", Science 220 (1983),
      doi:10.1126/science.220.4598.671.
    """
    init_value = _real("init_value", init_value)
    end_value = _real("end_value", end_value)
    transition_steps, transition_begin = _steps(transition_steps, transition_begin)
    return _interpolate(init_value, end_value, transition_steps, transition_begin, lambda s: s)


def exponential(
    init_value: float,
    end_value: float,
    transition_steps: int,
    transition_begin: int = 0,
) -> optax.Schedule:
    r"""A schedule that moves β geometrically from ``init_value`` to ``end_value``.

    With :math:`s = \mathrm{clip}(t - t_0, 0, S) / S` the fraction of the transition done,

    .. math::
        \beta_t = \beta_\text{init} \left(\frac{\beta_\text{end}}{\beta_\text{init}}\right)^{s},

    a straight line in :math:`\log |\beta|`: halfway through the steps β is the geometric mean of
    its endpoints, and each step multiplies β (divides the temperature) by the same factor. This is
    the classic geometric cooling of simulated annealing. Both endpoints must be nonzero and of the
    same sign: a negative pair anneals towards a sharper soft minimum. A decreasing magnitude
    (``|end_value| < |init_value|``) heats up geometrically; equal endpoints give a constant.

    β is computed as :math:`\operatorname{sign}(\beta_\text{init}) \exp\big((1 - s) \log
    |\beta_\text{init}| + s \log |\beta_\text{end}|\big)`, so every value lies between the
    endpoints (it is finite even when their ratio is not representable, e.g. from ``1e-30`` to
    ``1e30`` in float32) and the endpoints are returned exactly.

    Like ``optax.linear_schedule``: β holds ``init_value`` for ``count < transition_begin`` and
    ``end_value`` from ``count >= transition_begin + transition_steps`` on.

    Args:
      init_value: β at the start; finite and nonzero, of magnitude within the normal range of the
        default float dtype (from about ``1.2e-38`` to ``3.4e38`` in float32).
      end_value: β at the end; finite, nonzero, of the sign of ``init_value`` and of magnitude
        within the normal range of the default float dtype.
      transition_steps: :math:`S`, the number of steps of the transition; must be > 0.
      transition_begin: :math:`t_0`, the number of steps before the transition starts; must be
        >= 0.

    Returns:
      A schedule ``count -> β``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax import schedules
      >>> schedule = schedules.exponential(0.1, 1000.0, transition_steps=4)
      >>> print([f"{float(b):.4f}" for b in schedule(jnp.arange(5))])
      ['0.1000', '1.0000', '10.0000', '100.0000', '1000.0000']

    References:
      Kirkpatrick, Gelatt and Vecchi, `Optimization by Simulated Annealing
      <https://doi.org/10.1126/science.220.4598.671>`_, Science 220, 1983.
    """
    init_value = _real("init_value", init_value)
    end_value = _real("end_value", end_value)
    transition_steps, transition_begin = _steps(transition_steps, transition_begin)
    if init_value == 0.0:
        raise ValueError(
            f"init_value must be nonzero for an exponential schedule, got {init_value}"
        )
    if end_value == 0.0 or (end_value > 0.0) != (init_value > 0.0):
        raise ValueError(
            "end_value must be nonzero and of the same sign as init_value for an exponential "
            f"schedule, got init_value={init_value} and end_value={end_value}"
        )
    _normal("init_value", init_value)
    _normal("end_value", end_value)
    sign = math.copysign(1.0, init_value)
    log_init, log_end = math.log(abs(init_value)), math.log(abs(end_value))
    smallest, largest = sorted((abs(init_value), abs(end_value)))

    def schedule(count: ArrayLike) -> jax.Array:
        done = _steps_since(count, transition_begin, transition_steps)
        frac = _float(done) / transition_steps
        # log|β| moves linearly: every intermediate lies between the endpoints, whatever their
        # ratio; the clip removes the rounding of exp at the ends.
        magnitude = jnp.clip(jnp.exp(log_init + frac * (log_end - log_init)), smallest, largest)
        value = jnp.where(done <= 0, init_value, sign * magnitude)
        return jnp.where(done >= transition_steps, end_value, value)

    return schedule


def cosine(
    init_value: float,
    end_value: float,
    transition_steps: int,
    transition_begin: int = 0,
) -> optax.Schedule:
    r"""A schedule that moves β from ``init_value`` to ``end_value`` along half a cosine.

    With :math:`s = \mathrm{clip}(t - t_0, 0, S) / S` the fraction of the transition done,

    .. math::
        \beta_t = \beta_\text{end} + \frac{\beta_\text{init} - \beta_\text{end}}{2}
        \left(1 + \cos \pi s\right).

    β leaves ``init_value`` and arrives at ``end_value`` with zero slope. β holds ``init_value`` for
    ``count < transition_begin`` and ``end_value`` from ``count >= transition_begin +
    transition_steps`` on.

    Args:
      init_value: β at the start; a finite real number.
      end_value: β at the end; a finite real number.
      transition_steps: :math:`S`, the number of steps of the transition; must be > 0.
      transition_begin: :math:`t_0`, the number of steps before the transition starts; must be
        >= 0.

    Returns:
      A schedule ``count -> β``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax import schedules
      >>> schedule = schedules.cosine(1.0, 3.0, transition_steps=4)
      >>> print(jnp.round(schedule(jnp.arange(5)), 4))
      [1. 1.2929 2. 2.7071 3. ]

    References:
      Loshchilov and Hutter, `SGDR: Stochastic Gradient Descent with Warm Restarts
      <https://arxiv.org/abs/1608.03983>`_, ICLR 2017.
    """
    init_value = _real("init_value", init_value)
    end_value = _real("end_value", end_value)
    transition_steps, transition_begin = _steps(transition_steps, transition_begin)
    return _interpolate(
        init_value,
        end_value,
        transition_steps,
        transition_begin,
        lambda s: 0.5 * (1.0 - jnp.cos(jnp.pi * s)),
    )


def polynomial(
    init_value: float,
    end_value: float,
    power: float,
    transition_steps: int,
    transition_begin: int = 0,
) -> optax.Schedule:
    r"""A schedule that moves β from ``init_value`` to ``end_value`` along a power law.

    With :math:`s = \mathrm{clip}(t - t_0, 0, S) / S` the fraction of the transition done,

    .. math::
        \beta_t = \beta_\text{end} + (\beta_\text{init} - \beta_\text{end}) (1 - s)^{p},

    as in ``optax.polynomial_schedule``: ``power=1`` is :func:`linear`, ``power > 1`` moves fast
    first and slowly at the end, ``power < 1`` the opposite. β holds ``init_value`` for
    ``count < transition_begin`` and ``end_value`` from ``count >= transition_begin +
    transition_steps`` on.

    Args:
      init_value: β at the start; a finite real number.
      end_value: β at the end; a finite real number.
      power: :math:`p`, the exponent; finite and > 0.
      transition_steps: :math:`S`, the number of steps of the transition; must be > 0.
      transition_begin: :math:`t_0`, the number of steps before the transition starts; must be
        >= 0.

    Returns:
      A schedule ``count -> β``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax import schedules
      >>> schedule = schedules.polynomial(1.0, 5.0, power=2.0, transition_steps=4)
      >>> print(jnp.round(schedule(jnp.arange(5)), 4))
      [1. 2.75 4. 4.75 5. ]

    References:
      Kirkpatrick, Gelatt & Vecchi, "Optimization by simulated annealing", Science 220 (1983),
      doi:10.1126/science.220.4598.671.
    """
    init_value = _real("init_value", init_value)
    end_value = _real("end_value", end_value)
    power = _real("power", power)
    if power <= 0.0:
        raise ValueError(f"power must be > 0, got {power}")
    transition_steps, transition_begin = _steps(transition_steps, transition_begin)
    return _interpolate(
        init_value,
        end_value,
        transition_steps,
        transition_begin,
        lambda s: 1.0 - jnp.power(1.0 - s, power),
    )


def logarithmic(
    c: float = 1.0,
    *,
    transition_begin: int = 0,
    max_value: float = math.inf,
) -> optax.Schedule:
    r"""The logarithmic cooling schedule of simulated annealing, as β.

    With :math:`t' = \max(t - t_0, 0)`,

    .. math::
        \beta_t = \min\left(\frac{\log(t' + 2)}{c},\ \beta_\text{max}\right),

    i.e. the temperature :math:`T_t = c / \log(t' + 2)`. Hajek (1988) showed that simulated
    annealing with this schedule finds a global minimum with probability tending to one if and
    only if :math:`c` is at least the depth of the deepest local minimum that is not global. β grows
    without bound, but very slowly; ``max_value`` caps it.

    Args:
      c: the cooling constant :math:`c`; finite and > 0 (at least about ``1.3e-37`` in float32,
        so that β stays finite). Larger ``c`` cools more slowly.
      transition_begin: :math:`t_0`, the number of steps during which β holds
        :math:`\log(2) / c` before it starts to grow; must be >= 0.
      max_value: :math:`\beta_\text{max}`, the largest β returned; > 0, ``inf`` (the default) for
        no cap.

    Returns:
      A schedule ``count -> β``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax import schedules
      >>> schedule = schedules.logarithmic(c=1.0, max_value=3.0)
      >>> print(jnp.round(schedule(jnp.array([0, 1, 10, 100])), 4))
      [0.6931 1.0986 2.4849 3.    ]

    References:
      Geman and Geman, `Stochastic Relaxation, Gibbs Distributions, and the Bayesian Restoration of
      Images <https://doi.org/10.1109/TPAMI.1984.4767596>`_, IEEE TPAMI 6(6), 1984.

      Hajek, `Cooling Schedules for Optimal Annealing <https://doi.org/10.1287/moor.13.2.311>`_,
      Mathematics of Operations Research 13(2), 1988.
    """
    c = _real("c", c)
    if c <= 0.0:
        raise ValueError(f"c must be > 0, got {c}")
    # log(t + 2) <= log(2**64) for every count: this keeps β finite in the default float dtype.
    smallest_c = math.log(2.0**64) / float(jnp.finfo(_default_float()).max)
    if c < smallest_c:
        raise ValueError(
            f"c must be >= {smallest_c:.6g} so that log(count + 2) / c is finite in the default "
            f"float dtype {_default_float()} (enable jax_enable_x64 for float64), got {c}"
        )
    transition_begin = _int("transition_begin", transition_begin)
    if transition_begin < 0:
        raise ValueError(f"transition_begin must be >= 0, got {transition_begin}")
    max_value = _real("max_value", max_value, finite=False)
    if max_value <= 0.0:
        raise ValueError(f"max_value must be > 0, got {max_value}")

    def schedule(count: ArrayLike) -> jax.Array:
        t = _float(_steps_since(count, transition_begin))
        return jnp.minimum(jnp.log(t + 2.0) / c, max_value)

    return schedule


def gumbel_softmax(
    *,
    tau0: float = 1.0,
    rate: float = 3e-5,
    tau_min: float = 0.5,
    every: int = 1,
) -> optax.Schedule:
    r"""The temperature annealing of the Gumbel-softmax paper, as β.

    With :math:`t' = N \lfloor \max(t, 0) / N \rfloor` the step rounded down to a multiple of
    ``every``,

    .. math::
        \tau_t = \max\left(\tau_\text{min},\ \tau_0\, e^{-r t'}\right), \qquad
        \beta_t = 1 / \tau_t.

    The temperature decays exponentially from :math:`\tau_0`, is updated every :math:`N` steps
    and never goes below :math:`\tau_\text{min}` (Jang et al. use :math:`\tau_0 = 1`,
    :math:`\tau_\text{min} = 0.5`, :math:`r \in \{10^{-5}, 10^{-4}\}`, :math:`N = 500`).

    Args:
      tau0: :math:`\tau_0`, the initial temperature; finite, > 0 and a normal number of the
        default float dtype.
      rate: :math:`r`, the decay rate per step; finite and >= 0.
      tau_min: :math:`\tau_\text{min}`, the smallest temperature; finite, > 0, <= ``tau0`` and a
        normal number of the default float dtype (so that :math:`1/\tau_\text{min}` is finite).
      every: :math:`N`, the number of steps between updates; an int >= 1.

    Returns:
      A schedule ``count -> β``, from :math:`1/\tau_0` up to :math:`1/\tau_\text{min}`; for
      :func:`~softjax.gumbel_softargmax`, whose relaxation takes the temperature, pass
      ``tau=1 / beta`` or use :func:`to_temperature` on this schedule.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax import schedules
      >>> schedule = schedules.gumbel_softmax(rate=1e-4, every=500)
      >>> print(jnp.round(schedule(jnp.array([0, 499, 500, 5000, 10000])), 4))
      [1. 1. 1.0513 1.6487 2. ]

    References:
      Jang, Gu and Poole, `Categorical Reparameterization with Gumbel-Softmax
      <https://arxiv.org/abs/1611.01144>`_, ICLR 2017.
    """
    tau0 = _real("tau0", tau0)
    if tau0 <= 0.0:
        raise ValueError(f"tau0 must be > 0, got {tau0}")
    _normal("tau0", tau0)
    rate = _real("rate", rate)
    if rate < 0.0:
        raise ValueError(f"rate must be >= 0, got {rate}")
    tau_min = _real("tau_min", tau_min)
    if not 0.0 < tau_min <= tau0:
        raise ValueError(f"tau_min must be > 0 and <= tau0={tau0}, got {tau_min}")
    _normal("tau_min", tau_min)  # so that β = 1 / tau_min is finite
    every = _int("every", every)
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")

    def schedule(count: ArrayLike) -> jax.Array:
        done = _steps_since(count, 0)
        if jnp.issubdtype(done.dtype, jnp.integer) and every > jnp.iinfo(done.dtype).max:
            t = jnp.zeros_like(done)  # no count of this dtype reaches the first update
        else:
            t = jnp.floor_divide(done, jnp.asarray(every, done.dtype)) * every
        tau = jnp.maximum(tau_min, tau0 * jnp.exp(-rate * _float(t)))
        return 1.0 / tau

    return schedule


# --------------------------------------------------------------------------------------------------
# Transformations of schedules


def from_temperature(schedule: optax.Schedule) -> optax.Schedule:
    r"""Turns a temperature schedule into a β schedule.

    .. math::
        \beta_t = 1 / T_t,

    with :math:`T_t = 0` (of either sign) mapped to :math:`\beta_t = +\infty` (the hard arg max),
    :math:`T_t = \pm\infty` to :math:`\beta_t = 0` (uniform) and a NaN temperature to a NaN β. Any
    optax schedule of a temperature works, e.g. ``optax.exponential_decay``.

    Args:
      schedule: a schedule ``count -> T``.

    Returns:
      A schedule ``count -> β``.

    Example:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> from softjax import schedules
      >>> temperature = optax.linear_schedule(2.0, 0.0, transition_steps=4)
      >>> schedule = schedules.from_temperature(temperature)
      >>> print(jnp.round(schedule(jnp.arange(5)), 4))
      [0.5 0.6667 1. 2. inf]

    References:
      Kirkpatrick, Gelatt & Vecchi, "Optimization by simulated annealing", Science 220 (1983),
      doi:10.1126/science.220.4598.671.
    """
    _callable("schedule", schedule)

    def beta_schedule(count: ArrayLike) -> jax.Array:
        temperature = jnp.asarray(schedule(count))
        return jnp.where(temperature == 0, jnp.inf, 1.0 / temperature)

    return beta_schedule


def to_temperature(schedule: optax.Schedule) -> optax.Schedule:
    r"""Turns a β schedule into a temperature schedule.

    .. math::
        T_t = 1 / \beta_t,

    with :math:`\beta_t = 0` (of either sign) mapped to :math:`T_t = +\infty` and
    :math:`\beta_t = \pm\infty` to :math:`T_t = \pm 0`. For temperatures :math:`T \ge 0`,
    ``to_temperature(from_temperature(s))`` returns the values of ``s``.

    Args:
      schedule: a schedule ``count -> β``.

    Returns:
      A schedule ``count -> T``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax import schedules
      >>> schedule = schedules.to_temperature(schedules.linear(0.0, 4.0, 4))
      >>> print([f"{float(t):.4f}" for t in schedule(jnp.arange(5))])
      ['inf', '1.0000', '0.5000', '0.3333', '0.2500']

    References:
      Kirkpatrick, Gelatt & Vecchi, "Optimization by simulated annealing", Science 220 (1983),
      doi:10.1126/science.220.4598.671.
    """
    _callable("schedule", schedule)

    def temperature_schedule(count: ArrayLike) -> jax.Array:
        beta = jnp.asarray(schedule(count))
        return jnp.where(beta == 0, jnp.inf, 1.0 / beta)

    return temperature_schedule


def clip(
    schedule: optax.Schedule,
    beta_min: float = -math.inf,
    beta_max: float = math.inf,
) -> optax.Schedule:
    r"""Clips the values of a β schedule to ``[beta_min, beta_max]``.

    .. math::
        \beta'_t = \min(\max(\beta_t, \beta_\text{min}), \beta_\text{max})

    A NaN β stays NaN.

    Args:
      schedule: a schedule ``count -> β``.
      beta_min: the smallest β returned; ``-inf`` (the default) for no lower bound.
      beta_max: the largest β returned, >= ``beta_min``; ``inf`` (the default) for no upper bound.

    Returns:
      A schedule ``count -> β``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax import schedules
      >>> base = schedules.exponential(0.01, 100.0, transition_steps=4)
      >>> schedule = schedules.clip(base, beta_min=0.5, beta_max=20.0)
      >>> print(jnp.round(schedule(jnp.arange(5)), 4))
      [ 0.5 0.5 1. 10. 20. ]

    References:
      Kirkpatrick, Gelatt & Vecchi, "Optimization by simulated annealing", Science 220 (1983),
      doi:10.1126/science.220.4598.671.
    """
    _callable("schedule", schedule)
    beta_min = _real("beta_min", beta_min, finite=False)
    beta_max = _real("beta_max", beta_max, finite=False)
    if beta_min > beta_max:
        raise ValueError(f"beta_max must be >= beta_min={beta_min}, got {beta_max}")

    def clipped(count: ArrayLike) -> jax.Array:
        return jnp.clip(jnp.asarray(schedule(count)), beta_min, beta_max)

    return clipped


# --------------------------------------------------------------------------------------------------
# Stateful schedules


def _scalar_measurement(name: str, value: ArrayLike) -> jax.Array:
    """``value`` as an array, or raises at trace time if its (static) shape is not ``()``."""
    value = jnp.asarray(value)
    if value.shape != ():
        raise ValueError(f"{name} must be a scalar, got an array of shape {value.shape}")
    return value


def _keep_unless(valid: jax.Array, new_state, old_state):
    """``new_state`` where ``valid``, else ``old_state``, leaf by leaf."""
    return jax.tree.map(
        lambda new, old: jnp.where(valid, new, old).astype(old.dtype), new_state, old_state
    )


class EntropyTargetState(NamedTuple):
    """State of :func:`entropy_target`."""

    log_beta: jax.Array  # shape (), float: log β
    step: jax.Array  # shape (), float: the size of the next move of log β
    last_sign: jax.Array  # shape (), float: sign of the previous error, 0 after a crossing


class _EntropyTarget:
    """The stateful schedule returned by :func:`entropy_target`."""

    def __init__(
        self,
        target_entropy: float,
        init_value: float,
        step_size: float,
        min_step: float,
        max_step: float,
        increase: float,
        decrease: float,
        beta_min: float,
        beta_max: float,
    ):
        self.target_entropy = target_entropy
        self.init_value = init_value
        self.step_size = step_size
        self.min_step = min_step
        self.max_step = max_step
        self.increase = increase
        self.decrease = decrease
        self.beta_min = beta_min
        self.beta_max = beta_max

    def init(self) -> EntropyTargetState:
        return EntropyTargetState(
            log_beta=_float(math.log(self.init_value)),
            step=_float(self.step_size),
            last_sign=_float(0.0),
        )

    def update(
        self, state: EntropyTargetState, *, entropy: ArrayLike, **extra_args
    ) -> EntropyTargetState:
        del extra_args
        entropy = _scalar_measurement("entropy", entropy)
        dtype = state.log_beta.dtype
        error = entropy.astype(dtype) - self.target_entropy
        sign = jnp.sign(error).astype(dtype)
        agreement = sign * state.last_sign
        step = jnp.where(agreement > 0, state.step * self.increase, state.step)
        step = jnp.where(agreement < 0, state.step * self.decrease, step)
        step = jnp.clip(step, self.min_step, self.max_step).astype(dtype)
        log_beta = jnp.clip(
            state.log_beta + sign * step, math.log(self.beta_min), math.log(self.beta_max)
        ).astype(dtype)
        # After a crossing the next step may not grow (iRprop-): this keeps the step shrinking when
        # the entropy arrives one or two updates late, as it does through optax.inject_hyperparams.
        last_sign = jnp.where(agreement < 0, 0.0, sign).astype(dtype)
        new_state = EntropyTargetState(log_beta=log_beta, step=step, last_sign=last_sign)
        # A NaN or infinite entropy carries no information (the entropy of a distribution over
        # finitely many outcomes is finite): the whole state is kept.
        return _keep_unless(jnp.isfinite(entropy), new_state, state)

    def __call__(self, state: EntropyTargetState, **extra_args) -> jax.Array:
        del extra_args
        # The clip removes the rounding of exp at the bounds.
        return jnp.clip(jnp.exp(state.log_beta), self.beta_min, self.beta_max)


def entropy_target(
    target_entropy: float,
    init_value: float = 1.0,
    *,
    step_size: float = 0.1,
    min_step: float = 1e-3,
    max_step: float = 1.0,
    increase: float = 1.1,
    decrease: float = 0.5,
    beta_min: float = 1e-6,
    beta_max: float = 1e6,
) -> optax.schedules.StatefulSchedule:
    r"""A stateful schedule that drives β until the controlled distribution has a target entropy.

    The user measures the Shannon entropy :math:`H` (in nats) of the distribution that β controls,
    e.g. of ``softargmax(z, beta=β)``, and passes it with ``update(state, entropy=H)``. For
    :math:`\beta > 0` the entropy of a Boltzmann distribution falls as β grows
    (:math:`\mathrm{d}H / \mathrm{d}\log\beta = -\beta^2 \operatorname{Var}_p[z] \le 0`), so β is
    raised while :math:`H` is above the target and lowered while it is below.

    The controller works on :math:`u = \log \beta` with a sign-based adaptive step (iRprop⁻). With
    :math:`\sigma_k = \operatorname{sign}(H_k - H^\star)` and :math:`\tilde\sigma_{k-1}` the sign
    kept from the previous update,

    .. math::
        \delta_k = \mathrm{clip}\left(\delta_{k-1} \cdot
            \begin{cases} \eta^+ & \sigma_k \tilde\sigma_{k-1} > 0 \\
                          \eta^- & \sigma_k \tilde\sigma_{k-1} < 0 \\
                          1 & \text{otherwise} \end{cases},\
            \delta_\text{min}, \delta_\text{max}\right), \qquad
        u_{k+1} = \mathrm{clip}\left(u_k + \sigma_k \delta_k,\
            \log\beta_\text{min}, \log\beta_\text{max}\right),

    and :math:`\tilde\sigma_k = 0` after a change of sign, :math:`\sigma_k` otherwise.

    While the entropy stays on one side of the target, β is multiplied at each update by
    :math:`e^{\delta}`, with :math:`\delta` growing by a factor :math:`\eta^+` (up to
    :math:`\delta_\text{max}`), so β crosses six orders of magnitude in about thirty updates.
    Each crossing of the target multiplies the step by :math:`\eta^-`, which brackets the solution
    and converges geometrically whatever the slope of :math:`H(\beta)`: no gain has to be tuned to
    the number of classes or the spread of the logits, and the defaults settle within a few
    hundredths of a nat in about a hundred updates, also when the measured entropy arrives one or
    two updates late. Once settled, β moves by factors :math:`e^{\pm\delta_\text{min}}` around the
    solution; a drifting distribution is followed because the step grows again as soon as the
    error keeps its sign. A NaN or infinite entropy leaves the whole state unchanged (β, the step
    and the sign kept for the next update), as if the update had not happened. ``entropy`` must be
    a scalar: an array of another shape raises ``ValueError`` when ``update`` is traced (average a
    batch of entropies first). Since only the sign of the
    error is used, any unit (nats or bits) works as long as ``entropy`` and ``target_entropy``
    agree.

    A target that no β in ``[beta_min, beta_max]`` reaches (below the entropy of the ties at the
    maximum, or above :math:`\log n`) drives β to the bound. With ``optax.inject_hyperparams``
    the β recorded in ``state.hyperparams`` is the one used for that update, i.e. the value before
    the schedule state advances with the ``entropy`` passed to the same update. :func:`with_beta`
    and :func:`beta_of` give instead the β of the coming update.

    Args:
      target_entropy: :math:`H^\star`, the entropy to reach; finite and >= 0.
      init_value: the initial β; within ``[beta_min, beta_max]``.
      step_size: :math:`\delta_0`, the initial step in :math:`\log\beta`; within
        ``[min_step, max_step]``.
      min_step: :math:`\delta_\text{min}` > 0, the smallest step in :math:`\log \beta`.
      max_step: :math:`\delta_\text{max}` >= ``min_step``, the largest step in :math:`\log \beta`.
      increase: :math:`\eta^+` >= 1, the growth of the step while the error keeps its sign.
      decrease: :math:`\eta^-` in (0, 1), the shrinkage of the step when the error changes sign.
      beta_min: the smallest β; finite, > 0 and a normal number of the default float dtype.
      beta_max: the largest β; finite and > ``beta_min``.

    Returns:
      An ``optax.schedules.StatefulSchedule`` with ``init() -> EntropyTargetState``,
      ``update(state, *, entropy, **extra_args)`` and ``__call__(state, **extra_args) -> β``.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from softjax import schedules
      >>> z = jnp.array([2.0, 1.0, 0.0, -1.0])
      >>> def entropy(beta):
      ...     p = jax.nn.softmax(beta * z)
      ...     return -jnp.sum(p * jnp.log(p))
      >>> schedule = schedules.entropy_target(0.5)
      >>> def step(state, _):
      ...     return schedule.update(state, entropy=entropy(schedule(state))), None
      >>> state, _ = jax.lax.scan(step, schedule.init(), length=200)
      >>> print(f"{float(entropy(schedule(state))):.2f}")
      0.50

    References:
      Riedmiller and Braun, `A Direct Adaptive Method for Faster Backpropagation Learning: the
      RPROP Algorithm <https://doi.org/10.1109/ICNN.1993.298623>`_, IEEE ICNN 1993.

      Igel and Hüsken, Improving the Rprop Learning Algorithm, Proceedings of the Second
      International Symposium on Neural Computation (NC 2000), 2000 (the iRprop⁻ variant).

      Haarnoja et al., `Soft Actor-Critic Algorithms and Applications
      <https://arxiv.org/abs/1812.05905>`_, 2018 (tuning a temperature towards a target entropy).
    """
    target_entropy = _real("target_entropy", target_entropy)
    if target_entropy < 0.0:
        raise ValueError(f"target_entropy must be >= 0, got {target_entropy}")
    beta_min = _real("beta_min", beta_min)
    if beta_min <= 0.0:
        raise ValueError(f"beta_min must be > 0, got {beta_min}")
    _normal("beta_min", beta_min)
    beta_max = _real("beta_max", beta_max)
    if beta_max <= beta_min:
        raise ValueError(f"beta_max must be > beta_min={beta_min}, got {beta_max}")
    init_value = _real("init_value", init_value)
    if not beta_min <= init_value <= beta_max:
        raise ValueError(
            f"init_value must be within [beta_min, beta_max] = [{beta_min}, {beta_max}], "
            f"got {init_value}"
        )
    min_step = _real("min_step", min_step)
    if min_step <= 0.0:
        raise ValueError(f"min_step must be > 0, got {min_step}")
    max_step = _real("max_step", max_step)
    if max_step < min_step:
        raise ValueError(f"max_step must be >= min_step={min_step}, got {max_step}")
    step_size = _real("step_size", step_size)
    if not min_step <= step_size <= max_step:
        raise ValueError(
            f"step_size must be within [min_step, max_step] = [{min_step}, {max_step}], "
            f"got {step_size}"
        )
    increase = _real("increase", increase)
    if increase < 1.0:
        raise ValueError(f"increase must be >= 1, got {increase}")
    decrease = _real("decrease", decrease)
    if not 0.0 < decrease < 1.0:
        raise ValueError(f"decrease must be in (0, 1), got {decrease}")
    return _EntropyTarget(
        target_entropy,
        init_value,
        step_size,
        min_step,
        max_step,
        increase,
        decrease,
        beta_min,
        beta_max,
    )


class OnPlateauState(NamedTuple):
    """State of :func:`on_plateau`."""

    beta: jax.Array  # shape (), float: the current β
    best_value: jax.Array  # shape (), float: the best value seen, +inf before the first
    plateau_count: jax.Array  # shape (), int32: updates since the last improvement
    cooldown_count: jax.Array  # shape (), int32: updates left in the cooldown


class _OnPlateau:
    """The stateful schedule returned by :func:`on_plateau`."""

    def __init__(
        self,
        init_value: float,
        factor: float,
        patience: int,
        cooldown: int,
        rtol: float,
        atol: float,
        max_value: float,
    ):
        self.init_value = init_value
        self.factor = factor
        self.patience = patience
        self.cooldown = cooldown
        self.rtol = rtol
        self.atol = atol
        self.max_value = max_value

    def init(self) -> OnPlateauState:
        return OnPlateauState(
            beta=_float(self.init_value),
            best_value=_float(jnp.inf),
            plateau_count=jnp.asarray(0, jnp.int32),
            cooldown_count=jnp.asarray(0, jnp.int32),
        )

    def update(self, state: OnPlateauState, *, value: ArrayLike, **extra_args) -> OnPlateauState:
        del extra_args
        value = _scalar_measurement("value", value).astype(state.best_value.dtype)
        best = state.best_value
        threshold = jnp.where(jnp.isinf(best), best, best - (self.rtol * jnp.abs(best) + self.atol))
        improved = value < threshold
        best = jnp.where(improved, value, best)

        in_cooldown = state.cooldown_count > 0
        plateau = jnp.where(improved | in_cooldown, 0, state.plateau_count + 1).astype(jnp.int32)
        raise_beta = plateau >= self.patience
        beta = jnp.where(
            raise_beta, jnp.minimum(state.beta * self.factor, self.max_value), state.beta
        ).astype(state.beta.dtype)
        cooldown = jnp.where(
            raise_beta, self.cooldown, jnp.maximum(state.cooldown_count - 1, 0)
        ).astype(jnp.int32)
        plateau = jnp.where(raise_beta, 0, plateau).astype(jnp.int32)
        new_state = OnPlateauState(
            beta=beta, best_value=best, plateau_count=plateau, cooldown_count=cooldown
        )
        # A NaN value is no measurement: the whole state is kept.
        return _keep_unless(~jnp.isnan(value), new_state, state)

    def __call__(self, state: OnPlateauState, **extra_args) -> jax.Array:
        del extra_args
        return state.beta


def on_plateau(
    init_value: float = 1.0,
    *,
    factor: float = 2.0,
    patience: int = 10,
    cooldown: int = 0,
    rtol: float = 1e-4,
    atol: float = 0.0,
    max_value: float = math.inf,
) -> optax.schedules.StatefulSchedule:
    r"""A stateful schedule that raises β when a monitored value stops improving.

    The user passes a value to minimise (typically a loss) with ``update(state, value=v)``. An
    update *improves* when

    .. math::
        v < v_\text{best} - (\text{rtol} \cdot |v_\text{best}| + \text{atol}),

    where :math:`v_\text{best}` is the best value seen so far (the first value below ``+inf``
    always improves). After ``patience`` consecutive updates without improvement, β is multiplied
    by ``factor`` (up to ``max_value``), the count of updates without improvement restarts from
    zero, and a cooldown of ``cooldown`` updates begins during which updates without improvement
    are not counted. The best value is kept across raises, so a relaxation whose loss
    grows with β raises β again every ``patience + cooldown`` updates until ``max_value``.

    A NaN value leaves the whole state unchanged, as if the update had not happened; ``+inf``
    (e.g. a diverged loss) never improves and counts towards the patience. ``value`` must be a
    scalar: an array of another shape raises ``ValueError`` when ``update`` is traced.

    The semantics follow ``optax.contrib.reduce_on_plateau``, turned around to sharpen a soft
    relaxation (raise β, lower the temperature) instead of lowering a learning rate; the relative
    tolerance is measured against :math:`|v_\text{best}|` so negative values work too. With
    ``optax.inject_hyperparams`` the β recorded in ``state.hyperparams`` is the one used for that
    update, i.e. the value before the schedule state advances with the ``value`` passed to it;
    :func:`with_beta` and :func:`beta_of` give instead the β of the coming update.

    Args:
      init_value: the initial β; finite, > 0 and a normal number of the default float dtype.
      factor: the factor applied to β on a plateau; finite and > 1. Without ``max_value``, β
        reaches ``inf`` (the hard arg max) when the product overflows.
      patience: the number of updates without improvement before β is raised; an int >= 1.
      cooldown: the number of updates after a raise during which no plateau is counted; an int
        >= 0.
      rtol: the relative improvement needed; finite and >= 0.
      atol: the absolute improvement needed; finite and >= 0.
      max_value: the largest β; >= ``init_value``, ``inf`` (the default) for no cap.

    Returns:
      An ``optax.schedules.StatefulSchedule`` with ``init() -> OnPlateauState``,
      ``update(state, *, value, **extra_args)`` and ``__call__(state, **extra_args) -> β``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax import schedules
      >>> schedule = schedules.on_plateau(1.0, factor=2.0, patience=2, max_value=3.0)
      >>> state = schedule.init()
      >>> betas = []
      >>> for loss in [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]:
      ...     state = schedule.update(state, value=loss)
      ...     betas.append(f"{float(schedule(state)):.1f}")
      >>> print(betas)
      ['1.0', '1.0', '1.0', '2.0', '2.0', '3.0', '3.0']

    References:
      Rose, "Deterministic annealing for clustering, compression, classification, regression,
      and related optimization problems", Proc. IEEE 86(11) (1998), doi:10.1109/5.726788.
    """
    init_value = _real("init_value", init_value)
    if init_value <= 0.0:
        raise ValueError(f"init_value must be > 0, got {init_value}")
    _normal("init_value", init_value)
    factor = _real("factor", factor)
    if factor <= 1.0:
        raise ValueError(f"factor must be > 1 (it raises beta), got {factor}")
    patience = _int("patience", patience)
    if patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")
    cooldown = _int("cooldown", cooldown)
    if cooldown < 0:
        raise ValueError(f"cooldown must be >= 0, got {cooldown}")
    rtol = _real("rtol", rtol)
    if rtol < 0.0:
        raise ValueError(f"rtol must be >= 0, got {rtol}")
    atol = _real("atol", atol)
    if atol < 0.0:
        raise ValueError(f"atol must be >= 0, got {atol}")
    max_value = _real("max_value", max_value, finite=False)
    if max_value < init_value:
        raise ValueError(f"max_value must be >= init_value={init_value}, got {max_value}")
    return _OnPlateau(init_value, factor, patience, cooldown, rtol, atol, max_value)


# --------------------------------------------------------------------------------------------------
# β inside an optax optimiser


class WithBetaState(NamedTuple):
    """State of :func:`with_beta`."""

    count: jax.Array  # shape (), int32: the number of updates done
    beta: jax.Array  # shape (), float: β for the coming update, read by beta_of
    beta_state: optax.OptState  # the controller's state; optax.EmptyState() otherwise
    inner_state: optax.OptState  # the state of the wrapped optimiser


def _as_transformation(optimizer) -> optax.GradientTransformationExtraArgs:
    """``optimizer`` as a transformation that accepts (and may ignore) extra arguments."""
    if isinstance(optimizer, optax.GradientTransformation):
        return optax.with_extra_args_support(optimizer)
    if callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None)):
        # e.g. optax.MultiSteps, whose update accepts extra arguments.
        return optax.GradientTransformationExtraArgs(optimizer.init, optimizer.update)
    raise TypeError(
        f"optimizer must be an optax.GradientTransformation, got {type(optimizer).__name__}: "
        f"{optimizer!r}"
    )


def with_beta(optimizer, beta) -> optax.GradientTransformationExtraArgs:
    r"""Carries an annealed β alongside an optax optimiser, for the loss to read.

    The returned transformation applies ``optimizer`` unchanged and keeps, in its state, the β that
    the loss should use for the coming update. :func:`beta_of` reads it from the optimiser state,
    wherever the wrapped optimiser sits in a chain or wrapper.

    **No lag.** Before update :math:`k = 0, 1, \ldots` (i.e. after :math:`k` calls to
    ``update``), ``beta_of(state)`` is

    - ``beta`` itself for a number;
    - ``beta(k)`` for a schedule (a callable of the step ``count``);
    - ``beta(controller_state)`` for a stateful controller such as :func:`entropy_target` or
      :func:`on_plateau`, whose state has been advanced by ``controller.update(state,
      **extra_args)`` with the extra arguments (``entropy=``, ``value=``, …) of each of the
      :math:`k` updates done.

    So the loss of step :math:`k` is computed at :math:`\beta_k`, its measurement is passed to the
    same update, and that update produces the state holding :math:`\beta_{k+1}`. (With
    ``optax.inject_hyperparams``, ``state.hyperparams`` shows instead the value used by the update
    that has just happened, one step behind.)

    Extra keyword arguments of ``update`` go both to the controller and to ``optimizer`` when it is
    an ``optax.GradientTransformationExtraArgs``; a plain ``optax.GradientTransformation`` does not
    receive them (``optax.with_extra_args_support``). The β itself is not passed to ``optimizer``.

    Inside ``optax.MultiSteps(with_beta(...), every_k_schedule=k)``, the state of the wrapped
    optimiser, hence β, changes only when the accumulated update is applied: β stays the same over
    the :math:`k` mini-steps of an update and advances once per applied update (``beta(j)`` after
    :math:`j` applied updates); a controller sees the extra arguments of the last mini-step of each
    update only.

    Args:
      optimizer: an ``optax.GradientTransformation`` (or
        ``optax.GradientTransformationExtraArgs``, or an object with optax's ``init`` and
        ``update``, such as ``optax.MultiSteps``).
      beta: a real number (``±inf`` allowed), an ``optax.Schedule`` ``count -> β`` returning a
        scalar, or an ``optax.schedules.StatefulSchedule`` (``init()``, ``update(state,
        **extra_args)``, ``__call__(state)``) such as :func:`entropy_target`.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is a :class:`WithBetaState`
      ``(count, beta, beta_state, inner_state)``; its updates are those of ``optimizer``.

    Example:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> from softjax import schedules
      >>> optimizer = schedules.with_beta(optax.adam(1e-2), schedules.linear(0.0, 10.0, 10))
      >>> params = jnp.zeros(3)
      >>> state = optimizer.init(params)
      >>> betas = []
      >>> for _ in range(4):
      ...     betas.append(f"{float(schedules.beta_of(state)):.1f}")  # β for this step's loss
      ...     updates, state = optimizer.update(jnp.ones(3), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> print(betas)
      ['0.0', '1.0', '2.0', '3.0']
    """
    inner = _as_transformation(optimizer)
    if isinstance(beta, optax.schedules.StatefulSchedule):
        controller, schedule = beta, None
    elif callable(beta):
        controller, schedule = None, beta
    else:
        controller, schedule = None, None
        number = _real("beta", beta, finite=False)

    def beta_value(count: jax.Array, beta_state) -> jax.Array:
        if controller is not None:
            value = controller(beta_state)
        elif schedule is not None:
            value = schedule(count)
        else:
            value = number
        value = jnp.asarray(value)
        if value.shape != ():
            raise ValueError(f"beta must give a scalar β, got an array of shape {value.shape}")
        return value.astype(_default_float())

    def init_fn(params) -> WithBetaState:
        count = jnp.zeros((), jnp.int32)
        beta_state = controller.init() if controller is not None else optax.EmptyState()
        return WithBetaState(
            count=count,
            beta=beta_value(count, beta_state),
            beta_state=beta_state,
            inner_state=inner.init(params),
        )

    def update_fn(updates, state: WithBetaState, params=None, **extra_args):
        updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
        count = optax.safe_increment(state.count)
        beta_state = state.beta_state
        if controller is not None:
            beta_state = controller.update(beta_state, **extra_args)
        new_state = WithBetaState(
            count=count,
            beta=beta_value(count, beta_state),
            beta_state=beta_state,
            inner_state=inner_state,
        )
        return updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _find_with_beta(tree) -> list[WithBetaState]:
    """Every :class:`WithBetaState` node in the pytree ``tree``, outermost first."""
    found = []
    nodes = jax.tree_util.tree_leaves(tree, is_leaf=lambda node: isinstance(node, WithBetaState))
    for node in nodes:
        if isinstance(node, WithBetaState):
            found.append(node)
            found.extend(_find_with_beta((node.beta_state, node.inner_state)))
    return found


def beta_of(opt_state) -> jax.Array:
    r"""The β the loss should use for the coming update, read from a :func:`with_beta` state.

    Before update :math:`k = 0, 1, \ldots` this is ``beta(k)`` for a schedule and the current β
    of a stateful controller, without lag (see :func:`with_beta`). The :class:`WithBetaState` is
    found anywhere in the structure of ``opt_state``: inside ``optax.chain``,
    ``optax.MultiSteps``, ``optax.inject_hyperparams`` or any tuple, ``NamedTuple``, list or dict.
    The search follows the (static) pytree structure, so ``beta_of`` works under ``jit``.

    Args:
      opt_state: the state of an optimiser that contains exactly one :func:`with_beta`.

    Returns:
      β, a scalar array in the default float dtype.

    Raises:
      ValueError: if ``opt_state`` contains no :class:`WithBetaState` or more than one.

    Example:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> from softjax import schedules
      >>> optimizer = optax.chain(
      ...     optax.clip_by_global_norm(1.0),
      ...     schedules.with_beta(optax.sgd(0.1), schedules.exponential(0.5, 8.0, 4)),
      ... )
      >>> state = optimizer.init(jnp.zeros(2))
      >>> print(f"{float(schedules.beta_of(state)):.2f}")
      0.50
      >>> _, state = optimizer.update(jnp.ones(2), state)
      >>> print(f"{float(schedules.beta_of(state)):.2f}")
      1.00
    """
    found = _find_with_beta(opt_state)
    if not found:
        raise ValueError(
            "opt_state must contain the state of an optimiser built with "
            f"softjax.schedules.with_beta, got a {type(opt_state).__name__} without one"
        )
    if len(found) > 1:
        raise ValueError(
            "opt_state must contain the state of exactly one optimiser built with "
            f"softjax.schedules.with_beta, got {len(found)}; call beta_of on the part of the "
            "state that holds the one you mean"
        )
    return found[0].beta
