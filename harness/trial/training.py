"""Training helpers every fit loop shares: the task's optimizer family, the warm-up/decay schedule,
array batching and split evaluation.

:mod:`harness.trial.fit` trains with these, and a method that must own its loop (the documented
exception) imports them from here, so it builds its optimizer and reads the task metric exactly as
the harness's fit does. ``recraft.training`` re-exports them for the stage-1 code.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from harness.metrics import get_metric, nrmse_per_sample, rmse_per_sample

__all__ = ["OPTIMIZERS", "batches", "evaluate", "evaluate_models", "make_optimizer", "to_tensor",
           "trainable", "warmup_linear"]

OPTIMIZERS = ("adam", "adamw", "sgd")


ParamsLike = Iterable[nn.Parameter] | Iterable[Mapping[str, Any]]


def trainable(params: ParamsLike) -> list:
    """``params`` without the parameters whose ``requires_grad`` is off: a flat list of parameters,
    or parameter groups (dicts with ``"params"`` and per-group options such as ``"lr"``), each
    group keeping its options; a group left with no trainable parameter is dropped."""
    items = list(params)
    if items and isinstance(items[0], Mapping):
        groups = []
        for group in items:
            kept = [p for p in group["params"] if p.requires_grad]
            if kept:
                groups.append({**group, "params": kept})
        return groups
    return [p for p in items if p.requires_grad]


def make_optimizer(name: str, params: ParamsLike, lr: float,
                   weight_decay: float) -> torch.optim.Optimizer:
    """The task's optimizer family as the reference code builds it: Adam/AdamW with betas
    (0.9, 0.98), or SGD with momentum 0.99. ``params`` are parameters or parameter groups
    (:func:`trainable`); parameters without ``requires_grad`` are left out, and ``lr`` /
    ``weight_decay`` are the defaults of groups that set none."""
    params = trainable(params)
    if not params:
        raise ValueError("the optimizer has no trainable parameter: every parameter given has "
                         "requires_grad=False; unfreeze some, or pass the ones to train")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.99, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")


def warmup_linear(total_iters: int, warmup_iters: int, decay_iters: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over ``warmup_iters``, then linear decay to 0 at ``decay_iters``.

    ``f(it) = (it + 1) / warmup_iters`` for ``it < warmup_iters`` (at least one warm-up iteration),
    then ``(decay_iters - it) / (decay_iters - warmup_iters)``, floored at 0. ``total_iters`` is
    informational (the decay point may lie beyond the run, e.g. Darcy's 100 of 200 epochs).
    """
    warmup_iters = max(1, warmup_iters)
    decay_iters = max(decay_iters, warmup_iters + 1)

    def f(it: int) -> float:
        if it < warmup_iters:
            return (it + 1) / warmup_iters
        return max(0.0, (decay_iters - it) / (decay_iters - warmup_iters))

    return f


def to_tensor(a: np.ndarray, device) -> torch.Tensor:
    """A float32 tensor on ``device`` from an array (or array-like)."""
    return torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)


def batches(order: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of ``order`` of at most ``size`` indices."""
    for i in range(0, len(order), size):
        yield order[i:i + size]


def _per_sample_metric(metric: str):
    if metric == "nrmse":
        return nrmse_per_sample
    if metric == "rmse":
        return rmse_per_sample
    return None


@torch.no_grad()
def evaluate_models(models: Sequence[nn.Module], x, y, metric: str, device,
                    batch_size: int = 64, aux: Mapping[str, Any] | None = None) -> list[float]:
    """The metric of each model over one split, reading every sample of the split once.

    ``nrmse``/``rmse`` are means of per-sample values; any other metric (error rate, mAP, AUROC,
    MAE8, ...) is computed once over the whole split's predictions, with the split's extras
    ``aux`` (``TaskData.aux[split]``: clip ids, protein lengths, ignore masks)."""
    states = [m.training for m in models]
    for m in models:
        m.eval()
    fn = _per_sample_metric(metric)
    vals: list[list[torch.Tensor]] = [[] for _ in models]
    preds: list[list[np.ndarray]] = [[] for _ in models]
    for idx in batches(np.arange(len(x)), batch_size):
        xb = to_tensor(x[idx], device)
        tgt = to_tensor(y[idx], device) if fn is not None else None
        for j, m in enumerate(models):
            pred = m(xb)
            if fn is not None:
                vals[j].append(fn(pred, tgt).double().cpu())
            else:
                preds[j].append(pred.detach().float().cpu().numpy())
    for m, was in zip(models, states):
        m.train(was)
    if fn is not None:
        return [float(torch.cat(v).mean()) if v else math.nan for v in vals]
    whole = get_metric(metric)
    extras = dict(aux or {})
    # a lazily read split (SampleArray) is materialised by indexing, as the batches above are
    target = y if isinstance(y, np.ndarray) else y[np.arange(len(y))]
    return [float(whole(np.concatenate(p), target, **extras)) if p else math.nan
            for p in preds]


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, metric: str, device,
             batch_size: int = 64, aux: Mapping[str, Any] | None = None) -> float:
    """The task metric over a split (see :func:`evaluate_models`)."""
    return evaluate_models([model], x, y, metric, device, batch_size, aux)[0]
