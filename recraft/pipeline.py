"""RECRAFT's two stages, with every switch the paper/code divergences need (spec §3–§6, §10, §12).

* :class:`AlignSettings` — stage 1: which FA loss (``w1`` paper, ``sinkhorn_div`` reference code,
  ``otdd`` ORCA, ``none``), which FLD direction (``tgt_given_src`` paper, ``src_given_tgt``
  reference code, ``none``), how they combine (``joint``: ε·FA + λ·FLD summed, paper eq. 22;
  ``sequential``: FA steps then FLD epochs, the code), and the source-side recalibration mode.
* :func:`run_alignment` — stage 1 on a :class:`~recraft.model.TargetModel`'s embedder.
* :func:`finetune` — stage 2: the task loss, the task's optimizer (Table 9), per-iteration
  warm-up then linear decay, gradient clipping; validation every epoch through a callback; on the
  final phase, the test metric of the best-on-validation epoch (and of the last epoch).

Everything here is plain PyTorch: no Ray. The harness's trials and :mod:`recraft.run` call it.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from harness.metrics import get_metric, nrmse_per_sample
from recraft.discretise import class_weights, discretise_targets
from recraft.losses import FeatureAlignment, fld_loss, source_entropy

ReportFn = Callable[[int, dict, dict | None], None]


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class AlignSettings:
    """Stage-1 switches and budgets (already scaled by the profile)."""

    fa_loss: str = "w1"                  # w1 | sinkhorn_div | otdd | none
    fld: str = "tgt_given_src"           # tgt_given_src | src_given_tgt | none
    combine: str = "joint"               # joint | sequential
    epsilon: float = 0.5                 # recalibration level; weights FA in joint mode
    fld_weight: float = 1.0              # λ
    fa_steps: int = 60
    fld_epochs: int = 4
    lr: float = 1e-4                     # embedder lr (FA; and FLD in joint mode)
    fld_lr: float = 1e-4                 # FLD lr in sequential mode (fixed 1e-4 in the code)
    fa_batch: int = 128                  # target samples per FA step (the code collects ~132)
    fld_batch: int = 28                  # samples per FLD step (the code's label_maxsamples)
    fa_reg: float = 0.1                  # entropic regularisation of the OT solvers
    n_classes: int = 10                  # k-means classes of the regression targets
    train_source_head: bool = False      # the code trains the head during FLD (spec §5.2)
    token_mode: str = "draws"            # 1D dense FLD: tokens as draws (paper) or per token (code)
    reference_schedule: bool = False     # FA lr ×10 + StepLR [20,40,60]×0.2 and m/N_b scaling

    @property
    def active(self) -> bool:
        return (self.fa_loss != "none" and self.fa_steps > 0) or (self.fld != "none" and self.fld_epochs > 0)


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


# ----------------------------------------------------------------------------- optimizers
def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The task's optimizer family as the reference code builds it (spec §3.3, §6)."""
    params = [p for p in params if p.requires_grad]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.99, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; expected adam, adamw or sgd")


