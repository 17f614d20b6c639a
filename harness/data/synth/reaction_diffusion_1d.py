"""1D Fisher-KPP u_t = ν u_xx + ρ u(1-u), periodic on [0, 1) (``docs/data.md`` §3.3).

Strang splitting: half a step of the exact logistic flow, a full step of exact Fourier diffusion,
another logistic half step. Both parts are exact and unconditionally stable, so the splitting is
the only time error, and a spatially constant field follows the logistic ODE to round-off.
"""
from __future__ import annotations

import numpy as np

from .ic import minmax_normalise, sine_ic_plan
from .plan import Plan
from .spectral import from_grid, pad, to_grid, working_size

VERSION = "reaction-diffusion-1d-1"
NU = 0.5
RHO = 1.0
T_END = 1.0
LENGTH = 1.0
SUBSTEPS = 2  # Strang steps per 0.01 frame once the IC's sharp features have diffused
FIRST_SUBSTEPS = 32  # steps in the first frame (then 32/j² in frame j, at least SUBSTEPS)
TOL = 1e-15  # Fourier modes below this fraction of the largest are dropped (spectral.py)


def logistic(u: np.ndarray, rho: float, tau: float) -> np.ndarray:
    """Exact flow of u' = ρu(1-u) over time ``tau`` (well defined for u in [0, 1])."""
    g = np.exp(rho * tau)
    return u * g / (1.0 - u + u * g)


def substeps_for_frame(j: int, base: int = SUBSTEPS, first: int = FIRST_SUBSTEPS) -> int:
    """Sub-steps in frame interval ``j`` (1-based): many at first, while sharp IC features still
    make the diffusion/reaction commutator large, then ``base``."""
    return max(base, -(-first // j**2))


def solve(u0: np.ndarray, t: np.ndarray, nu: float = NU, rho: float = RHO,
          length: float = LENGTH, base: int = SUBSTEPS, first: int = FIRST_SUBSTEPS,
          tol: float = TOL) -> np.ndarray:
    """Evolve ``u0`` (n, X), values in [0, 1], to equally spaced times ``t``: (n, T, X)."""
    n, nx = u0.shape
    out = np.empty((n, len(t), nx))
    out[:, 0] = u0
    c = from_grid(u0)
    for j in range(1, len(t)):
        nw = working_size(c, nx, tol)
        m = substeps_for_frame(j, base, first)
        dt = (t[j] - t[j - 1]) / m
        k = 2.0 * np.pi * np.fft.rfftfreq(nw, d=length / nw)
        heat = np.exp(-nu * k**2 * dt)
        u = logistic(to_grid(c, nw), rho, dt / 2)
        for s in range(m):
            u = np.fft.irfft(heat * np.fft.rfft(u, axis=-1), n=nw, axis=-1)
            # spectral heat flow of grid data with sharp features (tanh windows, |·| kinks) can
            # dip slightly outside [0, 1] (Gibbs); clipping keeps the logistic map in its domain
            u = logistic(np.clip(u, 0.0, 1.0), rho, dt if s < m - 1 else dt / 2)
        c = pad(from_grid(u), nx)
        out[:, j] = np.clip(to_grid(c, nx), 0.0, 1.0)
    return out


def generate(rng: np.random.Generator, n: int, nx: int, nt: int) -> Plan:
    """``n`` samples on ``nx`` cells, ``nt`` frames on [0, 1] (nt = 101 gives 0.01 spacing)."""
    return sine_ic_plan(rng, n, nx, nt, length=LENGTH, t_end=T_END,
                        frames=lambda ic, x, t: solve(minmax_normalise(ic(x)), t))
