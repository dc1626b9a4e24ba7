r"""The regularised arg max with exact zeros: sparsemax, α-entmax, their smooth max and the
Fenchel–Young losses, one family indexed by β and by the Tsallis index α.

The Tsallis α-entropy :math:`H_\alpha(p) = \frac{1}{\alpha(\alpha-1)}\sum_i (p_i - p_i^\alpha)`
(Shannon's entropy at :math:`\alpha = 1`) regularises the arg max:

.. math::
    \operatorname{entmax}_{\alpha,\beta}(z) = \arg\max_{p \in \Delta} \langle p, \beta z\rangle
    + H_\alpha(p), \qquad p_i = \big[(\alpha-1)\beta z_i - \tau\big]_+^{1/(\alpha-1)},

with the threshold :math:`\tau` fixed by :math:`\sum_i p_i = 1`. :math:`\alpha = 1` is
:func:`softjax.softargmax`, :math:`\alpha = 2` is :func:`sparsemax` (the Euclidean projection of
:math:`\beta z` onto the simplex). One compiled function serves every β in
:math:`[-\infty, +\infty]`: :math:`\beta = \pm\infty` give the one-hot arg max / arg min (ties split
equally), :math:`\beta = 0` the uniform distribution, with no Python branch on β.

The threshold is found from the left of its root, where the threshold equation is convex: a
Newton step and then secant steps for α = 2 and α = 1.5 (one sum over the array per pass, exact
once the support is found for α = 2), Newton steps kept inside a bracket otherwise; the iterates
rise monotonically, and the loop stops when the sum is 1 to rounding or τ stops moving.
"""

from __future__ import annotations

import math
import numbers
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from softjax._core import (
    Axis,
    as_beta,
    debug_checked,
    extreme,
    finish,
    finite_beta,
    logits,
    minus,
    nan_from,
    prepare,
    weighted,
)
from softjax.smooth import _lse, _softargmax

__all__ = ["entmax", "fenchel_young_loss", "sparsemax", "tsallis_max"]

_INF = float("inf")

# Iteration cap of the threshold loops, which stop at the root to rounding. The secant steps for
# α = 2 and 1.5 converge superlinearly (about ten on wide supports, in float32). For another α,
# the geometric bisection of the bracket [−1, −n^{1−α}] alone needs about
# log₂((α − 1) ln n / ε) halvings to reach rounding ε, under 60 in float64 for n and α up to 10⁶
# and 20, so 96 steps leave room for the Newton phase.
_MAX_STEPS = 96
# The margin added to the secant slope of α = 2 (besides its rounding error) before it is rounded
# down to a support count.
_SLOPE_MARGIN = 1.0 / 64
# For α = 1.5, a secant step of at most this many times ε·|τ| (4 to 8 units in the last place of
# τ) ends the loop (see _threshold).
_LAST_STEP = 4


# ----------------------------------------------------------------------------------------------
# The definitions. Shapes: z (...), beta and alpha broadcastable to z with the reduced axes kept,
# mask like z or None; every reduction keeps its axes. ``kind`` is static: "2" and "1.5" for those
# static α (exact closed forms on the support), "general" for another static α > 1, "traced"
# for a traced α (α ≤ 1 acts as α = 1, softargmax).


def _sum(x, axes):
    return jnp.sum(x, axis=axes, keepdims=True)


def _powers(u, q, kind):
    """u^q for u > 0 (0 elsewhere), exactly for the static kinds."""
    live = u > 0
    pos = jnp.where(live, u, 1.0)
    if kind == "2":
        out = pos
    elif kind == "1.5":
        out = pos * pos
    else:
        out = jnp.exp(q * jnp.log(pos))
    return jnp.where(live, out, 0.0)


