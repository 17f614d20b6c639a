"""Feature Alignment (FA) losses between a fixed source feature cloud and a trainable target cloud.

Three variants, selectable by string through :class:`FAVariant` / :class:`FeatureAlignment`:

``"w1"`` (the paper, eq. 14)
    ``epsilon * W_p(mu_S, mu_T)`` between the uniform empirical measures, Euclidean ground metric
    raised to ``p`` (``p = 1`` is the paper's W1). Solved exactly (``method="emd"``) or with
    entropic Sinkhorn (``method="sinkhorn"``; the paper says POT Sinkhorn with "default
    regularisation", which POT does not define, so ``reg`` is a parameter, see
    :func:`wasserstein_fa`; the default solver is the torch one, ``solver="pot"`` is POT's).

``"sinkhorn_div"`` (the reference RECRAFT code)
    The debiased Sinkhorn divergence ``S_eps = OT_eps(a,b) - 1/2 OT_eps(a,a) - 1/2 OT_eps(b,b)``
    with cost ``1/2 |x-y|^2`` and absolute ``eps = 0.1`` (spec §3.2), where
    ``OT_eps = min <pi, C> + eps * KL(pi | a x b)`` is the full entropic objective (geomloss's
    convention, which the reference code goes through), not only its linear part.

``"otdd"`` (ORCA)
    The OTDD surrogate of spec §8.2: a debiased outer Sinkhorn divergence over the label-augmented
    cost ``1/2 |s-t|^2 + 1/2 W^2(S_y, T_k)``; the label-to-label distances are constants (no
    gradient), so the labels only shape the transport plan.

How OT is solved and how gradients flow
---------------------------------------
Exact OT (``"w1"`` with ``method="emd"``) is POT's network simplex (``ot.solve`` -> ``emd2``).
Every entropic problem goes through one of two solvers, picked by ``solver=`` on every function
(and through :class:`FeatureAlignment`'s keyword arguments):

``solver="torch"`` (default, :func:`sinkhorn_potentials`)
    Log-domain Sinkhorn on the dual potentials ``(f, g)`` with ``torch.logsumexp``, on the
    cost's device (CPU or CUDA), in float64 (float32 was slower on CPU and stalls at marginal
    errors of 1e-4, see ``SOLVER_DTYPE``). Epsilon scaling (``eps_scaling=0.5``: ``TORCH_SCALING_ITERS = 1``
    iteration at each ``max(C) * 0.5^k`` above ``reg``), then up to ``num_iter_max`` (default
    1000) iterations at ``reg`` until the L1 marginal error of the plan is below ``stop_thr``
    (default ``TORCH_STOP_THR = 1e-6``; the error comes free with each update). The final stage
    is over-relaxed (SOR, factor estimated from the observed convergence rate): at ``eps = 0.1``
    on 1000 x 132 points in d = 128, plain Sinkhorn needs ~1500 iterations to 1e-6, this ~150.
    Self-terms ``OT(x, x)`` (two clouds with the same points, the symmetric OTDD costs) use the
    symmetric iteration ``f <- (f + T(f)) / 2`` on one potential: a few iterations where the
    two-sided iteration can need 1e4+. A "Sinkhorn did not converge" warning is emitted when
    ``stop_thr`` is not reached; :func:`record_sinkhorn` collects per-solve iteration counts.
    The entropic value is the dual objective at the final potentials (equal to the primal
    ``<pi, C> + eps KL`` at convergence, second order in the marginal error), differentiable in
    ``C`` with the potentials held fixed, so its gradient is the plan ``pi`` from those
    potentials.

``solver="pot"``
    POT's log-domain ``ot.bregman.sinkhorn_log`` on a float64 copy, with epsilon scaling
    (``SCALING_ITERS = 10`` warm-started POT iterations per scale), ``stop_thr`` default 1e-9 on
    POT's L2 column-marginal error (checked every 10 iterations), POT's own non-convergence
    warning, and the primal value ``<pi, C> (+ eps KL)`` at POT's plan held fixed. POT has no
    symmetric iteration: self-terms are solved as two-sided problems (slow to converge).

Common knobs: ``num_iter_max`` (final Sinkhorn stage, default 1000; exact OT default 1e6),
``stop_thr`` (``None``: the solver's default; note the two solvers measure the error
differently) and ``eps_scaling`` (in (0, 1), ``None`` disables; without it, clouds with
separated modes can need 1e5+ iterations at ``eps = 0.1``).

Gradients are envelope gradients: the plan is held fixed and ``d OT / d C = pi*`` (exact for exact
OT, and for the entropic objective at convergence), which costs no memory for unrolled iterations.
The float64 cast is differentiable, so gradients reach float32 features (returned values have the
input's dtype). :func:`wasserstein_fa` also offers ``grad="autodiff"`` (``ot.sinkhorn2``
unrolled, always POT, as the paper presumably did).

Sources are treated as fixed data: pass them without ``requires_grad`` (the caches of
:class:`FeatureAlignment` detach them).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from itertools import pairwise
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "SOLVERS",
    "FAVariant",
    "FeatureAlignment",
    "LabelDistances",
    "OTDDSourceTerms",
    "SinkhornStats",
    "class_conditional_alignment",
    "cost_matrix",
    "entropic_ot",
    "label_distances",
    "otdd_source_terms",
    "record_sinkhorn",
    "sinkhorn_divergence",
    "sinkhorn_potentials",
    "wasserstein_fa",
]

# Pairs (n * m * d) up to this size get exact pairwise differences in ``cost_matrix`` (identical
# points give exactly 0); above it the matrix-multiply form ``|x|^2 + |y|^2 - 2 x.y`` is used
# (about 6x faster on CPU at 5000 x 132 x 768, but identical points only get ~1e-3 in float32).
EXACT_COST_LIMIT = 1 << 22

SOLVERS = ("torch", "pot")  # entropic OT solvers (exact OT is always POT's network simplex)
DEFAULT_SOLVER = "torch"
DEFAULT_SINKHORN_ITERS = 1000
DEFAULT_EMD_ITERS = 1_000_000
EPS_SCALING = 0.5        # default epsilon-scaling factor (None disables), both solvers
INNER_ITERS = 100        # final-stage iterations for OTDD's inner label-to-label problems

# POT solver (solver="pot")
DEFAULT_STOP_THR = 1e-9  # POT's criterion: ||pi^T 1 - b||_2, checked every 10 iterations
SCALING_ITERS = 10       # POT Sinkhorn iterations at each intermediate scale

# torch solver (solver="torch"), see sinkhorn_potentials
# Stopping threshold on the L1 marginal error ||pi 1 - a||_1 of the returned plan (its other
# marginal is exact). 1e-6 because: the entropic value is the dual objective, whose error is
# second order in the marginal error (P5: ~1e-13 relative at 1e-6); the gradient (the plan) is
# off to first order, ~1e-6 relative, far below the noise of a stochastic training step; and
# clouds with separated modes stall near 1e-9 (the mass exchanged between modes is ~exp(-gap /
# eps)), so a tighter default would warn on benign problems. Tighter costs little where it is
# reachable (P5, 1000 x 132, d=128: 145 iterations to 1e-6, 219 to 1e-9).
TORCH_STOP_THR = 1e-6
TORCH_SCALING_ITERS = 1   # iterations per epsilon-scaling step (1-3 measured: no difference, P5)
OVERRELAX_WINDOW = 20     # plain iterations at the target reg before omega is estimated
OVERRELAX_MAX = 1.9       # cap of the estimated over-relaxation factor (1.95 and 1.98 were
                          # slower on P5, and on 5 clustered modes tripped the divergence guard)
CHECK_EVERY_ACCEL = 10    # off-CPU, the error is read (a host sync) every 10 iterations only
# float64, measured against float32 on the 2-core CPU (P5 clouds, 1000 x 132, eps = 0.1): float32
# log-domain iterations were not faster (3.0 vs 0.7 ms per iteration; probably exp underflowing
# through denormals), and float32 stalls at L1 marginal errors of 1e-4 (d=128) to 1e-3 (d=768):
# the potentials are ~1e2-1e3 (they scale with the cost), so float32's 7 digits leave errors of
# ~1e-4 in (f + g - C) / eps. It never meets the default stop_thr (1e-6). On a GPU float32 would
# be faster; it is not offered.
SOLVER_DTYPE = torch.float64


# --------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------

def cost_matrix(source: Tensor, target: Tensor, p: float = 1, *, exact: bool | None = None) -> Tensor:
    """Ground-cost matrix ``C[i, j] = |source_i - target_j|_2 ** p``, shape ``(n, m)``.

    ``p = 1`` is the Euclidean metric (the paper's W1 cost), ``p = 2`` the squared Euclidean
    distance (the Sinkhorn-divergence and OTDD variants use ``0.5 * cost_matrix(x, y, 2)``).

    Computed with :func:`torch.cdist`, whose backward is finite at zero distance (``ot.dist(...,
    metric="euclidean")`` gives NaN gradients there). ``exact=None`` picks exact pairwise
    differences when ``n * m * d <= EXACT_COST_LIMIT`` and the faster matrix-multiply form
    otherwise; ``True``/``False`` force one.
    """
    if source.dim() != 2 or target.dim() != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(f"expected (n, d) and (m, d) clouds, got {tuple(source.shape)} and "
                         f"{tuple(target.shape)}")
    if p <= 0:
        raise ValueError(f"p must be positive, got {p}")
    if exact is None:
        exact = source.shape[0] * target.shape[0] * source.shape[1] <= EXACT_COST_LIMIT
    mode = "donot_use_mm_for_euclid_dist" if exact else "use_mm_for_euclid_dist"
    dist = torch.cdist(source, target, p=2.0, compute_mode=mode)
    return dist if p == 1 else dist ** p


def _pot():
    """POT, imported on first use: with scikit-learn, which it loads, it takes over a second,
    which every new trial process would pay even when its method solves no exact OT."""
    import ot

    return ot


def _uniform(n: int, like: Tensor) -> Tensor:
    return torch.full((n,), 1.0 / n, dtype=torch.float64, device=like.device)


def _check_solver_args(solver: str, num_iter_max: int | None, stop_thr: float | None,
                       eps_scaling: float | None) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; valid solvers: {', '.join(SOLVERS)}")
    if num_iter_max is not None and (isinstance(num_iter_max, bool) or int(num_iter_max) != num_iter_max
                                     or num_iter_max < 1):
        raise ValueError(f"num_iter_max must be a positive integer or None, got {num_iter_max!r}")
    if stop_thr is not None and not stop_thr > 0:
        raise ValueError(f"stop_thr must be positive or None, got {stop_thr!r}")
    if eps_scaling is not None and not 0 < eps_scaling < 1:
        raise ValueError(f"eps_scaling must be in (0, 1) or None (no scaling), got {eps_scaling!r}")


def _pot_sinkhorn_plan(m64: Tensor, reg: float, *, num_iter_max: int | None, stop_thr: float | None,
                       eps_scaling: float | None) -> Tensor:
    """Entropic plan for the (detached, float64) cost ``m64`` from POT's log-domain ``sinkhorn_log``.

    With ``eps_scaling = q`` in (0, 1), POT is first run for ``SCALING_ITERS`` iterations at each
    regularisation ``max(C) * q^k`` above ``reg``, each warm-started from the previous potentials
    (rescaled to the new regularisation), then to convergence at ``reg``. This epsilon-scaling
    continuation (what geomloss does) resolves the global mass balance at coarse scale; plain
    Sinkhorn at a small ``reg`` can need 1e5+ iterations when the clouds have separated modes.
    """
    a, b = _uniform(m64.shape[0], m64), _uniform(m64.shape[1], m64)
    la, lb = torch.log(a), torch.log(b)
    iters = num_iter_max or DEFAULT_SINKHORN_ITERS
    tol = DEFAULT_STOP_THR if stop_thr is None else stop_thr
    warm = None
    for cur, nxt in pairwise([*_eps_schedule(float(m64.max()), reg, eps_scaling), reg]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # intermediate scales are not meant to converge
            _, log = _pot().bregman.sinkhorn_log(a, b, m64, cur, numItermax=SCALING_ITERS,
                                             stopThr=tol, log=True, warmstart=warm)
        # POT's log-scalings are u = log a + f / reg with f the dual potential
        warm = (la + (log["log_u"] - la) * (cur / nxt), lb + (log["log_v"] - lb) * (cur / nxt))
    return _pot().bregman.sinkhorn_log(a, b, m64, reg, numItermax=iters, stopThr=tol, warmstart=warm)


def _eps_schedule(c_max: float, reg: float, eps_scaling: float | None) -> list[float]:
    """Epsilon-scaling steps above ``reg``: ``c_max * q^k`` while it exceeds ``reg`` (none if off)."""
    out: list[float] = []
    if eps_scaling is None:
        return out
    cur = c_max
    while cur > reg:
        out.append(cur)
        cur *= eps_scaling
    return out


# --------------------------------------------------------------------------------------------
# the torch entropic OT solver
# --------------------------------------------------------------------------------------------

@dataclass
class SinkhornStats:
    """What one torch entropic solve did (see :func:`record_sinkhorn`).

    ``scales``: epsilon-scaling steps above ``reg`` (``scaling_iters`` iterations each);
    ``iterations``: iterations at the target ``reg``; ``omega``: the over-relaxation factor in use
    at the end (1: plain Sinkhorn, and always for the symmetric iteration); ``error``: L1 marginal
    error of the returned potentials' plan; ``converged``: ``error < stop_thr``.
    """

    shape: tuple[int, int]
    symmetric: bool
    reg: float
    stop_thr: float
    scales: int
    iterations: int
    omega: float
    error: float
    converged: bool


_RECORDERS: list[list[SinkhornStats]] = []


@contextmanager
def record_sinkhorn() -> Iterator[list[SinkhornStats]]:
    """Collect a :class:`SinkhornStats` for every torch entropic solve made inside the block.

    >>> with record_sinkhorn() as stats:                       # doctest: +SKIP
    ...     loss = sinkhorn_divergence(source, target)
    >>> [s.iterations for s in stats]                          # doctest: +SKIP
    """
    log: list[SinkhornStats] = []
    _RECORDERS.append(log)
    try:
        yield log
    finally:
        for i in range(len(_RECORDERS) - 1, -1, -1):
            if _RECORDERS[i] is log:
                del _RECORDERS[i]
                break


def _check_every(device: torch.device) -> int:
    """Iterations between error reads: every one on CPU (free), fewer elsewhere (a host sync)."""
    return 1 if device.type == "cpu" else CHECK_EVERY_ACCEL


def _l1_marginal_error(log_weights: Tensor, potential: Tensor, fitted: Tensor, eps: float) -> Tensor:
    """``sum_i w_i |exp((p_i - T_i) / eps) - 1|``: the L1 error of the marginal on this side.

    The plan of potentials ``(p, q)`` has marginal ``w * exp((p - T(q)) / eps)`` on ``p``'s side,
    where ``T(q)`` is the Sinkhorn update that would fit it exactly, so the error comes for free
    with the update.
    """
    return (log_weights.exp() * torch.expm1((potential - fitted) / eps)).abs().sum()


@torch.no_grad()
def sinkhorn_potentials(cost: Tensor, reg: float, *, symmetric: bool = False,
                        num_iter_max: int | None = None, stop_thr: float | None = None,
                        eps_scaling: float | None = EPS_SCALING,
                        scaling_iters: int = TORCH_SCALING_ITERS,
                        overrelax: float | Literal["auto"] | None = "auto",
                        ) -> tuple[Tensor, Tensor, SinkhornStats]:
    """Dual potentials ``(f, g)`` of entropic OT between uniform weights, log-domain, in torch.

    Solves ``min <pi, C> + reg * KL(pi | a x b)`` (``a``, ``b`` uniform, ``reg`` absolute) for the
    ``(n, m)`` cost ``cost`` on its device, in ``SOLVER_DTYPE`` (float64), without gradient. The
    plan is ``pi_ij = a_i b_j exp((f_i + g_j - C_ij) / reg)``.

    * epsilon scaling (``eps_scaling = q``): ``scaling_iters`` iterations at each ``max(C) q^k``
      above ``reg``, the potentials carried over (they are in cost units), then the final stage.
    * final stage: up to ``num_iter_max`` (default 1000) iterations at ``reg`` until the L1
      marginal error ``||pi 1 - a||_1`` of the plan is below ``stop_thr`` (default
      ``TORCH_STOP_THR``); the returned plan's column marginal is exact (``g`` is the last
      update). A "Sinkhorn did not converge" warning is emitted otherwise.
    * over-relaxation (``overrelax``, final stage only): ``f <- f + omega (T(g) - f)`` and
      likewise ``g``. With ``"auto"``, plain Sinkhorn (``omega = 1``) runs for
      ``OVERRELAX_WINDOW`` iterations, its linear rate ``rho`` is read off the error decay and
      ``omega = 2 / (1 + sqrt(1 - rho))`` (the optimal SOR factor for that rate) is used, then
      raised every window if the observed rate shows it too small (:func:`_estimate_omega`),
      never above ``OVERRELAX_MAX``; a float fixes ``omega`` (in [1, 2)); ``None`` is plain
      Sinkhorn. Plain Sinkhorn's rate at a small ``reg`` is poor (P5: ~0.994 per iteration, 1500
      iterations to 1e-6); over-relaxed, ~10x fewer iterations. If the error (a proxy, the
      column error before the update) grows 100-fold over its best value, ``omega - 1`` is halved
      and frozen. Problems that converge within the window never over-relax.
    * ``symmetric=True`` (square, symmetric ``C``, e.g. the self-term ``OT(x, x)``): one potential
      and the averaged update ``f <- (f + T(f)) / 2`` (the debiased-Sinkhorn symmetric
      iteration), ``g = f``; ``C`` is symmetrised as ``(C + C^T) / 2`` first. No over-relaxation
      (the averaged map contracts fast where the two-sided one is slow: mass balance between
      clusters).

    The error is computed from quantities each update produces anyway (no extra pass); on
    non-CPU devices it is read every ``CHECK_EVERY_ACCEL`` iterations to limit host syncs.
    Returns ``(f, g, stats)`` in float64; every active :func:`record_sinkhorn` gets ``stats``.
    """
    if reg is None or not reg > 0:
        raise ValueError(f"reg must be positive, got {reg!r}")
    _check_solver_args("torch", num_iter_max, stop_thr, eps_scaling)
    if isinstance(scaling_iters, bool) or int(scaling_iters) != scaling_iters or scaling_iters < 1:
        raise ValueError(f"scaling_iters must be a positive integer, got {scaling_iters!r}")
    if overrelax is not None and overrelax != "auto" and not (
            isinstance(overrelax, (int, float)) and 1 <= overrelax < 2):
        raise ValueError(f"overrelax must be 'auto', None or a float in [1, 2), got {overrelax!r}")
    if cost.dim() != 2 or cost.shape[0] == 0 or cost.shape[1] == 0:
        raise ValueError(f"expected a non-empty (n, m) cost matrix, got shape {tuple(cost.shape)}")
    c = cost.detach().to(SOLVER_DTYPE)
    n, m = c.shape
    if symmetric:
        if n != m:
            raise ValueError(f"symmetric=True needs a square cost matrix, got {n} x {m}")
        c = 0.5 * (c + c.T)
    reg = float(reg)
    iters = DEFAULT_SINKHORN_ITERS if num_iter_max is None else int(num_iter_max)
    thr = TORCH_STOP_THR if stop_thr is None else float(stop_thr)
    schedule = _eps_schedule(float(c.max()), reg, eps_scaling)
    check_every = _check_every(c.device)
    la = torch.full((n,), -math.log(n), dtype=c.dtype, device=c.device)
    lb = la if symmetric else torch.full((m,), -math.log(m), dtype=c.dtype, device=c.device)
    if symmetric:
        f, it, omega, err, converged = _symmetric_sinkhorn(c, la, reg, schedule, int(scaling_iters),
                                                           iters, thr, check_every)
        g = f
    else:
        f, g, it, omega, err, converged = _sinkhorn(c, la, lb, reg, schedule, int(scaling_iters),
                                                    iters, thr, check_every, overrelax)
    stats = SinkhornStats(shape=(n, m), symmetric=symmetric, reg=reg, stop_thr=thr,
                          scales=len(schedule),
                          iterations=it, omega=omega, error=err, converged=converged)
    if not converged:
        warnings.warn(f"Sinkhorn did not converge (torch solver, {n} x {m}, reg={reg:g}): L1 "
                      f"marginal error {err:.2e} > stop_thr={thr:g} after {it} iterations; "
                      f"increase num_iter_max or reg", UserWarning, stacklevel=2)
    for log in _RECORDERS:
        log.append(stats)
    return f, g, stats


def _sinkhorn(c: Tensor, la: Tensor, lb: Tensor, reg: float, schedule: list[float],
              scaling_iters: int, iters: int, thr: float, check_every: int,
              overrelax: float | str | None) -> tuple[Tensor, Tensor, int, float, float, bool]:
    """The two-sided solver of :func:`sinkhorn_potentials`."""
    f = c.new_zeros(c.shape[0])
    g = c.new_zeros(c.shape[1])

    def fit_f(nk: Tensor, g: Tensor, eps: float) -> Tensor:     # rows exact for (result, g)
        return -eps * torch.logsumexp(nk + (lb + g / eps)[None, :], dim=1)

    def fit_g(nk: Tensor, f: Tensor, eps: float) -> Tensor:     # columns exact for (f, result)
        return -eps * torch.logsumexp(nk + (la + f / eps)[:, None], dim=0)

    for eps in schedule:
        nk = c / -eps
        for _ in range(scaling_iters):
            f = fit_f(nk, g, eps)
            g = fit_g(nk, f, eps)
    eps = reg
    nk = c / -eps
    auto = overrelax == "auto"
    omega = float(overrelax) if isinstance(overrelax, (int, float)) else 1.0
    exact_cols = False          # does the plan of (f, g) have exact column marginals at reg?
    history: dict[int, float] = {}   # errors since omega last changed, for its estimate
    since = 0                        # iteration at which omega last changed
    err, best, converged, it = math.inf, math.inf, False, 0
    for it in range(iters):
        tf = fit_f(nk, g, eps)
        if exact_cols and it % check_every == 0:
            # the exact error of the current plan (its columns are exact)
            err = float(_l1_marginal_error(la, f, tf, eps))
            if err < thr:
                converged = True
                break
            if auto and omega == 1.0:
                history[it] = err
                new = _estimate_omega(history, it, since, omega)
                if new > omega:
                    omega, since = new, it
                    history.clear()
        f = tf if omega == 1.0 else f + omega * (tf - f)
        tg = fit_g(nk, f, eps)
        if omega != 1.0 and (it + 1) % check_every == 0:
            # column error of (f, g): a proxy, read to guard against divergence, to refine omega,
            # and to take a plain step once it is small, so that the next iteration checks the
            # exact error
            proxy = float(_l1_marginal_error(lb, g, tg, eps))
            best = min(best, proxy)
            if not proxy < 100.0 * best:
                # growing: halve the over-relaxation and keep it fixed from then on
                omega, auto, best = 1.0 + 0.5 * (omega - 1.0), False, proxy
                if omega < 1.05:
                    omega = 1.0
            elif proxy < thr:
                g, exact_cols = tg, True
                continue
            elif auto:
                history[it + 1] = proxy
                new = _estimate_omega(history, it + 1, since, omega)
                if new > omega:
                    omega, since = new, it + 1
                    history.clear()
        if omega == 1.0:
            g, exact_cols = tg, True
        else:
            g, exact_cols = g + omega * (tg - g), False
    else:
        it = iters
        if not exact_cols:
            g = fit_g(nk, f, eps)
        err = float(_l1_marginal_error(la, f, fit_f(nk, g, eps), eps))
        converged = err < thr
    return f, g, it, omega, err, converged


def _estimate_omega(history: dict[int, float], it: int, since: int, omega: float) -> float:
    """Over-relaxation factor from the error decay over the last ``OVERRELAX_WINDOW // 2`` iterations.

    Sinkhorn's linearisation is a 2-block (consistently ordered) iteration, so Young's SOR theory
    applies: plain Sinkhorn's rate ``rho`` gives the optimal ``omega = 2 / (1 + sqrt(1 - rho))``,
    and an observed rate ``lam`` under a too small ``omega`` gives back
    ``rho = (lam + omega - 1)^2 / (lam omega^2)``. Returns ``omega`` unchanged until
    ``OVERRELAX_WINDOW`` iterations have passed since it last changed, or when the estimate is not
    usable; never more than ``OVERRELAX_MAX``.
    """
    half = OVERRELAX_WINDOW // 2
    if it - since < OVERRELAX_WINDOW or it - half not in history or not history[it - half] > 0:
        return omega
    lam = (history[it] / history[it - half]) ** (1.0 / half)
    if not 0.0 < lam < 1.0:
        return omega
    rho = lam if omega == 1.0 else (lam + omega - 1.0) ** 2 / (lam * omega ** 2)
    if not 0.0 < rho < 1.0:
        return omega
    return max(omega, min(2.0 / (1.0 + math.sqrt(1.0 - rho)), OVERRELAX_MAX))


def _symmetric_sinkhorn(c: Tensor, la: Tensor, reg: float, schedule: list[float],
                        scaling_iters: int, iters: int, thr: float, check_every: int
                        ) -> tuple[Tensor, int, float, float, bool]:
    """The symmetric solver of :func:`sinkhorn_potentials` (``OT(x, x)``, one potential)."""
    f = c.new_zeros(c.shape[0])

    def fit(nk: Tensor, f: Tensor, eps: float) -> Tensor:
        return -eps * torch.logsumexp(nk + (la + f / eps)[None, :], dim=1)

    for eps in schedule:
        nk = c / -eps
        for _ in range(scaling_iters):
            f = 0.5 * (f + fit(nk, f, eps))
    eps = reg
    nk = c / -eps
    err, converged, it = math.inf, False, 0
    for it in range(iters):
        tf = fit(nk, f, eps)
        if it % check_every == 0:
            # the plan of f is symmetric with marginal a * exp((f - T(f)) / eps)
            err = float(_l1_marginal_error(la, f, tf, eps))
            if err < thr:
                converged = True
                break
        f = 0.5 * (f + tf)
    else:
        it = iters
        err = float(_l1_marginal_error(la, f, fit(nk, f, eps), eps))
        converged = err < thr
    return f, it, 1.0, err, converged


def _ot_value(cost: Tensor, reg: float | None, *, objective: Literal["entropic", "linear"] = "entropic",
              solver: str = DEFAULT_SOLVER, symmetric: bool = False,
              num_iter_max: int | None = None, stop_thr: float | None = None,
              eps_scaling: float | None = EPS_SCALING) -> Tensor:
    """Optimal value for a cost matrix, differentiable w.r.t. ``cost`` with the plan as gradient.

    ``reg=None``: exact OT (POT ``ot.solve`` -> ``emd2``, whose gradient is the plan; ``solver``
    is ignored). Otherwise entropic OT (absolute ``reg``, KL to the product of the uniform
    weights, solved without gradient in float64): ``objective="entropic"`` ->
    ``OT_eps = min <pi, C> + reg * KL(pi | a x b)``, ``"linear"`` -> ``<pi, C>`` of the entropic plan
    (what ``ot.sinkhorn2`` returns).

    ``solver="torch"`` (:func:`sinkhorn_potentials`): the entropic value is the dual objective at
    the final potentials, ``<a, f> + <b, g> - reg * (sum(pi) - 1)`` with
    ``pi = a b exp((f + g - C) / reg)`` computed from ``cost`` (the potentials held fixed). It
    equals the primal ``<pi, C> + reg * KL`` at convergence, is off only to second order in the
    marginal error (the primal at an unconverged plan is off to first order), and its gradient
    is exactly that plan (``d/dC`` of the dual at fixed potentials): the envelope gradient. This
    is also the value geomloss returns. The linear objective is ``<pi, C>`` with ``pi`` detached.
    ``symmetric=True`` (the caller's promise that ``cost`` is a self-term ``C(x, x)``) uses the
    symmetric iteration.

    ``solver="pot"``: POT's ``sinkhorn_log`` plan, held fixed, and the primal value
    ``<pi, C> (+ reg * KL(pi))`` (envelope theorem: ``d value / d C = pi`` at convergence);
    ``symmetric`` is ignored. Returned in ``cost``'s dtype.
    """
    _check_solver_args(solver, num_iter_max, stop_thr, eps_scaling)
    m64 = cost.to(torch.float64)  # differentiable cast
    if reg is None:
        a, b = _uniform(cost.shape[0], cost), _uniform(cost.shape[1], cost)
        return _pot().solve(m64, a, b, max_iter=num_iter_max or DEFAULT_EMD_ITERS).value.to(cost.dtype)
    if not reg > 0:
        raise ValueError(f"reg must be positive (or None for exact OT), got {reg}")
    if objective not in ("entropic", "linear"):
        raise ValueError(f"objective must be 'entropic' or 'linear', got {objective!r}")
    reg = float(reg)
    a, b = _uniform(cost.shape[0], cost), _uniform(cost.shape[1], cost)
    if solver == "pot":
        plan = _pot_sinkhorn_plan(m64.detach(), reg, num_iter_max=num_iter_max, stop_thr=stop_thr,
                                  eps_scaling=eps_scaling).detach()
        value = (plan * m64).sum()
        if objective == "entropic":
            kl = (torch.special.xlogy(plan, plan) - plan * torch.log(a[:, None] * b[None, :])).sum()
            value = value + reg * kl
        return value.to(cost.dtype)
    f, g, _ = sinkhorn_potentials(m64, reg, symmetric=symmetric, num_iter_max=num_iter_max,
                                  stop_thr=stop_thr, eps_scaling=eps_scaling)
    c = 0.5 * (m64 + m64.T) if symmetric else m64   # what the symmetric solver solved
    # the plan at the final potentials, differentiable in C (the potentials are constants)
    plan = (torch.log(a)[:, None] + torch.log(b)[None, :] + (f[:, None] + g[None, :] - c) / reg).exp()
    if objective == "linear":
        return (plan.detach() * m64).sum().to(cost.dtype)
    value = a @ f + b @ g - reg * (plan.sum() - 1.0)
    return value.to(cost.dtype)


def entropic_ot(x: Tensor, y: Tensor, *, reg: float = 0.1, p: float = 2, cost_scale: float = 0.5,
                solver: str = DEFAULT_SOLVER, num_iter_max: int | None = None,
                stop_thr: float | None = None, eps_scaling: float | None = EPS_SCALING) -> Tensor:
    """``OT_eps(x, y) = min <pi, C> + reg * KL(pi | a x b)`` with ``C = cost_scale * |x - y|^p``.

    The defaults are the reference code's outer problem (cost ``1/2 |x-y|^2``, ``eps = 0.1``).
    Useful to precompute the constant source self-term of :func:`sinkhorn_divergence` once. When
    ``x`` and ``y`` hold the same points (``torch.equal``), the torch solver uses its symmetric
    iteration (so ``OT(x, y)`` is then bit-for-bit ``OT(x, x)``).
    """
    return _ot_value(cost_scale * cost_matrix(x, y, p), reg, objective="entropic", solver=solver,
                     symmetric=_same_points(x, y), num_iter_max=num_iter_max, stop_thr=stop_thr,
                     eps_scaling=eps_scaling)


def _same_points(x: Tensor, y: Tensor) -> bool:
    """Whether two clouds hold the same points (then ``C(x, y)`` is a self-term ``C(x, x)``)."""
    return x.shape == y.shape and x.device == y.device and torch.equal(x.detach(), y.detach())


# --------------------------------------------------------------------------------------------
# "w1": the paper's eps * W_p
# --------------------------------------------------------------------------------------------

def wasserstein_fa(source: Tensor, target: Tensor, *, epsilon: float = 1.0, p: int = 1,
                   reg: float | None = 0.1, method: Literal["sinkhorn", "emd"] = "sinkhorn",
                   reg_relative: bool = True, debias: bool = False,
                   grad: Literal["envelope", "autodiff"] = "envelope",
                   solver: str = DEFAULT_SOLVER, num_iter_max: int | None = None,
                   stop_thr: float | None = None, eps_scaling: float | None = EPS_SCALING) -> Tensor:
    """The paper's FA surrogate (eq. 14): ``epsilon * W_p(mu_S, mu_T)``, uniform weights.

    ``W_p = (OT with cost |x - y|_2^p) ** (1/p)``; ``p = 1`` (the paper) is Euclidean W1.

    ``method="emd"``: exact OT (POT network simplex, ``num_iter_max`` default 1e6); exactly 0 for
    identical clouds; ``reg`` is ignored.

    ``method="sinkhorn"``: the value is the *linear* transport cost ``<pi_reg, C>`` of the entropic
    plan, as ``ot.sinkhorn2`` returns (it upper-bounds the exact OT cost and tends to it as
    ``reg -> 0``). How ``reg`` is read:

    * ``reg_relative=True`` (default): the regularisation is ``reg * mean(C)``, with the mean
      of the (detached) source-target cost matrix of this call. This makes the loss scale
      equivariant (scaling the features scales W by the same factor) and keeps Sinkhorn
      well-conditioned whatever the feature scale. ``reg=0.1`` means "a tenth of the mean
      pairwise cost". Its dependence on the target is not differentiated.
    * ``reg_relative=False``: ``reg`` is the absolute regularisation, in units of the cost.

    ``debias=True`` (Sinkhorn only; exact OT has no bias) returns
    ``W(S,T) - 1/2 W(S,S) - 1/2 W(T,T)`` (costs before the ``1/p`` root, same regularisation for the
    three terms, clamped at 0), which removes the entropic bias so identical clouds give exactly 0;
    off by default (the paper does not debias). The self-terms are recomputed on every call (with
    the torch solver's symmetric iteration).

    ``grad="envelope"`` (default) differentiates with the plan held fixed (POT's envelope mode; cheap);
    ``grad="autodiff"`` backpropagates through the unrolled log-domain iterations of
    ``ot.sinkhorn2`` (memory grows with the iteration count); it always uses POT.

    Solver settings (``solver``, ``num_iter_max``, ``stop_thr``, ``eps_scaling``): see the module
    docstring; ``grad="autodiff"`` ignores ``solver`` and ``eps_scaling``.
    """
    if method not in ("sinkhorn", "emd"):
        raise ValueError(f"method must be 'sinkhorn' or 'emd', got {method!r}")
    if grad not in ("envelope", "autodiff"):
        raise ValueError(f"grad must be 'envelope' or 'autodiff', got {grad!r}")
    if method == "sinkhorn" and (reg is None or reg <= 0):
        raise ValueError("method='sinkhorn' needs reg > 0 (use method='emd' for exact OT)")
    _check_solver_args(solver, num_iter_max, stop_thr, eps_scaling)

    c_st = cost_matrix(source, target, p)
    if method == "emd":
        reg_abs = None
    elif reg_relative:
        scale = float(c_st.detach().mean())
        reg_abs = reg * scale if scale > 0 else reg
    else:
        reg_abs = float(reg)

    def value(cost: Tensor, symmetric: bool) -> Tensor:
        if method == "sinkhorn" and grad == "autodiff":
            m64 = cost.to(torch.float64)
            a, b = _uniform(cost.shape[0], cost), _uniform(cost.shape[1], cost)
            out = _pot().sinkhorn2(a, b, m64, reg_abs, method="sinkhorn_log",
                               numItermax=num_iter_max or DEFAULT_SINKHORN_ITERS,
                               stopThr=DEFAULT_STOP_THR if stop_thr is None else stop_thr)
            return out.to(cost.dtype)
        return _ot_value(cost, reg_abs, objective="linear", solver=solver, symmetric=symmetric,
                         num_iter_max=num_iter_max, stop_thr=stop_thr, eps_scaling=eps_scaling)

    total = value(c_st, _same_points(source, target))
    if debias and method == "sinkhorn":
        total = total - 0.5 * value(cost_matrix(source, source, p), True) \
            - 0.5 * value(cost_matrix(target, target, p), True)
        total = total.clamp_min(0.0)
    if p != 1:
        # the root has an infinite slope at 0: clamp so identical clouds give a zero gradient
        total = total.clamp_min(torch.finfo(total.dtype).tiny) ** (1.0 / p)
    return epsilon * total


# --------------------------------------------------------------------------------------------
# "sinkhorn_div": the reference code's debiased Sinkhorn divergence
# --------------------------------------------------------------------------------------------

def sinkhorn_divergence(source: Tensor, target: Tensor, *, reg: float = 0.1,
                        source_self: Tensor | float | None = None, solver: str = DEFAULT_SOLVER,
                        num_iter_max: int | None = None, stop_thr: float | None = None,
                        eps_scaling: float | None = EPS_SCALING) -> Tensor:
    """Debiased Sinkhorn divergence of the reference code (spec §3.2).

    ``S_eps(a, b) = OT_eps(a, b) - 1/2 OT_eps(a, a) - 1/2 OT_eps(b, b)`` with
    ``OT_eps = min <pi, C> + eps * KL(pi | a x b)``, ``C = 1/2 |x - y|^2``, ``eps = reg`` *absolute*
    (0.1 as in the code, i.e. geomloss ``SamplesLoss("sinkhorn", p=2, blur=0.1**0.5)``), uniform
    weights, log-domain Sinkhorn in float64. The self-terms use the torch solver's symmetric
    iteration (a few iterations where the two-sided one needs thousands). Exactly 0 for identical
    clouds (the three problems are then the same), not clamped (tiny negative values can come
    from solver tolerance).

    ``source_self``: the constant ``OT_eps(S, S)``, e.g. ``entropic_ot(S, S, reg=reg)`` computed
    once (with the same solver settings); recomputed when ``None``.

    Note: ``ot.bregman.empirical_sinkhorn_divergence`` is *not* this quantity: it debiases the
    linear costs ``<pi, C>`` returned by ``ot.sinkhorn2`` (no KL term), uses ``|x - y|^2`` unless
    rescaled, clamps at 0 and backpropagates through every Sinkhorn iteration.

    Solver settings (``solver``, ``num_iter_max``, ``stop_thr``, ``eps_scaling``): see the module
    docstring. After a "Sinkhorn did not converge" warning, the value and the envelope gradient
    are approximate.
    """
    kw = dict(reg=reg, solver=solver, num_iter_max=num_iter_max, stop_thr=stop_thr,
              eps_scaling=eps_scaling)
    cross = entropic_ot(source, target, **kw)
    if source_self is None:
        source_self = entropic_ot(source, source, **kw)
    tgt_self = entropic_ot(target, target, **kw)
    return cross - 0.5 * source_self - 0.5 * tgt_self


# --------------------------------------------------------------------------------------------
# "otdd": ORCA's class-conditional alignment
# --------------------------------------------------------------------------------------------

def _groups(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Sorted distinct labels and, per point, the index of its label in that list."""
    classes, index = torch.unique(labels, sorted=True, return_inverse=True)
    return classes, index


def _inner_divergences(sets_a: list[Tensor], sets_b: list[Tensor] | None, *, inner_reg: float,
                       self_a: Tensor | None, num_iter_max: int, eps_scaling: float | None,
                       stop_thr: float | None, solver: str = DEFAULT_SOLVER
                       ) -> tuple[Tensor, Tensor, Tensor | None]:
    """Inner label-to-label divergences ``W^2`` (debiased Sinkhorn, cost ``|a - b|^2``, no 1/2).

    Returns ``(self_a, dist, self_b)``: the self-terms ``OT(X, X)`` of each set and the matrix of
    ``W^2`` between ``sets_a`` and ``sets_b`` (``sets_b=None``: among ``sets_a``, zero diagonal).
    The inner problems are solved with a small iteration budget and without the
    non-convergence warning: they are constants that only shape the outer plan (the reference
    OTDD code also solves them approximately).
    """
    kw = dict(reg=inner_reg, p=2, cost_scale=1.0, solver=solver, num_iter_max=num_iter_max,
              eps_scaling=eps_scaling, stop_thr=stop_thr)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sinkhorn did not converge")
        if self_a is None:
            self_a = torch.stack([entropic_ot(x, x, **kw) for x in sets_a])
        if sets_b is None:
            n = len(sets_a)
            dist = torch.zeros(n, n, dtype=self_a.dtype, device=self_a.device)
            for i in range(n):
                for j in range(i + 1, n):
                    dist[i, j] = dist[j, i] = (entropic_ot(sets_a[i], sets_a[j], **kw)
                                               - 0.5 * (self_a[i] + self_a[j]))
            return self_a, dist, None
        self_b = torch.stack([entropic_ot(x, x, **kw) for x in sets_b])
        dist = torch.stack([torch.stack([entropic_ot(x, y, **kw) - 0.5 * (self_a[i] + self_b[j])
                                         for j, y in enumerate(sets_b)])
                            for i, x in enumerate(sets_a)])
        return self_a, dist, self_b


@dataclass
class OTDDSourceTerms:
    """Everything in the OTDD loss that depends on the source only (computed once, no gradient).

    ``classes``: sorted distinct source labels; ``class_self[c] = OT_eps(S_c, S_c)`` (inner cost);
    ``class_distances[c, c'] = W^2(S_c, S_c')`` (debiased inner divergence, zero diagonal);
    ``self_value = OT_eps`` of the source against itself under the augmented cost (outer).
    """

    classes: Tensor
    class_self: Tensor
    class_distances: Tensor
    self_value: Tensor
    reg: float
    inner_reg: float


@dataclass
class LabelDistances:
    """Target-dependent label-to-label distances ``W^2`` (constants, ``requires_grad=False``).

    ``source_target[c, k] = W^2(S_c, T_k)``, ``target_target[k, k'] = W^2(T_k, T_k')`` (``None``
    when not computed, see ``target_pairs``), with ``target_classes`` the sorted distinct target
    cluster ids (rows/columns in that order).
    """

    target_classes: Tensor
    source_target: Tensor
    target_target: Tensor | None


@torch.no_grad()
def otdd_source_terms(source: Tensor, source_labels: Tensor, *, reg: float = 0.1,
                      inner_reg: float = 0.1, inner_num_iter_max: int = INNER_ITERS,
                      solver: str = DEFAULT_SOLVER, num_iter_max: int | None = None,
                      stop_thr: float | None = None,
                      eps_scaling: float | None = EPS_SCALING) -> OTDDSourceTerms:
    """Precompute the source-only constants of :func:`class_conditional_alignment`."""
    source = source.detach()
    classes, index = _groups(source_labels)
    parts = [source[index == c] for c in range(len(classes))]
    self_vals, dist, _ = _inner_divergences(parts, None, inner_reg=inner_reg, self_a=None,
                                            num_iter_max=inner_num_iter_max, solver=solver,
                                            eps_scaling=eps_scaling, stop_thr=stop_thr)
    # symmetric by construction (the class distances are a symmetric matrix)
    aug = 0.5 * cost_matrix(source, source, 2) + 0.5 * dist[index][:, index]
    self_value = _ot_value(aug, reg, solver=solver, symmetric=True, num_iter_max=num_iter_max,
                           stop_thr=stop_thr, eps_scaling=eps_scaling)
    return OTDDSourceTerms(classes=classes, class_self=self_vals, class_distances=dist,
                           self_value=self_value, reg=reg, inner_reg=inner_reg)


@torch.no_grad()
def label_distances(source: Tensor, source_labels: Tensor, target: Tensor, target_clusters: Tensor,
                    *, inner_reg: float = 0.1, source_terms: OTDDSourceTerms | None = None,
                    target_pairs: bool = True, inner_num_iter_max: int = INNER_ITERS,
                    solver: str = DEFAULT_SOLVER, stop_thr: float | None = None,
                    eps_scaling: float | None = EPS_SCALING) -> LabelDistances:
    """Label-to-label distances between source classes and target clusters, without gradient.

    ``target_pairs=False`` skips the cluster-cluster distances (not needed per cluster).
    """
    source, target = source.detach(), target.detach()
    s_classes, s_index = _groups(source_labels)
    t_classes, t_index = _groups(target_clusters)
    s_parts = [source[s_index == c] for c in range(len(s_classes))]
    t_parts = [target[t_index == k] for k in range(len(t_classes))]
    s_self = None
    if source_terms is not None:
        if not torch.equal(source_terms.classes.cpu(), s_classes.cpu()):
            raise ValueError("source_terms were computed for other source classes")
        s_self = source_terms.class_self
    kw = dict(inner_reg=inner_reg, num_iter_max=inner_num_iter_max, eps_scaling=eps_scaling,
              stop_thr=stop_thr, solver=solver)
    _, st, t_self = _inner_divergences(s_parts, t_parts, self_a=s_self, **kw)
    tt = None
    if target_pairs:
        _, tt, _ = _inner_divergences(t_parts, None, self_a=t_self, **kw)
        tt = tt.to(target.dtype)
    return LabelDistances(target_classes=t_classes, source_target=st.to(target.dtype),
                          target_target=tt)


def class_conditional_alignment(source: Tensor, source_labels: Tensor, target: Tensor,
                                target_clusters: Tensor, *, reg: float = 0.1, inner_reg: float = 0.1,
                                per_cluster: bool = False, cluster_weights: Tensor | None = None,
                                source_terms: OTDDSourceTerms | None = None,
                                distances: LabelDistances | None = None,
                                inner_num_iter_max: int = INNER_ITERS,
                                solver: str = DEFAULT_SOLVER,
                                num_iter_max: int | None = None,
                                stop_thr: float | None = None,
                                eps_scaling: float | None = EPS_SCALING) -> Tensor:
    """ORCA-style OTDD surrogate between labelled source ``(S, y)`` and clustered target ``(T, k)``.

    Augmented cost ``d((s, y), (t, k)) = 1/2 |s - t|^2 + 1/2 W^2(S_y, T_k)`` where ``W^2`` is the
    debiased Sinkhorn divergence with cost ``|a - b|^2`` and ``eps = inner_reg`` between the
    class / cluster point sets, computed **without gradient** (``inner_num_iter_max`` iterations
    with epsilon scaling; approximate by design, see :func:`label_distances`). The loss is the
    debiased outer Sinkhorn divergence (entropic objective, ``eps = reg`` absolute) over the
    augmented costs:

    ``OT(S~, T~) - 1/2 OT(S~, S~) - 1/2 OT(T~, T~)``, the self-terms using the source-source
    (``W^2(S_y, S_y')``) and target-target (``W^2(T_k, T_k')``) label distances (zero on the
    diagonal). Gradients flow to ``target`` only through the ``1/2 |s - t|^2`` feature terms.

    ``per_cluster=False``: one OTDD between the two labelled clouds.
    ``per_cluster=True``: ORCA's loop, ``sum_k w_k * OTDD((S, y), (T_k, single label))``; clusters
    with fewer than 2 points are skipped (as ORCA does); ``cluster_weights`` indexed by cluster id
    (e.g. :func:`recraft.discretise.class_weights` over the whole train set), default the batch
    frequencies ``n_k / m``. Note that each cluster is then compared with the *whole* labelled
    source, so a cluster covering several source classes can cost less than a pure one.

    ``source_terms`` (:func:`otdd_source_terms`) and ``distances`` (:func:`label_distances`) can be
    passed to reuse precomputed constants. Solver settings (``solver``, ``num_iter_max``,
    ``stop_thr``, ``eps_scaling``): see the module docstring; the self-terms (symmetric augmented
    costs) use the torch solver's symmetric iteration.
    """
    _check_solver_args(solver, num_iter_max, stop_thr, eps_scaling)
    okw = dict(solver=solver, num_iter_max=num_iter_max, stop_thr=stop_thr, eps_scaling=eps_scaling)
    ikw = dict(inner_reg=inner_reg, inner_num_iter_max=inner_num_iter_max, stop_thr=stop_thr,
               eps_scaling=eps_scaling, solver=solver)
    if source_terms is None:
        source_terms = otdd_source_terms(source, source_labels, reg=reg, num_iter_max=num_iter_max,
                                         **ikw)
    elif source_terms.reg != reg or source_terms.inner_reg != inner_reg:
        raise ValueError("source_terms were computed with another reg / inner_reg")
    if distances is None:
        distances = label_distances(source, source_labels, target, target_clusters,
                                    source_terms=source_terms, target_pairs=not per_cluster, **ikw)
    _, s_index = _groups(source_labels)
    t_classes, t_index = _groups(target_clusters)
    if not torch.equal(t_classes.cpu(), distances.target_classes.cpu()):
        raise ValueError("distances were computed for other target clusters")
    st = distances.source_target.to(target.dtype)
    source_feat = source.detach()

    def otdd(t: Tensor, k_index: Tensor, tt: Tensor | None) -> Tensor:
        cross = 0.5 * cost_matrix(source_feat, t, 2) + 0.5 * st[s_index][:, k_index]
        own = 0.5 * cost_matrix(t, t, 2)
        if tt is not None:
            own = own + 0.5 * tt[k_index][:, k_index]
        # own: symmetric by construction (tt is a symmetric matrix)
        return (_ot_value(cross, reg, **okw) - 0.5 * source_terms.self_value.to(t.dtype)
                - 0.5 * _ot_value(own, reg, symmetric=True, **okw))

    if not per_cluster:
        if distances.target_target is None:
            raise ValueError("distances lack the target-target block (target_pairs=False)")
        return otdd(target, t_index, distances.target_target.to(target.dtype))

    # zero that stays on the graph: a batch whose clusters are all too small still backpropagates
    total = target.sum() * 0.0
    m = target.shape[0]
    for k_pos, k in enumerate(t_classes.tolist()):
        members = t_index == k_pos
        n_k = int(members.sum())
        if n_k < 2:
            continue
        w_k = n_k / m if cluster_weights is None else float(cluster_weights[k])
        # one target label per problem: the target self-term has no label cost
        total = total + w_k * otdd(target[members], t_index[members], None)
    return total


# --------------------------------------------------------------------------------------------
# picking a variant by name
# --------------------------------------------------------------------------------------------

class FAVariant(str, Enum):
    """FA variants by config string."""

    W1 = "w1"                      # paper: epsilon * W1 (eq. 14)
    SINKHORN_DIV = "sinkhorn_div"  # reference RECRAFT code: label-free debiased Sinkhorn divergence
    OTDD = "otdd"                  # ORCA: class-conditional OTDD surrogate

    @property
    def needs_labels(self) -> bool:
        return self is FAVariant.OTDD


class FeatureAlignment:
    """A FA loss bound to one fixed source cloud, with the source-only terms cached.

    >>> fa = FeatureAlignment("sinkhorn_div", source)          # doctest: +SKIP
    >>> loss = fa(target_features)                              # doctest: +SKIP
    >>> fa = FeatureAlignment("otdd", source, source_labels)     # doctest: +SKIP
    >>> loss = fa(target_features, target_clusters)             # doctest: +SKIP

    ``scale`` multiplies the result (e.g. the paper's epsilon for the non-W1 variants, or the
    reference code's ``m / #batches`` factor). ``loss_kwargs`` go to the variant's function:
    :func:`wasserstein_fa`, :func:`sinkhorn_divergence` or :func:`class_conditional_alignment`,
    e.g. ``solver="pot"`` (default ``"torch"``), ``stop_thr``, ``num_iter_max``; the cached source
    terms are computed with the same solver settings.
    """

    def __init__(self, variant: FAVariant | str, source: Tensor, source_labels: Tensor | None = None,
                 *, scale: float = 1.0, **loss_kwargs):
        self.variant = FAVariant(variant)
        self.source = source.detach()
        self.scale = scale
        self.loss_kwargs = loss_kwargs
        _check_solver_args(loss_kwargs.get("solver", DEFAULT_SOLVER), loss_kwargs.get("num_iter_max"),
                           loss_kwargs.get("stop_thr"), loss_kwargs.get("eps_scaling", EPS_SCALING))
        self._cache = None
        if self.variant.needs_labels:
            if source_labels is None:
                raise ValueError("the 'otdd' variant needs source_labels")
            self.source_labels = source_labels
        else:
            if source_labels is not None:
                warnings.warn(f"variant {self.variant.value!r} ignores source_labels", stacklevel=2)
            self.source_labels = None

    def source_terms(self):
        """The cached source-only constants (computed on first use)."""
        if self._cache is None:
            kw = self.loss_kwargs
            solver = dict(solver=kw.get("solver", DEFAULT_SOLVER), num_iter_max=kw.get("num_iter_max"),
                          stop_thr=kw.get("stop_thr"), eps_scaling=kw.get("eps_scaling", EPS_SCALING))
            if self.variant is FAVariant.SINKHORN_DIV:
                with torch.no_grad():
                    self._cache = entropic_ot(self.source, self.source, reg=kw.get("reg", 0.1),
                                              **solver)
            elif self.variant is FAVariant.OTDD:
                self._cache = otdd_source_terms(
                    self.source, self.source_labels, reg=kw.get("reg", 0.1),
                    inner_reg=kw.get("inner_reg", 0.1),
                    inner_num_iter_max=kw.get("inner_num_iter_max", INNER_ITERS), **solver)
        return self._cache

    def __call__(self, target: Tensor, target_clusters: Tensor | None = None) -> Tensor:
        if self.variant is FAVariant.W1:
            loss = wasserstein_fa(self.source, target, **self.loss_kwargs)
        elif self.variant is FAVariant.SINKHORN_DIV:
            loss = sinkhorn_divergence(self.source, target, source_self=self.source_terms(),
                                       **self.loss_kwargs)
        else:
            if target_clusters is None:
                raise ValueError("the 'otdd' variant needs target_clusters")
            loss = class_conditional_alignment(self.source, self.source_labels, target,
                                               target_clusters, source_terms=self.source_terms(),
                                               **self.loss_kwargs)
        return self.scale * loss
