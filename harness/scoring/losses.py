"""Training losses of the NAS-Bench-360 tasks, as the reference code uses them (torch).

``cross_entropy`` (CIFAR-100, Spherical, ECG, Satellite; NinaPro's FocalLoss(α=1, γ=0) is the
same function), ``bce`` with the upstream positive weight (FSD50K 10, DeepSEA 4), ``bce_masked``
(Cosmic: logits and mask multiplied by 1 − ignore, then the mean over all pixels, as upstream),
``rel_l2`` (Darcy: FNO's ``LpLoss(size_average=False)``, the per-sample relative L2 summed over
the batch) and ``mse`` (PSICOV). :func:`task_loss` binds a task's loss and weights.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from harness.metrics import nrmse_per_sample


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
    return F.cross_entropy(logits, target.long().reshape(-1))


def bce(logits: torch.Tensor, target: torch.Tensor, pos_weight: float | None = None,
        **_: Any) -> torch.Tensor:
    w = None if pos_weight is None else torch.full((logits.shape[-1],), float(pos_weight),
                                                   dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), pos_weight=w)


def bce_masked(logits: torch.Tensor, target: torch.Tensor, ignore: torch.Tensor | None = None,
               **_: Any) -> torch.Tensor:
    target = target.to(logits.dtype).reshape(logits.shape)
    if ignore is not None:
        keep = 1.0 - ignore.to(logits.dtype).reshape(logits.shape)
        logits, target = logits * keep, target * keep
    return F.binary_cross_entropy_with_logits(logits, target)


def rel_l2(pred: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
    return nrmse_per_sample(pred.reshape(target.shape), target).sum()


def mse(pred: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
    return F.mse_loss(pred.reshape(target.shape), target)


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "cross_entropy": cross_entropy, "bce": bce, "bce_masked": bce_masked, "rel_l2": rel_l2,
    "mse": mse,
}


def get_loss(name: str) -> Callable[..., torch.Tensor]:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}") from None


def loss_by_name(name: str) -> Callable[..., torch.Tensor]:
    """A training loss by name: one of :data:`LOSSES`, else a field metric of
    :func:`harness.metrics.get_metric` (PDEBench's ``nrmse``/``rmse``), called as
    ``loss(pred, target, **aux)``. Without the task's weights: use :func:`task_loss` to train."""
    if name in LOSSES:
        return LOSSES[name]
    from harness.metrics import get_metric

    fn = get_metric(name)
    return lambda pred, target, **_aux: fn(pred, target)


def task_loss(task) -> Callable[..., torch.Tensor]:
    """``loss(pred, target, **aux)`` for a NAS-Bench-360 task (its TargetSpec's loss and weight)."""
    spec = task.head
    fn = get_loss(spec.loss)
    if spec.pos_weight is None:
        return fn
    return lambda pred, target, **aux: fn(pred, target, pos_weight=spec.pos_weight, **aux)


def training_loss(task) -> Callable[..., torch.Tensor]:
    """``loss(pred, target, **aux)``: the loss every method trains ``task`` with. NAS-Bench-360
    targets use :func:`task_loss` (with the upstream positive weights); PDEBench's dense regression
    uses its field loss by name (``nrmse``, ``rmse``), which takes no extras."""
    if task.target is not None:
        return task_loss(task)
    from harness.metrics import get_metric

    fn = get_metric(task.defaults.train_loss)
    return lambda pred, target, **_aux: fn(pred, target)
