"""1D diffusion-sorption u_t = D / R(u) · u_xx on [0, 1], t ∈ [0, 500] (``docs/data.md`` §3.4).

Retardation ``R(u) = 1 + (1-φ)/φ · ρ_s k_f n_f (u + 1e-6)^(n_f-1)``; left Dirichlet u = 1 and right
Cauchy condition, both through ghost cells of the FV Laplacian as upstream; constant IC ~ U(0, 0.2).

Time stepping is linearly implicit variable-step BDF2 (BE for the first step) on a step sequence
that grows geometrically from a tiny first step, since the solution starts with a jump at the left
wall. R is frozen at a second-order extrapolation, so each step is one tridiagonal solve; all
samples are solved together as one block-tridiagonal system.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dptsv

from .grids import cell_centres, frame_times
from .plan import Plan, contiguous_batches

VERSION = "diffusion-sorption-1"
D = 5e-4
POROSITY = 0.29
RHO_S = 2880.0
K_F = 3.5e-4
N_F = 0.874
T_END = 500.0
DT_FIRST = 1e-3  # s; the first steps resolve the initial jump at the left wall
GROWTH = 1.05  # step growth ratio; well below BDF2's zero-stability limit 1 + √2
DT_MAX = 2.5  # s


def retardation(u: np.ndarray) -> np.ndarray:
    """Retardation factor R(u) (Freundlich isotherm); ≈ 13.3 at u = 0, ≈ 3.16 at u = 1."""
    return 1.0 + (1.0 - POROSITY) / POROSITY * RHO_S * K_F * N_F * (u + 1e-6) ** (N_F - 1.0)


def step_times(frames: np.ndarray, dt_first: float = DT_FIRST, growth: float = GROWTH,
               dt_max: float = DT_MAX) -> np.ndarray:
    """Step end times: geometric growth capped at ``dt_max``, landing exactly on every frame.

    A step that would leave less than half a step before the next frame is stretched onto it,
    so consecutive steps never differ by more than a factor of 2 (BDF2 stays zero-stable)."""
    out, t, dt = [], 0.0, dt_first
    for f in frames[1:]:
        while True:
            if t + 1.5 * dt >= f:
                dt, t = f - t, f
                out.append(t)
                break
            t += dt
            out.append(t)
            dt = min(dt * growth, dt_max)
    return np.array(out)


def _off_diagonal(n: int, nx: int) -> np.ndarray:
    """Off-diagonal (-1) of the stacked symmetric system, zero between samples."""
    e = -np.ones((n, nx))
    e[:, -1] = 0.0
    return e.ravel()[:-1]


def solve(c0: np.ndarray, nx: int, t: np.ndarray, dt_first: float = DT_FIRST,
          growth: float = GROWTH, dt_max: float = DT_MAX) -> np.ndarray:
    """Evolve constant ICs ``c0`` (n,) on ``nx`` cells of [0, 1]; frames at times ``t``: (n, T, X).

    Each step solves a0·u' - κ/R·L u' = rhs with κ = dt·D/dx². Rows are scaled by R/κ (and the
    last one by 1/(1+α)) so the matrix is a symmetric, diagonally dominant tridiagonal M-matrix:
    an LDLᵀ solve (``dptsv``) without pivoting. With BE that alone keeps u in [0, 1]; BDF2's
    right-hand side is not a convex combination, so there the bound holds in practice (tested)
    rather than by construction.
    """
    n = len(c0)
    dx = 1.0 / nx
    alpha = D / dx  # right ghost g = α(u_{N-2} - u_{N-1}) folds into the last row
    off = _off_diagonal(n, nx)
    frame_of = {float(f): j for j, f in enumerate(t)}
    out = np.empty((n, len(t), nx))
    u = np.repeat(np.asarray(c0, dtype=np.float64)[:, None], nx, axis=1)
    out[:, 0] = u
    u_prev, dt_prev, t_now = None, None, 0.0
    for t_next in step_times(t, dt_first, growth, dt_max):
        dt = t_next - t_now
        if u_prev is None:  # backward Euler start
            a0, rhs_u, u_star = 1.0, u, u
        else:  # variable-step BDF2: a0 u' - (1+ω) u + ω²/(1+ω) u_prev = dt f(u')
            w = dt / dt_prev
            a0 = (1.0 + 2.0 * w) / (1.0 + w)
            rhs_u = (1.0 + w) * u - w * w / (1.0 + w) * u_prev
            u_star = np.clip(u + w * (u - u_prev), 0.0, 1.0)  # R at second-order extrapolation
        s = retardation(u_star) * (dx * dx / (dt * D))  # R/κ
        diag = a0 * s + 2.0
        rhs = s * rhs_u
        rhs[:, 0] += 1.0  # left ghost value 1
        diag[:, -1] = (a0 * s[:, -1] + 2.0 + alpha) / (1.0 + alpha)
        rhs[:, -1] /= 1.0 + alpha
        *_, x, info = dptsv(diag.ravel(), off, rhs.ravel())
        if info != 0:
            raise RuntimeError(f"tridiagonal solve failed (info={info})")
        u_prev, u, dt_prev, t_now = u, x.reshape(n, nx), dt, t_next
        if t_now in frame_of:
            out[:, frame_of[t_now]] = u
    return out


def generate(rng: np.random.Generator, n: int, nx: int, nt: int) -> Plan:
    """``n`` samples on ``nx`` cells with ``nt`` frames on [0, 500] s."""
    c0 = rng.uniform(0.0, 0.2, size=n)
    t = frame_times(T_END, nt)
    return Plan(n, {"grid/x": cell_centres(0.0, 1.0, nx), "grid/t": t}, {"data": (nt, nx, 1)},
                lambda idx: {"data": solve(c0[idx], nx, t)[..., None]},
                contiguous_batches(n, nt * nx), [{"sim": {"u0": float(c)}} for c in c0])
