r"""Deterministic-annealing clustering: k-means solved by raising β with an optax optimiser.

Hard k-means minimises the distortion :math:`D(\mu) = \frac1N \sum_x \min_k \|x - \mu_k\|^2`, a
piecewise-quadratic function with many poor local minima; Lloyd's algorithm descends into whichever
one its initial centres point to. Deterministic annealing (Rose 1998) replaces the minimum by its
smooth version at inverse temperature β and minimises the *free energy*

.. math::
    F_\beta(\mu) = -\frac1N \sum_x \frac1\beta \log \sum_k e^{-\beta \|x - \mu_k\|^2}
                 = -\frac1N \sum_x \operatorname{smax}_\beta\big(-\|x - \mu_\cdot\|^2\big)
                 = D_\beta - T H_\beta ,

where :math:`p_\beta(k \mid x) = \operatorname{softargmax}_\beta(-\|x - \mu_\cdot\|^2)_k` are the
soft assignments, :math:`D_\beta` their expected distortion and :math:`H_\beta` their mean entropy.
At small β, :math:`F_\beta` is convex and has a single minimum: every centre sits at the centroid
of the data, whatever the initial centres. As β rises the minimum bifurcates: at
:math:`\beta_c = 1 / (2 \lambda_\text{max})`, with :math:`\lambda_\text{max}` the largest eigenvalue
of the data covariance, the centroid becomes a saddle and the centres split along the principal
axis; later splits follow at the critical β of each sub-cluster. Tracking the minimum while β
grows (here by Adam steps on the centres, with ``softjax.schedules.exponential`` raising β) ends,
at :math:`\beta = +\infty`, at a minimum of the hard distortion chosen by the annealing, not by
the initialisation.

The example follows Rose's *mass-constrained* algorithm (Sec. III): every centre carries a mass
:math:`\rho_k` (the free energy has :math:`\sum_k \rho_k e^{-\beta \|x-\mu_k\|^2}`, and the masses
take the closed-form update :math:`\rho_k = \frac1N\sum_x p_\beta(k \mid x)`), centres that
coincide are merged, and each distinct centre keeps a slightly perturbed copy of itself while there
are fewer than ``K``: at a phase transition the copy moves away and becomes a new centre. These
*phase transitions* show as steps in the number of distinct centres and jumps of the assignment
entropy, which then decays as β grows.

``softjax.smooth_max`` is exact at every β: the run ends with a quench at ``beta=inf`` from the same
compiled step, where :math:`F_\infty = D` is the hard k-means distortion itself, with its exact
(Lloyd-like) gradient.

The example draws a 2-D data set of Gaussian blobs with known centres (fixed seed), starts every
centre inside a single blob (an initialisation on which Lloyd's algorithm gets stuck), runs the
annealing, matches the centres found to the true ones (Hungarian assignment), compares with Lloyd's
algorithm from the same initial centres, and plots β, the losses and the entropy against the step.

Run it with ``python -m examples.deterministic_annealing --out out --steps 3000``.

References:
  Rose, `Deterministic annealing for clustering, compression, classification, regression, and
  related optimization problems <https://doi.org/10.1109/5.726788>`_, Proc. IEEE 86(11), 1998.

  Rose, Gurewitz and Fox, `Statistical mechanics and phase transitions in clustering
  <https://doi.org/10.1103/PhysRevLett.65.945>`_, Phys. Rev. Lett. 65(8), 1990.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import softjax
from softjax import schedules

# The true centres of the blobs: well separated (at least 5 apart), std 0.7 each.
TRUE_CENTRES = np.array(
    [[-6.0, 3.0], [-1.0, 6.5], [5.0, 5.0], [-4.5, -4.0], [1.5, -1.0], [6.5, -4.5]]
)
BLOB_STD = 0.7
SEED = 0
CHUNK = 100  # steps per jitted lax.scan call (and per progress-bar update)
ANNEAL_FRACTION = 0.8  # β rises during this fraction of the steps, then β = +inf
BETA_END = 10.0
LR = 0.2


def make_data(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The data set: a few hundred points in 6 Gaussian blobs of unequal sizes.

    Returns:
      ``(x, labels, init)``: the points ``(N, 2)``, the index of each point's blob ``(N,)``, and
      the poor initial centres ``(K, 2)``: ``K`` points of the first blob.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(40, 90, size=len(TRUE_CENTRES))
    x = np.concatenate(
        [
            c + BLOB_STD * rng.standard_normal((n, 2))
            for c, n in zip(TRUE_CENTRES, sizes, strict=True)
        ]
    )
    labels = np.repeat(np.arange(len(TRUE_CENTRES)), sizes)
    init = x[rng.choice(sizes[0], size=len(TRUE_CENTRES), replace=False)]
    return x.astype(np.float32), labels, init.astype(np.float32)


def squared_distances(x: jax.Array, mu: jax.Array) -> jax.Array:
    """``d[n, k] = ||x_n - mu_k||²``; x ``(N, D)``, mu ``(K, D)`` -> ``(N, K)``."""
    return jnp.sum((x[:, None, :] - mu[None, :, :]) ** 2, axis=-1)


def hard_distortion(mu, x) -> float:
    """The k-means distortion: mean squared distance of each point to its nearest centre."""
    x, mu = np.asarray(x, np.float64), np.asarray(mu, np.float64)
    d = np.sum((x[:, None, :] - mu[None, :, :]) ** 2, axis=-1)
    return float(np.mean(np.min(d, axis=1)))


def lloyd(x: np.ndarray, init: np.ndarray, max_iters: int = 300) -> tuple[np.ndarray, int]:
    """Plain hard-assignment k-means (Lloyd's algorithm) from ``init``.

    An empty cluster keeps its centre. Stops when the assignment no longer changes.

    Returns:
      ``(centres, iterations)``.
    """
    x = np.asarray(x, np.float64)
    mu = np.array(init, np.float64)
    assign = None
    for it in range(1, max_iters + 1):
        new = np.argmin(np.sum((x[:, None, :] - mu[None, :, :]) ** 2, axis=-1), axis=1)
        if assign is not None and np.array_equal(new, assign):
            return mu, it - 1
        assign = new
        for k in range(len(mu)):
            if np.any(assign == k):
                mu[k] = x[assign == k].mean(axis=0)
    return mu, max_iters


def match_centres(found: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching of ``found`` to ``true`` centres by Euclidean distance.

    Returns:
      ``(order, dist)``: ``found[order[j]]`` is matched to ``true[j]`` at distance ``dist[j]``. If
      fewer centres were found than there are true ones, an unmatched true centre gets
      ``order[j] = -1`` and the distance to its nearest found centre.
    """
    from scipy.optimize import linear_sum_assignment

    cost = np.linalg.norm(found[:, None, :] - true[None, :, :], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    order = np.full(len(true), -1)
    order[cols] = rows
    dist = cost.min(axis=0)
    dist[cols] = cost[rows, cols]
    return order, dist


class Trace(NamedTuple):
    """Per-step measurements of the annealing run (each of leading shape ``(steps,)``)."""

    beta: jax.Array
    free_energy: jax.Array  # F_β(μ, ρ)
    soft_distortion: jax.Array  # D_β = ⟨‖x − μ‖²⟩ under the soft assignments
    hard_distortion: jax.Array  # D = F_∞(μ): the k-means distortion of the current centres
    entropy: jax.Array  # mean over x of the entropy of the assignment to distinct centres, nats
    n_centres: jax.Array  # the number of distinct centres (a centre and its close copy are one)
    centres: jax.Array  # (steps, 2K, 2), NaN for the unused slots


def _log_masses(rho: jax.Array, active: jax.Array) -> jax.Array:
    """``log ρ`` on the active slots (floored, so that ``log ρ / β`` is 0 at β = ∞), 0 elsewhere."""
    return jnp.where(active, jnp.log(jnp.maximum(rho, jnp.finfo(rho.dtype).tiny)), 0.0)


def free_energy(mu: jax.Array, rho: jax.Array, x: jax.Array, beta, active) -> jax.Array:
    r"""Rose's mass-constrained free energy, averaged over the points.

    .. math::
        F_\beta(\mu, \rho) = -\frac1N \sum_x \frac1\beta \log \sum_k \rho_k
        e^{-\beta \|x - \mu_k\|^2}
        = -\frac1N \sum_x \operatorname{smax}_\beta\Big(-\|x - \mu_k\|^2
          + \tfrac1\beta \log \rho_k\Big)_k

    over the ``active`` slots (centres ``mu`` ``(2K, D)``, masses ``rho`` ``(2K,)``); at
    :math:`\beta = +\infty` it is the k-means distortion exactly.
    """
    mask = jnp.broadcast_to(active[None, :], (x.shape[0], active.shape[0]))
    z = -squared_distances(x, mu) + _log_masses(rho, active)[None, :] / beta
    return -jnp.mean(softjax.smooth_max(z, beta=beta, axis=-1, where=mask))


def make_run(x: jax.Array, steps: int, beta_init: float, tol: float):
    """The β schedule, the optimiser and a jitted function running ``length`` steps."""
    n_anneal = max(1, int(ANNEAL_FRACTION * steps))
    beta_schedule = optax.join_schedules(
        [
            schedules.exponential(beta_init, BETA_END, transition_steps=n_anneal),
            schedules.constant(jnp.inf),  # the quench: exact hard k-means
        ],
        boundaries=[n_anneal],
    )
    optimiser = optax.adam(optax.cosine_decay_schedule(LR, steps, alpha=0.01))
    value_and_grad = jax.value_and_grad(free_energy)

    def assignments(mu, rho, beta, active):
        """``(p, d2)``: the soft assignments ``p[n, k] = p_β(k | x_n)`` and the distances."""
        mask = jnp.broadcast_to(active[None, :], (x.shape[0], active.shape[0]))
        d2 = squared_distances(x, mu)
        z = -d2 + _log_masses(rho, active)[None, :] / beta
        return softjax.softargmax(z, beta=beta, axis=-1, where=mask), d2

    def measure(mu, p, d2, beta, active, f):
        k = mu.shape[0] // 2
        mask = jnp.broadcast_to(active[None, :], (x.shape[0], 2 * k))
        # A centre and its perturbed copy count as one centre until they have separated.
        close = active[k:] & (jnp.linalg.norm(mu[:k] - mu[k:], axis=-1) < tol)
        shadow = jnp.where(close[None, :], p[:, k:], 0.0)
        p_eff = jnp.concatenate([p[:, :k] + shadow, p[:, k:] - shadow], axis=-1)
        return Trace(
            beta=beta,
            free_energy=f,
            soft_distortion=jnp.mean(jnp.sum(p * d2, axis=-1)),
            hard_distortion=jnp.mean(jnp.min(jnp.where(mask, d2, jnp.inf), axis=-1)),
            entropy=jnp.mean(-jnp.sum(jax.scipy.special.xlogy(p_eff, p_eff), axis=-1)),
            centres=jnp.where(active[:, None], mu, jnp.nan),
            n_centres=jnp.sum(active[:k]) + jnp.sum(active[k:] & ~close),
        )

    def step(carry, _, active):
        mu, rho, opt_state, count = carry
        beta = beta_schedule(count)
        f, g = value_and_grad(mu, rho, x, beta, active)
        p, d2 = assignments(mu, rho, beta, active)
        record = measure(mu, p, d2, beta, active, f)
        # The masses take Rose's closed-form update, rho_k = mean_x p(k | x).
        rho = jnp.where(active, jnp.mean(p, axis=0), 0.0)
        # dF/dmu_k = 2 rho_k (mu_k - m_k), with m_k the centroid of the points weighted by
        # p(k | x). Dividing by the mass gives every centre the same time scale: a light centre
        # (the mass of an off-centre one decays geometrically at high temperature) would
        # otherwise freeze where it is instead of joining the others.
        g = g / jnp.maximum(rho, jnp.finfo(rho.dtype).tiny)[:, None]
        updates, opt_state = optimiser.update(g, opt_state, mu)
        return (optax.apply_updates(mu, updates), rho, opt_state, count + 1), record

    @functools.partial(jax.jit, static_argnums=2)
    def run_chunk(carry, active, length: int):
        return jax.lax.scan(functools.partial(step, active=active), carry, length=length)

    return optimiser, run_chunk


def _copy_slot(tree, src: int, dst: int, n_slots: int):
    """Copies slot ``src`` to ``dst`` in every leaf of ``tree`` indexed by slot."""

    def copy(leaf):
        if jnp.ndim(leaf) >= 1 and jnp.shape(leaf)[0] == n_slots:
            return leaf.at[dst].set(leaf[src])
        return leaf

    return jax.tree.map(copy, tree)


def split_and_merge(mu, rho, opt_state, active, *, tol: float, rng: np.random.Generator):
    """Rose's codevector bookkeeping, between two chunks of optimiser steps.

    Slots ``0..K-1`` hold the distinct centres, slot ``j + K`` a perturbed copy of centre ``j``.
    A copy that has moved away from its centre (a phase transition) becomes a new distinct centre;
    distinct centres that have come together are merged (mass added); every distinct centre gets a
    fresh copy while there are fewer than ``K`` of them, and the copies are dropped once there are
    ``K``. Masses are conserved throughout.
    """
    dtype = mu.dtype
    mu = np.array(mu, np.float64)
    n_slots = len(mu)
    k = n_slots // 2
    act = np.array(active)
    rho = np.where(act, np.asarray(rho, np.float64), 0.0)
    copies = []  # (src, dst) slot copies to apply to the optimiser state

    # Separated copies become distinct centres, farthest first, while there is room.
    sep = np.where(act[k:], np.linalg.norm(mu[:k] - mu[k:], axis=-1), 0.0)
    for j in np.argsort(-sep):
        free = np.flatnonzero(~act[:k])
        if sep[j] <= tol or free.size == 0:
            break
        new = free[0]
        mu[new], rho[new], act[new], act[j + k] = mu[j + k], rho[j + k], True, False
        rho[j + k] = 0.0
        copies.append((j + k, new))

    # Distinct centres that have come together merge into one.
    for i in range(k):
        for j in range(i + 1, k):
            if act[i] and act[j] and np.linalg.norm(mu[i] - mu[j]) <= tol:
                mu[i] = (rho[i] * mu[i] + rho[j] * mu[j]) / max(rho[i] + rho[j], 1e-30)
                rho[i] += rho[j] + rho[j + k]
                rho[j] = rho[j + k] = 0.0
                act[j] = act[j + k] = False

    if act[:k].sum() < k:  # room to split: every distinct centre gets a perturbed copy
        scale = tol / 10.0
        for j in np.flatnonzero(act[:k] & ~act[k:]):
            mu[j + k] = mu[j] + scale * rng.standard_normal(mu.shape[1])
            rho[j] = rho[j + k] = rho[j] / 2.0
            act[j + k] = True
            copies.append((j, j + k))
    else:  # K distinct centres: the copies fold back into their centres
        rho[:k] += rho[k:]
        rho[k:] = 0.0
        act[k:] = False

    for src, dst in copies:
        opt_state = _copy_slot(opt_state, src, dst, n_slots)
    return jnp.asarray(mu, dtype), jnp.asarray(rho, dtype), opt_state, jnp.asarray(act)


def anneal(x: np.ndarray, init: np.ndarray, steps: int, *, quiet: bool = False):
    """Minimises :math:`F_\\beta` over centres and masses while β rises, then quenches at β = ∞.

    Starts from the ``K`` centres ``init`` with equal masses. Returns ``(centres, trace,
    beta_critical)``: the distinct centres found (at most ``K``), the per-step :class:`Trace` and
    the predicted β of the first phase transition.
    """
    from tqdm import tqdm

    k = len(init)
    lam_max = float(np.linalg.eigvalsh(np.cov(np.asarray(x), rowvar=False, bias=True))[-1])
    # Rose's first critical temperature: T_c = 2 λ_max(Cov x). Start 4× hotter.
    beta_critical = 1.0 / (2.0 * lam_max)
    tol = 0.1 * np.sqrt(lam_max)  # "two centres are one" below this distance
    optimiser, run_chunk = make_run(jnp.asarray(x), steps, beta_critical / 4.0, tol)
    mu = jnp.concatenate([jnp.asarray(init), jnp.zeros_like(init)])
    active = jnp.arange(2 * k) < k
    rho = jnp.where(active, 1.0 / k, 0.0)
    carry = (mu, rho, optimiser.init(mu), jnp.asarray(0, jnp.int32))
    rng = np.random.default_rng(SEED)
    records = []
    with tqdm(total=steps, disable=quiet, desc="annealing", unit="step") as bar:
        done = 0
        while done < steps:
            length = min(CHUNK, steps - done)
            carry, rec = run_chunk(carry, active, length)
            records.append(rec)
            done += length
            mu, rho, opt_state, count = carry
            mu, rho, opt_state, active = split_and_merge(
                mu, rho, opt_state, active, tol=tol, rng=rng
            )
            carry = (mu, rho, opt_state, count)
            bar.update(length)
            bar.set_postfix(
                beta=f"{float(rec.beta[-1]):.3g}",
                F=f"{float(rec.free_energy[-1]):.3f}",
                centres=int(np.sum(np.asarray(active)[:k])),
            )
    trace = jax.tree.map(lambda *a: np.concatenate([np.asarray(v) for v in a]), *records)
    centres = np.asarray(carry[0])[:k][np.asarray(active)[:k]]
    return centres, trace, beta_critical


def first_split_beta(trace: Trace, threshold: float = 1.0) -> float:
    """The β at which the centres first spread more than ``threshold`` apart after collapsing."""
    c = trace.centres
    pair = np.linalg.norm(c[:, :, None, :] - c[:, None, :, :], axis=-1)
    spread = np.nanmax(np.where(np.isnan(pair), -np.inf, pair), axis=(1, 2))
    collapsed = np.flatnonzero(spread < threshold)
    if collapsed.size == 0:
        return float("nan")
    after = np.flatnonzero(spread[collapsed[0] :] >= threshold)
    return float(trace.beta[collapsed[0] + after[0]]) if after.size else float("nan")


def plot(path: Path, x, labels, init, found, kmeans, trace: Trace, beta_critical, d_kmeans):
    # A bare Figure draws straight to the file: no pyplot, so the caller's backend is left alone.
    from matplotlib.figure import Figure

    steps = np.arange(len(trace.beta))
    finite = np.isfinite(trace.beta)
    quench = int(np.argmin(finite)) if not finite.all() else None
    fig = Figure(figsize=(12, 9), layout="constrained")
    axes = fig.subplots(2, 2)
    ax_beta, ax_loss, ax_ent, ax_data = axes.ravel()

    def shade(ax):
        if quench is not None:
            ax.axvspan(quench, steps[-1], color="0.9", zorder=0)

    ax_beta.semilogy(steps[finite], trace.beta[finite], color="C0")
    ax_beta.axhline(
        beta_critical, color="C3", ls="--", lw=1, label=r"$\beta_c = 1/(2\lambda_{max})$"
    )
    if quench is not None:
        ax_beta.text(quench, beta_critical, r" $\beta=+\infty$", va="bottom")
    shade(ax_beta)
    ax_beta.set(xlabel="step", ylabel=r"$\beta$", title=r"inverse temperature $\beta$ (log scale)")
    ax_beta.legend(loc="lower right")

    ax_loss.plot(steps, trace.hard_distortion, label=r"hard distortion $D = F_\infty$")
    ax_loss.plot(steps, trace.soft_distortion, label=r"soft distortion $D_\beta$")
    ax_loss.plot(steps, trace.free_energy, label=r"free energy $F_\beta$")
    ax_loss.axhline(d_kmeans, color="k", ls=":", label="Lloyd k-means, same init")
    ax_loss.set_yscale("symlog", linthresh=1.0)
    shade(ax_loss)
    ax_loss.set(xlabel="step", title="loss (symlog scale)")
    ax_loss.legend(loc="lower right", fontsize=8)

    ax_ent.plot(steps, trace.entropy, color="C2", label=r"entropy $H_\beta$ (nats)")
    ax_ent.set(xlabel="step", ylabel="nats", title="assignment entropy and phase transitions")
    ax_count = ax_ent.twinx()
    ax_count.step(steps, trace.n_centres, color="C4", where="post", label="distinct centres")
    ax_count.set_ylabel("distinct centres")
    crossing = int(np.argmax(trace.beta >= beta_critical))
    ax_ent.axvline(crossing, color="C3", ls="--", lw=1, label=r"$\beta = \beta_c$")
    shade(ax_ent)
    lines = ax_ent.get_legend_handles_labels()
    more = ax_count.get_legend_handles_labels()
    ax_ent.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right", fontsize=8)

    ax_data.scatter(x[:, 0], x[:, 1], c=labels, s=6, cmap="tab10", alpha=0.5)
    for j in range(trace.centres.shape[1]):
        ax_data.plot(trace.centres[:, j, 0], trace.centres[:, j, 1], color="0.4", lw=0.8)
    ax_data.scatter(*TRUE_CENTRES.T, marker="+", s=150, c="k", label="true centres")
    ax_data.scatter(*init.T, marker="x", s=40, c="C1", label="initial centres")
    ax_data.scatter(*kmeans.T, marker="s", s=60, facecolors="none", edgecolors="C3", label="Lloyd")
    ax_data.scatter(*found.T, marker="o", s=60, facecolors="none", edgecolors="k", label="annealed")
    ax_data.set(title="data, centre paths and final centres", aspect="equal")
    ax_data.legend(loc="lower left", fontsize=8)

    fig.savefig(path, dpi=110)


def main(out_dir: str | Path = "out", steps: int = 3000, quiet: bool = False) -> dict:
    """Runs the example, writes ``deterministic_annealing.png`` to ``out_dir``.

    Returns:
      The measured numbers: final distortions (annealing, Lloyd from the same init, the true
      centres), the largest distance of a matched centre to its true centre for both methods, the
      predicted and the observed β of the first phase transition, the runtime, the PNG path.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x, labels, init = make_data()

    found, trace, beta_critical = anneal(x, init, steps, quiet=quiet)
    kmeans, lloyd_iters = lloyd(x, init)

    order, err = match_centres(found, TRUE_CENTRES)
    korder, kerr = match_centres(kmeans, TRUE_CENTRES)
    result = {
        "steps": steps,
        "n_points": len(x),
        "distortion_annealed": hard_distortion(found, x),
        "distortion_kmeans": hard_distortion(kmeans, x),
        "distortion_true_centres": hard_distortion(TRUE_CENTRES, x),
        "free_energy_at_inf": float(trace.free_energy[-1]),
        "n_centres_found": len(found),
        "max_centre_error_annealed": float(err.max()),
        "max_centre_error_kmeans": float(kerr.max()),
        "kmeans_iterations": lloyd_iters,
        "beta_critical_predicted": beta_critical,
        "beta_first_split": first_split_beta(trace),
    }
    png = out_dir / "deterministic_annealing.png"
    plot(png, x, labels, init, found, kmeans, trace, beta_critical, result["distortion_kmeans"])
    result["png"] = str(png)
    result["runtime_s"] = time.perf_counter() - t0

    if not quiet:
        print(f"\n{len(x)} points, {len(TRUE_CENTRES)} blobs, {steps} steps")
        print(f"{'true centre':>18} {'annealed':>18} {'dist':>6} {'Lloyd':>18} {'dist':>6}")
        for j, c in enumerate(TRUE_CENTRES):
            a = found[order[j]] if order[j] >= 0 else (np.nan, np.nan)
            b = kmeans[korder[j]]
            print(
                f"({c[0]:7.3f}, {c[1]:7.3f}) ({a[0]:7.3f}, {a[1]:7.3f}) {err[j]:6.3f}"
                f" ({b[0]:7.3f}, {b[1]:7.3f}) {kerr[j]:6.3f}"
            )
        print(
            f"distortion: annealed {result['distortion_annealed']:.4f}, "
            f"Lloyd from the same init {result['distortion_kmeans']:.4f} "
            f"({lloyd_iters} iterations), true centres {result['distortion_true_centres']:.4f}"
        )
        print(
            f"first phase transition: predicted beta_c = {beta_critical:.4f}, "
            f"observed {result['beta_first_split']:.4f}"
        )
        print(f"figure: {png}   runtime: {result['runtime_s']:.1f} s")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="directory for the PNG")
    parser.add_argument("--steps", type=int, default=3000, help="optimiser steps")
    args = parser.parse_args()
    main(out_dir=args.out, steps=args.steps)