def _threshold(x, q, axes, kind):
    """τ with Σ [x − τ]_+^q = 1 per slice, for x ≤ 0 with max x = 0 (or an empty slice).

    f(τ) = Σ [x − τ]_+^q − 1 is convex and decreasing for q ≥ 1 (α ≤ 2), and τ = −1 lies left of
    the root (the maximum alone contributes 1).

    - α = 2 and 1.5 (q = 1, 2): secant steps through the last two iterates, on f for q = 1 and
      on the nearer-linear ‖[x − τ]_+‖₂ − 1 for q = 2 (convex too, a norm of convex
      non-negative functions, with slope at most −1 left of the root). On a convex decreasing
      function a secant through two points left of the root lands left of it, so the iterates
      rise monotonically. For q = 1 the slope is a support count: the first step is Newton's
      from −1 (the sum and the count in two passes), and later secant slopes, means of counts, are
      rounded down to an integer, which makes a step exact once the last two iterates share
      the final support. For q = 2 the first secant runs through −1 − 1/8 and −1. Every other
      pass reads the array once for a single sum. A step past the root by rounding is taken
      back by the next secant; the loop stops when Σ p − 1 is within about ε of 0 or τ stops
      moving, and for q = 2 also after a step of a few units in the last place of τ.
    - other α: Newton steps inside the bracket [lo, hi] = [−1, −n^{1−α}] (the largest p is at
      least 1/n, n the live count), a geometric bisection −√(lo·hi) when a step leaves it (the
      root may lie many orders of magnitude below 1 in size), until τ stops moving.

    The passes are arithmetic (the support's indicator is sign([x − τ]_+)) and carry one sum each,
    which XLA's CPU backend fuses into one kernel reading the array, with nothing of its size
    written.
    """
    tiny = jnp.finfo(x.dtype).tiny
    # A generous bound on the relative rounding of a sum over a slice of n entries.
    n = jnp.asarray(math.prod(x.shape[a] for a in axes), x.dtype)  # a symbolic size too
    rounding = 2.0 * jnp.sqrt(n) * jnp.finfo(x.dtype).eps
    tau0 = jnp.full_like(jnp.sum(x, axis=axes, keepdims=True), -1.0)  # typed (sharded) like Σ

    def positive(tau):
        up = jnp.maximum(jnp.maximum(x - tau, -2.0), 0.0)  # −2: finite also where x = −inf
        return up, jnp.sign(up)

    if kind in ("2", "1.5"):
        # Here x is finite or NaN (−inf raised to the lowest float), and 2 [d]_+ = d + |d| is
        # exact and keeps a NaN: XLA's CPU reductions take max(NaN, 0) as 0. (The factor 1/2
        # is applied to the sums: a constant factor inside the pass is materialised at the size
        # of x by XLA's CPU backend.)
        if kind == "2":
            # Newton's step from −1 (the sum and the support count, in two passes).
            # The count reads x by itself: two sums of one array would write the array out,
            # and so would a constant shared by two passes (hence 2x against −2 here). Its
            # value on a NaN entry does not matter: f0 is then NaN, which decides.
            up2 = x - tau0 + jnp.abs(x - tau0)
            f0 = 0.5 * _sum(up2, axes) - 1.0
            slope0 = _sum(jnp.sign(jnp.maximum(x + x, -2.0) + 2.0), axes)  # #{x > −1}
            # An empty slice (slope 0) keeps τ = −1: every entry is then 0.
            step0 = jnp.maximum(f0, 0.0) / jnp.maximum(slope0, tiny)
            tau1 = tau0 + jnp.where(slope0 > 0, step0, 0.0) + 0.0 * f0  # NaN: its slice NaN
            done0 = (f0 <= 0) | (slope0 <= 0) | jnp.isnan(f0)
        else:
            # The secant through −1 − 1/8 and −1 instead (two passes of one sum each: a pass
            # of two sums would hold [x − τ]_+ in memory).
            tau0 = tau0 - 0.125
            up2 = x - tau0 + jnp.abs(x - tau0)
            f0 = 0.5 * jnp.sqrt(_sum(up2 * up2, axes)) - 1.0
            tau1 = tau0 + 0.125 + 0.0 * f0  # a NaN entry: NaN all through its slice
            done0 = (f0 <= 0) | jnp.isnan(f0)  # f0 ≤ 0: an empty slice

        def secant(state):
            tau, tau_prev, f_prev, done, step = state
            up = jnp.maximum(x - tau, 0.0)  # NaN slices are done: their results are discarded
            f = (_sum(up, axes) if kind == "2" else jnp.sqrt(_sum(up * up, axes))) - 1.0
            span = tau - tau_prev  # > 0 while left of the root; < 0 on the way back
            slope = (f_prev - f) / jnp.where(span == 0, 1.0, span)
            if kind == "2":
                # The secant slope is a mean of support counts, each at least the count at τ:
                # rounded down to an integer it is still at least that count, so the step stays
                # left of the root, and is Newton's (exact) step as soon as the last two
                # iterates share a support. The rounding is trusted only left of the root and
                # while the slope's error (two sums' rounding over the step) is well below 1.
                error = rounding * (f_prev + f + 2.0) / jnp.maximum(jnp.abs(span), tiny)
                floored = jnp.floor(slope + _SLOPE_MARGIN + error)
                slope = jnp.where((error < 0.25) & (f > 0), floored, slope)
            # The root is at most |f| away (the slope is at least 1 in size wherever f > −1):
            # a guard against rounding in the slope. A rounding overshoot (f < 0) is taken
            # back by the next secant.
            move = jnp.clip(f / jnp.where(slope > 0, slope, 1.0), -jnp.abs(f), jnp.abs(f))
            new = tau + move
            eps = jnp.finfo(f.dtype).eps
            converged = jnp.abs(f) <= eps / q  # Σ p − 1 ≈ q f
            stuck = converged | ~(slope > 0) | jnp.isnan(f)
            last = new == tau
            if kind == "1.5":
                # A step of a few units in the last place of τ is the last: it is taken, and the
                # next, smaller by the superlinear convergence (f is smooth across a change of
                # support), would be lost to rounding; a pass that only confirmed it would
                # alternate by one unit about the root. Not for α = 2: there a secant slope
                # spanning a change of support may be many times the count at the root, and a
                # small step may then leave most of the way to go.
                last = last | (jnp.abs(move) <= _LAST_STEP * eps * jnp.abs(tau))
            return (
                jnp.where(done | stuck, tau, new),
                jnp.where(done, tau_prev, tau),
                jnp.where(done, f_prev, f),
                done | stuck | last,
                step + 1,
            )

        init = (tau1, tau0, f0, done0, 0)
        return lax.while_loop(lambda s: ~jnp.all(s[3]) & (s[4] < _MAX_STEPS), secant, init)[0]

    def body(state):
        tau, lo, hi, done, step = state
        up, on = positive(tau)
        k = _sum(on, axes)
        power = on * jnp.exp(q * jnp.log(jnp.maximum(up, tiny)))
        f = _sum(power, axes) - 1.0
        slope = q * _sum(power / jnp.maximum(up, tiny), axes)
        lo = jnp.where(f > 0, tau, lo)
        hi = jnp.where(f <= 0, tau, hi)
        newton = tau + f / jnp.where(slope > 0, slope, 1.0)
        inside = (newton > lo) & (newton < hi) & (slope > 0)
        new = jnp.where(inside, newton, -jnp.sqrt(lo * hi))
        finished = (new == tau) | (k == 0) | jnp.isnan(k)  # a NaN entry: NaN all its slice
        tau = jnp.where(done, tau, new)
        return tau, lo, hi, done | finished, step + 1

    def cond(state):
        return ~jnp.all(state[3]) & (state[4] < _MAX_STEPS)

    no = jnp.zeros_like(tau0, dtype=bool)
    n_live = jnp.maximum(_sum((x > -_INF).astype(x.dtype), axes), 1.0)
    hi0 = -jnp.maximum(jnp.exp(-jnp.log(n_live) / q), tiny)  # right of the root (p_max ≥ 1/n)
    return lax.while_loop(cond, body, (tau0, tau0, hi0, no, 0))[0]


