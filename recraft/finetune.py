"""Stage 2 of every fine-tuning method: full fine-tuning with the task loss (spec §6).

The task's optimizer (Table 9), per-iteration warm-up then linear decay, gradient clipping;
validation every epoch through a callback; on the final phase, the test metric of the
best-on-validation epoch (and of the last epoch), read in one pass over the test split. Stage-2
checkpoints carry the RNG state, so a resumed run matches an uninterrupted one bit for bit.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from harness.metrics import get_metric
from recraft.training import (batches, evaluate, evaluate_models, make_optimizer, to_tensor,
                              warmup_linear)

ReportFn = Callable[[int, dict, dict | None], None]


@dataclass(frozen=True)
class FinetuneSettings:
    """Stage-2 settings (the task's Table 9 values unless searched)."""

    optimizer: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    epochs: int = 200
    paper_epochs: int = 200              # the task's epochs: warm-up/decay fractions refer to it
    warmup_epochs: int = 5
    decay_epochs: int = 200              # linear decay reaches 0 here (the code: 200 for every task)
    batch_size: int = 4
    grad_clip: float | None = 1.0
    train_loss: str = "nrmse"
    metric: str = "nrmse"
    direction: str = "min"
    eval_batch_size: int = 64


@dataclass
class FinetuneResult:
    best_epoch: int
    best_val: float
    last_val: float
    history: list[dict[str, float]]
    test: float | None = None
    test_last: float | None = None
    seconds: float = 0.0


def finetune(model: nn.Module, data_splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
             s: FinetuneSettings, seed: int, device, report: ReportFn,
             train_indices: Callable[[np.ndarray], np.ndarray] | None = None,
             wrap: Callable[[nn.Module], nn.Module] | None = None,
             evaluate_test: bool = False, extra_metrics: Mapping[str, float] | None = None,
             resume: Mapping[str, Any] | None = None,
             check: Callable[[str, float], None] | None = None,
             loss_fn: Callable[..., torch.Tensor] | None = None,
             aux: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> FinetuneResult:
    """Stage 2: full fine-tuning with the task loss; reports validation every epoch.

    ``train_indices`` maps a shuffled index array to this worker's shard (DDP); ``wrap`` wraps the
    model for data parallelism; ``report(epoch, metrics, state)`` receives every epoch's metrics and
    a checkpointable state (tensors are live references: save or copy them during the call).
    ``resume`` is such a state: training continues at the next epoch with the same data order and
    optimizer/scheduler state as an uninterrupted run. With ``evaluate_test`` the test split is read
    once, after the last epoch, evaluating the best-on-validation weights (``test``) and the last
    ones (``test_last``) in the same pass; the result goes into the last epoch's report.

    The warm-up/decay schedule keeps the paper's proportions when the profile runs fewer (or more)
    epochs than the task's ``paper_epochs``: warm-up and decay points are
    ``warmup_epochs / paper_epochs`` and ``decay_epochs / paper_epochs`` of the run's iterations.

    ``loss_fn(pred, target, **extras)`` is the training loss (default: the metric named
    ``s.train_loss``); ``aux`` maps a split to its per-sample extras (``TaskData.aux``): the
    training batch's extras go to the loss (Cosmic's ignore mask), a split's to its metric.
    """
    t0 = time.perf_counter()
    x_tr, y_tr = data_splits["train"]
    x_va, y_va = data_splits["val"]
    gen = np.random.default_rng(seed + 17)
    torch.manual_seed(seed + 17)  # dropout draws do not depend on earlier stages or cache hits
    model = model.to(device)
    for p in model.parameters():
        p.requires_grad_(True)
    net = wrap(model) if wrap is not None else model
    if loss_fn is None:
        loss_fn = get_metric(s.train_loss)
    aux = aux or {}
    train_aux = aux.get("train", {})
    opt = make_optimizer(s.optimizer, net.parameters(), s.lr, s.weight_decay)
    n_batches = max(1, math.ceil(len(train_indices(np.arange(len(x_tr))) if train_indices
                                     else np.arange(len(x_tr))) / s.batch_size))
    per_epoch = n_batches
    frac = per_epoch / max(1, s.paper_epochs) * s.epochs  # iterations per paper epoch, rescaled
    warm = round(s.warmup_epochs * frac)
    decay = round(s.decay_epochs * frac)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_linear(s.epochs * per_epoch, warm, decay))
    better = (lambda a, b: a < b) if s.direction == "min" else (lambda a, b: a > b)
    history: list[dict[str, float]] = []
    best_val, best_epoch, best_state = (math.inf if s.direction == "min" else -math.inf), 0, None
    start = 1
    test_key, test_last_key = f"test_{s.metric}", f"test_{s.metric}_last"
    if resume:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        start = int(resume["epoch"]) + 1
        best_val, best_epoch = float(resume["best_val"]), int(resume["best_epoch"])
        best_state = resume.get("best_model")
        if best_state is not None:
            best_state = {k: v.detach().cpu().clone() for k, v in best_state.items()}
        history = [dict(r) for r in resume.get("history", [])]
        _set_rng_state(resume.get("rng"))  # dropout / drop-path draws continue as uninterrupted
        # keep the data order of an uninterrupted run
        for _ in range(start - 1):
            gen.permutation(len(x_tr))
    val = history[-1].get(f"val_{s.metric}", math.nan) if history else math.nan
    for epoch in range(start, s.epochs + 1):
        net.train()
        order = gen.permutation(len(x_tr))
        if train_indices is not None:
            order = train_indices(order)
        total, count = 0.0, 0
        for idx in batches(order, s.batch_size):
            pred = net(to_tensor(x_tr[idx], device))
            extras = {k: to_tensor(v[idx], device) for k, v in train_aux.items()}
            loss = loss_fn(pred, to_tensor(y_tr[idx], device), **extras)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if s.grad_clip:
                torch.nn.utils.clip_grad_norm_(net.parameters(), s.grad_clip)
            opt.step()
            sched.step()
            v = float(loss.detach())
            if check is not None:
                check("train_loss", v)
            total += v * len(idx)
            count += len(idx)
        val = evaluate(model, x_va, y_va, s.metric, device, s.eval_batch_size, aux.get("val"))
        if check is not None:
            check(f"val_{s.metric}", val)
        if better(val, best_val):
            best_val, best_epoch = val, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        row = {f"val_{s.metric}": val, "train_loss": total / max(1, count),
               "lr": opt.param_groups[0]["lr"], f"best_val_{s.metric}": best_val}
        if extra_metrics:
            row.update(extra_metrics)
        if evaluate_test and epoch == s.epochs:
            best, last = _test_scores(model, data_splits, s, device, best_state, best_epoch == epoch,
                                      aux.get("test"))
            row.update({test_key: best, test_last_key: last, "best_epoch": best_epoch})
        history.append(dict(row, epoch=epoch))
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "epoch": epoch, "best_val": best_val,
                 "best_epoch": best_epoch, "best_model": best_state, "history": history,
                 "rng": _rng_state()}
        report(epoch, row, state)
    out = FinetuneResult(best_epoch=best_epoch, best_val=best_val, last_val=val, history=history,
                         seconds=time.perf_counter() - t0)
    if evaluate_test and history:
        if test_key not in history[-1]:
            # resumed from a state saved after the last epoch, before the test was read
            best, last = _test_scores(model, data_splits, s, device, best_state, False,
                                      aux.get("test"))
            history[-1].update({test_key: best, test_last_key: last, "best_epoch": best_epoch})
        out.test, out.test_last = history[-1][test_key], history[-1][test_last_key]
    return out


def _rng_state() -> dict[str, Any]:
    out: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _set_rng_state(state: Mapping[str, Any] | None) -> None:
    if not state:
        return
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _test_scores(model, data_splits, s: FinetuneSettings, device, best_state,
                 best_is_current: bool, aux=None) -> tuple[float, float]:
    """(test metric with the best-on-validation weights, with the last weights), one test pass."""
    x_te, y_te = data_splits["test"]
    if best_state is None or best_is_current:
        last = evaluate(model, x_te, y_te, s.metric, device, s.eval_batch_size, aux)
        return last, last
    best_model = copy.deepcopy(model)
    best_model.load_state_dict(best_state)
    best, last = evaluate_models([best_model, model], x_te, y_te, s.metric, device,
                                  s.eval_batch_size, aux)
    del best_model
    return best, last
