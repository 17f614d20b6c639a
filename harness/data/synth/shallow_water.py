"""2D shallow water, radial dam break, g = 1, on [-2.5, 2.5]², t ∈ [0, 1] (``docs/data.md`` §3.7).

    h_t + (hu)_x + (hv)_y = 0
    (hu)_t + (hu² + gh²/2)_x + (huv)_y = 0
    (hv)_t + (huv)_x + (hv² + gh²/2)_y = 0

IC: h = 2 inside the disc r < r0 (r0 ~ U(0.3, 0.7)), 1 outside, at rest; transmissive walls.
Finite volume, dimensionally unsplit: minmod-limited MUSCL on (h, u, v), HLL fluxes, SSP-RK2.

The problem is symmetric under x → -x and y → -y, and so is the scheme on a grid with an even
number of cells, so the generator solves one quadrant with mirror (reflective) ghost cells on
the symmetry axes and unfolds it: the same numbers as the full-grid solve at a quarter of the work.
``solve`` does either; the tests check they agree.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from .grids import cell_centres, frame_times
from .plan import Plan, contiguous_batches

VERSION = "shallow-water-1"
G = 1.0
T_END = 1.0
HALF_WIDTH = 2.5
H_IN, H_OUT = 2.0, 1.0
CFL = 0.6  # dt·(max(|u|+c)/dx + max(|v|+c)/dy); ≈ 0.3 per direction in this radial flow

Boundary = Literal["transmissive", "reflective"]


def _take(a: np.ndarray, start: int | None, stop: int | None, axis: int) -> np.ndarray:
    """View of ``a`` sliced along ``axis`` (-1 or -2)."""
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(start, stop)
    return a[tuple(idx)]


def _pad(a: np.ndarray, axis: int, lo: Boundary, hi: Boundary, odd: bool) -> np.ndarray:
    """Two ghost cells each side along ``axis``: copies of the edge cell (transmissive) or mirror
    images (reflective), negated when ``odd`` (the velocity normal to the wall)."""
    def ghosts(edge2: np.ndarray, kind: Boundary, inner_first: bool) -> np.ndarray:
        if kind == "transmissive":
            e = _take(edge2, 0, 1, axis) if inner_first else _take(edge2, 1, 2, axis)
            return np.concatenate([e, e], axis=axis)
        m = np.flip(edge2, axis=axis)
        return -m if odd else m

    left = ghosts(_take(a, 0, 2, axis), lo, True)
    right = ghosts(_take(a, -2, None, axis), hi, False)
    return np.concatenate([left, a, right], axis=axis)


def _minmod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(a * b > 0.0, np.where(np.abs(a) < np.abs(b), a, b), 0.0)


def _faces(a: np.ndarray, axis: int, lo: Boundary, hi: Boundary, odd: bool = False):
    """Minmod-MUSCL left/right states at all faces along ``axis`` (walls included)."""
    ag = _pad(a, axis, lo, hi, odd)
    d = np.diff(ag, axis=axis)
    slope = _minmod(_take(d, None, -1, axis), _take(d, 1, None, axis))  # cells -1..X
    cells = _take(ag, 1, -1, axis)
    return (_take(cells + 0.5 * slope, None, -1, axis), _take(cells - 0.5 * slope, 1, None, axis))


def _flux_divergence(h, un, ut, axis: int, dx: float, g: float, lo: Boundary, hi: Boundary):
    """-(F_{i+½} - F_{i-½})/dx along ``axis`` for (h, h·un, h·ut); HLL flux, normal velocity un."""
    hl, hr = _faces(h, axis, lo, hi)
    ul, ur = _faces(un, axis, lo, hi, odd=True)
    vl, vr = _faces(ut, axis, lo, hi)
    cl, cr = np.sqrt(g * hl), np.sqrt(g * hr)
    sl = np.minimum(np.minimum(ul - cl, ur - cr), 0.0)
    sr = np.maximum(np.maximum(ul + cl, ur + cr), 0.0)
    inv = 1.0 / (sr - sl)
    a, b, c = sr * inv, -sl * inv, sl * sr * inv
    ql, qr = hl * ul, hr * ur  # normal discharge
    fluxes = (a * ql + b * qr + c * (hr - hl),
              a * (ql * ul + 0.5 * g * hl * hl) + b * (qr * ur + 0.5 * g * hr * hr) + c * (qr - ql),
              a * ql * vl + b * qr * vr + c * (hr * vr - hl * vl))
    return [-np.diff(f, axis=axis) / dx for f in fluxes]


def rhs(q: np.ndarray, dx: float, g: float, lo: Boundary, hi: Boundary) -> np.ndarray:
    """dq/dt for conserved q = (h, hu, hv) of shape (3, n, X, Y); the same walls on x and y."""
    h = q[0]
    u, v = q[1] / h, q[2] / h
    mx, px, tx = _flux_divergence(h, u, v, -2, dx, g, lo, hi)  # x: axis -2, normal velocity u
    my, py, ty = _flux_divergence(h, v, u, -1, dx, g, lo, hi)  # y: axis -1, normal velocity v
    return np.stack([mx + my, px + ty, tx + py])


def solve(h0: np.ndarray, dx: float, t: np.ndarray, g: float = G, cfl: float = CFL,
          lo: Boundary = "transmissive", hi: Boundary = "transmissive") -> np.ndarray:
    """Evolve still water of depth ``h0`` (n, X, Y); frames of h (n, T, X, Y). ``lo``/``hi`` are
    the walls at the low/high ends of both axes."""
    q = np.stack([h0, np.zeros_like(h0), np.zeros_like(h0)]).astype(np.float64)
    out = np.empty(h0.shape[:1] + (len(t),) + h0.shape[1:])
    out[:, 0] = h0
    t_now = float(t[0])
    for j in range(1, len(t)):
        while t_now < t[j]:
            c = np.sqrt(g * q[0])
            speed = np.max(np.abs(q[1] / q[0]) + c) + np.max(np.abs(q[2] / q[0]) + c)
            dt = min(cfl * dx / speed, t[j] - t_now)
            q1 = q + dt * rhs(q, dx, g, lo, hi)
            q = 0.5 * (q + q1 + dt * rhs(q1, dx, g, lo, hi))
            t_now = float(t[j]) if t[j] - t_now - dt < 1e-12 else t_now + dt
        if not np.all(np.isfinite(q[0])):
            raise FloatingPointError(f"shallow-water solve became non-finite before t={t[j]}")
        out[:, j] = q[0]
    return out


def dam_break(r0: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Initial depth (n, X, Y) on cell centres ``x`` (both axes): 2 inside radius r0, else 1."""
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    return np.where(r2[None] < (np.asarray(r0)[:, None, None]) ** 2, H_IN, H_OUT)


