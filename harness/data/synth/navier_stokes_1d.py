"""1D compressible Navier-Stokes, periodic on [-1, 1], Γ = 5/3, η = ζ = 0.1 (``docs/data.md`` §3.5).

    ρ_t + (ρv)_x = 0
    (ρv)_t + (ρv² + p)_x = (μ ρ v_x)_x,      μ = 4η/3 + ζ
    E_t + ((E + p)v)_x = (μ ρ v v_x)_x,      E = p/(Γ-1) + ρv²/2

Finite volume: MUSCL reconstruction of (ρ, v, p) with the monotonised-central limiter, HLLC
interface flux, central viscous face fluxes (the face density multiplies the viscosity, as
upstream), pressure floor 1e-4 (upstream's value). In time: Strang splitting of an SSP-RK2 inviscid
step and implicit viscous half steps, so the step follows the advective CFL only (an explicit
viscous term would need a 3-6x smaller step at 64-128 cells).
Every update is a flux difference, so mass, momentum and energy are conserved to round-off.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dptsv

from .grids import cell_centres, frame_times, t_coordinate_plus_one
from .ic import minmax_normalise, sample_sine_ic
from .plan import BATCH_VALUES, Plan

VERSION = "navier-stokes-1d-1"
GAMMA = 5.0 / 3.0
ETA = 0.1
ZETA = 0.1
T_END = 1.0
X_LO, X_HI = -1.0, 1.0
CFL = 0.6  # advective Courant number of the SSP-RK2 MUSCL step
P_FLOOR = 1e-4


def _mc_slope(w: np.ndarray) -> np.ndarray:
    """Monotonised-central limited slopes of cells 1..X-2 of ``w`` along the last axis."""
    a = w[..., 1:-1] - w[..., :-2]
    b = w[..., 2:] - w[..., 1:-1]
    mag = np.minimum(np.minimum(2.0 * np.abs(a), 2.0 * np.abs(b)), 0.5 * np.abs(a + b))
    return np.where(a * b > 0.0, np.sign(a) * mag, 0.0)


def primitives(u: np.ndarray, gamma: float = GAMMA) -> np.ndarray:
    """(ρ, v, p) from conserved (ρ, ρv, E), stacked on axis 0; the pressure is floored."""
    rho, mom, en = u
    v = mom / rho
    p = np.maximum((gamma - 1.0) * (en - 0.5 * mom * v), P_FLOOR)
    return np.stack([rho, v, p])


def _hllc(wl: np.ndarray, wr: np.ndarray, gamma: float) -> np.ndarray:
    """HLLC flux (3, ...) between primitive states ``wl`` and ``wr`` (Toro's formulation)."""
    rl, vl, pl = wl
    rr, vr, pr = wr
    el = pl / (gamma - 1.0) + 0.5 * rl * vl * vl
    er = pr / (gamma - 1.0) + 0.5 * rr * vr * vr
    cl = np.sqrt(gamma * pl / rl)
    cr = np.sqrt(gamma * pr / rr)
    sl = np.minimum(vl - cl, vr - cr)
    sr = np.maximum(vl + cl, vr + cr)
    ml, mr = rl * (sl - vl), rr * (sr - vr)  # mass fluxes through the outer waves
    ss = (pr - pl + vl * ml - vr * mr) / (ml - mr)  # contact speed
    ul = np.stack([rl, rl * vl, el])
    ur = np.stack([rr, rr * vr, er])
    fl = np.stack([rl * vl, rl * vl * vl + pl, (el + pl) * vl])
    fr = np.stack([rr * vr, rr * vr * vr + pr, (er + pr) * vr])
    # star states: ρ* = m/(S-S*), (ρv)* = ρ*S*, E* = ρ*(E/ρ + (S*-v)(S* + p/m))
    dl, dr = ml / (sl - ss), mr / (sr - ss)
    usl = np.stack([dl, dl * ss, dl * (el / rl + (ss - vl) * (ss + pl / ml))])
    usr = np.stack([dr, dr * ss, dr * (er / rr + (ss - vr) * (ss + pr / mr))])
    f_star = np.where(ss >= 0.0, fl + sl * (usl - ul), fr + sr * (usr - ur))
    return np.where(sl >= 0.0, fl, np.where(sr <= 0.0, fr, f_star))


def rhs(u: np.ndarray, dx: float, mu: float, gamma: float = GAMMA) -> np.ndarray:
    """dU/dt of conserved ``u`` (3, n, X) with periodic boundaries."""
    w = primitives(u, gamma)
    wg = np.concatenate([w[..., -2:], w, w[..., :2]], axis=-1)  # two periodic ghosts each side
    slope = _mc_slope(wg)  # cells -1..X
    cells = wg[..., 1:-1]
    face_l = (cells + 0.5 * slope)[..., :-1]  # left states at faces -1/2..X-1/2
    face_r = (cells - 0.5 * slope)[..., 1:]
    flux = _hllc(face_l, face_r, gamma)
    if mu > 0.0:
        v = wg[1, ..., 1:-1]  # v of cells -1..X
        dv = (v[..., 1:] - v[..., :-1]) / dx  # at faces -1/2..X-1/2
        rho_f = 0.5 * (wg[0, ..., 1:-2] + wg[0, ..., 2:-1])
        v_f = 0.5 * (v[..., 1:] + v[..., :-1])
        tau = mu * rho_f * dv
        flux[1] -= tau
        flux[2] -= tau * v_f
    return -(flux[..., 1:] - flux[..., :-1]) / dx


def viscous_step(u: np.ndarray, dx: float, mu: float, dt: float) -> np.ndarray:
    """Backward-Euler step of the viscous terms alone (ρ fixed), on conserved ``u`` (3, n, X).

    Momentum: ρ(v' - v) = dt·(τ_{i+½} - τ_{i-½})/dx with τ = μ ρ_face (v'_{i+1} - v'_i)/dx, a
    symmetric positive definite cyclic tridiagonal system in v' per sample, solved for all samples
    at once (Sherman-Morrison turns the periodic corners into two plain SPD solves). Momentum and
    energy are then updated in flux form with τ and τ·v̄ so their totals stay exact.
    """
    rho, mom, en = u
    n, nx = rho.shape
    a = (mu * dt / (dx * dx)) * 0.5 * (rho + np.roll(rho, -1, axis=-1))  # face i+½ coupling
    diag = rho + a + np.roll(a, 1, axis=-1)
    beta = -a[:, -1]  # periodic corner entries (0, X-1) and (X-1, 0)
    gamma = -diag[:, 0]
    b_diag = diag.copy()
    b_diag[:, 0] -= gamma
    b_diag[:, -1] -= beta * beta / gamma
    off = -a.copy()
    off[:, -1] = 0.0  # no coupling between stacked samples
    corner = np.zeros((n, nx))
    corner[:, 0], corner[:, -1] = gamma, beta
    rhs = np.stack([mom.ravel(), corner.ravel()], axis=1)
    *_, yz, info = dptsv(b_diag.ravel(), off.ravel()[:-1], rhs)
    if info != 0:
        raise RuntimeError(f"viscous solve failed (info={info})")
    y, z = yz[:, 0].reshape(n, nx), yz[:, 1].reshape(n, nx)
    ratio = beta / gamma
    v = y - ((y[:, 0] + ratio * y[:, -1]) / (1.0 + z[:, 0] + ratio * z[:, -1]))[:, None] * z
    v_next = np.roll(v, -1, axis=-1)
    tau = (mu / dx) * 0.5 * (rho + np.roll(rho, -1, axis=-1)) * (v_next - v)
    g = tau * 0.5 * (v + v_next)
    k = dt / dx
    return np.stack([rho, mom + k * (tau - np.roll(tau, 1, axis=-1)),
                     en + k * (g - np.roll(g, 1, axis=-1))])


def max_speed(u: np.ndarray, gamma: float = GAMMA) -> float:
    """max(|v| + c) over all cells and samples."""
    rho, v, p = primitives(u, gamma)
    return float(np.max(np.abs(v) + np.sqrt(gamma * p / rho)))


def solve(rho0: np.ndarray, v0: np.ndarray, p0: np.ndarray, t: np.ndarray, length: float = 2.0,
          eta: float = ETA, zeta: float = ZETA, gamma: float = GAMMA, cfl: float = CFL,
          implicit_viscosity: bool = True) -> np.ndarray:
    """Evolve primitive ICs (n, X) and return primitive frames (3, n, T, X) = (ρ, v, p).

    Default: Strang splitting, viscous half step (backward Euler), SSP-RK2 inviscid step, viscous
    half step; the step obeys only the advective CFL. ``implicit_viscosity=False`` puts the
    viscous fluxes into the explicit RK2 step instead (reference / validation mode).
    """
    nx = rho0.shape[-1]
    dx = length / nx
    mu = 4.0 * eta / 3.0 + zeta
    u = np.stack([rho0, rho0 * v0, p0 / (gamma - 1.0) + 0.5 * rho0 * v0 * v0]).astype(np.float64)
    mu_rk = 0.0 if implicit_viscosity else mu
    out = np.empty((3,) + rho0.shape[:1] + (len(t), nx))
    out[:, :, 0] = primitives(u, gamma)
    t_now = float(t[0])
    for j in range(1, len(t)):
        while t_now < t[j]:
            dt = min(cfl / (max_speed(u, gamma) / dx + 2.0 * mu_rk / (dx * dx)), t[j] - t_now)
            if implicit_viscosity and mu > 0.0:
                u = viscous_step(u, dx, mu, dt / 2)
            u1 = u + dt * rhs(u, dx, mu_rk, gamma)
            u = 0.5 * (u + u1 + dt * rhs(u1, dx, mu_rk, gamma))
            if implicit_viscosity and mu > 0.0:
                u = viscous_step(u, dx, mu, dt / 2)
            t_now = float(t[j]) if t[j] - t_now - dt < 1e-12 else t_now + dt
        out[:, :, j] = primitives(u, gamma)
    return out


def sample_ic(rng: np.random.Generator, n: int, x: np.ndarray, length: float = 2.0):
    """(ρ0, v0, p0), each (n, X): §3.0 sine sums (K = 3, window p = 0.5); ρ and p min-max
    normalised then mapped to m·u + b with m, b log-uniform in [1, 10] (ρ) and [10, 100] (p)."""
    def field():
        return sample_sine_ic(rng, n, length, k_tot=3, p_window=0.5)(x)

    def log_uniform(lo, hi):
        return np.exp(rng.uniform(np.log(lo), np.log(hi), size=(n, 1)))

    rho = minmax_normalise(field()) * log_uniform(1.0, 10.0) + log_uniform(1.0, 10.0)
    p = minmax_normalise(field()) * log_uniform(10.0, 100.0) + log_uniform(10.0, 100.0)
    v = field()
    return rho, v, p


def generate(rng: np.random.Generator, n: int, nx: int, nt: int, chunk: int = 25) -> Plan:
    """``n`` samples on ``nx`` cells of [-1, 1] with ``nt`` frames on [0, 1].

    Batches group samples of similar initial wave speed: a batch's step is set by its fastest
    member, so keeping slow samples together saves about half of the work."""
    x = cell_centres(X_LO, X_HI, nx)
    t = frame_times(T_END, nt)
    rho, v, p = sample_ic(rng, n, x)
    speed = np.max(np.abs(v) + np.sqrt(GAMMA * p / rho), axis=-1)
    order = np.argsort(speed, kind="stable")
    chunk = max(1, min(chunk, BATCH_VALUES // (3 * nt * nx)))

    def run(idx: np.ndarray) -> dict:
        prim = solve(rho[idx], v[idx], p[idx], t)
        return {"density": prim[0], "pressure": prim[2], "Vx": prim[1]}

    return Plan(n, {"x-coordinate": x, "t-coordinate": t_coordinate_plus_one(T_END, nt)},
                {"density": (nt, nx), "pressure": (nt, nx), "Vx": (nt, nx)}, run,
                [np.sort(order[s:s + chunk]) for s in range(0, n, chunk)])
