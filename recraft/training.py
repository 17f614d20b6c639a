"""Training helpers shared by the stages and by methods: the task's optimizer, the reference
schedules, array batching and split evaluation.

Baselines import these from here (not from the stage modules), so a method's own loop builds its
optimizer and reads the task metric exactly as RECRAFT's stages do.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from harness.metrics import get_metric, nrmse_per_sample, rmse_per_sample

__all__ = ["batches", "evaluate", "evaluate_models", "make_optimizer", "reference_milestones",
           "to_tensor", "warmup_linear"]

OPTIMIZERS = ("adam", "adamw", "sgd")


def make_optimizer(name: str, params: Iterable[nn.Parameter], lr: float,
                   weight_decay: float) -> torch.optim.Optimizer:
    """The task's optimizer family as the reference code builds it (spec §3.3, §6): Adam/AdamW with
    betas (0.9, 0.98), or SGD with momentum 0.99; parameters without ``requires_grad`` are left out."""
    params = [p for p in params if p.requires_grad]
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


def reference_milestones(scale: float) -> tuple[int, ...]:
    """The reference code's StepLR milestones [20, 40, 60] in steps of a run scaled by ``scale``
    (strictly increasing, at least 1)."""
    out: list[int] = []
    for m in (20, 40, 60):
        v = max(1, round(m * scale))
        out.append(max(v, out[-1] + 1) if out else v)
    return tuple(out)


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
