r"""Training on the 0-1 loss with an annealed β inside an optax optimiser.

The 0-1 error of a classifier, :math:`\frac1N \sum_i [\arg\max_k f(x_i)_k \ne y_i]`, has zero
gradient almost everywhere. Its smooth version at inverse temperature β,

.. math::
    L_\beta = 1 - \frac1N \sum_i \operatorname{softargmax}_\beta\big(f(x_i)\big)_{y_i},

has useful gradients at small β and equals the 0-1 error at :math:`\beta = +\infty`. Here a linear
classifier on three overlapping Gaussian blobs is trained with Adam on :math:`L_\beta` while β
rises, in two ways that keep β in the optimiser state:

- ``softjax.schedules.with_beta(optax.adam(...), softjax.schedules.exponential(...))``: β follows
  a geometric schedule of the step;
- ``softjax.schedules.with_beta(optax.adam(...), softjax.schedules.entropy_target(...))``: β is
  raised until the mean entropy of the predictions reaches a target; each step passes the measured
  entropy to ``optimizer.update(..., entropy=H)``.

In both cases ``softjax.schedules.beta_of(state)`` is the β of the coming step, and the compiled
step is the same at every β. The hard error is measured with ``softargmax(..., beta=inf)``, the
exact one-hot arg max, from the same code.

Run it with ``python -m examples.optax_beta``.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import softjax
from softjax import schedules

CENTRES = np.array([[0.0, 2.0], [-1.8, -1.0], [1.8, -1.0]])


def make_data(n_per_class: int = 200, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """Three overlapping Gaussian blobs in 2-D with labels 0, 1, 2."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + 1.2 * rng.normal(size=(n_per_class, 2)) for c in CENTRES])
    y = np.repeat(np.arange(len(CENTRES)), n_per_class)
    return jnp.asarray(x, jnp.float32), jnp.asarray(y)


def logits(params: dict, x: jax.Array) -> jax.Array:
    return x @ params["w"] + params["b"][None, :]  # (n, 3)


def smooth_error(params: dict, x: jax.Array, y: jax.Array, beta: jax.Array) -> jax.Array:
    """:math:`L_\\beta`; at ``beta=inf`` the 0-1 error."""
    p = softjax.softargmax(logits(params, x), beta=beta)  # (n, 3)
    return 1.0 - jnp.mean(jnp.take_along_axis(p, y[:, None], axis=1))


def mean_entropy(params: dict, x: jax.Array, beta: jax.Array) -> jax.Array:
    """The mean entropy (nats) of the predicted distributions at β."""
    p = softjax.softargmax(logits(params, x), beta=beta)
    return -jnp.mean(jnp.sum(jnp.where(p > 0, p * jnp.log(p), 0.0), axis=1))


def train(beta, x: jax.Array, y: jax.Array, steps: int) -> tuple[dict, list[float]]:
    """Adam on the smooth error with β from ``beta`` (a schedule or a controller)."""
    optimizer = schedules.with_beta(optax.adam(0.05), beta)
    params = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}
    state = optimizer.init(params)

    @jax.jit
    def step(params, state):
        beta = schedules.beta_of(state)  # β for this step, no lag
        loss, grads = jax.value_and_grad(smooth_error)(params, x, y, beta)
        # The entropy is needed by entropy_target only; the schedule ignores it.
        entropy = mean_entropy(params, x, beta)
        updates, state = optimizer.update(grads, state, params, entropy=entropy)
        return optax.apply_updates(params, updates), state, beta, loss

    betas = []
    for _ in range(steps):
        params, state, beta, _ = step(params, state)
        betas.append(float(beta))
    return params, betas


def main(steps: int = 300, quiet: bool = False) -> dict:
    """Runs both trainings and prints a few lines.

    Returns:
      The β used at each step of both runs, the final hard (0-1) errors, the final smooth error and
      mean entropy of the controlled run, and the runtime.
    """
    t0 = time.perf_counter()
    x, y = make_data()
    schedule = schedules.exponential(1.0, 50.0, transition_steps=steps)
    target = 0.1
    controller = schedules.entropy_target(target)

    scheduled, betas_scheduled = train(schedule, x, y, steps)
    controlled, betas_controlled = train(controller, x, y, steps)
    result = {
        "betas_scheduled": betas_scheduled,
        "betas_controlled": betas_controlled,
        "error_scheduled": float(smooth_error(scheduled, x, y, jnp.inf)),
        "error_controlled": float(smooth_error(controlled, x, y, jnp.inf)),
        "entropy_controlled": float(mean_entropy(controlled, x, betas_controlled[-1])),
        "target_entropy": target,
        "seconds": time.perf_counter() - t0,
    }
    if not quiet:
        for k in (0, steps // 2, steps - 1):
            print(
                f"step {k:4d}: beta scheduled {betas_scheduled[k]:7.3f}, "
                f"controlled {betas_controlled[k]:7.3f}"
            )
        print(
            f"0-1 error (beta=inf): scheduled {result['error_scheduled']:.3f}, "
            f"controlled {result['error_controlled']:.3f}"
        )
        print(
            f"mean entropy of the controlled run: {result['entropy_controlled']:.3f} nats "
            f"(target {target})"
        )
        print(f"{result['seconds']:.1f} s")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps")
    args = parser.parse_args()
    main(steps=args.steps)
