"""What a model needs to know about a task's target: head size, losses, standardisation and the
classes stage 1 uses.

PDEBench tasks are dense regression; NAS-Bench-360 adds single-label classification, multi-label
tagging and dense segmentation (:class:`harness.suites.base.TargetSpec`). Every method of the
:mod:`recraft.family` builds its model and its stage-1 classes through these functions, so one
rule holds for all of them:

* **Head.** Classification and multi-label tasks get ``num_classes`` logits from the point head
  (sized from the task, not from the data: a synthetic stand-in may use fewer classes); dense
  tasks get a head shaped like the data's targets.
* **Losses.** :func:`training_loss` is the task's upstream training loss with its weights
  (:func:`harness.scoring.losses.task_loss`); PDEBench keeps its field losses (``nrmse``).
* **Standardisation.** Inputs are standardised for every task; outputs only for regression
  (logits of a class or a mask must not be shifted by a mean class index or mask value).
* **Stage-1 classes.** The FLD and ORCA's OTDD need one class per training sample. A
  classification task uses its own labels (no discretisation, paper Table 8); regression and
  segmentation targets are k-means-discretised into ``n_label_classes`` classes (paper App. H);
  a multi-label target has no single class, so its 0/1 label vectors are k-means-clustered as the
  reference code does (k = ``n_label_classes``, or :data:`MULTILABEL_CLUSTERS` when Table 8 gives
  none).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    import torch

    from harness.suites.base import Task, TaskData

__all__ = ["MULTILABEL_CLUSTERS", "POINT_KINDS", "head_output", "regresses", "stage1_classes",
           "standardization_for", "training_loss"]

#: target kinds predicted by the point head (one vector of logits per sample)
POINT_KINDS = ("classification", "multilabel")
#: k of the k-means over multi-label vectors when the task gives none (the reference code's k)
MULTILABEL_CLUSTERS = 10


def regresses(task: "Task") -> bool:
    """Whether the task's outputs are values in target units (so output standardisation applies)."""
    return task.kind == "dense_regression"


def head_output(task: "Task", data: "TaskData") -> int | tuple[int, ...]:
    """What to build the head for: ``num_classes`` logits for (multi-label) classification, the
    data's target shape ``(C, H, W)`` / ``(C, L)`` for dense tasks."""
    spec = task.head
    if spec.kind in POINT_KINDS:
        if not spec.num_classes:
            raise ValueError(f"task {task.name!r} is {spec.kind} but its TargetSpec has no "
                             f"num_classes; set TargetSpec.num_classes")
        return int(spec.num_classes)
    shape = tuple(data.output_shape)
    if len(shape) < 2:
        raise ValueError(f"task {task.name!r} is {spec.kind} but its targets have shape {shape} "
                         f"per sample; expected (C, L) or (C, H, W)")
    return shape


def standardization_for(task: "Task", x: np.ndarray, y: np.ndarray) -> dict[str, "torch.Tensor"]:
    """:func:`recraft.model.standardization_stats` for regression tasks; for the others the
    inputs only (outputs are logits: identity shift and scale)."""
    import torch

    from recraft.model import standardization_stats

    if regresses(task):
        return standardization_stats(x, y)
    x_only = standardization_stats(x, np.zeros((len(x), 1), np.float32))
    x_only["y_shift"] = torch.tensor(0.0)
    x_only["y_scale"] = torch.tensor(1.0)
    return x_only


def stage1_classes(task: "Task", y: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    """One class id (int64, consecutive from 0) per training sample, for FLD and OTDD (module
    docstring). Classification labels are renumbered by sorted value to drop classes that do not
    occur in ``y``; their grouping is unchanged."""
    from recraft.discretise import discretise_targets

    kind = task.kind
    if kind == "classification":
        labels = np.asarray(y).reshape(-1)
        if labels.size == 0:
            raise ValueError(f"task {task.name!r}: no training labels")
        _, compact = np.unique(labels.astype(np.int64), return_inverse=True)
        return compact.astype(np.int64).reshape(-1)
    if kind == "multilabel":
        return discretise_targets(np.asarray(y, dtype=np.float32),
                                  n_classes=n_classes or MULTILABEL_CLUSTERS, seed=seed)
    if n_classes < 1:
        raise ValueError(f"task {task.name!r} ({kind}) needs n_label_classes >= 1 for the "
                         f"stage-1 classes, got {n_classes}")
    return discretise_targets(y, n_classes=n_classes, seed=seed)


def training_loss(task: "Task") -> Callable[..., Any]:
    """``loss(pred, target, **aux)``: the task's training loss
    (:func:`harness.scoring.losses.training_loss`, the one the harness's fit uses)."""
    from harness.scoring.losses import training_loss as harness_training_loss

    return harness_training_loss(task)
