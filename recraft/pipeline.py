"""RECRAFT's two stages, with every switch the paper/code divergences need (spec §3–§6, §10, §12).

* :class:`AlignSettings` — stage 1: which FA loss (``w1`` paper, ``sinkhorn_div`` reference code,
  ``otdd`` ORCA, ``none``), which FLD direction (``tgt_given_src`` paper, ``src_given_tgt``
  reference code, ``none``), how they combine (``joint``: ε·FA + λ·FLD summed, paper eq. 22;
  ``sequential``: FA steps then FLD epochs, the code), and the source-side recalibration mode.
* :func:`run_alignment` — stage 1 on a :class:`~recraft.model.TargetModel`'s embedder.
* :func:`finetune` — stage 2: the task loss, the task's optimizer (Table 9), per-iteration
  warm-up then linear decay, gradient clipping; validation every epoch through a callback; on the
  final phase, the test metric of the best-on-validation epoch (and of the last epoch), read in one
  pass over the test split.

Stage 1 in detail
-----------------
``joint`` (paper eq. 22): one optimizer over the embedder (the source head too only with
``train_source_head``; the body is always frozen, gradients pass through it). The run has
``T = max(fa_steps, #FLD batches)`` steps; FA is evaluated on ``fa_steps`` of them and FLD on
each of its batches (``fld_epochs`` passes over the training set in shuffled batches of
``fld_batch``), both spread evenly over the ``T`` steps. A term present on a fraction ``r`` of the
steps is weighted ``1/r``, so every step is an unbiased estimate of ``ε·FA + λ·FLD`` and both
terms act over the whole run (not FA first, then FLD alone), with the budgets of App. I.

``sequential`` (the reference code): ``fa_steps`` FA steps (with ``reference_schedule``: the
code's StepLR, milestones ``[20, 40, 60] × schedule_scale``, factor 0.2, and RECRAFT's
``m / #batches`` scale), then ``fld_epochs`` FLD epochs at ``fld_lr``. ``H(Y_s | Y_t)``
(``src_given_tgt``) is estimated on per-class chunks of ``fld_batch`` samples in random class order
(spec §5.2); ``H(Y_t | Y_s)`` is zero on a single-class chunk, so that direction uses shuffled
mixed-class batches instead.

ORCA (``fa_loss="otdd"``): k-means classes of the training targets (``n_classes``), real source
labels, and ORCA's per-cluster accumulation (spec §8.2): per step, up to ``fa_batch`` random
members of every cluster, loss ``Σ_k w_k · OTDD((S, y), (T_k, k))`` with ``w_k = n_k / n``. The
label-to-label distances (constants) are computed once per step for all (source class, cluster)
pairs by one batched Sinkhorn (:func:`batched_entropic_ot`) instead of one POT call per pair.

Every FA solver gets ``fa_stop_thr`` / ``fa_iters`` and the entropic OT solver ``ot_solver``
(``"torch"``, the losses' default, or ``"pot"``); "Sinkhorn did not converge" warnings are
counted per step (``fa_unconverged`` in the log) and summarised in one warning at the end.

Probes (App. B bound terms): before the first and after the last step, on a fixed subset of up to
``probe_size`` training samples, the configured FA and FLD terms, ``H(Z_s)`` of the pseudo source
labels and the target loss of the current model (``target_loss``) are logged (``probe_start.*``,
``probe_end.*``), with the model in eval mode. FLD steps also log the target loss of their batch
(same forward pass, free).

Both stages seed torch's global RNG from ``seed`` on entry, so dropout draws do not depend on what
ran before them (e.g. whether the source side or stage 1 came from a cache); stage-2 checkpoints
carry the RNG state, so a resumed run matches an uninterrupted one bit for bit.

Everything here is plain PyTorch: no Ray. The harness's trials and :mod:`recraft.run` call it.
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from harness.metrics import get_metric, nrmse_per_sample, rmse_per_sample
from recraft.discretise import class_weights, discretise_targets
from recraft.losses import FeatureAlignment, fld_loss, source_entropy
from recraft.losses.alignment import INNER_ITERS, LabelDistances, class_conditional_alignment

ReportFn = Callable[[int, dict, dict | None], None]

_UNCONVERGED = "Sinkhorn did not converge"


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
    fa_batch: int = 128                  # target samples per FA step (ORCA: per cluster)
    fld_batch: int = 28                  # samples per FLD step (the code's label_maxsamples)
    fa_reg: float = 0.1                  # entropic regularisation of the OT solvers
    n_classes: int = 10                  # k-means classes of the regression targets
    train_source_head: bool = False      # the code trains the head during FLD (spec §5.2)
    token_mode: str = "draws"            # 1D dense FLD: tokens as draws (paper) or per token (code)
    reference_schedule: bool = False     # FA lr ×10 + StepLR [20,40,60]×0.2 and m/N_b scaling
    schedule_scale: float = 1.0          # the profile's FA scale: StepLR milestones are × this
    fa_stop_thr: float | None = 1e-4     # Sinkhorn stopping threshold (marginal error: L1 with the
                                         # torch solver, POT's L2 with "pot"), all FA
    fa_iters: int | None = None          # final-stage Sinkhorn iterations (None: the loss default)
    ot_solver: str = "torch"             # entropic OT solver of the FA losses: torch | pot
    otdd_per_cluster: bool = True        # ORCA's Σ_k w_k OTDD(S, T_k); False: one OTDD per batch
    target_loss: str = "nrmse"           # probe: task loss logged during stage 1 ("none": off)
    probe_size: int = 32                 # samples of the start/end probes (0: no probes)

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


def _milestones(scale: float) -> list[int]:
    """The reference StepLR milestones [20, 40, 60] in steps of a run scaled by ``scale``."""
    out: list[int] = []
    for m in (20, 40, 60):
        v = max(1, round(m * scale))
        out.append(max(v, out[-1] + 1) if out else v)
    return out


# ----------------------------------------------------------------------------- helpers
def _to_tensor(a: np.ndarray, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)


def _batches(order: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(order), size):
        yield order[i:i + size]


def _spread(n_events: int, total: int) -> dict[int, int]:
    """``n_events`` events spread evenly over ``total`` steps: step -> event index."""
    if n_events <= 0:
        return {}
    return {(i * total) // n_events: i for i in range(n_events)}


def _per_sample_metric(metric: str):
    if metric == "nrmse":
        return nrmse_per_sample
    if metric == "rmse":
        return rmse_per_sample
    return None


@torch.no_grad()
def _evaluate_models(models: Sequence[nn.Module], x, y, metric: str, device,
                     batch_size: int = 64) -> list[float]:
    """The metric of each model over one split, reading every sample of the split once."""
    states = [m.training for m in models]
    for m in models:
        m.eval()
    fn = _per_sample_metric(metric)
    vals: list[list[torch.Tensor]] = [[] for _ in models]
    for idx in _batches(np.arange(len(x)), batch_size):
        xb, tgt = _to_tensor(x[idx], device), _to_tensor(y[idx], device)
        for j, m in enumerate(models):
            pred = m(xb)
            if fn is not None:
                vals[j].append(fn(pred, tgt).double().cpu())
            else:
                vals[j].append(torch.full((len(idx),), float(get_metric(metric)(pred, tgt))).double())
    for m, was in zip(models, states):
        m.train(was)
    return [float(torch.cat(v).mean()) if v else math.nan for v in vals]


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, metric: str, device,
             batch_size: int = 64) -> float:
    """The task metric over a split (mean of per-sample values, so batching does not matter)."""
    return _evaluate_models([model], x, y, metric, device, batch_size)[0]


class _UnconvergedCounter:
    """Catches POT's "Sinkhorn did not converge" warnings, counts them, re-emits the others."""

    def __init__(self):
        self.total = 0
        self.last = 0

    def __enter__(self):
        self._cm = warnings.catch_warnings(record=True)
        self._rec = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        self.last = 0
        for w in self._rec:
            if _UNCONVERGED in str(w.message):
                self.last += 1
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self.total += self.last
        return False


