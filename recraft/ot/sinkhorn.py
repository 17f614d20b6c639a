"""The torch entropic OT solver: log-domain Sinkhorn on the dual potentials.

See :func:`sinkhorn_potentials` (and the package docstring, :mod:`recraft.ot`). Everything here
is without gradient; :func:`recraft.ot.value.ot_value` turns the potentials into a value whose
gradient is the plan.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

__all__ = ["DEFAULT_SINKHORN_ITERS", "EPS_SCALING", "SinkhornStats", "TORCH_STOP_THR",
           "eps_schedule", "record_sinkhorn", "sinkhorn_potentials"]

DEFAULT_SINKHORN_ITERS = 1000
EPS_SCALING = 0.5        # default epsilon-scaling factor (None disables), both solvers

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


def eps_schedule(c_max: float, reg: float, eps_scaling: float | None) -> list[float]:
    """Epsilon-scaling steps above ``reg``: ``c_max * q^k`` while it exceeds ``reg`` (none if off)."""
    out: list[float] = []
    if eps_scaling is None:
        return out
    cur = c_max
    while cur > reg:
        out.append(cur)
        cur *= eps_scaling
    return out


def _check_iteration_args(num_iter_max: int | None, stop_thr: float | None,
                          eps_scaling: float | None) -> None:
    if num_iter_max is not None and (isinstance(num_iter_max, bool) or int(num_iter_max) != num_iter_max
                                     or num_iter_max < 1):
        raise ValueError(f"num_iter_max must be a positive integer or None, got {num_iter_max!r}")
    if stop_thr is not None and not stop_thr > 0:
        raise ValueError(f"stop_thr must be positive or None, got {stop_thr!r}")
    if eps_scaling is not None and not 0 < eps_scaling < 1:
        raise ValueError(f"eps_scaling must be in (0, 1) or None (no scaling), got {eps_scaling!r}")


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
    _check_iteration_args(num_iter_max, stop_thr, eps_scaling)
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
    schedule = eps_schedule(float(c.max()), reg, eps_scaling)
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
