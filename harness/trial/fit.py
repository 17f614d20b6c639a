"""The one fit routine: train a method's model on the task loss, as every method's last stage.

A method supplies its model (with ``requires_grad`` off on what it freezes), optionally its
parameter groups and its loss, and calls ``ctx.fit(model, config).stage_output()``
(:meth:`harness.trial.context.TrialContext.fit`). The harness owns the rest: the optimizer and
schedule (:func:`fit_settings`), resume from the trial's checkpoint, DDP wrapping and sharding,
finite checks, one report per epoch, selection of the best epoch on validation and, in the final
phase, the one read of the test split (best-on-validation weights and last weights).

The loop: the settings' optimizer over the trainable parameters, per-iteration warm-up then linear
decay, gradient clipping; validation every epoch. Checkpoints carry the RNG state, so a resumed run
matches an uninterrupted one bit for bit.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from harness.metrics import get_metric
from harness.trial.grid import grid_problem
from harness.trial.training import (batches, evaluate, evaluate_models, make_optimizer, to_tensor,
                                    warmup_linear)

if TYPE_CHECKING:
    from harness.trial.context import TrialContext

ReportFn = Callable[[int, dict, dict | None], None]


@dataclass(frozen=True)
class FitSettings:
    """How a model is fitted (the task's Table 9 values unless searched or declared otherwise)."""

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


#: fields a method's ``fit_defaults`` may not set: the budget and the task's metric are the same for
#: every method of a sweep (the profile's and the task's), or the comparison would not be fair
BUDGET_FIELDS = ("epochs", "paper_epochs", "batch_size", "metric", "direction")
#: the starting point of a method that trains its own model from scratch (``uses_body = False``):
#: the FNO and U-Net papers train with Adam and no gradient clipping (lr 1e-3 and weight decay 1e-4
#: come from ``search_spaces.common.specialist_space``); its ``fit_defaults`` go on top
SCRATCH_DEFAULTS: Mapping[str, Any] = {"optimizer": "adam", "grad_clip": None}


@dataclass
class FitResult:
    """What a fit produced; :meth:`stage_output` is the one source of the stage's final metrics."""

    best_epoch: int
    best_val: float
    last_val: float
    history: list[dict[str, float]]
    test: float | None = None
    test_last: float | None = None
    seconds: float = 0.0
    metric: str = "nrmse"

    def stage_output(self) -> dict[str, Any]:
        """The last stage's return value: the selected validation value and its epoch, and in the
        final phase the test metric of the selected weights (``test_<m>``) and of the last
        (``test_<m>_last``); the per-epoch history beside them."""
        m = self.metric
        metrics: dict[str, Any] = {f"val_{m}": self.best_val, "best_epoch": self.best_epoch}
        if self.test is not None:
            metrics[f"test_{m}"] = self.test
            metrics[f"test_{m}_last"] = self.test_last
        return {"metrics": metrics, "finetune_history": self.history}


def fit_settings(ctx: "TrialContext", config: Mapping[str, Any]) -> FitSettings:
    """The settings ``ctx.fit`` trains with: the task's Table 9 values, the profile's budget
    (epochs, batch size) and recipe (optimizer, lr factor), ``config["finetune.lr"]`` and
    ``config["finetune.weight_decay"]``, and the method's ``fit_defaults`` on top.

    A method with ``uses_body = False`` starts from :data:`SCRATCH_DEFAULTS` instead of the task's
    optimizer and clipping (those are the pretrained transformer's), and its lr is the configured
    value as is: the profile's ``finetune_lr``/``finetune_optimizer`` recipe exists to make tiny
    random transformer bodies learn on a CPU, and a specialist's space is already centred on the lr
    its papers train from scratch with.
    """
    task, prof, method = ctx.task, ctx.profile, ctx.method
    d = task.defaults
    own = dict(getattr(method, "fit_defaults", None) or {})
    known = {f.name for f in fields(FitSettings)}
    unknown, budget = sorted(set(own) - known), sorted(set(own) & set(BUDGET_FIELDS))
    if unknown or budget:
        raise ValueError(
            f"method {method.name!r}: fit_defaults "
            + (f"has unknown key(s) {unknown} (FitSettings fields: {sorted(known)})" if unknown
               else f"may not set {budget}: budgets come from the profile and the task")
            + "; fix the class attribute fit_defaults")
    body = getattr(method, "uses_body", True)
    values: dict[str, Any] = dict(
        optimizer=prof.finetune_optimizer or d.optimizer,     # SCRATCH_DEFAULTS replace it below
        lr=d.lr, weight_decay=d.weight_decay, epochs=prof.epochs(d.epochs), paper_epochs=d.epochs,
        warmup_epochs=d.warmup_epochs, decay_epochs=max(200, d.epochs),
        batch_size=prof.batch_size or d.batch_size, grad_clip=d.grad_clip, train_loss=d.train_loss,
        metric=task.metric.name, direction=task.metric.direction)
    if not body:
        values.update(SCRATCH_DEFAULTS)
    values.update(own)
    if "finetune.lr" in config:
        values["lr"] = float(config["finetune.lr"]) * (prof.lr_factor(d.lr) if body else 1.0)
    if "finetune.weight_decay" in config:
        values["weight_decay"] = float(config["finetune.weight_decay"])
    return FitSettings(**values)


@dataclass
class _Best:
    """The best-on-validation epoch so far and a CPU copy of its weights."""

    value: float
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = field(default=None, repr=False)


def fit(model: nn.Module, data_splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
        s: FitSettings, seed: int, device, report: ReportFn,
        train_indices: Callable[[np.ndarray], np.ndarray] | None = None,
        wrap: Callable[[nn.Module], nn.Module] | None = None,
        evaluate_test: bool = False, extra_metrics: Mapping[str, float] | None = None,
        resume: Mapping[str, Any] | None = None,
        check: Callable[[str, float], None] | None = None,
        loss_fn: Callable[..., torch.Tensor] | None = None,
        aux: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        params: Iterable[Any] | None = None) -> FitResult:
    """Fit ``model`` on the training split with the task loss; report validation every epoch.

    ``train_indices`` maps a shuffled index array to this worker's shard (DDP); ``wrap`` wraps the
    model for data parallelism; ``report(epoch, metrics, state)`` receives every epoch's metrics and
    a checkpointable state (tensors are live references: save or copy them during the call).
    ``resume`` is such a state: training continues at the next epoch with the same data order and
    optimizer/scheduler state as an uninterrupted run. With ``evaluate_test`` the test split is read
    once, after the last epoch, evaluating the best-on-validation weights (``test``) and the last
    ones (``test_last``) in the same pass; the result goes into the last epoch's report.

    Only parameters with ``requires_grad`` are trained: ``params`` (parameters or parameter groups,
    default: the model's) filtered by it. The warm-up/decay schedule keeps the paper's proportions
    when the profile runs fewer (or more) epochs than ``paper_epochs``: warm-up and decay points are
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
    net = wrap(model) if wrap is not None else model
    if loss_fn is None:
        loss_fn = get_metric(s.train_loss)
    aux = aux or {}
    train_aux = aux.get("train", {})
    opt = make_optimizer(s.optimizer, net.parameters() if params is None else params, s.lr,
                         s.weight_decay)
    shard = train_indices(np.arange(len(x_tr))) if train_indices else np.arange(len(x_tr))
    per_epoch = max(1, math.ceil(len(shard) / s.batch_size))
    frac = per_epoch / max(1, s.paper_epochs) * s.epochs  # iterations per paper epoch, rescaled
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_linear(s.epochs * per_epoch, round(s.warmup_epochs * frac),
                           round(s.decay_epochs * frac)))
    better = (lambda a, b: a < b) if s.direction == "min" else (lambda a, b: a > b)
    history: list[dict[str, float]] = []
    best = _Best(math.inf if s.direction == "min" else -math.inf)
    start = 1
    test_key, test_last_key = f"test_{s.metric}", f"test_{s.metric}_last"
    if resume:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        start = int(resume["epoch"]) + 1
        best = _Best(float(resume["best_val"]), int(resume["best_epoch"]),
                     _cpu_copy(resume.get("best_model")))
        history = [dict(r) for r in resume.get("history", [])]
        _set_rng_state(resume.get("rng"))  # dropout / drop-path draws continue as uninterrupted
        for _ in range(start - 1):         # keep the data order of an uninterrupted run
            gen.permutation(len(x_tr))
    val = history[-1].get(f"val_{s.metric}", math.nan) if history else math.nan
    grid_checked = False
    for epoch in range(start, s.epochs + 1):
        net.train()
        order = gen.permutation(len(x_tr))
        if train_indices is not None:
            order = train_indices(order)
        total, count = 0.0, 0
        for idx in batches(order, s.batch_size):
            pred, target = net(to_tensor(x_tr[idx], device)), to_tensor(y_tr[idx], device)
            if not grid_checked:
                problem, grid_checked = grid_problem(pred, target), True
                if problem:
                    raise ValueError(problem)
            extras = {k: to_tensor(v[idx], device) for k, v in train_aux.items()}
            loss = loss_fn(pred, target, **extras)
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
        if better(val, best.value):
            best = _Best(val, epoch, _cpu_copy(model.state_dict()))
        row = {f"val_{s.metric}": val, "train_loss": total / max(1, count),
               "lr": opt.param_groups[0]["lr"], f"best_val_{s.metric}": best.value}
        if extra_metrics:
            row.update(extra_metrics)
        if evaluate_test and epoch == s.epochs:
            scores = _test_scores(model, data_splits, s, device, best, best.epoch == epoch,
                                  aux.get("test"))
            row.update({test_key: scores[0], test_last_key: scores[1], "best_epoch": best.epoch})
        history.append(dict(row, epoch=epoch))
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "epoch": epoch, "best_val": best.value,
                 "best_epoch": best.epoch, "best_model": best.state, "history": history,
                 "rng": _rng_state()}
        report(epoch, row, state)
    out = FitResult(best_epoch=best.epoch, best_val=best.value, last_val=val, history=history,
                    seconds=time.perf_counter() - t0, metric=s.metric)
    if evaluate_test and history:
        if test_key not in history[-1]:
            # resumed from a state saved after the last epoch, before the test was read
            scores = _test_scores(model, data_splits, s, device, best, False, aux.get("test"))
            history[-1].update({test_key: scores[0], test_last_key: scores[1],
                                "best_epoch": best.epoch})
        out.test, out.test_last = history[-1][test_key], history[-1][test_last_key]
    return out


def _cpu_copy(state: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
    return None if state is None else {k: v.detach().cpu().clone() for k, v in state.items()}


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


def _test_scores(model: nn.Module, data_splits, s: FitSettings, device, best: _Best,
                 best_is_current: bool, aux=None) -> tuple[float, float]:
    """(test metric with the best-on-validation weights, with the last weights), one test pass."""
    x_te, y_te = data_splits["test"]
    if best.state is None or best_is_current:
        last = evaluate(model, x_te, y_te, s.metric, device, s.eval_batch_size, aux)
        return last, last
    best_model = copy.deepcopy(model)
    best_model.load_state_dict(best.state)
    scores = evaluate_models([best_model, model], x_te, y_te, s.metric, device,
                             s.eval_batch_size, aux)
    del best_model
    return scores[0], scores[1]
