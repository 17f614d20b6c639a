"""Shared helpers: torch → numpy, shape checks, chunking as ORCA's ``evaluate`` does."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

#: ORCA's eval_batch_size: the metric is computed on chunks of (at least) this many samples and
#: averaged over chunks (ORCA rounds up to whole batches; pass ``chunk`` to match a batch size)
UPSTREAM_CHUNK = 1000


def as_numpy(a: Any, dtype=None) -> np.ndarray:
    """A numpy array from a numpy array, a torch tensor (detached, on CPU) or a sequence."""
    if type(a).__module__.startswith("torch"):
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    return arr.astype(dtype) if dtype is not None else arr


def same_rows(pred: np.ndarray, target: np.ndarray, what: str) -> None:
    if len(pred) != len(target):
        raise ValueError(f"{what}: {len(pred)} predictions for {len(target)} targets")
    if len(pred) == 0:
        raise ValueError(f"{what}: no samples")


def chunked(fn: Callable[..., float], pred: np.ndarray, target: np.ndarray, chunk: int,
            **aux: Any) -> float:
    """Mean of ``fn`` over consecutive chunks of ``chunk`` samples (the last may be smaller)."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    vals = []
    for lo in range(0, len(pred), chunk):
        sl = slice(lo, lo + chunk)
        vals.append(fn(pred[sl], target[sl], **{k: None if v is None else v[sl]
                                                for k, v in aux.items()}))
    return float(np.mean(vals))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
