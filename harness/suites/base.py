"""What a task is: data plus rules (construction, splits, metric, paper defaults, version).

A task never holds arrays itself; :meth:`Task.load` reads what it needs from the data root and
returns a :class:`TaskData`. Splits are read only when asked for, so a search that asks for
``("train", "val")`` never touches the test samples.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from harness.data.catalog import PdebenchFile
from harness.data.taskdata import SPLITS, Split, TaskData

__all__ = ["SPLITS", "Construction", "Metric", "Split", "SplitRule", "Task", "TaskData",
           "TrainingDefaults"]


@dataclass(frozen=True)
class Metric:
    """The task's evaluation metric, its direction and how many significant digits are displayed.

    Two values that print the same at ``sigfigs`` significant digits are a tie in rankings.
    """

    name: str = "nrmse"
    direction: Literal["min", "max"] = "min"
    sigfigs: int = 3

    def display(self, value: float) -> str:
        """The value as the leaderboard prints it (and compares it for ties)."""
        if value is None or not np.isfinite(value):
            return "nan"
        return f"{value:.{self.sigfigs}g}"


@dataclass(frozen=True)
class TrainingDefaults:
    """The paper's hyperparameters for one task (paper Table 9, plus the code's schedule; see
    ``docs/paper-tables.md``).

    ``fa_epochs`` counts optimizer steps as in the reference code; ``fld_epochs`` counts passes
    over the training set.
    """

    backbone: Literal["roberta", "swin"]
    optimizer: Literal["adam", "adamw", "sgd"]
    lr: float
    weight_decay: float
    epsilon: float
    epochs: int = 200
    batch_size: int = 4
    grad_accum: int = 1
    n_label_classes: int = 10
    fa_epochs: int = 60
    fld_epochs: int = 4
    warmup_epochs: int = 5
    grad_clip: float | None = 1.0
    train_loss: Literal["nrmse", "rmse"] = "nrmse"
    target_seq_len: int | None = None  # 1D only: the token budget of the stride rule (recraft.embedders.stride_for)


@dataclass(frozen=True)
class Construction:
    """How one (input, target) pair is built from a file (ORCA's one-shot construction by default).

    ``input_keys``/``target_keys`` name the HDF5 datasets (single layout) or the ``data`` channel
    indices (multi layout) that are concatenated, channel-major, along the last spatial axis
    (the 1D CFD case) or stacked as channels. ``input_time``/``target_time`` are physical times
    looked up in the file's time coordinate (``None`` for a steady field such as Darcy).
    ``spatial_stride`` is ORCA's stride on the real file; a file on another grid is subsampled to
    the same output resolution when it can be (see ``harness.data.readers``).
    """

    input_keys: tuple[str | int, ...]
    target_keys: tuple[str | int, ...]
    input_time: float | None
    target_time: float | None
    spatial_stride: int = 1
    concat_fields: bool = False   # 1D CFD: [rho..., p..., v...] along x, as ORCA does
    zscore: bool = False          # 1D CFD: per-position z-scoring fitted on train inputs


@dataclass(frozen=True)
class SplitRule:
    """Test exactly as ORCA; validation is a fixed, seeded fraction carved from train."""

    test_fraction: float = 0.1
    test_from: Literal["first", "last"] = "first"
    val_fraction: float = 0.1
    val_seed: int = 0


@dataclass(frozen=True)
class Task:
    """A named task of a suite: its file, construction, splits, metric and defaults."""

    name: str
    suite: str
    modality: Literal["1d", "2d"]
    title: str
    file: PdebenchFile
    construction: Construction
    split: SplitRule
    defaults: TrainingDefaults
    metric: Metric = field(default_factory=Metric)
    notes: str = ""

    @property
    def version(self) -> str:
        """A short content hash of everything that defines the task; it changes when any of it does."""
        from harness.data import readers

        payload = {
            "name": self.name, "suite": self.suite, "modality": self.modality,
            "file": asdict(self.file), "construction": asdict(self.construction),
            "split": asdict(self.split), "defaults": asdict(self.defaults),
            "metric": asdict(self.metric), "reader": readers.READER_VERSION,
        }
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def load(self, root: str | Path, splits: tuple[Split, ...] = SPLITS) -> TaskData:
        """Read the requested splits of this task from ``root`` (see ``harness.data.readers``)."""
        from harness.data import readers

        return readers.load_task(self, Path(root), splits)
