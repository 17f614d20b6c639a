"""Field error metrics (PDEBench), written once and used everywhere (training losses, evaluation,
leaderboard). ``harness.metrics`` re-exports them with the by-name lookup.

All functions accept numpy arrays or torch tensors of shape ``(B, ...)`` (sample axis first) and
return the same kind of object; torch inputs stay differentiable, so the training losses are these
same functions.

* :func:`nrmse` — ORCA's metric: per sample ``‖ŷ−y‖₂ / ‖y‖₂`` over all channels and points
  together, then the mean over samples.
* :func:`rmse` — per-sample root mean squared error, mean over samples.
* :func:`pdebench_nrmse` / :func:`pdebench_rmse` — PDEBench's form: the ratio per sample, channel
  and time step (space only inside the norm), averaged over samples, then channels and times, with
  the input frames excluded (the current PDEBench fix) and no off-by-one in the averaging.
"""
from __future__ import annotations

from typing import Any

import numpy as np

EPS = 1e-12  # guards ‖y‖ = 0 (a zero target gives ‖ŷ‖/EPS rather than a division by zero)


def _is_torch(a: Any) -> bool:
    return type(a).__module__.startswith("torch")


def _flat(a):
    return a.reshape(a.shape[0], -1)


def _sqrt(a):
    return a.sqrt() if _is_torch(a) else np.sqrt(a)


def _clamp_min(a, lo: float):
    return a.clamp_min(lo) if _is_torch(a) else np.maximum(a, lo)


def _check(pred, target) -> None:
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    if len(pred.shape) < 2:
        raise ValueError(f"expected a batch of samples (B, ...); got shape {tuple(pred.shape)}")


def nrmse_per_sample(pred, target, eps: float = EPS):
    """``‖ŷ_b − y_b‖₂ / ‖y_b‖₂`` for each sample ``b`` (all non-batch axes flattened)."""
    _check(pred, target)
    diff = _flat(pred - target)
    num = _sqrt((diff * diff).sum(1))
    t = _flat(target)
    den = _clamp_min(_sqrt((t * t).sum(1)), eps)
    return num / den


def rmse_per_sample(pred, target):
    """``sqrt(mean((ŷ_b − y_b)²))`` for each sample ``b``."""
    _check(pred, target)
    diff = _flat(pred - target)
    return _sqrt((diff * diff).mean(1))


def nrmse(pred, target, eps: float = EPS):
    """ORCA's nRMSE: mean over samples of the per-sample relative L2 error."""
    return nrmse_per_sample(pred, target, eps).mean()


def rmse(pred, target):
    """Mean over samples of the per-sample RMSE (ORCA's training loss for Burgers and 1D CFD)."""
    return rmse_per_sample(pred, target).mean()


def _per_channel_time(pred, target, initial_step: int):
    """Errors and target norms per (sample, channel, time), for arrays ``(B, C, T, *space)``."""
    _check(pred, target)
    if len(pred.shape) < 4:
        raise ValueError(f"expected (B, C, T, *space); got shape {tuple(pred.shape)}")
    pred, target = pred[:, :, initial_step:], target[:, :, initial_step:]
    if pred.shape[2] == 0:
        raise ValueError(f"no frames left after dropping initial_step={initial_step} input frames")
    b, c, t = pred.shape[:3]
    d = (pred - target).reshape(b, c, t, -1)
    y = target.reshape(b, c, t, -1)
    return _sqrt((d * d).mean(-1)), _sqrt((y * y).mean(-1))


def pdebench_rmse(pred, target, initial_step: int = 0):
    """PDEBench RMSE: per (sample, channel, time) over space; mean over samples, channels, times."""
    err, _ = _per_channel_time(pred, target, initial_step)
    return err.mean()


def pdebench_nrmse(pred, target, initial_step: int = 0, eps: float = EPS):
    """PDEBench nRMSE for ``(B, C, T, *space)`` arrays: the spatial ratio per sample, channel and
    time, averaged (input frames ``[:initial_step]`` excluded)."""
    err, norm = _per_channel_time(pred, target, initial_step)
    return (err / _clamp_min(norm, eps)).mean()


METRICS = {"nrmse": nrmse, "rmse": rmse}
