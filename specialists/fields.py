"""Fit a field-to-field model to a task's arrays: grids and scales handled once, for any model."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness.trial.grid import resample_to


def _channel_stats(a: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std over samples and grid points, shaped ``(1, C, 1, ...)``."""
    a = np.asarray(a, dtype=np.float64)
    axes = (0,) + tuple(range(2, a.ndim))
    mean = a.mean(axis=axes, keepdims=True)
    std = a.std(axis=axes, keepdims=True)
    std = np.where(std > 1e-8, std, 1.0)       # a constant channel (sorption's u(t=0)) stays put
    return torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)


class FieldModel(nn.Module):
    """``net`` between the task's grids and scales.

    The input is resampled to the target grid first (:func:`harness.trial.grid.resample_to`:
    linear interpolation between cell centres over the same domain; the identity when the grids
    agree, as on every PDEBench task). With ``standardize`` (the profile's switch, the same for
    every method of a sweep) inputs and outputs are scaled by per-channel training statistics, so
    the net sees unit-scale fields and predicts in the target's units. With ``coords`` the
    target grid's coordinates (in [0, 1] per axis) are appended as input channels, so a
    translation-equivariant net can output a field that varies in space from a constant input
    (diffusion-sorption's u(t=0)); the net then takes ``C + dim`` input channels."""

    def __init__(self, net: nn.Module, x_train: np.ndarray, y_train: np.ndarray,
                 standardize: bool = True, coords: bool = False):
        super().__init__()
        if x_train.ndim != y_train.ndim or x_train.ndim not in (3, 4):
            raise ValueError(
                f"FieldModel: inputs {x_train.shape} and targets {y_train.shape} must both be "
                "(N, C, L) or (N, C, H, W) fields; a classification or other non-field target "
                "needs another model")
        self.net = net
        self.out_grid = tuple(y_train.shape[2:])
        self.coords = coords
        x_mean, x_std = _channel_stats(x_train) if standardize else (torch.zeros(1), torch.ones(1))
        y_mean, y_std = _channel_stats(y_train) if standardize else (torch.zeros(1), torch.ones(1))
        for name, value in (("x_mean", x_mean), ("x_std", x_std), ("y_mean", y_mean),
                            ("y_std", y_std)):
            self.register_buffer(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = resample_to((x - self.x_mean) / self.x_std, self.out_grid)
        if self.coords:
            axes = torch.meshgrid(*[torch.linspace(0.0, 1.0, n, device=x.device, dtype=x.dtype)
                                    for n in self.out_grid], indexing="ij")
            grid = torch.stack(axes).unsqueeze(0).expand(len(x), -1, *self.out_grid)
            x = torch.cat([x, grid], dim=1)
        return self.net(x) * self.y_std + self.y_mean

    def state_dict(self, *args, **kwargs):
        """Tensors only: ``neuraloperator``'s models add their constructor arguments under
        ``_metadata`` to any state dict they are part of, and the harness copies, checkpoints and
        reloads state dicts as tensors (a non-tensor entry also fails a strict load)."""
        state = super().state_dict(*args, **kwargs)
        for key in [k for k, v in state.items() if not isinstance(v, torch.Tensor)]:
            del state[key]
        return state