# ----------------------------------------------------------------------------- batched inner OT
@torch.no_grad()
def batched_entropic_ot(xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor], reg: float, *,
                        num_iter_max: int = 1000, stop_thr: float = 1e-7, eps_scaling: float = 0.5,
                        scaling_iters: int = 10, max_entries: int = 1 << 24) -> torch.Tensor:
    """``OT_eps(x_b, y_b)`` for many point-set pairs at once (no gradient), float64, shape ``(B,)``.

    ``OT_eps = min <π, C> + reg · KL(π | a ⊗ b)`` with ``C = |x - y|²``, uniform weights and an
    absolute ``reg``: the inner label-to-label problem of OTDD (spec §3.2, §8.2), the quantity
    :func:`recraft.losses.entropic_ot` computes with ``p=2, cost_scale=1``. The pairs are padded
    into one ``(B, n, m)`` problem (padded points get zero weight, ``log a = -inf``) and solved by
    log-domain Sinkhorn with ε-scaling (``scaling_iters`` iterations at each of
    ``max(C) · eps_scaling^k``, then up to ``num_iter_max`` at ``reg`` until every problem's L2
    row-marginal error is below ``stop_thr``), in chunks of at most ``max_entries`` cost entries.
    """
    if len(xs) != len(ys):
        raise ValueError("xs and ys must pair up")
    if not xs:
        return torch.zeros(0, dtype=torch.float64)
    n_max, m_max = max(len(x) for x in xs), max(len(y) for y in ys)
    per = max(1, max_entries // max(1, n_max * m_max))
    if len(xs) > per:
        return torch.cat([batched_entropic_ot(xs[i:i + per], ys[i:i + per], reg,
                                              num_iter_max=num_iter_max, stop_thr=stop_thr,
                                              eps_scaling=eps_scaling, scaling_iters=scaling_iters,
                                              max_entries=max_entries)
                          for i in range(0, len(xs), per)])
    dev = xs[0].device
    d = xs[0].shape[1]
    bsz = len(xs)
    X = torch.zeros(bsz, n_max, d, dtype=torch.float64, device=dev)
    Y = torch.zeros(bsz, m_max, d, dtype=torch.float64, device=dev)
    la = torch.full((bsz, n_max), -math.inf, dtype=torch.float64, device=dev)
    lb = torch.full((bsz, m_max), -math.inf, dtype=torch.float64, device=dev)
    for i, (x, y) in enumerate(zip(xs, ys)):
        if len(x) == 0 or len(y) == 0:
            raise ValueError("every point set needs at least one point")
        X[i, :len(x)] = x.detach().double()
        Y[i, :len(y)] = y.detach().double()
        la[i, :len(x)] = -math.log(len(x))
        lb[i, :len(y)] = -math.log(len(y))
    va, vb = torch.isfinite(la), torch.isfinite(lb)
    C = torch.cdist(X, Y, compute_mode="donot_use_mm_for_euclid_dist") ** 2
    valid = va[:, :, None] & vb[:, None, :]
    c_max = float(C[valid].max()) if bool(valid.any()) else 0.0
    f = torch.zeros(bsz, n_max, dtype=torch.float64, device=dev)
    g = torch.zeros(bsz, m_max, dtype=torch.float64, device=dev)

    def g_update(eps: float) -> torch.Tensor:
        return -eps * torch.logsumexp(la[:, :, None] + (f[:, :, None] - C) / eps, dim=1)

    def f_update(eps: float) -> torch.Tensor:
        return -eps * torch.logsumexp(lb[:, None, :] + (g[:, None, :] - C) / eps, dim=2)

    eps = max(c_max, reg)
    if eps_scaling is not None and 0 < eps_scaling < 1:
        while eps > reg:
            for _ in range(scaling_iters):
                g = g_update(eps)
                f = f_update(eps)
            eps = max(eps * eps_scaling, reg)
    eps = reg
    for it in range(num_iter_max):
        g = g_update(eps)
        f = f_update(eps)
        if it % 10 == 9 or it == num_iter_max - 1:
            # after the f-update the rows are exact; check the column marginals
            logcol = lb + g / eps + torch.logsumexp(la[:, :, None] + (f[:, :, None] - C) / eps, dim=1)
            err = torch.where(vb, logcol.exp() - lb.exp(), torch.zeros_like(g)).norm(dim=1)
            if float(err.max()) < stop_thr:
                break
    log_pi = la[:, :, None] + lb[:, None, :] + (f[:, :, None] + g[:, None, :] - C) / eps
    pi = torch.where(valid, log_pi.exp(), torch.zeros_like(C))
    # primal entropic objective <π, C> + reg · KL(π | a ⊗ b) = Σ π (f_i + g_j) exactly
    fg = torch.where(valid, f[:, :, None] + g[:, None, :], torch.zeros_like(C))
    return (pi * fg).sum(dim=(1, 2))


class _OTDDLabelTerms:
    """ORCA's inner label-to-label distances ``W²(S_c, T_k)``, one batched solve per step."""

    def __init__(self, source: torch.Tensor, source_labels: torch.Tensor, reg: float,
                 stop_thr: float | None):
        self.classes, index = torch.unique(source_labels, sorted=True, return_inverse=True)
        self.parts = [source[index == c].detach() for c in range(len(self.classes))]
        self.reg = reg
        # the losses' own budget for these constants (INNER_ITERS final-stage iterations)
        self.kw = dict(stop_thr=1e-4 if stop_thr is None else stop_thr, num_iter_max=INNER_ITERS)
        self.source_self = batched_entropic_ot(self.parts, self.parts, reg, **self.kw)

    @torch.no_grad()
    def __call__(self, target: torch.Tensor, clusters: torch.Tensor) -> LabelDistances:
        t_classes, t_index = torch.unique(clusters, sorted=True, return_inverse=True)
        t_parts = [target[t_index == k].detach() for k in range(len(t_classes))]
        n_s, n_t = len(self.parts), len(t_parts)
        # one solve: the n_s × n_t cross problems, then the n_t cluster self-problems
        vals = batched_entropic_ot([s for s in self.parts for _ in range(n_t)] + t_parts,
                                   [t for _ in range(n_s) for t in t_parts] + t_parts,
                                   self.reg, **self.kw)
        cross, t_self = vals[:n_s * n_t].reshape(n_s, n_t), vals[n_s * n_t:]
        st = cross - 0.5 * self.source_self[:, None] - 0.5 * t_self[None, :]
        return LabelDistances(target_classes=t_classes, source_target=st.to(target.dtype),
                              target_target=None)


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
    ``train_source_head``, the source head) is updated; the body and the task head are frozen but
    gradients pass through the body for FLD. See the module docstring for the schedules.
    """
    if s.combine not in ("joint", "sequential"):
        raise ValueError(f"combine must be 'joint' or 'sequential', got {s.combine!r}")
    t0 = time.perf_counter()
    gen = np.random.default_rng(seed)
    torch.manual_seed(seed)  # dropout draws do not depend on what ran before (e.g. a cache miss)
    n = len(x_train)
    model = model.to(device)
    dense_1d = model.kind == "1d" and model.task == "dense"
    head = source.make_head(device)
    grad_state = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.embedder_parameters():
        p.requires_grad_(True)
    for p in head.parameters():
        p.requires_grad_(s.train_source_head)
    model.train()
    try:
        return _align(model, head, source, x_train, y_train, s, optimizer_name, weight_decay, seed,
                      gen, n, dense_1d, device, check, t0)
    finally:
        for p, r in zip(model.parameters(), grad_state):
            p.requires_grad_(r)


def _align(model, head, source, x_train, y_train, s: AlignSettings, optimizer_name, weight_decay,
           seed, gen, n, dense_1d, device, check, t0) -> AlignResult:
    log: list[dict[str, float]] = []
    use_fa = s.fa_loss != "none" and s.fa_steps > 0
    use_fld = s.fld != "none" and s.fld_epochs > 0
    otdd = s.fa_loss == "otdd"
    solver = {k: v for k, v in (("stop_thr", s.fa_stop_thr), ("num_iter_max", s.fa_iters),
                                ("solver", s.ot_solver)) if v is not None}

    fa = labels_t = label_terms = None
    labels = None
    if use_fld or (use_fa and otdd):
        labels = discretise_targets(y_train, n_classes=s.n_classes, seed=seed)
    n_cls = int(labels.max()) + 1 if labels is not None else 0
    weights = class_weights(labels, n_cls) if labels is not None else None
    if use_fa:
        src = source.features.to(device)
        if otdd:
            fa = FeatureAlignment("otdd", src, source.labels.to(device), reg=s.fa_reg,
                                  per_cluster=s.otdd_per_cluster, **solver)
            if s.otdd_per_cluster:
                label_terms = _OTDDLabelTerms(fa.source, fa.source_labels, s.fa_reg, s.fa_stop_thr)
            labels_t = torch.as_tensor(labels, device=device)
        elif s.fa_loss == "w1":
            fa = FeatureAlignment("w1", src, epsilon=1.0, reg=s.fa_reg, **solver)
        else:
            fa = FeatureAlignment(s.fa_loss, src, reg=s.fa_reg, **solver)
    counter = _UnconvergedCounter()
    task_loss = get_metric(s.target_loss) if s.target_loss != "none" else None

    def fa_value(feats: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
        with counter:
            if not otdd:
                return fa(feats)
            clusters = labels_t[torch.as_tensor(idx, device=device)]
            if not s.otdd_per_cluster:  # one OTDD per batch: the losses' own label distances
                return fa(feats, clusters)
            return class_conditional_alignment(
                fa.source, fa.source_labels, feats, clusters, source_terms=fa.source_terms(),
                distances=label_terms(feats, clusters), cluster_weights=weights, **fa.loss_kwargs)

    def fa_batch_idx() -> np.ndarray:
        if not otdd or not s.otdd_per_cluster:
            return gen.choice(n, min(s.fa_batch, n), replace=False)
        # ORCA: per cluster, up to fa_batch random members (the whole cluster if smaller)
        parts = []
        for k in range(n_cls):
            members = np.flatnonzero(labels == k)
            if len(members):
                parts.append(gen.choice(members, min(s.fa_batch, len(members)), replace=False))
        return np.concatenate(parts)

    def fa_term(idx: np.ndarray) -> torch.Tensor:
        return fa_value(model.pooled_embedding(_to_tensor(x_train[idx], device)), idx)

    def fld_term(idx: np.ndarray) -> tuple[torch.Tensor, float, float | None]:
        """(FLD loss, H(Z_s), target loss of the same forward pass)."""
        x = _to_tensor(x_train[idx], device)
        feats = model.token_features(x)
        logits = head(feats if dense_1d else feats.mean(dim=1))
        probs = torch.softmax(logits, dim=-1)
        lab = torch.as_tensor(labels[idx], device=device)
        loss = fld_loss(probs, lab, n_cls, s.fld, token_mode=s.token_mode)
        with torch.no_grad():
            ent = float(source_entropy(probs, token_mode=s.token_mode))
            tl = None
            if task_loss is not None:
                tl = float(task_loss(model.predict_from_features(feats), _to_tensor(y_train[idx], device)))
        return loss, ent, tl

    def step(opt, loss: torch.Tensor, name: str = "align.loss") -> float:
        opt.zero_grad(set_to_none=True)
        # a loss without a graph (e.g. ORCA when every cluster of the batch has < 2 points, which
        # it skips) is logged but changes nothing (the optimizer skips parameters without grads)
        if loss.requires_grad:
            loss.backward()
        opt.step()
        v = float(loss.detach())
        if check is not None and loss.requires_grad:
            check(name, v)  # one name per objective: the explosion check compares like with like
        return v

    probe_idx = (np.sort(np.random.default_rng(seed + 7919).permutation(n)[:min(s.probe_size, n)])
                 if s.probe_size > 0 else None)

    @torch.no_grad()
    def probe(tag: str) -> dict[str, float]:
        if probe_idx is None:
            return {}
        model.eval()  # deterministic measurements (no dropout / drop-path)
        try:
            return _probe(tag)
        finally:
            model.train()

    def _probe(tag: str) -> dict[str, float]:
        row: dict[str, float] = {}
        if use_fa:
            row[f"{tag}.fa"] = float(fa_term(probe_idx))
        if labels is not None and use_fld:
            fld_v, ent, tl = fld_term(probe_idx)
            row[f"{tag}.fld"] = float(fld_v)
        else:
            x = _to_tensor(x_train[probe_idx], device)
            feats = model.token_features(x)
            logits = head(feats if dense_1d else feats.mean(dim=1))
            probs = torch.softmax(logits, dim=-1)
            ent = float(source_entropy(probs, token_mode=s.token_mode))
            tl = (float(task_loss(model.predict_from_features(feats), _to_tensor(y_train[probe_idx], device)))
                  if task_loss is not None else None)
        row[f"{tag}.source_entropy"] = ent
        if tl is not None:
            row[f"{tag}.target_loss"] = tl
        return row

    start = probe("probe_start")
    if start:
        log.append({"step": -1, **start})
    params = list(model.embedder_parameters()) + (list(head.parameters()) if s.train_source_head else [])

    if s.combine == "joint":
        _joint(s, log, params, optimizer_name, weight_decay, gen, n, use_fa, use_fld,
               fa_batch_idx, fa_term, fld_term, step, counter)
    else:
        if use_fa:
            opt = make_optimizer(optimizer_name, model.embedder_parameters(), s.lr, weight_decay)
            sched = (torch.optim.lr_scheduler.MultiStepLR(opt, _milestones(s.schedule_scale), gamma=0.2)
                     if s.reference_schedule else None)
            # RECRAFT's code scales FA by m / #batches (spec §3.2; only matters under SGD); ORCA
            # weights its per-cluster terms by w_k instead (spec §8.2)
            scale = (min(s.fa_batch, n) / max(1, math.ceil(n / 4))
                     if s.reference_schedule and not otdd else 1.0)
            for it in range(s.fa_steps):
                fa_v = fa_term(fa_batch_idx())
                v = step(opt, scale * fa_v, "align.fa_loss")
                if sched is not None:
                    sched.step()
                log.append({"step": it, "fa": float(fa_v.detach()), "loss": v,
                            "fa_unconverged": float(counter.last)})
        if use_fld:
            opt = make_optimizer(optimizer_name, params, s.fld_lr, weight_decay)
            it = len([r for r in log if r["step"] >= 0])
            for _ in range(s.fld_epochs):
                if s.fld == "src_given_tgt":
                    # per class, in random order, chunks of fld_batch samples (spec §5.2)
                    chunks = []
                    for k in gen.permutation(n_cls):
                        members = gen.permutation(np.flatnonzero(labels == k))
                        n_k_batches = max(1, math.ceil(len(members) / 4))
                        for chunk in _batches(members, s.fld_batch):
                            if len(chunk) < max(2, s.fld_batch // 2) and len(chunk) != len(members):
                                continue  # the code drops small leftovers
                            chunks.append((chunk, float(weights[k]) * len(chunk) / n_k_batches))
                else:
                    # H(Y_t | Y_s) vanishes on a single-class chunk: shuffled mixed batches
                    chunks = [(b, 1.0) for b in _fld_batches(gen, n, s.fld_batch)]
                for chunk, w in chunks:
                    fld_v, ent, tl = fld_term(chunk)
                    v = step(opt, w * fld_v, "align.fld_loss")
                    row = {"step": it, "fld": float(fld_v.detach()), "source_entropy": ent, "loss": v}
                    if tl is not None:
                        row["target_loss"] = tl
                    log.append(row)
                    it += 1
    end = probe("probe_end")
    if end:
        log.append({"step": len([r for r in log if r["step"] >= 0]), **end})
    if counter.total:
        warnings.warn(f"stage 1: Sinkhorn did not reach stop_thr={s.fa_stop_thr} within its "
                      f"iterations {counter.total} time(s) (values and gradients approximate; "
                      f"see fa_unconverged in the log)", UserWarning, stacklevel=3)
    state = {k: v.detach().cpu().clone() for k, v in model.embedder.state_dict().items()}
    return AlignResult(embedder_state=state, log=log, seconds=time.perf_counter() - t0)


def _fld_batches(gen: np.random.Generator, n: int, size: int) -> list[np.ndarray]:
    """One epoch of shuffled FLD batches; a small leftover (< size/2) joins no batch."""
    out = list(_batches(gen.permutation(n), size))
    if len(out) > 1 and len(out[-1]) < max(2, size // 2):
        out.pop()
    return out


def _joint(s: AlignSettings, log, params, optimizer_name, weight_decay, gen, n, use_fa, use_fld,
           fa_batch_idx, fa_term, fld_term, step, counter) -> None:
    """Paper eq. 22: ε·FA + λ·FLD, both terms spread over the whole run (module docstring)."""
    opt = make_optimizer(optimizer_name, params, s.lr, weight_decay)
    fld_batches = ([b for _ in range(s.fld_epochs) for b in _fld_batches(gen, n, s.fld_batch)]
                   if use_fld else [])
    n_fa = s.fa_steps if use_fa else 0
    total = max(n_fa, len(fld_batches))
    fa_at, fld_at = _spread(n_fa, total), _spread(len(fld_batches), total)
    w_fa = total / n_fa if n_fa else 0.0
    w_fld = total / len(fld_batches) if fld_batches else 0.0
    for it in range(total):
        row: dict[str, float] = {"step": it}
        terms = []
        if it in fa_at:
            fa_v = fa_term(fa_batch_idx())
            terms.append(w_fa * s.epsilon * fa_v)
            row["fa"] = float(fa_v.detach())
            row["fa_unconverged"] = float(counter.last)
        if it in fld_at:
            fld_v, ent, tl = fld_term(fld_batches[fld_at[it]])
            terms.append(w_fld * s.fld_weight * fld_v)
            row["fld"], row["source_entropy"] = float(fld_v.detach()), ent
            if tl is not None:
                row["target_loss"] = tl
        row["loss"] = step(opt, sum(terms[1:], terms[0]))
        log.append(row)


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
    a checkpointable state (tensors are live references: save or copy them during the call).
    ``resume`` is such a state: training continues at the next epoch with the same data order and
    optimizer/scheduler state as an uninterrupted run. With ``evaluate_test`` the test split is read
    once, after the last epoch, evaluating the best-on-validation weights (``test``) and the last
    ones (``test_last``) in the same pass; the result goes into the last epoch's report.

    The warm-up/decay schedule keeps the paper's proportions when the profile runs fewer (or more)
    epochs than the task's ``paper_epochs``: warm-up and decay points are
    ``warmup_epochs / paper_epochs`` and ``decay_epochs / paper_epochs`` of the run's iterations.
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
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        row = {f"val_{s.metric}": val, "train_loss": total / max(1, count),
               "lr": opt.param_groups[0]["lr"], f"best_val_{s.metric}": best_val}
        if extra_metrics:
            row.update(extra_metrics)
        if evaluate_test and epoch == s.epochs:
            best, last = _test_scores(model, data_splits, s, device, best_state, best_epoch == epoch)
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
            best, last = _test_scores(model, data_splits, s, device, best_state, False)
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
                 best_is_current: bool) -> tuple[float, float]:
    """(test metric with the best-on-validation weights, with the last weights), one test pass."""
    x_te, y_te = data_splits["test"]
    if best_state is None or best_is_current:
        last = evaluate(model, x_te, y_te, s.metric, device, s.eval_batch_size)
        return last, last
    best_model = copy.deepcopy(model)
    best_model.load_state_dict(best_state)
    best, last = _evaluate_models([best_model, model], x_te, y_te, s.metric, device,
                                  s.eval_batch_size)
    del best_model
    return best, last
