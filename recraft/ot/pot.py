"""POT's log-domain Sinkhorn with epsilon scaling (``solver="pot"``), imported on first use."""
from __future__ import annotations

import warnings
from itertools import pairwise

import torch
from torch import Tensor

from .cost import uniform
from .sinkhorn import DEFAULT_SINKHORN_ITERS, eps_schedule

__all__ = ["DEFAULT_STOP_THR", "SCALING_ITERS", "pot", "pot_sinkhorn_plan"]

DEFAULT_STOP_THR = 1e-9  # POT's criterion: ||pi^T 1 - b||_2, checked every 10 iterations
SCALING_ITERS = 10       # POT Sinkhorn iterations at each intermediate scale


def pot():
    """POT, imported on first use: with scikit-learn, which it loads, it takes over a second,
    which every new trial process would pay even when its method solves no exact OT."""
    import ot

    return ot


def pot_sinkhorn_plan(m64: Tensor, reg: float, *, num_iter_max: int | None, stop_thr: float | None,
                       eps_scaling: float | None) -> Tensor:
    """Entropic plan for the (detached, float64) cost ``m64`` from POT's log-domain ``sinkhorn_log``.

    With ``eps_scaling = q`` in (0, 1), POT is first run for ``SCALING_ITERS`` iterations at each
    regularisation ``max(C) * q^k`` above ``reg``, each warm-started from the previous potentials
    (rescaled to the new regularisation), then to convergence at ``reg``. This epsilon-scaling
    continuation (what geomloss does) resolves the global mass balance at coarse scale; plain
    Sinkhorn at a small ``reg`` can need 1e5+ iterations when the clouds have separated modes.
    """
    a, b = uniform(m64.shape[0], m64), uniform(m64.shape[1], m64)
    la, lb = torch.log(a), torch.log(b)
    iters = num_iter_max or DEFAULT_SINKHORN_ITERS
    tol = DEFAULT_STOP_THR if stop_thr is None else stop_thr
    warm = None
    for cur, nxt in pairwise([*eps_schedule(float(m64.max()), reg, eps_scaling), reg]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # intermediate scales are not meant to converge
            _, log = pot().bregman.sinkhorn_log(a, b, m64, cur, numItermax=SCALING_ITERS,
                                             stopThr=tol, log=True, warmstart=warm)
        # POT's log-scalings are u = log a + f / reg with f the dual potential
        warm = (la + (log["log_u"] - la) * (cur / nxt), lb + (log["log_v"] - lb) * (cur / nxt))
    return pot().bregman.sinkhorn_log(a, b, m64, reg, numItermax=iters, stopThr=tol, warmstart=warm)
