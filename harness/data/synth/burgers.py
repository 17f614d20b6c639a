"""1D viscous Burgers u_t + (u²/2)_x = (ν/π) u_xx, periodic on [0, 1) (``docs/data.md`` §3.2).

Fourier pseudo-spectral in space (2/3 dealiasing of the quadratic term); in time an integrating
factor takes the diffusion exactly and RK4 the nonlinear term, so the step is bounded only by the
advection of the modes diffusion has not damped. Each frame runs on the smallest grid that holds
all modes above 1e-15 of the largest (``spectral.working_size``): with ν = 1 that is 16-64 points
after the first frame, and the frames are interpolated back to the full grid spectrally.
"""
from __future__ import annotations

import numpy as np

from .ic import sine_ic_plan
from .plan import Plan
from .spectral import from_grid, pad, to_grid, truncate, working_size

VERSION = "burgers-1"
NU = 1.0
T_END = 2.0
LENGTH = 1.0
DT_MAX = 0.0025  # RK4 step cap: max error ≈ 5e-6 vs a 5e-4-step reference (early frames)
TOL = 1e-15  # Fourier modes below this fraction of the largest are dropped (spectral.py)


def _rk4_gain(z: np.ndarray) -> np.ndarray:
    """|R(z)| of classical RK4."""
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
          dt_max: float = DT_MAX, tol: float = TOL) -> np.ndarray:
    """Evolve ``u0`` (n, X); frames (n, T, X) at equally spaced times ``t`` (t[0] = 0)."""
    n, nx = u0.shape
    diff = nu / np.pi
    frame_dt = t[1] - t[0]
    umax = float(np.abs(u0).max()) + 1e-12  # max|u| never grows for viscous Burgers
    c = from_grid(u0)  # grid-independent Fourier coefficients
    out = np.empty((n, len(t), nx))
    out[:, 0] = u0
    for j in range(1, len(t)):
        nw = working_size(c, nx, tol)
        k = 2.0 * np.pi * np.fft.rfftfreq(nw, d=length / nw)
        keep = np.arange(k.size) <= nw // 3  # 2/3 rule: drop the top third of wavenumbers
        m = stable_substeps(frame_dt, umax, k[keep], diff, dt_max)
        dt = frame_dt / m
        e_half = np.exp(-diff * k**2 * dt / 2)
        e_full = e_half**2
        ik_half = -0.5j * k * keep

        def nonlin(ch: np.ndarray) -> np.ndarray:
            u = np.fft.irfft(ch, n=nw, axis=-1) * nw
            return ik_half * np.fft.rfft(u * u, axis=-1) / nw

        ch = truncate(c, nw)
        for _ in range(m):
            n1 = nonlin(ch)
            n2 = nonlin(e_half * (ch + 0.5 * dt * n1))
            n3 = nonlin(e_half * ch + 0.5 * dt * n2)
            n4 = nonlin(e_full * ch + dt * e_half * n3)
            ch = e_full * ch + dt / 6 * (e_full * n1 + 2 * e_half * (n2 + n3) + n4)
        c = pad(ch, nx)
        out[:, j] = to_grid(c, nx)
    return out


def generate(rng: np.random.Generator, n: int, nx: int, nt: int) -> Plan:
    """``n`` samples on ``nx`` cells with ``nt`` frames evenly spaced over [0, 2]."""
    return sine_ic_plan(rng, n, nx, nt, length=LENGTH, t_end=T_END,
                        frames=lambda ic, x, t: solve(ic(x), t))
