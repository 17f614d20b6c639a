"""1D linear advection u_t + β u_x = 0, periodic on [0, L) (``docs/data.md`` §3.1).

The exact solution ``u(x, t) = u0((x - βt) mod L)`` is evaluated from the analytic IC, so the data
carry no numerical diffusion (upstream's FV scheme adds a little; that is the only difference).
"""
from __future__ import annotations

import numpy as np

from .ic import SineIC, sine_ic_plan
from .plan import Plan

VERSION = "advection-1"
BETA = 0.4
T_END = 2.0
LENGTH = 1.0


def solve(ic: SineIC, x: np.ndarray, t: np.ndarray, beta: float = BETA, x0: float = 0.0,
          length: float = LENGTH) -> np.ndarray:
    """Exact solution at cell centres ``x`` (domain ``[x0, x0+L)``), times ``t``: (n, T, X)."""
    out = np.empty((ic.n, len(t), len(x)))
    for j, tj in enumerate(t):  # one frame at a time bounds memory at one (n, X) field
        out[:, j] = ic(x0 + np.mod(x - x0 - beta * tj, length))
    return out


def generate(rng: np.random.Generator, n: int, nx: int, nt: int) -> Plan:
    """``n`` samples on ``nx`` cells with ``nt`` frames evenly spaced over [0, 2]."""
    return sine_ic_plan(rng, n, nx, nt, length=LENGTH, t_end=T_END, frames=solve)