def warmup_linear(total_iters: int, warmup_iters: int, decay_iters: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over ``warmup_iters``, then linear decay to 0 at ``decay_iters``."""
    warmup_iters = max(1, warmup_iters)
    decay_iters = max(decay_iters, warmup_iters + 1)

    def f(it: int) -> float:
        if it < warmup_iters:
            return (it + 1) / warmup_iters
        return max(0.0, (decay_iters - it) / (decay_iters - warmup_iters))

    return f


# ----------------------------------------------------------------------------- helpers
def _to_tensor(a: np.ndarray, device) -> torch.Tensor:
    return torch.as_tensor(a, dtype=torch.float32, device=device)


def _batches(order: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(order), size):
        yield order[i:i + size]


def _source_probs(model, head: nn.Module, x: torch.Tensor, dense_1d: bool) -> torch.Tensor:
    """Soft pseudo source labels: per sample (2D, point) or per token (1D dense), spec §5.2."""
    feats = model.token_features(x) if dense_1d else model.body_features(x)
    return torch.softmax(head(feats), dim=-1)


@torch.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, metric: str, device,
             batch_size: int = 64) -> float:
    """The task metric over a split (mean of per-sample values, so batching does not matter)."""
    was_training = model.training
    model.eval()
    fn = nrmse_per_sample if metric == "nrmse" else None
    vals = []
    for idx in _batches(np.arange(len(x)), batch_size):
        pred = model(_to_tensor(x[idx], device))
        tgt = _to_tensor(y[idx], device)
        if fn is not None:
            vals.append(fn(pred, tgt).double().cpu())
        else:
            vals.append(torch.full((len(idx),), float(get_metric(metric)(pred, tgt))).double())
    model.train(was_training)
    return float(torch.cat(vals).mean()) if vals else math.nan


# ----------------------------------------------------------------------------- stage 1
@dataclass
class AlignResult:
    """Stage-1 output: the embedder's state and what was measured on the way."""

    embedder_state: dict[str, torch.Tensor]
    log: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        """Last logged value of each quantity (logged with the fine-tuning epochs)."""
        out: dict[str, float] = {}
        for row in self.log:
            for k, v in row.items():
                if k != "step":
                    out[f"align.{k}"] = v
        return out


def run_alignment(model, source, x_train: np.ndarray, y_train: np.ndarray, s: AlignSettings,
                  optimizer_name: str, weight_decay: float, seed: int, device,
                  check: Callable[[str, float], None] | None = None) -> AlignResult:
    """Stage 1: learn the target embedder against the source side (spec §3, §5; paper eq. 22).

    ``source`` is a :class:`recraft.source.SourceSide`. Only the embedder (and, when
    ``train_source_head``, the source head) is updated; the body is frozen but gradients pass
    through it for FLD.
    """
    t0 = time.perf_counter()
    gen = np.random.default_rng(seed)
    n = len(x_train)
    dense_1d = model.kind == "1d" and model.task == "dense"
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.embedder_parameters():
        p.requires_grad_(True)
    head = source.make_head(device)
    for p in head.parameters():
        p.requires_grad_(s.train_source_head)
    model.train()
    log: list[dict[str, float]] = []

    fa = None
    labels = None
    if s.fa_loss != "none" and s.fa_steps > 0:
        src = source.features.to(device)
        src_labels = source.labels.to(device) if s.fa_loss == "otdd" else None
        fa = FeatureAlignment(s.fa_loss, src, src_labels, reg=s.fa_reg) if s.fa_loss != "w1" else \
            FeatureAlignment("w1", src, epsilon=1.0, reg=s.fa_reg)
    if (s.fld != "none" and s.fld_epochs > 0) or s.fa_loss == "otdd":
        labels = discretise_targets(y_train, n_classes=s.n_classes, seed=seed)
    n_cls = int(labels.max()) + 1 if labels is not None else 0

    def fa_term(idx: np.ndarray) -> torch.Tensor:
        feats = model.pooled_embedding(_to_tensor(x_train[idx], device))
        if s.fa_loss == "otdd":
            return fa(feats, torch.as_tensor(labels[idx], device=device))
        return fa(feats)

    def fld_term(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        probs = _source_probs(model, head, _to_tensor(x_train[idx], device), dense_1d)
        lab = torch.as_tensor(labels[idx], device=device)
        loss = fld_loss(probs, lab, n_cls, s.fld, token_mode=s.token_mode)
        with torch.no_grad():
            ent = source_entropy(probs, token_mode=s.token_mode)
        return loss, ent

    def step(opt, loss: torch.Tensor) -> float:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        v = float(loss.detach())
        if check is not None:
            check("align.loss", v)
        return v

    fa_batch = min(s.fa_batch, n)
    params = list(model.embedder_parameters()) + (list(head.parameters()) if s.train_source_head else [])

    if s.combine == "joint":
        # ε·FA + λ·FLD on every step while each term has budget left (FA counted in steps,
        # FLD in passes over the training set), one optimizer over the embedder.
        opt = make_optimizer(optimizer_name, params, s.lr, weight_decay)
        fld_steps = s.fld_epochs * math.ceil(n / s.fld_batch) if s.fld != "none" else 0
        fa_steps = s.fa_steps if fa is not None else 0
        fld_order = np.concatenate([gen.permutation(n) for _ in range(max(1, s.fld_epochs))])
        for it in range(max(fa_steps, fld_steps)):
            row: dict[str, float] = {"step": it}
            loss = torch.zeros((), device=device)
            if it < fa_steps:
                fa_v = fa_term(gen.choice(n, fa_batch, replace=False))
                loss = loss + s.epsilon * fa_v
                row["fa"] = float(fa_v.detach())
            if it < fld_steps:
                idx = fld_order[(it * s.fld_batch) % len(fld_order):][:s.fld_batch]
                fld_v, ent = fld_term(idx)
                loss = loss + s.fld_weight * fld_v
                row["fld"], row["source_entropy"] = float(fld_v.detach()), float(ent)
            row["loss"] = step(opt, loss)
            log.append(row)
    else:
        if fa is not None:
            lr = s.lr
            opt = make_optimizer(optimizer_name, model.embedder_parameters(), lr, weight_decay)
            sched = (torch.optim.lr_scheduler.MultiStepLR(opt, [20, 40, 60], gamma=0.2)
                     if s.reference_schedule else None)
            # the code scales FA by m / #batches (spec §3.2); it only matters under SGD
            scale = (fa_batch / max(1, math.ceil(n / 4))) if s.reference_schedule else 1.0
            for it in range(s.fa_steps):
                fa_v = fa_term(gen.choice(n, fa_batch, replace=False))
                v = step(opt, scale * fa_v)
                if sched is not None:
                    sched.step()
                log.append({"step": it, "fa": float(fa_v.detach()), "loss": v})
        if s.fld != "none" and s.fld_epochs > 0:
            opt = make_optimizer(optimizer_name, params, s.fld_lr, weight_decay)
            weights = class_weights(labels, n_cls)
            it = len(log)
            for _ in range(s.fld_epochs):
                # per class, in random order, chunks of fld_batch samples (spec §5.2)
                for k in gen.permutation(n_cls):
                    members = gen.permutation(np.flatnonzero(labels == k))
                    n_k_batches = max(1, math.ceil(len(members) / 4))
                    for chunk in _batches(members, s.fld_batch):
                        if len(chunk) < max(2, s.fld_batch // 2) and len(chunk) != len(members):
                            continue  # the code drops small leftovers
                        fld_v, ent = fld_term(chunk)
                        v = step(opt, float(weights[k]) * len(chunk) / n_k_batches * fld_v)
                        log.append({"step": it, "fld": float(fld_v.detach()),
                                    "source_entropy": float(ent), "loss": v})
                        it += 1
    for p in model.parameters():
        p.requires_grad_(True)
    state = {k: v.detach().cpu().clone() for k, v in model.embedder.state_dict().items()}
    return AlignResult(embedder_state=state, log=log, seconds=time.perf_counter() - t0)


# ----------------------------------------------------------------------------- stage 2
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
             check: Callable[[str, float], None] | None = None) -> FinetuneResult:
    """Stage 2: full fine-tuning with the task loss; reports validation every epoch.

    ``train_indices`` maps a shuffled index array to this worker's shard (DDP); ``wrap`` wraps the
    model for data parallelism; ``report(epoch, metrics, state)`` receives every epoch's metrics and
    a checkpointable state. With ``evaluate_test`` the test split is evaluated once, after
    training, with the best-on-validation weights (and the last ones).
    """
    t0 = time.perf_counter()
    x_tr, y_tr = data_splits["train"]
    x_va, y_va = data_splits["val"]
    gen = np.random.default_rng(seed + 17)
    model = model.to(device)
    for p in model.parameters():
        p.requires_grad_(True)
    net = wrap(model) if wrap is not None else model
    loss_fn = get_metric(s.train_loss)
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
    if resume:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        start = int(resume["epoch"]) + 1
        best_val, best_epoch = float(resume["best_val"]), int(resume["best_epoch"])
        best_state = resume.get("best_model")
        history = list(resume.get("history", []))
        # keep the data order of an uninterrupted run
        for _ in range(start - 1):
            gen.permutation(len(x_tr))
    val = math.nan
    for epoch in range(start, s.epochs + 1):
        net.train()
        order = gen.permutation(len(x_tr))
        if train_indices is not None:
            order = train_indices(order)
        total, count = 0.0, 0
        for idx in _batches(order, s.batch_size):
            pred = net(_to_tensor(x_tr[idx], device))
            loss = loss_fn(pred, _to_tensor(y_tr[idx], device))
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
        val = evaluate(model, x_va, y_va, s.metric, device, s.eval_batch_size)
        if check is not None:
            check(f"val_{s.metric}", val)
        if better(val, best_val):
            best_val, best_epoch = val, epoch
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        row = {f"val_{s.metric}": val, "train_loss": total / max(1, count),
               "lr": opt.param_groups[0]["lr"], f"best_val_{s.metric}": best_val}
        if extra_metrics:
            row.update(extra_metrics)
        result = None
        if evaluate_test and epoch == s.epochs:
            result = _test_scores(model, data_splits, s, device, best_state)
            row.update({f"test_{s.metric}": result[0], f"test_{s.metric}_last": result[1],
                        "best_epoch": best_epoch})
        history.append(dict(row, epoch=epoch))
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "epoch": epoch, "best_val": best_val,
                 "best_epoch": best_epoch, "best_model": best_state, "history": history}
        report(epoch, row, state)
    out = FinetuneResult(best_epoch=best_epoch, best_val=best_val, last_val=val, history=history,
                         seconds=time.perf_counter() - t0)
    if evaluate_test and history and f"test_{s.metric}" in history[-1]:
        out.test, out.test_last = history[-1][f"test_{s.metric}"], history[-1][f"test_{s.metric}_last"]
    return out


def _test_scores(model, data_splits, s: FinetuneSettings, device, best_state) -> tuple[float, float]:
    """(test metric with the best-on-validation weights, test metric with the last weights)."""
    x_te, y_te = data_splits["test"]
    last = evaluate(model, x_te, y_te, s.metric, device, s.eval_batch_size)
    if best_state is None:
        return last, last
    current = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
    model.load_state_dict(best_state)
    best = evaluate(model, x_te, y_te, s.metric, device, s.eval_batch_size)
    model.load_state_dict(current)
    return best, last
