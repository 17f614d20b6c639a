"""What a task's data is once read: arrays per split, plus where they came from.

Defined apart from the task rules (:mod:`harness.suites.base`) because the readers build it and
the task definitions call the readers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping

import numpy as np

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


@dataclass
class TaskData:
    """Arrays of one task: inputs float32 ``(N, C, L)`` for 1D or ``(N, C, H, W)`` for 2D.

    Targets: float32 fields ``(N, C, ...)`` for dense tasks, int64 ``(N,)`` class indices for
    classification, float32 0/1 ``(N, K)`` for multi-label (see :class:`TargetSpec`). Large real
    NAS-Bench-360 splits come as :class:`harness.data.nb360.lazy.SampleArray` (array-like, read
    on indexing) instead of an ``ndarray``.

    ``source`` is ``"real"`` or ``"synthetic"`` (from the file's attributes or marker); only the
    splits that were asked for are present, and asking for another one raises instead of
    reading it. ``aux`` holds per-split extras the metric or loss needs, aligned with the
    samples (e.g. ``ignore`` masks, protein ``length``, the ``clip`` each audio chunk belongs to).
    """

    task: str
    task_version: str
    source: Literal["real", "synthetic"]
    path: Path
    x: Mapping[str, np.ndarray]
    y: Mapping[str, np.ndarray]
    indices: Mapping[str, np.ndarray]  # sample indices (single) or sorted-group positions (multi)
    attrs: Mapping[str, object] = field(default_factory=dict)
    aux: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)

    def split(self, name: Split) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of one split; raises if that split was not loaded."""
        if name not in self.x:
            raise KeyError(
                f"split {name!r} of task {self.task!r} was not loaded (loaded: {sorted(self.x)}); "
                f"pass splits=(..., {name!r}) to Task.load")
        return self.x[name], self.y[name]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(next(iter(self.x.values())).shape[1:])

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(next(iter(self.y.values())).shape[1:])
