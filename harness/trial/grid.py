"""Grids: a method's prediction must lie on the task's target grid.

Every PDEBench task of this benchmark reads its input and its target on the same grid (the reader
applies one spatial stride to both, e.g. Darcy's 128² -> 64² slice and Advection's stride 4;
``TaskData.input_shape[1:] == TaskData.output_shape[1:]``). A model that predicts on another grid
(a U-Net that pads to a power of two, a body resized to its own image size) wraps itself in
:class:`OnTargetGrid`, or calls :func:`resample_to` in its forward; ``ctx.fit`` refuses a dense
prediction whose grid differs from the target's, naming both shapes.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def resample_to(pred: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """``pred`` ``(B, C, *spatial)`` linearly interpolated onto ``grid`` (the spatial sizes, e.g.
    ``ctx.data.output_shape[1:]``); returned unchanged when it is already there."""
    grid = tuple(int(n) for n in grid)
    if tuple(pred.shape[2:]) == grid:
        return pred
    if pred.ndim - 2 != len(grid) or len(grid) not in _MODES:
        raise ValueError(f"cannot resample a prediction of shape {tuple(pred.shape)} onto the grid "
                         f"{grid}: expected (batch, channels, *spatial) with {len(grid)} spatial "
                         f"axes (1 to 3)")
    return F.interpolate(pred, size=grid, mode=_MODES[len(grid)], align_corners=False)


class OnTargetGrid(nn.Module):
    """``model``'s predictions resampled onto the target grid (``grid``: spatial sizes)."""

    def __init__(self, model: nn.Module, grid: Sequence[int]):
        super().__init__()
        self.model = model
        self.grid = tuple(int(n) for n in grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resample_to(self.model(x), self.grid)


def grid_problem(pred: torch.Tensor, target: torch.Tensor) -> str | None:
    """Why a dense prediction does not match its target's grid, or None (also None for point
    predictions such as class logits, which have no grid)."""
    if pred.ndim != target.ndim or target.ndim < 3 or pred.shape[2:] == target.shape[2:]:
        return None
    return (f"the model predicts on the grid {tuple(pred.shape[2:])} but the task's targets lie "
            f"on {tuple(target.shape[2:])}; wrap the model in harness.trial.grid.OnTargetGrid"
            f"(model, ctx.data.output_shape[1:]) or resample in its forward (resample_to)")
