"""2D steady Darcy flow -∇·(a ∇u) = β on (0, 1)², u = 0 on the boundary (``docs/data.md`` §3.6).

Cell-centred finite volumes on the 5-point stencil: face coefficients are the arithmetic mean of
the two cells (upstream's choice; harmonic available), the Dirichlet condition enters through
zero-valued ghost cells one cell width outside with the boundary cell's coefficient, as upstream.
The steady problem is solved directly (upstream relaxed in pseudo-time and kept t = 1.75, which
leaves low-a regions slightly unconverged; the direct solve is the converged field). The matrix
is symmetric positive definite: face coefficients are shared by both cells and Dirichlet ghosts
make it strictly diagonally dominant on boundary rows.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from .grids import cell_centres
from .plan import Plan, contiguous_batches

VERSION = "darcy-1"
BETA = 0.1
A_HIGH, A_LOW = 1.0, 0.1
N_BUMPS = 5


def bump_parameters(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: 5 bump centres ~ U([0,1]²) (n, 5, 2) and widths 0.5·U(0,1) (n, 5)."""
    centres = rng.uniform(0.0, 1.0, size=(n, N_BUMPS, 2))
    widths = np.maximum(0.5 * rng.uniform(0.0, 1.0, size=(n, N_BUMPS)), 1e-12)  # U can give 0
    return centres, widths


def coefficient_from(centres: np.ndarray, widths: np.ndarray, nx: int) -> np.ndarray:
    """Binary coefficients (n, nx, nx) indexed [x, y]: 1 where the sum of Gaussian bumps
    exp(-|x-c|²/s) exceeds its own (per-sample) mean, else 0.1. Upstream thresholds at the mean
    over a batch of 200 samples; a per-sample mean keeps samples independent of batching."""
    x = cell_centres(0.0, 1.0, nx)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    g = np.zeros((len(widths), nx, nx))
    for i in range(widths.shape[1]):
        d2 = (xx - centres[:, i, 0, None, None]) ** 2 + (yy - centres[:, i, 1, None, None]) ** 2
        g += np.exp(-d2 / widths[:, i, None, None])
    return np.where(g > g.mean(axis=(1, 2), keepdims=True), A_HIGH, A_LOW)


def coefficient(rng: np.random.Generator, n: int, nx: int) -> np.ndarray:
    """``n`` random coefficients on an ``nx``² grid (see :func:`coefficient_from`)."""
    return coefficient_from(*bump_parameters(rng, n), nx)


Face = Literal["arithmetic", "harmonic"]


def assemble(a: np.ndarray, face: Face = "arithmetic") -> sp.csc_matrix:
    """FV matrix of -∇·(a∇·) on the grid of ``a`` (nx, ny), unit square, zero Dirichlet ghosts.

    Unknown (i, j) has index i·ny + j."""
    nx, ny = a.shape
    sx, sy = float(nx * nx), float(ny * ny)  # 1/dx², 1/dy² on the unit square

    def mean(p, q):
        return 0.5 * (p + q) if face == "arithmetic" else 2.0 * p * q / (p + q)

    fx = mean(a[:-1, :], a[1:, :]) * sx  # faces between (i, j) and (i+1, j)
    fy = mean(a[:, :-1], a[:, 1:]) * sy  # faces between (i, j) and (i, j+1)
    diag = np.zeros((nx, ny))
    diag[:-1, :] += fx
    diag[1:, :] += fx
    diag[:, :-1] += fy
    diag[:, 1:] += fy
    # boundary faces: ghost value 0 and ghost coefficient = the cell's own, so the face mean is a
    diag[0, :] += a[0, :] * sx
    diag[-1, :] += a[-1, :] * sx
    diag[:, 0] += a[:, 0] * sy
    diag[:, -1] += a[:, -1] * sy
    off_y = np.zeros((nx, ny))
    off_y[:, :-1] = -fy  # coupling (i, j)-(i, j+1); zero across the end of each row
    off_x = -fx.ravel()
    return sp.diags([diag.ravel(), off_y.ravel()[:-1], off_y.ravel()[:-1], off_x, off_x],
                    [0, 1, -1, ny, -ny], format="csc")


def solve(a: np.ndarray, beta: float = BETA, face: Face = "arithmetic") -> np.ndarray:
    """Solutions u (n, nx, ny) for coefficients ``a`` (n, nx, ny); one sparse LU per sample."""
    out = np.empty(a.shape)
    for s in range(a.shape[0]):  # independent steady problems; no time loop
        lu = splu(assemble(a[s], face), permc_spec="MMD_AT_PLUS_A")
        out[s] = lu.solve(np.full(a[s].size, beta)).reshape(a.shape[1:])
    return out


def generate(rng: np.random.Generator, n: int, nx: int) -> Plan:
    """``n`` coefficient/solution pairs on an ``nx``² grid of the unit square."""
    centres, widths = bump_parameters(rng, n)
    x = cell_centres(0.0, 1.0, nx)

    def run(idx: np.ndarray) -> dict:
        a = coefficient_from(centres[idx], widths[idx], nx)
        return {"tensor": solve(a)[:, None], "nu": a}

    return Plan(n, {"x-coordinate": x, "y-coordinate": x,
                    "t-coordinate": 0.25 * np.arange(10)},  # upstream leftover: pseudo-time 0..2.25
                {"tensor": (1, nx, nx), "nu": (nx, nx)}, run, contiguous_batches(n, 2 * nx * nx))
