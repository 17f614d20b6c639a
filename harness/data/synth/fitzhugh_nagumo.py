"""2D diffusion-reaction (FitzHugh-Nagumo type) on [-1, 1]², no-flux walls (``docs/data.md`` §3.8).

    u_t = D_u Δu + u - u³ - k - v,    v_t = D_v Δv + u - v,
    D_u = 1e-3, D_v = 5e-3, k = 5e-3, IC: u, v ~ N(0, 1) independently per cell.

Space: the cell-centred FV Laplacian with Neumann walls (outer neighbour dropped), which the
orthonormal DCT-II diagonalises exactly. Time: Strang splitting into two exactly solvable parts:
    A: u_t = u - u³ (per cell; w = u² is logistic), v fixed;
    B: the linear rest. With û = u + k, v̂ = v + k it is homogeneous, u_t = D_uΔû - v̂,
       v_t = D_vΔv̂ + û - v̂, solved per DCT mode with a 2x2 matrix exponential.
Both parts are exact, so the cubic's stiffness (|u| up to ~5 from the Gaussian IC) sets no step
limit; only the splitting error does.
"""
from __future__ import annotations

import numpy as np
import scipy.fft

from .grids import cell_centres, frame_times
from .plan import Plan, contiguous_batches

VERSION = "fitzhugh-nagumo-1"
D_U, D_V, K = 1e-3, 5e-3, 5e-3
T_END = 5.0
HALF_WIDTH = 1.0
DT = 0.025  # splitting step; frame spacing must be a multiple of it (see solve)


def cubic_flow(u: np.ndarray, tau: float) -> np.ndarray:
    """Exact flow of u' = u - u³ over ``tau``."""
    g = np.exp(2.0 * tau)
    return u * np.exp(tau) / np.sqrt(1.0 + u * u * (g - 1.0))


def neumann_eigenvalues(n: int, dx: float) -> np.ndarray:
    """Eigenvalues of the 1D no-flux FV Laplacian on ``n`` cells, in DCT-II mode order."""
    return -4.0 / (dx * dx) * np.sin(np.pi * np.arange(n) / (2 * n)) ** 2


def expm2(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, tau: float) -> np.ndarray:
    """exp(τ[[a, b], [c, d]]) elementwise over arrays of entries; shape (..., 2, 2).

    Closed form: e^{τT/2}[cosh(sτ) I + sinh(sτ)/s (M - T/2 I)], s² = (T/2)² - det M (complex s
    covers the oscillatory case)."""
    half = 0.5 * (a + d)
    s = np.sqrt((0.5 * (a - d)) ** 2 + b * c + 0j)
    st = s * tau
    small = np.abs(st) < 1e-8
    sinhc = np.where(small, tau, np.sinh(st) / np.where(small, 1.0, s)).real
    ch = np.cosh(st).real
    scale = np.exp(half * tau)
    out = np.empty(np.shape(a) + (2, 2))
    out[..., 0, 0] = scale * (ch + sinhc * (a - half))
    out[..., 0, 1] = scale * sinhc * b
    out[..., 1, 0] = scale * sinhc * c
    out[..., 1, 1] = scale * (ch + sinhc * (d - half))
    return out


def linear_propagator(nx: int, ny: int, dx: float, tau: float) -> np.ndarray:
    """exp(τM) for every DCT mode, M = [[D_u λ, -1], [1, D_v λ - 1]]: shape (nx, ny, 2, 2)."""
    lam = neumann_eigenvalues(nx, dx)[:, None] + neumann_eigenvalues(ny, dx)[None, :]
    one = np.ones_like(lam)
    return expm2(D_U * lam, -one, one, D_V * lam - 1.0, tau)


def solve(u0: np.ndarray, v0: np.ndarray, dx: float, t: np.ndarray, dt: float = DT) -> np.ndarray:
    """Evolve (u0, v0), each (n, X, Y); frames (n, T, X, Y, 2) at equally spaced times ``t``."""
    frame_dt = t[1] - t[0]
    m = max(1, int(round(frame_dt / dt)))
    dt = frame_dt / m
    e = linear_propagator(u0.shape[-2], u0.shape[-1], dx, dt)
    dct = dict(type=2, norm="ortho", axes=(-2, -1))
    out = np.empty(u0.shape[:1] + (len(t),) + u0.shape[1:] + (2,))
    out[:, 0, ..., 0], out[:, 0, ..., 1] = u0, v0
    u, v = u0.astype(np.float64), v0.astype(np.float64)
    for j in range(1, len(t)):
        u = cubic_flow(u, dt / 2)
        for s in range(m):
            uh = scipy.fft.dctn(u + K, **dct)
            vh = scipy.fft.dctn(v + K, **dct)
            u = scipy.fft.idctn(e[..., 0, 0] * uh + e[..., 0, 1] * vh, **dct) - K
            v = scipy.fft.idctn(e[..., 1, 0] * uh + e[..., 1, 1] * vh, **dct) - K
            u = cubic_flow(u, dt if s < m - 1 else dt / 2)  # merged half steps
        out[:, j, ..., 0], out[:, j, ..., 1] = u, v
    return out


def generate(rng: np.random.Generator, n: int, nx: int, nt: int) -> Plan:
    """``n`` samples on an ``nx``² grid of [-1, 1]² with ``nt`` frames on [0, 5].

    Each sample's Gaussian IC comes from its own seed (as upstream's one seed per group), so it
    does not depend on the batching."""
    x = cell_centres(-HALF_WIDTH, HALF_WIDTH, nx)
    t = frame_times(T_END, nt)
    seeds = rng.integers(0, 2**63, size=n)

    def run(idx: np.ndarray) -> dict:
        uv = np.stack([np.random.default_rng(seeds[i]).standard_normal((2, nx, nx)) for i in idx])
        return {"data": solve(uv[:, 0], uv[:, 1], x[1] - x[0], t)}

    return Plan(n, {"grid/x": x, "grid/y": x, "grid/t": t}, {"data": (nt, nx, nx, 2)}, run,
                contiguous_batches(n, nt * nx * nx * 2),
                [{"sim": {"Du": D_U, "Dv": D_V, "k": K, "ic": "N(0,1) per cell"}}] * n)
