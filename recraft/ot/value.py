"""Optimal-transport values with plan gradients, from either entropic solver or exact OT."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from .cost import cost_matrix, uniform
from .pot import pot, pot_sinkhorn_plan
from .sinkhorn import EPS_SCALING, _check_iteration_args, sinkhorn_potentials

__all__ = ["DEFAULT_EMD_ITERS", "DEFAULT_SOLVER", "SOLVERS", "check_solver_args", "entropic_ot",
           "ot_value", "same_points"]

SOLVERS = ("torch", "pot")  # entropic OT solvers (exact OT is always POT's network simplex)
DEFAULT_SOLVER = "torch"
DEFAULT_EMD_ITERS = 1_000_000


def check_solver_args(solver: str, num_iter_max: int | None, stop_thr: float | None,
                      eps_scaling: float | None) -> None:
    """A clear ``ValueError`` for an unknown solver or invalid iteration settings."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; valid solvers: {', '.join(SOLVERS)}")
    _check_iteration_args(num_iter_max, stop_thr, eps_scaling)


def ot_value(cost: Tensor, reg: float | None, *, objective: Literal["entropic", "linear"] = "entropic",
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
    check_solver_args(solver, num_iter_max, stop_thr, eps_scaling)
    m64 = cost.to(torch.float64)  # differentiable cast
    if reg is None:
        a, b = uniform(cost.shape[0], cost), uniform(cost.shape[1], cost)
        return pot().solve(m64, a, b, max_iter=num_iter_max or DEFAULT_EMD_ITERS).value.to(cost.dtype)
    if not reg > 0:
        raise ValueError(f"reg must be positive (or None for exact OT), got {reg}")
    if objective not in ("entropic", "linear"):
        raise ValueError(f"objective must be 'entropic' or 'linear', got {objective!r}")
    reg = float(reg)
    a, b = uniform(cost.shape[0], cost), uniform(cost.shape[1], cost)
    if solver == "pot":
        plan = pot_sinkhorn_plan(m64.detach(), reg, num_iter_max=num_iter_max, stop_thr=stop_thr,
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
    return ot_value(cost_scale * cost_matrix(x, y, p), reg, objective="entropic", solver=solver,
                     symmetric=same_points(x, y), num_iter_max=num_iter_max, stop_thr=stop_thr,
                     eps_scaling=eps_scaling)


def same_points(x: Tensor, y: Tensor) -> bool:
    """Whether two clouds hold the same points (then ``C(x, y)`` is a self-term ``C(x, x)``)."""
    return x.shape == y.shape and x.device == y.device and torch.equal(x.detach(), y.detach())
