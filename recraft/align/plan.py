"""Stage-1 settings and plans: which term runs at which optimizer step, with which weight and lr.

:class:`AlignSettings` holds the switches (which FA loss, which FLD direction and estimator, how
the terms combine) and the budgets. :func:`plan_stage1` turns them into a :class:`Stage1Plan`:
phases of optimizer steps, each with its learning rate, schedule, trainable parts and the terms
evaluated on it. The aligner (:mod:`recraft.align.aligner`) runs exactly the plan.

Ablations are plans with a term removed (:meth:`Stage1Plan.without`): the plan is always built as
if every term of the parent method were present, so an ablation keeps its parent's steps,
learning rates and weights and differs only by the missing term (a step left without a term is
skipped: the parameters do not move).

``sequential`` (the default: the paper's App. I and Tables 8–9, and the released code)
    an FA phase of ``fa_steps`` steps at ``lr`` (with ``reference_schedule``: the code's StepLR,
    milestones ``[20, 40, 60] × schedule_scale``, factor 0.2), then an FLD phase of
    ``fld_epochs`` passes over the training set at ``fld_lr``. FA is weighted by ε (paper eq. 14;
    the code has no ε weight, ``epsilon=None``) and, with ``reference_schedule``, by RECRAFT's
    ``m / #batches`` factor (spec §3.2).
``joint`` (a reconstruction of eq. 22, ε·FA + FLD)
    one phase of ``T = max(fa_steps, #FLD batches)`` steps at ``lr``; FA is evaluated on
    ``fa_steps`` of them and FLD on each of its batches, both spread evenly; a term present on a
    fraction ``r`` of the steps is weighted ``1/r``, so every step is an unbiased estimate of
    ε·FA + FLD.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

from recraft.training import reference_milestones

__all__ = ["AlignSettings", "PhasePlan", "Stage1Plan", "TermPlan", "fld_batch_count",
           "plan_stage1", "spread"]

COMBINES = ("joint", "sequential")
FLD_ESTIMATORS = ("full", "batch")
TERMS = ("fa", "fld")


@dataclass(frozen=True)
class AlignSettings:
    """Stage-1 switches and budgets (already scaled by the profile).

    ``epsilon`` is the task's ε (``TrainingDefaults.epsilon``, or the searched ``align.epsilon``);
    it weights FA. ``None``: FA is not ε-weighted (the reference code).
    """

    fa_loss: str = "w1"                  # w1 | sinkhorn_div | otdd | none
    fld: str = "tgt_given_src"           # tgt_given_src | src_given_tgt | none
    combine: str = "sequential"          # sequential | joint
    epsilon: float | None = None         # FA weight (paper eq. 14); None: unweighted (the code)
    fa_steps: int = 60
    fld_epochs: int = 4
    lr: float = 1e-4                     # embedder lr (FA; and FLD in joint mode)
    fld_lr: float = 1e-4                 # FLD lr in sequential mode (fixed 1e-4 in the code)
    fa_batch: int = 128                  # target samples per FA step (ORCA: per cluster)
    fld_batch: int = 28                  # samples per FLD step (the code's label_maxsamples)
    #: "full": H over the whole training set (detached joint of earlier batches + the live batch);
    #: "batch": over the step's batch alone (the code's per-chunk estimate)
    fld_estimator: str = "full"
    fa_reg: float = 0.1                  # entropic regularisation of the OT solvers
    n_classes: int = 10                  # k-means classes of the regression targets
    train_source_head: bool = False      # the code trains the head during FLD (spec §5.2)
    token_mode: str = "draws"            # 1D dense FLD: tokens as draws (paper) or per token (code)
    reference_schedule: bool = False     # FA StepLR [20,40,60]×0.2 and m/N_b scaling
    schedule_scale: float = 1.0          # the profile's FA scale: StepLR milestones are × this
    fa_stop_thr: float | None = 1e-4     # Sinkhorn stopping threshold (marginal error: L1 with the
                                         # torch solver, POT's L2 with "pot"), all FA
    fa_iters: int | None = None          # final-stage Sinkhorn iterations (None: the loss default)
    ot_solver: str = "torch"             # entropic OT solver of the FA losses: torch | pot
    otdd_per_cluster: bool = True        # ORCA's Σ_k w_k OTDD(S, T_k); False: one OTDD per batch
    target_loss: str = "nrmse"           # probe: task loss logged during stage 1 ("none": off)
    probe_size: int = 32                 # samples of the start/end probes (0: no probes)

    def __post_init__(self):
        if self.combine not in COMBINES:
            raise ValueError(f"combine must be one of {COMBINES}, got {self.combine!r}")
        if self.fld_estimator not in FLD_ESTIMATORS:
            raise ValueError(f"fld_estimator must be one of {FLD_ESTIMATORS}, "
                             f"got {self.fld_estimator!r}")
        if self.epsilon is not None and not self.epsilon > 0:
            raise ValueError(f"epsilon must be positive or None, got {self.epsilon!r}")

    @property
    def fld_batching(self) -> str:
        """``per_class`` chunks for H(Y_s | Y_t) (spec §5.2); H(Y_t | Y_s) vanishes on a
        single-class chunk, so that direction uses shuffled mixed-class batches."""
        return "per_class" if self.fld == "src_given_tgt" else "mixed"


@dataclass(frozen=True)
class TermPlan:
    """One loss term of a phase: evaluated ``count`` times, spread evenly over the phase's steps,
    multiplied by ``weight`` in the step's loss."""

    name: str
    weight: float
    count: int