def solve_quadrant(r0: np.ndarray, nx: int, t: np.ndarray) -> np.ndarray:
    """Full-grid frames (n, T, nx, nx) from a solve of the x, y > 0 quadrant (nx even)."""
    x = cell_centres(-HALF_WIDTH, HALF_WIDTH, nx)
    half = nx // 2
    quad = solve(dam_break(r0, x[half:]), x[1] - x[0], t, lo="reflective", hi="transmissive")
    top = np.concatenate([quad[..., ::-1, :], quad], axis=-2)
    return np.concatenate([top[..., ::-1], top], axis=-1)


def generate(rng: np.random.Generator, n: int, nx: int, nt: int) -> Plan:
    """``n`` dam breaks on an ``nx``² grid (nx even) with ``nt`` frames on [0, 1]."""
    if nx % 2:
        raise ValueError(f"shallow-water grid must have an even number of cells, got {nx}")
    r0 = rng.uniform(0.3, 0.7, size=n)
    t = frame_times(T_END, nt)
    x = cell_centres(-HALF_WIDTH, HALF_WIDTH, nx)
    return Plan(n, {"grid/x": x, "grid/y": x, "grid/t": t}, {"data": (nt, nx, nx, 1)},
                lambda idx: {"data": solve_quadrant(r0[idx], nx, t)[..., None]},
                contiguous_batches(n, nt * nx * nx),
                [{"sim": {"dam_radius": float(r), "inner_height": H_IN, "g": G}} for r in r0])
