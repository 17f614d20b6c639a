"""Space and time grids shared by the generators."""
from __future__ import annotations

import numpy as np


def cell_centres(lo: float, hi: float, n: int) -> np.ndarray:
    """``n`` cell-centre coordinates of a uniform grid on ``[lo, hi]``."""
    return lo + (hi - lo) / n * (np.arange(n) + 0.5)


def frame_times(t_end: float, nt: int) -> np.ndarray:
    """``nt`` evenly spaced frame times on ``[0, t_end]``; both ends exact (linspace)."""
    return np.linspace(0.0, t_end, nt)


def t_coordinate_plus_one(t_end: float, nt: int) -> np.ndarray:
    """Upstream single-file 1D quirk: ``arange(nt+1)·dt``, one entry past the last frame."""
    return np.append(frame_times(t_end, nt), t_end + t_end / (nt - 1))