@dataclass(frozen=True)
class PhasePlan:
    """Optimizer steps sharing one optimizer: its lr, schedule, trainable parts and terms."""

    name: str
    steps: int
    lr: float
    optimizer: str
    weight_decay: float
    terms: tuple[TermPlan, ...]
    milestones: tuple[int, ...] = ()     # lr × 0.2 at each of these steps (the code's StepLR)
    train_source_head: bool = False

    def term(self, name: str) -> TermPlan | None:
        return next((t for t in self.terms if t.name == name), None)

    def positions(self, name: str) -> dict[int, int]:
        """Step -> evaluation index of term ``name`` in this phase."""
        t = self.term(name)
        return spread(t.count, self.steps) if t is not None else {}


@dataclass(frozen=True)
class Stage1Plan:
    """Everything stage 1 will do: the settings of its terms and the phases of steps."""

    settings: AlignSettings
    phases: tuple[PhasePlan, ...]

    @property
    def terms(self) -> set[str]:
        return {t.name for p in self.phases for t in p.terms}

    @property
    def active(self) -> bool:
        return bool(self.phases)

    @property
    def needs_labels(self) -> bool:
        """Whether a term uses the k-means classes of the targets (FLD, ORCA's OTDD)."""
        return "fld" in self.terms or ("fa" in self.terms and self.settings.fa_loss == "otdd")

    def without(self, *names: str) -> "Stage1Plan":
        """The same plan with terms ``names`` removed; phases left without a term are dropped."""
        unknown = set(names) - set(TERMS)
        if unknown:
            raise ValueError(f"unknown stage-1 term(s) {sorted(unknown)}; terms: {TERMS}")
        phases = []
        for p in self.phases:
            kept = tuple(t for t in p.terms if t.name not in names)
            if kept:
                phases.append(replace(p, terms=kept))
        return replace(self, phases=tuple(phases))

    def canonical(self) -> "Stage1Plan":
        """The plan up to what the optimizers cannot see.

        The settings the phases already encode (budgets, lrs, ε, schedule) and those of absent
        terms are reset. In a phase with a single term, its weight becomes 1: Adam/AdamW are
        invariant to the scale of the loss (exactly for AdamW; for Adam up to its L2 weight
        decay, which the tasks keep at 1e-5–1e-3), and under SGD the weight is a factor on the
        lr, so it is folded into the lr; without a schedule, its steps become its evaluations (a
        step without a term is skipped). Two plans with equal canonical forms train the same
        way; a knob that changes only these is inert.
        """
        terms = self.terms
        neutral = {k: getattr(_NEUTRAL, k) for k in _PHASE_FIELDS}
        if "fa" not in terms:
            neutral.update({k: getattr(_NEUTRAL, k) for k in _FA_FIELDS})
        if "fld" not in terms:
            neutral.update({k: getattr(_NEUTRAL, k) for k in _FLD_FIELDS})
        if not self.needs_labels:
            neutral["n_classes"] = _NEUTRAL.n_classes
        phases = []
        for p in self.phases:
            if len(p.terms) == 1:
                t = p.terms[0]
                lr = p.lr * t.weight if p.optimizer == "sgd" else p.lr
                steps = p.steps if p.milestones else t.count
                p = replace(p, lr=lr, steps=steps, terms=(replace(t, weight=1.0),))
            phases.append(p)
        return replace(self, settings=replace(self.settings, **neutral), phases=tuple(phases))


