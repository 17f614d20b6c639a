"""What the NAS-Bench-360 builders share: their input (:class:`Context`), their output
(:class:`Built`) and two helpers. Apart from :mod:`harness.data.nb360.load` so that the builders
(``read_*``) and the loader that dispatches to them do not import each other."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.data.errors import SchemaMismatch

if TYPE_CHECKING:
    from harness.suites.base import Task


@dataclass
class Context:
    """What a builder gets: the task, the root, the splits asked for, real/synthetic and marker."""

    task: "Task"
    root: Path
    splits: tuple[str, ...]
    source: str
    marker: dict[str, Any]

    @property
    def params(self) -> dict[str, Any]:
        return self.task.construction.params

    def path(self, rel: str) -> Path:
        return self.root / rel


@dataclass
class Built:
    """A builder's result: per split inputs, targets, source positions and extras."""

    x: dict[str, Any] = field(default_factory=dict)
    y: dict[str, Any] = field(default_factory=dict)
    indices: dict[str, np.ndarray] = field(default_factory=dict)
    aux: dict[str, dict[str, Any]] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- splits
def carve(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) positions: a fixed seeded ``fraction`` of ``range(n)`` for validation."""
    from harness.data.splits import split_indices

    s = split_indices(n, 0.0, "first", fraction, seed)
    return s.train, s.val


def check_labels(labels: np.ndarray, lo: int, hi: int, path: Path, key: str) -> None:
    """Class labels must be integers in ``[lo, hi]``."""
    if labels.size == 0:
        return
    if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
        raise SchemaMismatch(f"{path}: {key} holds non-integer values; expected class indices "
                             f"{lo}..{hi}")
    if labels.min() < lo or labels.max() > hi:
        raise SchemaMismatch(f"{path}: {key} spans {labels.min():g}..{labels.max():g}, expected "
                             f"class indices {lo}..{hi}")