def _entmax_value(z, beta, alpha, mask, axes, kind):
    if kind == "1.5":
        # x = β(z − M)/2, formed by the kernel itself: a separate halving of y would be fused
        # into every pass of the threshold loop.
        q, (x, _) = 2.0, logits(z, beta / 2, mask, axes)
        y = x
    else:
        y, _ = logits(z, beta, mask, axes)  # β(z − M) ≤ 0, exact at β = 0, ±∞; −inf when masked
    if kind == "2":
        q, x = 1.0, y
    elif kind != "1.5":
        am1 = jnp.where(alpha > 1, _finite(alpha) - 1, 1.0)
        q, x = 1.0 / am1, am1 * y
    if kind in ("2", "1.5"):
        x = y = jnp.maximum(x, jnp.finfo(x.dtype).min)  # −inf (masked) to the lowest float
    tau = _threshold(x, q, axes, kind)  # NaN on a slice with a NaN entry
    # β = ±∞ (the extreme's ties) and β = 0 (every live entry): y is 0 on the k entries that
    # share the mass and −inf elsewhere, and τ = −1 with a weight 1/k gives each exactly 1/k
    # (the normalisation gives it for another α). 0·τ keeps a NaN slice NaN.
    exact = jnp.isinf(beta) | (beta == 0)
    tau = jnp.where(exact, 0.0 * tau - 1.0, tau)

    def weights():
        top = _sum((y == 0).astype(y.dtype), axes)
        return jnp.where(exact, 1.0 / jnp.maximum(top, 1.0), 1.0)

    # Arithmetic only, so that a NaN threshold spreads over its slice: [x − τ]_+^q.
    # 0·|τ|: a per-slice zero (+0, and NaN on a NaN slice), which XLA's CPU reductions fuse as
    # an operand of the backward pass (a scalar 0 there is written out at the size of z).
    up = jnp.maximum(x - tau, 0.0 * jnp.abs(tau))
    if kind in ("2", "1.5"):
        w = lax.cond(jnp.any(exact), weights, lambda: jnp.ones_like(tau))
        p = (up if kind == "2" else up * up) * w
    else:
        tiny = jnp.finfo(up.dtype).tiny
        p = jnp.minimum(up * jnp.finfo(up.dtype).max, 1.0) * jnp.exp(q * jnp.log(up + tiny))
        p = p / jnp.maximum(_sum(p, axes), tiny)
    if kind == "traced":
        p = jnp.where(alpha <= 1, _softargmax(z, beta, mask, axes), p)
        # α = +∞: the arg max limit, the extreme's ties sharing equally (as at β = ±∞).
        top = (y == 0).astype(p.dtype)
        p = jnp.where(jnp.isinf(alpha), top / jnp.maximum(_sum(top, axes), 1.0) + (p - p), p)
        p = nan_from(alpha, p)
    return p


def _finite(alpha):
    """α with +∞ replaced by 2: a finite stand-in for the arithmetic of a branch whose result
    is then replaced by the α = +∞ limit."""
    return jnp.where(jnp.isinf(alpha), 2.0, alpha)


@jax.custom_jvp
def _sqrt_support(p):
    """√p for p ≥ 0, arithmetic (so that XLA fuses it into the passes that read it), with the
    derivative 0 at p = 0: off the support p stays 0 under a small change of z, where the
    derivative of √ would give ∞·0."""
    return jnp.sqrt(p)


@_sqrt_support.defjvp
def _sqrt_support_jvp(primals, tangents):
    (p,), (dp,) = primals, tangents
    root = _sqrt_support(p)  # itself, so that every order of derivative holds at p = 0
    live = p > 0
    return root, jnp.where(live, 0.5 / jnp.where(live, root, 1.0), 0.0) * dp


