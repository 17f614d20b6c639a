"""The ``persistence`` floor: the input field itself, resampled onto the target grid.

Only for tasks whose input and target are the same physical field (advection, Burgers, ...); a
cross-field task (Darcy's coefficient -> solution, 2D diffusion-reaction's u -> v) shows the cell
as skipped with the reason.
"""
from __future__ import annotations

import numpy as np

from harness.methods.floor import FloorPredictor


def resample(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``x`` ``(N, C, *grid)`` linearly (1D) or bilinearly (2D) resampled to ``(N, *shape)``."""
    if tuple(x.shape[1:]) == tuple(shape):
        return np.asarray(x, dtype=np.float32)
    import torch
    from torch.nn import functional as F

    t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if t.shape[1] != shape[0]:
        raise ValueError(f"persistence: input has {t.shape[1]} channels, target {shape[0]}")
    mode = "linear" if t.dim() == 3 else "bilinear"
    return F.interpolate(t, size=tuple(shape[1:]), mode=mode, align_corners=False).numpy()


class Persistence(FloorPredictor):
    name = "persistence"
    version = "1"
    summary = "Reference predictor: the input field resampled onto the target grid"

    def supports(self, task):
        if task.kind != "dense_regression":
            return False, f"{task.kind.replace('_', ' ')} target: no input field to persist"
        c = getattr(task, "construction", None)
        keys = (getattr(c, "input_keys", None), getattr(c, "target_keys", None))
        if None in keys or tuple(keys[0]) != tuple(keys[1]):
            return False, "input and target are different fields"
        return True, ""

    def fit(self, x_train, y_train, x_val, y_val, metric, direction, seed):
        shape = tuple(y_train.shape[1:])
        return lambda x: resample(x, shape)
