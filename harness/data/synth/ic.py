"""Random sine-sum initial conditions shared by the 1D sets (``docs/data.md`` §3.0).

Distribution, per sample:

* draw ``n_sel`` mode indices from ``{0..K-1}``; mode ``n`` (1-based) drawn ``c_n`` times gets
  wavenumber ``2π n c_n / L`` (so an undrawn mode has k = 0 and is a random constant offset);
* amplitudes ``A ~ U(0,1)``, phases ``φ ~ U(0,2π)``; ``u0 = Σ A sin(k x + φ)``;
* with probability ``p_abs`` take ``|u0|``, then a random sign;
* with probability ``p_window`` multiply by ``½[tanh((x-xL)/0.01) - tanh((x-xR)/0.01)]``,
  ``xL ~ U(0.1,0.45)``, ``xR ~ U(0.55,0.9)`` (absolute coordinates, as upstream).

Unlike upstream we use the true domain length ``L`` (not last-minus-first cell centre), so every IC
is exactly periodic. The IC is kept as parameters so it can be evaluated at any point, which the
exact advection solution needs.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from .grids import cell_centres, frame_times, t_coordinate_plus_one
from .plan import Plan, contiguous_batches

WINDOW_WIDTH = 0.01


@dataclass(frozen=True)
class SineIC:
    """Parameters of ``n`` sine-sum initial conditions; call it with coordinates to evaluate."""

    k: np.ndarray  # (n, K) wavenumbers
    amp: np.ndarray  # (n, K)
    phase: np.ndarray  # (n, K)
    use_abs: np.ndarray  # (n,) bool
    sign: np.ndarray  # (n,) ±1
    window: np.ndarray  # (n,) bool
    x_left: np.ndarray  # (n,)
    x_right: np.ndarray  # (n,)

    @property
    def n(self) -> int:
        return self.k.shape[0]

    def subset(self, idx: np.ndarray) -> "SineIC":
        """The initial conditions of samples ``idx``."""
        return SineIC(*(getattr(self, f.name)[idx] for f in fields(self)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Evaluate at shared coordinates ``x`` of any shape ``S``; returns ``(n, *S)``."""
        x = np.asarray(x, dtype=np.float64)[None]
        col = (slice(None),) + (None,) * (x.ndim - 1)  # broadcasts an (n,) vector over S
        u = np.zeros((self.n,) + x.shape[1:])
        for j in range(self.k.shape[1]):  # K ≤ 4: looping over modes keeps memory at one field
            u += self.amp[:, j][col] * np.sin(self.k[:, j][col] * x + self.phase[:, j][col])
        u = np.where(self.use_abs[col], np.abs(u), u) * self.sign[col]
        w = 0.5 * (np.tanh((x - self.x_left[col]) / WINDOW_WIDTH)
                   - np.tanh((x - self.x_right[col]) / WINDOW_WIDTH))
        return np.where(self.window[col], u * w, u)


def sample_sine_ic(rng: np.random.Generator, n: int, length: float, k_tot: int = 4,
                   n_sel: int = 2, p_abs: float = 0.1, p_window: float = 0.1) -> SineIC:
    """Draw ``n`` initial conditions on a periodic domain of true length ``length``."""
    picks = rng.integers(0, k_tot, size=(n, n_sel))
    counts = (picks[:, :, None] == np.arange(k_tot)[None, None, :]).sum(axis=1)
    k = 2.0 * np.pi * np.arange(1, k_tot + 1)[None, :] * counts / length
    amp = rng.uniform(0.0, 1.0, size=(n, k_tot))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(n, k_tot))
    use_abs = rng.uniform(size=n) < p_abs
    sign = np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)
    window = rng.uniform(size=n) < p_window
    x_left = rng.uniform(0.1, 0.45, size=n)
    x_right = rng.uniform(0.55, 0.9, size=n)
    return SineIC(k, amp, phase, use_abs, sign, window, x_left, x_right)


def minmax_normalise(u: np.ndarray, axis: int = -1) -> np.ndarray:
    """Rescale each sample to [0, 1] along ``axis``; a flat sample becomes 0 (no division by 0)."""
    lo = u.min(axis=axis, keepdims=True)
    span = u.max(axis=axis, keepdims=True) - lo
    return (u - lo) / np.where(span > 0, span, 1.0)


def sine_ic_plan(rng: np.random.Generator, n: int, nx: int, nt: int, *, length: float,
                 t_end: float, frames: Callable[["SineIC", np.ndarray, np.ndarray], np.ndarray]
                 ) -> Plan:
    """The file plan of a periodic 1D set on ``[0, length)`` whose samples start from
    :func:`sample_sine_ic` (K = 4): ``nx`` cells, ``nt`` frames evenly spaced on ``[0, t_end]``,
    one ``tensor`` (N, T, X) whose batches ``frames(ic_of_the_batch, x, t)`` solves."""
    x = cell_centres(0.0, length, nx)
    t = frame_times(t_end, nt)
    ic = sample_sine_ic(rng, n, length, k_tot=4)
    return Plan(n, {"x-coordinate": x, "t-coordinate": t_coordinate_plus_one(t_end, nt)},
                {"tensor": (nt, nx)}, lambda idx: {"tensor": frames(ic.subset(idx), x, t)},
                contiguous_batches(n, nt * nx))