def _support_weights(p, alpha, kind):
    """s = p^{2−α} on the support (0 off it): the weights of the Jacobian.

    For α = 2 and 1.5 in arithmetic only (see :func:`_threshold`): sign(p) and √p.
    """
    if kind == "2":
        return jnp.sign(p)
    if kind == "1.5":
        return _sqrt_support(p)
    live = p > 0
    logp = jnp.log(jnp.where(live, p, 1.0))
    return jnp.where(live, jnp.exp((2 - jnp.maximum(_finite(alpha), 1.0)) * logp), 0.0)


# Custom JVP: the closed-form Jacobian on the support, β(diag s − s sᵀ/Σs) with s = p^{2−α}, and
# the β- and α-slopes by implicit differentiation of the threshold equation (autodiff through the
# loop would be neither exact nor cheap, and gives NaN at β = ±∞ and on masks).
@partial(jax.custom_jvp, nondiff_argnums=(4, 5))
def _entmax(z, beta, alpha, mask, axes, kind):
    return _entmax_value(z, beta, alpha, mask, axes, kind)


def _entmax_jvp(axes, kind, primals, tangents):
    z, beta, alpha, mask = primals
    dz, dbeta, dalpha, _ = tangents
    p = _entmax(z, beta, alpha, mask, axes, kind)
    live = p > 0
    s = _support_weights(p, alpha, kind)
    total = jnp.maximum(_sum(s, axes), jnp.finfo(p.dtype).tiny)

    def project(v, tangent=False):  # s ⊙ (v − ⟨s, v⟩/Σs), v read on the support only
        if not tangent:
            v = jnp.where(live, v, 0.0)  # z − M is −inf off the support on masked entries
        elif kind not in ("2", "1.5") or mask is not None:
            v = jnp.where(live, v, 0.0)
        # else a tangent in z is taken as finite off the support, where s is 0: a select there
        # would be transposed into the backward pass, whose sums and output XLA's CPU backend
        # then no longer fuses into one kernel (the output is written out twice).
        return s * (v - _sum(s * v, axes) / total)

    terms = []  # the slopes in z, β and α, summed at the end (no zero array to carry)
    if not isinstance(dz, SymbolicZero):
        terms.append(finite_beta(beta) * project(dz.astype(p.dtype), tangent=True))
    if not (isinstance(dbeta, SymbolicZero) and isinstance(dalpha, SymbolicZero)):
        d = minus(z.astype(p.dtype), extreme(z, beta, mask, axes))  # z − M, finite on S
    if not isinstance(dbeta, SymbolicZero):
        terms.append(project(d) * dbeta)
    if not isinstance(dalpha, SymbolicZero):
        # ∂p/∂α = q [s ⊙ (y − ⟨s,y⟩/Σs) − p log p + s Σ(p log p)/Σs], q = 1/(α − 1),
        # y = β(z − M); at α = 1 the limit −½ p ⊙ (log²p − ⟨p, log²p⟩).
        logp = jnp.where(live, jnp.log(jnp.where(live, p, 1.0)), 0.0)
        y = jnp.where(live, finite_beta(beta) * d, 0.0)
        plogp = p * logp
        am1 = jnp.where(alpha > 1, _finite(alpha) - 1, 1.0)
        general = (project(y) - (plogp - s * _sum(plogp, axes) / total)) / am1
        sq = logp * logp
        at_one = -0.5 * p * (sq - _sum(p * sq, axes))
        terms.append(jnp.where(alpha > 1, general, at_one) * dalpha)
    out = sum(terms[1:], terms[0]) if terms else jnp.zeros_like(p)
    if kind in ("general", "traced"):
        out = jnp.where(jnp.isinf(alpha), 0.0, out)  # the arg max limit is piecewise constant
    if mask is not None:
        out = jnp.where(mask, out, 0.0)
    return p, out


_entmax.defjvp(_entmax_jvp, symbolic_zeros=True)


def _tsallis_entropy(p, alpha, axes):
    """H_α(p) = Σ p (1 − p^{α−1})/(α(α − 1)); Shannon's −Σ p log p at α = 1 (α ≤ 1 acts as 1).

    Written with expm1, term by term, so that nothing cancels as α → 1 (the form
    (1 − Σ p^α)/(α(α − 1)) loses about eps/(α − 1)).
    """
    live = p > 0
    logp = jnp.log(jnp.where(live, p, 1.0))
    shannon = -_sum(jnp.where(live, p * logp, 0.0), axes)
    am1 = jnp.where(alpha > 1, _finite(alpha) - 1, 1.0)
    a = am1 + 1
    terms = jnp.where(live, -p * jnp.expm1(am1 * logp), 0.0)
    tsallis = jnp.where(jnp.isinf(alpha), 0.0, _sum(terms, axes) / (a * am1))  # H_∞ = 0
    return jnp.where(alpha > 1, tsallis, shannon)


