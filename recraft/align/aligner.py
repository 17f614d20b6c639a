"""Stage 1: the aligner runs a :class:`~recraft.align.plan.Stage1Plan` on a target model's embedder.

Only the embedder (and, in a phase with ``train_source_head``, the source head) is updated; the
body and the task head are frozen, and gradients pass through the body for FLD. Each phase gets
its own optimizer (the task's family, the phase's lr, the reference StepLR when it has milestones);
each step evaluates the terms the plan puts on it and takes one optimizer step on their weighted
sum (a step without a term is skipped).

Probes (App. B bound terms): before the first and after the last step, on a fixed subset of up to
``probe_size`` training samples, the FA and FLD terms (FLD over the whole training set with the
full estimator), ``H(Z_s)`` of the pseudo source labels and the target loss of the current model
(``target_loss``) are logged (``probe_start.*``, ``probe_end.*``), with the model in eval mode.

"Sinkhorn did not converge" warnings are counted per step (``fa_unconverged``) and summarised in
one warning at the end. Torch's global RNG is seeded from ``seed`` on entry, so dropout draws do
not depend on what ran before (e.g. whether the source side came from a cache).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from harness.scoring.losses import loss_by_name
from recraft.align.plan import AlignSettings, PhasePlan, Stage1Plan
from recraft.align.terms import FATerm, FLDTerm
from recraft.discretise import class_weights, discretise_targets
from recraft.losses import source_entropy
from recraft.training import make_optimizer, to_tensor

__all__ = ["AlignResult", "Aligner"]

#: offsets of the terms' random streams (seeded ``[seed, offset]``): independent of each other
FA_STREAM, FLD_STREAM, PROBE_STREAM = 1, 2, 3


@dataclass
class AlignResult:
    """Stage-1 output: the embedder's state and what was measured on the way."""

    embedder_state: dict[str, torch.Tensor]
    log: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