_NEUTRAL = AlignSettings()
#: settings fully encoded in the phases (steps, lrs, weights, milestones)
_PHASE_FIELDS = ("combine", "epsilon", "fa_steps", "fld_epochs", "lr", "fld_lr",
                 "reference_schedule", "schedule_scale", "train_source_head")
_FA_FIELDS = ("fa_loss", "fa_batch", "fa_reg", "fa_stop_thr", "fa_iters", "ot_solver",
              "otdd_per_cluster")
_FLD_FIELDS = ("fld", "fld_batch", "fld_estimator", "token_mode")


def spread(n_events: int, total: int) -> dict[int, int]:
    """``n_events`` events spread evenly over ``total`` steps: step -> event index."""
    if n_events <= 0:
        return {}
    return {(i * total) // n_events: i for i in range(n_events)}


def fld_batch_count(s: AlignSettings, n_train: int,
                    class_sizes: Sequence[int] | None = None) -> int:
    """FLD batches per epoch: shuffled mixed batches of ``fld_batch`` whose small leftover
    (< max(2, fld_batch / 2)) joins no batch, or per class chunks of ``fld_batch`` with the same
    rule unless the chunk is the whole class (spec §5.2)."""
    b = s.fld_batch
    small = max(2, b // 2)
    if s.fld_batching == "mixed":
        full, rem = divmod(n_train, b)
        return full + (1 if rem and (rem >= small or full == 0) else 0)
    if class_sizes is None:
        raise ValueError("per-class FLD batching needs the class sizes")
    count = 0
    for n_k in class_sizes:
        full, rem = divmod(int(n_k), b)
        count += full + (1 if rem and (rem >= small or full == 0) else 0)
    return count


def plan_stage1(s: AlignSettings, optimizer: str, weight_decay: float, n_train: int,
                class_sizes: Sequence[int] | None = None) -> Stage1Plan:
    """The plan of ``s`` on a training set of ``n_train`` samples (module docstring)."""
    use_fa = s.fa_loss != "none" and s.fa_steps > 0
    use_fld = s.fld != "none" and s.fld_epochs > 0
    n_fa = s.fa_steps if use_fa else 0
    n_fld = s.fld_epochs * fld_batch_count(s, n_train, class_sizes) if use_fld else 0
    eps = 1.0 if s.epsilon is None else float(s.epsilon)
    phases: list[PhasePlan] = []
    if s.combine == "joint":
        total = max(n_fa, n_fld)
        terms = []
        if n_fa:
            terms.append(TermPlan("fa", eps * total / n_fa, n_fa))
        if n_fld:
            terms.append(TermPlan("fld", total / n_fld, n_fld))
        if terms:
            phases.append(PhasePlan("joint", total, s.lr, optimizer, weight_decay, tuple(terms),
                                    train_source_head=s.train_source_head))
        return Stage1Plan(s, tuple(phases))
    if n_fa:
        # RECRAFT's code scales FA by m / #batches (spec §3.2; only matters under SGD); ORCA
        # weights its per-cluster terms by w_k instead (spec §8.2)
        scale = (min(s.fa_batch, n_train) / max(1, math.ceil(n_train / 4))
                 if s.reference_schedule and s.fa_loss != "otdd" else 1.0)
        phases.append(PhasePlan("fa", n_fa, s.lr, optimizer, weight_decay,
                                (TermPlan("fa", eps * scale, n_fa),),
                                milestones=(reference_milestones(s.schedule_scale)
                                            if s.reference_schedule else ())))
    if n_fld:
        phases.append(PhasePlan("fld", n_fld, s.fld_lr, optimizer, weight_decay,
                                (TermPlan("fld", 1.0, n_fld),),
                                train_source_head=s.train_source_head))
    return Stage1Plan(s, tuple(phases))