def _tsallis_entropy_slope(p, alpha, axes):
    """∂H_α/∂α at fixed p; −(H₁ + ½ Σ p log²p) at α = 1."""
    live = p > 0
    logp = jnp.where(live, jnp.log(jnp.where(live, p, 1.0)), 0.0)
    am1 = jnp.where(alpha > 1, _finite(alpha) - 1, 1.0)
    a = am1 + 1
    pa = jnp.where(live, jnp.exp(a * logp), 0.0)
    power_sum, log_sum = _sum(pa, axes), _sum(pa * logp, axes)
    den = a * am1
    general = (-den * log_sum - (1.0 - power_sum) * (2 * a - 1)) / (den * den)
    shannon = -_sum(p * logp, axes)
    at_one = -(shannon + 0.5 * _sum(p * logp * logp, axes))
    return jnp.where(alpha > 1, jnp.where(jnp.isinf(alpha), 0.0, general), at_one)


def _tsallis_parts(z, beta, alpha, mask, axes, kind):
    """(value, p, H_α(p), M) of the Tsallis smooth max ⟨p, z⟩ + H_α(p)/β at p = entmax."""
    p = _entmax(z, beta, alpha, mask, axes, kind)
    m = extreme(z, beta, mask, axes)
    d = minus(z.astype(p.dtype), m)
    h = _tsallis_entropy(p, alpha, axes)
    safe_beta = jnp.where(beta == 0, 1.0, beta)
    value = m + weighted(p, d, axes) + h / safe_beta
    # β = 0: the limit β → 0⁺, +inf as soon as two entries are live (as for smooth_max).
    value = jnp.where(beta == 0, jnp.where((h > 0) & (m > -_INF), _INF, m), value)
    if mask is not None:  # a slice without a live entry
        value = jnp.where(_sum(mask.astype(p.dtype), axes) == 0, -_INF, value)
    return nan_from(_sum(p, axes), value), p, h


# Custom JVP: ∇_z is entmax (Danskin), ∂/∂β = −H_α/β² and ∂/∂α = (∂H_α/∂α)/β at the optimum,
# finite at β = ±∞, on ties and on masks.
@partial(jax.custom_jvp, nondiff_argnums=(4, 5))
def _tsallis(z, beta, alpha, mask, axes, kind):
    if kind == "1":
        return _lse(z, beta, mask, axes)
    value, p, _ = _tsallis_parts(z, beta, alpha, mask, axes, kind)
    if kind == "traced":
        value = nan_from(alpha, jnp.where(alpha <= 1, _lse(z, beta, mask, axes), value))
    return value


def _tsallis_jvp(axes, kind, primals, tangents):
    z, beta, alpha, mask = primals
    dz, dbeta, dalpha, _ = tangents
    if kind == "1":
        value, out = jax.jvp(
            lambda z, b: _lse(z, b, mask, axes),
            (z, beta),
            (
                jnp.zeros_like(z) if isinstance(dz, SymbolicZero) else dz,
                jnp.zeros_like(beta) if isinstance(dbeta, SymbolicZero) else dbeta,
            ),
        )
        return value, out
    value = _tsallis(z, beta, alpha, mask, axes, kind)
    p = _entmax(z, beta, alpha, mask, axes, kind)
    out = jnp.zeros_like(value)
    if not isinstance(dz, SymbolicZero):
        out = out + weighted(p, dz.astype(p.dtype), axes)
    safe_beta = jnp.where(beta == 0, 1.0, beta)
    if not isinstance(dbeta, SymbolicZero):
        h = _tsallis_entropy(p, alpha, axes)
        slope = jnp.where(beta == 0, jnp.where(h > 0, -_INF, 0.0), -h / safe_beta**2)
        out = out + slope * dbeta
    if not isinstance(dalpha, SymbolicZero):
        slope = _tsallis_entropy_slope(p, alpha, axes) / safe_beta
        out = out + jnp.where(beta == 0, 0.0, slope) * dalpha
    return value, out


_tsallis.defjvp(_tsallis_jvp, symbolic_zeros=True)


def _fenchel_young(z, y, beta, alpha, mask, axes, kind):
    """sign β · (Ω*(z) − ⟨y, z⟩ − H_α(y)/β), written as ⟨…⟩ of z − M (M cancels)."""
    value = _tsallis(z, beta, alpha, mask, axes, kind)
    m = extreme(z, beta, mask, axes)
    d = minus(z.astype(beta.dtype), m)
    if mask is not None:
        y = jnp.where(mask, y, 0.0)
    y_dot = jnp.sum(jnp.where(y != 0, y * jnp.where(y != 0, d, 0.0), 0.0), axes, keepdims=True)
    h_y = _tsallis_entropy(y, alpha, axes)
    # At α ≤ 1 the entropy is Shannon's, which autodiff sees as constant in α: a zero term that
    # carries the α-slope of the Tsallis family there (its limit at α = 1).
    slope = lax.stop_gradient(_tsallis_entropy_slope(y, alpha, axes))
    a = _finite(alpha)
    h_y = h_y + jnp.where(alpha > 1, 0.0, (a - lax.stop_gradient(a)) * slope)
    safe_beta = jnp.where(beta == 0, 1.0, beta)
    excess = minus(value, m)
    loss = jnp.where(beta < 0, -1.0, 1.0) * (excess - y_dot - h_y / safe_beta)
    loss = jnp.maximum(loss, 0.0)  # ≥ 0 exactly: rounding at small |β| may otherwise cross 0
    # β = 0: (H_α(uniform) − H_α(y))/|β| → 0 for a uniform y, +inf otherwise.
    live = jnp.ones_like(y, dtype=bool) if mask is None else mask
    y_max = jnp.max(jnp.where(live, y, -_INF), axis=axes, keepdims=True, initial=-_INF)
    y_min = jnp.min(jnp.where(live, y, _INF), axis=axes, keepdims=True, initial=_INF)
    return jnp.where(beta == 0, jnp.where(y_max == y_min, 0.0, _INF), loss)


