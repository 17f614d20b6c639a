"""Fourier helpers for the periodic 1D spectral solvers (Burgers, Fisher-KPP)."""
from __future__ import annotations

import numpy as np


def working_size(c: np.ndarray, nx: int, tol: float, minimum: int = 16) -> int:
    """Smallest power-of-two grid (≤ ``nx``) whose lower third holds twice the significant modes.

    ``c`` are Fourier coefficients (n, nx//2+1). A quadratic term fills modes up to twice the
    highest significant one (relative size > ``tol``), so that band must stay below the 2/3 cut.
    Strong diffusion shrinks the band to a few modes within one frame, which is what makes the
    solvers cheap at 1024 cells.
    """
    amp = np.abs(c).max(axis=0)
    sig = np.flatnonzero(amp > tol * max(float(amp.max()), 1e-300))
    top = int(sig[-1]) if sig.size else 0
    nw = minimum
    while nw < nx and nw // 3 < 2 * top + 2:
        nw *= 2
    return min(nw, nx)


def truncate(c: np.ndarray, n: int) -> np.ndarray:
    """Coefficients of the modes an ``n``-point grid holds (Nyquist slot zeroed if truncated)."""
    m = n // 2 + 1
    ch = c[..., :m].copy()
    if c.shape[-1] > m:
        ch[..., -1] = 0.0  # the coarse grid's Nyquist slot is not the fine grid's mode n/2
    return ch


def pad(ch: np.ndarray, nx: int) -> np.ndarray:
    """Zero-pad coefficients to the ``nx//2+1`` modes of the full grid."""
    c = np.zeros(ch.shape[:-1] + (nx // 2 + 1,), dtype=complex)
    c[..., : ch.shape[-1]] = ch
    return c


def to_grid(c: np.ndarray, n: int) -> np.ndarray:
    """Values on an ``n``-point grid from grid-independent coefficients (rfft / n)."""
    return np.fft.irfft(truncate(c, n), n=n, axis=-1) * n


def from_grid(u: np.ndarray) -> np.ndarray:
    """Grid-independent coefficients (rfft / n) of grid values ``u`` along the last axis."""
    return np.fft.rfft(u, axis=-1) / u.shape[-1]
