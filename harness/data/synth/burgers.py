"""1D viscous Burgers u_t + (u²/2)_x = (ν/π) u_xx, periodic on [0, 1) (pdebench-data.md §3.2).

Fourier pseudo-spectral in space (2/3 dealiasing of the quadratic term); in time an integrating
factor takes the diffusion exactly and RK4 the nonlinear term. With ν = 1 the diffusion is strong,
so the step is bounded only by the advective part of the lightly damped modes.
"""
from __future__ import annotations

import numpy as np

from .grids import cell_centres, frame_times, t_coordinate_plus_one
from .ic import sample_sine_ic

VERSION = "burgers-1"
NU = 1.0
T_END = 2.0
LENGTH = 1.0
DT_MAX = 0.01  # accuracy cap; RK4 error at this step is far below float32 resolution for ν = 1


def _rk4_gain(z: np.ndarray) -> np.ndarray:
    return np.abs(1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24)


def stable_substeps(frame_dt: float, umax: float, k: np.ndarray, diff: float,
                    dt_max: float = DT_MAX) -> int:
    """Fewest equal sub-steps per frame such that every mode's linearised IF-RK4 gain is ≤ 1."""
    m = max(1, int(np.ceil(frame_dt / dt_max - 1e-9)))
    while True:
        dt = frame_dt / m
        if np.all(np.exp(-diff * k**2 * dt) * _rk4_gain(1j * umax * k * dt) <= 1.0 + 1e-12):
            return m
        m += 1


def solve(u0: np.ndarray, t: np.ndarray, nu: float = NU, length: float = LENGTH,
          dt_max: float = DT_MAX) -> np.ndarray:
    """Evolve ``u0`` (n, X) and return frames at equally spaced times ``t`` (t[0] = 0): (n, T, X)."""
    n, nx = u0.shape
    diff = nu / np.pi
    k = 2.0 * np.pi * np.fft.rfftfreq(nx, d=length / nx)
    keep = np.arange(k.size) <= nx // 3  # 2/3 rule: drop the top third of wavenumbers
    frame_dt = t[1] - t[0]
    # max|u| never grows for viscous Burgers, so the IC bounds the advection speed for all time
    m = stable_substeps(frame_dt, float(np.abs(u0).max()) + 1e-12, k[keep], diff, dt_max)
    dt = frame_dt / m
    e_half = np.exp(-diff * k**2 * dt / 2)
    e_full = e_half**2
    ik_half = -0.5j * k * keep

    def nonlin(uh: np.ndarray) -> np.ndarray:
        u = np.fft.irfft(uh, n=nx, axis=-1)
        return ik_half * np.fft.rfft(u * u, axis=-1)

    out = np.empty((n, len(t), nx))
    out[:, 0] = u0
    uh = np.fft.rfft(u0, axis=-1)
    for j in range(1, len(t)):
        for _ in range(m):
            n1 = nonlin(uh)
            n2 = nonlin(e_half * (uh + 0.5 * dt * n1))
            n3 = nonlin(e_half * uh + 0.5 * dt * n2)
            n4 = nonlin(e_full * uh + dt * e_half * n3)
            uh = e_full * uh + dt / 6 * (e_full * n1 + 2 * e_half * (n2 + n3) + n4)
        out[:, j] = np.fft.irfft(uh, n=nx, axis=-1)
    return out


def generate(rng: np.random.Generator, n: int, nx: int, nt: int) -> dict:
    """``n`` samples on ``nx`` cells with ``nt`` frames evenly spaced over [0, 2]."""
    x = cell_centres(0.0, LENGTH, nx)
    t = frame_times(T_END, nt)
    u0 = sample_sine_ic(rng, n, LENGTH, k_tot=4)(x)
    return {"tensor": solve(u0, t), "x-coordinate": x,
            "t-coordinate": t_coordinate_plus_one(T_END, nt)}