_entmax_call = jax.jit(_entmax, static_argnums=(4, 5))
_tsallis_call = jax.jit(_tsallis, static_argnums=(4, 5))
_fenchel_young_call = jax.jit(_fenchel_young, static_argnums=(5, 6))


def _alpha(alpha, shape, axes, dtype):
    """(α per slice, kind): a static Python α is checked and picks its exact path."""
    if isinstance(alpha, bool):
        raise TypeError(f"alpha must be a real number >= 1 or an array, got {alpha!r}")
    if isinstance(alpha, numbers.Real):
        if not alpha >= 1:  # also NaN
            raise ValueError(f"alpha must be >= 1, got {alpha!r}")
        if alpha == _INF:  # the arg max limit, served by the traced path
            return as_beta(alpha, shape, axes, dtype, "alpha"), "traced"
        # Chosen on α as the compute dtype holds it: 1 + 1e-8 is 1 in float32, softargmax.
        rounded = float(np.asarray(alpha, dtype))
        kind = {1.0: "1", 1.5: "1.5", 2.0: "2"}.get(rounded, "general")
        return as_beta(rounded, shape, axes, dtype, "alpha"), kind
    return as_beta(alpha, shape, axes, dtype, "alpha"), "traced"


# ----------------------------------------------------------------------------------------------
# Public API


@debug_checked
def sparsemax(
    z: ArrayLike, *, beta: ArrayLike = 1.0, axis: Axis = -1, where: ArrayLike | None = None
) -> jax.Array:
    r"""Sparsemax: the Euclidean projection of :math:`\beta z` onto the simplex.

    .. math::
        \operatorname{sparsemax}_\beta(z) = \arg\min_{p \in \Delta} \|p - \beta z\|^2,
        \qquad p_i = [\beta z_i - \tau]_+,\ \sum_i p_i = 1 .

    It is :func:`entmax` at :math:`\alpha = 2` and has exact zeros. :math:`\beta = +\infty` gives
    :func:`softjax.argmax_onehot` (ties split equally), :math:`\beta = -\infty`
    :func:`softjax.argmin_onehot`, :math:`\beta = 0` the uniform distribution, all from the same
    compiled code. The threshold τ is computed without sorting: a Newton step, then secant steps
    whose slopes are rounded to support counts, so that a step is exact once the support is found
    (a handful of passes over the input, to rounding). The Jacobian is
    :math:`\beta(\operatorname{diag} s - s s^\top/|S|)` with :math:`s` the indicator of the support
    :math:`S`; :math:`\partial p/\partial\beta = s \odot (z - \bar z_S)`.

    Masked entries get 0 and are invisible to values and gradients; an unmasked NaN makes its slice
    NaN; 16-bit input is computed in float32 and returned in its own dtype. In forward mode a
    tangent that is infinite or NaN on an unmasked entry off the support (the tangent of log 0,
    say) makes its slice's tangent NaN: mask such entries with ``where``.

    Args:
      z: scores, any shape.
      beta: inverse temperature in :math:`[-\infty, +\infty]`: a scalar or one per slice (the
        reduced axes kept), may be traced, vmapped and differentiated.
      axis: the axis or axes to normalise over (int, tuple of ints, or None for all).
      where: optional boolean mask broadcastable to ``z``; False entries are left out.

    Returns:
      An array like ``z`` whose slices along ``axis`` are non-negative and sum to one.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.sparse import sparsemax
      >>> print(sparsemax(jnp.array([0.0, 0.5, 1.0])))
      [0.   0.25 0.75]
      >>> print(sparsemax(jnp.array([0.0, 0.5, 1.0]), beta=4.0))
      [0. 0. 1.]
      >>> print(sparsemax(jnp.array([1.0, 5.0, 5.0]), beta=jnp.inf))
      [0.  0.5 0.5]

    References:
      Martins & Astudillo, "From softmax to sparsemax: a sparse model of attention and multi-label
      classification", ICML 2016, arXiv:1602.02068.
      Michelot, "A finite algorithm for finding the projection of a point onto the canonical
      simplex of R^n", J. Optim. Theory Appl. 50 (1986).
    """
    z, beta, mask, axes, dtype = prepare(z, beta, axis, where, "z")
    alpha = jnp.asarray(2.0, beta.dtype)
    return _entmax_call(z, beta, alpha, mask, axes, "2").astype(dtype)