class Aligner:
    """Runs stage-1 plans for one target model, source side and training set."""

    def __init__(self, model, source, x_train: np.ndarray, y_train: np.ndarray, seed: int, device,
                 labels: np.ndarray | None = None,
                 check: Callable[[str, float], None] | None = None,
                 loss_fn: Callable[..., torch.Tensor] | None = None):
        self.model, self.source, self.x, self.y = model, source, x_train, y_train
        self.seed, self.device, self.check = seed, device, check
        self.labels = labels
        #: the task loss the probes and FLD batches log (default: ``settings.target_loss`` by name)
        self.loss_fn = loss_fn
        self.n = len(x_train)

    def run(self, plan: Stage1Plan) -> AlignResult:
        """Run ``plan``; the model's ``requires_grad`` flags are restored afterwards."""
        t0 = time.perf_counter()
        torch.manual_seed(self.seed)  # dropout draws do not depend on what ran before
        model = self.model.to(self.device)
        self.head = self.source.make_head(self.device)
        grad_state = [p.requires_grad for p in model.parameters()]
        for p in model.parameters():
            p.requires_grad_(False)
        for p in model.embedder_parameters():
            p.requires_grad_(True)
        for p in self.head.parameters():
            p.requires_grad_(False)
        model.train()
        try:
            log = self._run(plan)
        finally:
            for p, r in zip(model.parameters(), grad_state):
                p.requires_grad_(r)
        state = {k: v.detach().cpu().clone() for k, v in model.embedder.state_dict().items()}
        return AlignResult(embedder_state=state, log=log, seconds=time.perf_counter() - t0)

    # ---- internals
    def _terms(self, plan: Stage1Plan) -> tuple[FATerm | None, FLDTerm | None]:
        s = plan.settings
        names = plan.terms
        labels = self.labels
        if labels is None and plan.needs_labels:
            labels = discretise_targets(self.y, n_classes=s.n_classes, seed=self.seed)
        weights = class_weights(labels, int(labels.max()) + 1) if labels is not None else None
        fa = (FATerm(self.model, self.source, self.x, labels, weights, s,
                     np.random.default_rng([self.seed, FA_STREAM]), self.device)
              if "fa" in names else None)
        fld = (FLDTerm(self.model, self.head, self.x, self.y, labels, weights, s,
                       np.random.default_rng([self.seed, FLD_STREAM]), self.device,
                       loss_fn=self.loss_fn)
               if "fld" in names else None)
        return fa, fld

    def _run(self, plan: Stage1Plan) -> list[dict[str, float]]:
        s = plan.settings
        fa, fld = self._terms(plan)
        log: list[dict[str, float]] = []
        probe_idx = (np.sort(np.random.default_rng([self.seed, PROBE_STREAM]).permutation(self.n)
                             [:min(s.probe_size, self.n)]) if s.probe_size > 0 else None)
        start = self._probe("probe_start", probe_idx, fa, fld, s)
        if start:
            log.append({"step": -1, **start})
        step = 0
        for phase in plan.phases:
            self._run_phase(phase, fa, fld, log, step)
            step += phase.steps
        end = self._probe("probe_end", probe_idx, fa, fld, s)
        if end:
            log.append({"step": step, **end})
        unconverged = fa.counter.total if fa is not None else 0
        if unconverged:
            warnings.warn(f"stage 1: Sinkhorn did not reach stop_thr={s.fa_stop_thr} within its "
                          f"iterations {unconverged} time(s) (values and gradients approximate; "
                          f"see fa_unconverged in the log)", UserWarning, stacklevel=3)
        return log

    def _run_phase(self, phase: PhasePlan, fa: FATerm | None, fld: FLDTerm | None,
                   log: list[dict[str, float]], first_step: int) -> None:
        params = list(self.model.embedder_parameters())
        if phase.train_source_head:
            params += list(self.head.parameters())
        for p in self.head.parameters():
            p.requires_grad_(phase.train_source_head)
        opt = make_optimizer(phase.optimizer, params, phase.lr, phase.weight_decay)
        sched = (torch.optim.lr_scheduler.MultiStepLR(opt, list(phase.milestones), gamma=0.2)
                 if phase.milestones else None)
        fa_at, fld_at = phase.positions("fa"), phase.positions("fld")
        fa_w = phase.term("fa").weight if fa_at else 0.0
        fld_w = phase.term("fld").weight if fld_at else 0.0
        fld_batches = fld.plan_batches(phase.term("fld").count) if fld_at else []
        if fld_at:
            fld.start()
        name = f"align.{phase.terms[0].name}_loss" if len(phase.terms) == 1 else "align.loss"
        for it in range(phase.steps):
            terms, row = [], {}
            if it in fa_at:
                v, r = fa.step()
                terms.append(fa_w * v)
                row.update(r)
            if it in fld_at:
                idx, w = fld_batches[fld_at[it]]
                v, r = fld(idx, w)
                terms.append(fld_w * v)
                row.update(r)
            if terms:
                row["loss"] = self._step(opt, sum(terms[1:], terms[0]), name)
                log.append({"step": first_step + it, **row})
            if sched is not None:
                sched.step()
        for p in self.head.parameters():
            p.requires_grad_(False)

    def _step(self, opt: torch.optim.Optimizer, loss: torch.Tensor, name: str) -> float:
        opt.zero_grad(set_to_none=True)
        # a loss without a graph (e.g. ORCA when every cluster of the batch has < 2 points, which
        # it skips) is logged but changes nothing (the optimizer skips parameters without grads)
        if loss.requires_grad:
            loss.backward()
        opt.step()
        v = float(loss.detach())
        if self.check is not None and loss.requires_grad:
            self.check(name, v)  # one name per objective: the explosion check compares like
                                 # with like
        return v

    @torch.no_grad()
    def _probe(self, tag: str, idx: np.ndarray | None, fa: FATerm | None, fld: FLDTerm | None,
               s: AlignSettings) -> dict[str, float]:
        if idx is None:
            return {}
        self.model.eval()  # deterministic measurements (no dropout / drop-path)
        try:
            row: dict[str, float] = {}
            if fa is not None:
                row[f"{tag}.fa"] = float(fa(idx))
            if fld is not None:
                row[f"{tag}.fld"] = fld.probe(idx)
                probs, feats = fld.probs(idx)
                row[f"{tag}.source_entropy"] = float(source_entropy(probs, token_mode=s.token_mode))
            else:
                feats = self.model.token_features(to_tensor(self.x[idx], self.device))
            if s.target_loss != "none":
                loss = self.loss_fn or loss_by_name(s.target_loss)
                row[f"{tag}.target_loss"] = float(loss(
                    self.model.predict_from_features(feats), to_tensor(self.y[idx], self.device)))
            return row
        finally:
            self.model.train()
