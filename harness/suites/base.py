"""What a task is: data plus rules (construction, splits, target, metric, paper defaults, version).

A task never holds arrays itself; :meth:`Task.load` reads what it needs from the data root and
returns a :class:`TaskData`. Splits are read only when asked for, so a search that asks for
``("train", "val")`` never touches the test samples.

Two suites share these types. ``pdebench`` tasks are dense regression on HDF5 files
(:class:`harness.data.catalog.PdebenchFile`, :class:`Construction`, :class:`SplitRule`);
``nasbench360`` tasks add classification, multi-label and segmentation targets
(:class:`TargetSpec`) and their own dataset/construction/split records
(``harness.data.nb360``). Fields added for the second suite keep the ``pdebench`` task versions
unchanged: a field left at its default is not part of the version hash (:data:`_ADDED_DEFAULTS`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np

from harness.data.catalog import PdebenchFile
from harness.data.taskdata import SPLITS, Split, TaskData

__all__ = ["SPLITS", "Construction", "Metric", "Split", "SplitRule", "Task", "TaskData",
           "TrainingDefaults"]


@dataclass(frozen=True)
class Metric:
    """The task's evaluation metric, its direction and how it is displayed.

    ``name`` is a function of :func:`harness.metrics.get_metric`. Values are displayed at
    ``sigfigs`` significant digits, or, when ``decimals`` is set, as ``value × scale`` with that
    many decimals (``scale=100, decimals=2`` prints an error rate of 0.0660 as ``6.60``, the
    papers' percent convention). Two values that print the same are a tie in rankings.
    ``upstream`` names the metric function that reproduces the reference code where it
    deviates from the published definition (``None``: no deviation worth a name).
    """

    name: str = "nrmse"
    direction: Literal["min", "max"] = "min"
    sigfigs: int = 3
    scale: float = 1.0
    decimals: int | None = None
    upstream: str | None = None

    def display(self, value: float) -> str:
        """The value as the leaderboard prints it (and compares it for ties)."""
        if value is None or not np.isfinite(value):
            return "nan"
        if self.decimals is not None:
            return f"{value * self.scale:.{self.decimals}f}"
        return f"{value * self.scale:.{self.sigfigs}g}"


@dataclass(frozen=True)
class TrainingDefaults:
    """The paper's hyperparameters for one task (PDEBench: Table 9; NAS-Bench-360: Table 8), plus
    the reference code's schedule (spec §6).

    ``fa_epochs`` counts optimizer steps as in the reference code; ``fld_epochs`` counts passes
    over the training set. ``n_label_classes`` is k of the FLD's k-means label discretisation
    (0: no discretisation, the FLD uses the task's own class labels). ``momentum`` (SGD),
    ``betas`` (Adam/AdamW) and ``decay_epochs`` (end of the linear decay; ``None``: ``epochs``)
    are the NAS-Bench-360 configs' values where they differ from the optimiser defaults.
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
    train_loss: Literal["nrmse", "rmse", "cross_entropy", "bce", "bce_masked", "rel_l2", "mse"] = "nrmse"
    target_seq_len: int | None = None  # 1D only: the token budget of the stride rule (spec §1.2)
    momentum: float | None = None
    betas: tuple[float, float] | None = None
    decay_epochs: int | None = None


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


TargetKind = Literal["dense_regression", "classification", "multilabel", "dense_segmentation"]


@dataclass(frozen=True)
class TargetSpec:
    """What a model predicts for a task and how it is trained against it.

    * ``dense_regression``: a field ``output_shape`` = (C, H, W) or (C, L); targets float32.
    * ``classification``: ``num_classes`` logits; targets int64 class indices ``(N,)``.
    * ``multilabel``: ``num_classes`` logits; targets float32 0/1 ``(N, num_classes)``.
    * ``dense_segmentation``: one logit per pixel, ``output_shape`` = (1, H, W); targets 0/1.

    ``output_shape`` is the shape on the published data (``None``: read it from the data, as a
    synthetic stand-in may be smaller); :attr:`TaskData.output_shape` is always the one to build
    a head for. ``loss`` names a function of :mod:`harness.scoring.losses` (the upstream training
    loss); ``pos_weight`` is the upstream BCE positive weight.
    """

    kind: TargetKind
    output_shape: tuple[int, ...] | None = None
    num_classes: int | None = None
    loss: str = "nrmse"
    pos_weight: float | None = None


# Fields added after the first task versions were published, with their defaults: a field at its
# default is left out of the version payload, so tasks that do not use it keep their version.
_ADDED_DEFAULTS: dict[str, dict[str, Any]] = {
    "metric": {"scale": 1.0, "decimals": None, "upstream": None},
    "defaults": {"momentum": None, "betas": None, "decay_epochs": None},
}


def _payload_part(section: str, obj: Any) -> dict:
    d = asdict(obj)
    for key, default in _ADDED_DEFAULTS.get(section, {}).items():
        if key in d and d[key] == default:
            del d[key]
    return d


@dataclass(frozen=True)
class Task:
    """A named task of a suite: its data, construction, splits, target, metric and defaults.

    ``file``/``construction``/``split`` are PDEBench records (:class:`PdebenchFile`,
    :class:`Construction`, :class:`SplitRule`) for ``pdebench`` and the NAS-Bench-360 records of
    ``harness.data.nb360`` for ``nasbench360``; ``target`` is ``None`` for PDEBench (dense
    regression with the defaults' training loss, see :attr:`head`).
    """

    name: str
    suite: str
    modality: Literal["1d", "2d"]
    title: str
    file: Any
    construction: Any
    split: Any
    defaults: TrainingDefaults
    metric: Metric = field(default_factory=Metric)
    notes: str = ""
    target: TargetSpec | None = None

    @property
    def head(self) -> TargetSpec:
        """The task's target: ``target``, or PDEBench's dense regression on the training loss."""
        if self.target is not None:
            return self.target
        return TargetSpec(kind="dense_regression", loss=self.defaults.train_loss)

    @property
    def kind(self) -> TargetKind:
        return self.head.kind

    @property
    def version(self) -> str:
        """A short content hash of everything that defines the task; it changes when any of it does."""
        payload = {
            "name": self.name, "suite": self.suite, "modality": self.modality,
            "file": asdict(self.file), "construction": asdict(self.construction),
            "split": asdict(self.split), "defaults": _payload_part("defaults", self.defaults),
            "metric": _payload_part("metric", self.metric), "reader": self._reader_version(),
        }
        if self.target is not None:
            payload["target"] = asdict(self.target)
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def _reader_version(self) -> str:
        if isinstance(self.file, PdebenchFile):
            from harness.data import readers

            return readers.READER_VERSION
        from harness.data.nb360 import load

        return load.READER_VERSION

    def load(self, root: str | Path, splits: tuple[Split, ...] = SPLITS) -> "TaskData":
        """Read the requested splits of this task from ``root`` (``harness.data.readers`` for
        PDEBench, ``harness.data.nb360`` for NAS-Bench-360)."""
        if isinstance(self.file, PdebenchFile):
            from harness.data import readers

            return readers.load_task(self, Path(root), splits)
        from harness.data.nb360 import load

        return load.load_task(self, Path(root), splits)