@debug_checked
def entmax(
    z: ArrayLike,
    *,
    alpha: ArrayLike = 1.5,
    beta: ArrayLike = 1.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""α-entmax of :math:`\beta z`: the arg max regularised by the Tsallis α-entropy.

    .. math::
        \operatorname{entmax}_{\alpha,\beta}(z) = \arg\max_{p\in\Delta} \langle p, \beta z\rangle
        + H_\alpha(p), \qquad H_\alpha(p) = \frac{1}{\alpha(\alpha-1)}\sum_i (p_i - p_i^\alpha),

    so that :math:`p_i = [(\alpha-1)\beta z_i - \tau]_+^{1/(\alpha-1)}` with τ fixed by
    :math:`\sum_i p_i = 1`. :math:`\alpha = 1` is :func:`softjax.softargmax` (its own code),
    :math:`\alpha = 2` is :func:`sparsemax`, and :math:`\alpha \to \infty` tends to the arg max;
    every :math:`\alpha > 1` gives exact zeros. The β limits, masks and NaN behave as in
    :func:`sparsemax`, and for α = 1.5 and 2 so do forward-mode tangents.

    For α = 2 and α = 1.5 given as Python numbers τ is found by secant steps, each one pass over
    the input; otherwise by Newton steps kept inside a bracket, run until τ stops moving (at most
    96 steps). Either way it is converged to rounding. ``alpha`` may be traced, one per slice,
    and differentiated: with :math:`s = p^{2-\alpha}` on the support, the Jacobian in z is
    :math:`\beta(\operatorname{diag} s - s s^\top/\textstyle\sum s)`, and the α-derivative is
    the implicit one of the threshold equation,
    :math:`\frac{1}{\alpha-1}\big[s\odot(y - \frac{\langle s,y\rangle}{\sum s}) - p\log p +
    s\,\frac{\sum p\log p}{\sum s}\big]`, :math:`y = \beta z`
    (:math:`-\tfrac12\,p\odot(\log^2 p - \langle p,\log^2 p\rangle)` at α = 1).
    A traced :math:`\alpha \le 1` acts as :math:`\alpha = 1`; a Python ``alpha`` below 1 raises.
    Accuracy: α ≤ 2 is accurate to rounding. For α > 2 an entry at the edge of the support is
    the power :math:`1/(\alpha - 1)` of :math:`x_i - \tau`, a difference that keeps few digits
    there: its absolute error grows to about :math:`(\epsilon|\tau|)^{1/(\alpha-1)}` (ε the
    rounding unit), e.g. 10⁻³ at α = 5 and 0.1 at α = 10 in float32 for scores of spread about 1;
    use float64 for large α.

    Args:
      z: scores, any shape.
      alpha: the Tsallis index α ≥ 1: a Python number (static, checked) or an array (traced;
        scalar or one per slice), may be differentiated.
      beta: inverse temperature in :math:`[-\infty, +\infty]`, scalar or one per slice.
      axis: the axis or axes to normalise over.
      where: optional boolean mask broadcastable to ``z``; False entries are left out.

    Returns:
      An array like ``z`` whose slices along ``axis`` are non-negative and sum to one.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.sparse import entmax
      >>> z = jnp.array([0.0, 1.0, 2.0])
      >>> print(entmax(z, alpha=1.5))
      [0.         0.16928107 0.8307189 ]
      >>> print(entmax(z, alpha=2.0, beta=0.5))
      [0.  0.25 0.75]

    References:
      Peters, Niculae & Martins, "Sparse sequence-to-sequence models", ACL 2019,
      arXiv:1905.05702.
      Blondel, Martins & Niculae, "Learning with Fenchel-Young losses", JMLR 21 (2020),
      arXiv:1901.02324.
    """
    z, beta, mask, axes, dtype = prepare(z, beta, axis, where, "z")
    alpha, kind = _alpha(alpha, z.shape, axes, beta.dtype)
    if kind == "1":
        return _softargmax(z, beta, mask, axes).astype(dtype)
    return _entmax_call(z, beta, alpha, mask, axes, kind).astype(dtype)


@debug_checked
def tsallis_max(
    z: ArrayLike,
    *,
    alpha: ArrayLike = 1.5,
    beta: ArrayLike = 1.0,
    axis: Axis = -1,
    keepdims: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""The Tsallis smooth max: the value of the α-entropy regularised max, whose gradient is
    :func:`entmax`.

    .. math::
        \operatorname{tmax}_{\alpha,\beta}(z) = \max_{p\in\Delta}\ \langle p, z\rangle
        + \frac{H_\alpha(p)}{\beta}, \qquad
        \nabla_z \operatorname{tmax}_{\alpha,\beta}(z) = \operatorname{entmax}_{\alpha,\beta}(z).

    :math:`\alpha = 1` is :func:`softjax.smooth_max` (its own code), :math:`\alpha = 2` the max
    regularised by the Gini entropy, whose gradient is :func:`sparsemax`. :math:`\beta = +\infty`
    gives :math:`\max z`, :math:`\beta = -\infty` gives :math:`\min z` (β < 0 turns the max into the
    min over p), and :math:`\max z \le \operatorname{tmax} \le \max z + H_\alpha(u)/\beta` for
    β > 0. At β = 0 the value is the right-hand limit, as for :func:`softjax.smooth_max`:
    :math:`+\infty` with two or more live entries.
    :math:`\partial/\partial\beta = -H_\alpha(p)/\beta^2` and
    :math:`\partial/\partial\alpha = (\partial H_\alpha/\partial\alpha)(p)/\beta` at the optimum.

    Args:
      z: scores, any shape.
      alpha: the Tsallis index α ≥ 1 (Python number or traced array, one per slice).
      beta: inverse temperature, scalar or one per slice.
      axis: the axis or axes to reduce.
      keepdims: keep the reduced axes as size 1.
      where: optional boolean mask; False entries are left out.

    Returns:
      The reduced array.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.sparse import tsallis_max
      >>> z = jnp.array([0.0, 0.5, 1.0])
      >>> print(f"{tsallis_max(z, alpha=2.0):.4f} {tsallis_max(z, alpha=2.0, beta=jnp.inf):.4f}")
      1.0625 1.0000

    References:
      Blondel, Martins & Niculae, "Learning with Fenchel-Young losses", JMLR 21 (2020),
      arXiv:1901.02324.
    """
    z, beta, mask, axes, dtype = prepare(z, beta, axis, where, "z")
    alpha, kind = _alpha(alpha, z.shape, axes, beta.dtype)
    return finish(_tsallis_call(z, beta, alpha, mask, axes, kind), axes, keepdims, dtype)


@debug_checked
def fenchel_young_loss(
    z: ArrayLike,
    y: ArrayLike,
    *,
    alpha: ArrayLike = 1.0,
    beta: ArrayLike = 1.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""The Fenchel–Young loss of scores ``z`` against a target distribution ``y``.

    .. math::
        L_{\alpha,\beta}(z; y) = \operatorname{tmax}_{\alpha,\beta}(z) - \langle y, z\rangle
        - \frac{H_\alpha(y)}{\beta} \;\ge\; 0,
        \qquad \nabla_z L = \operatorname{entmax}_{\alpha,\beta}(z) - y .

    It is zero iff the prediction :func:`entmax` equals ``y``. :math:`\alpha = 1, \beta = 1` is the
    softmax cross-entropy minus the entropy of ``y`` (``optax.softmax_cross_entropy`` for one-hot
    ``y``), :math:`\alpha = 2` the sparsemax loss, :math:`\beta = +\infty` the perceptron loss
    :math:`\max z - \langle y, z\rangle`. For :math:`\beta < 0` (predictions toward the minimum) the
    sign is turned so that the loss stays non-negative, and its gradient is
    :math:`y - \operatorname{entmax}_{\alpha,\beta}(z)`; at β = 0 the loss is 0 for a uniform
    ``y`` and :math:`+\infty` otherwise (the limit β → 0). Masked entries of ``z`` and ``y`` are
    left out. The term :math:`H_\alpha(y)/\beta` is a difference of entropies over β, so at a
    small :math:`|\beta|` the loss is accurate to about :math:`\epsilon/|\beta|` in absolute
    terms (ε the rounding unit of the compute dtype); it is never returned negative.

    It is an optax-style loss (scores first, targets second, one value per slice):
    ``optax.losses.make_fenchel_young_loss(max_fun)`` builds ``max_fun(z) − ⟨y, z⟩`` over the last
    axis; with ``max_fun = partial(tsallis_max, alpha=α, beta=β)`` and β > 0 it equals this loss
    less the term :math:`H_\alpha(y)/\beta`, which is constant in ``z`` (same gradient, but not
    zero at the optimum).

    Args:
      z: scores, any shape.
      y: target distributions broadcastable to ``z`` (non-negative, summing to one along ``axis``
        over the unmasked entries; the loss is non-negative only for such ``y``).
      alpha: the Tsallis index α ≥ 1 (Python number or traced array, one per slice).
      beta: inverse temperature, scalar or one per slice.
      axis: the axis or axes of the distributions.
      where: optional boolean mask; False entries are left out.

    Returns:
      The loss per slice: ``z``'s shape without the reduced axes.

    Example:
      >>> import jax.numpy as jnp
      >>> from softjax.sparse import fenchel_young_loss
      >>> z, y = jnp.array([0.0, 1.0, 3.0]), jnp.array([0.0, 1.0, 0.0])
      >>> print(f"{fenchel_young_loss(z, y):.4f} {fenchel_young_loss(z, y, alpha=2.0):.4f}")
      2.1698 2.0000
      >>> print(f"{fenchel_young_loss(z, y, beta=jnp.inf):.4f}")
      2.0000

    References:
      Blondel, Martins & Niculae, "Learning with Fenchel-Young losses", JMLR 21 (2020),
      arXiv:1901.02324.
    """
    z, beta, mask, axes, dtype = prepare(z, beta, axis, where, "z")
    alpha, kind = _alpha(alpha, z.shape, axes, beta.dtype)
    y = jnp.asarray(y)
    if jnp.issubdtype(y.dtype, jnp.complexfloating):
        raise TypeError(f"y must be real, got dtype {y.dtype}")
    # Typed (and sharded) like z: the selects below need one sharding.
    y = jnp.broadcast_to(y, z.shape).astype(beta.dtype) + jnp.zeros_like(z, beta.dtype)
    out = _fenchel_young_call(z, y, beta, alpha, mask, axes, kind)
    return finish(out, axes, False, dtype)
