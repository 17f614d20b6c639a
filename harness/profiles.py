"""Profiles: how big a sweep is. ``quick`` fits a 2-core CPU; ``paper`` is the paper's setting.

A profile fixes what must be equal for every method (backbones, epochs, budgets, the ASHA grace
period, trials per search, seeds), so that a comparison stays fair. Method hyperparameters come
from the method's defaults and search space and keep their paper meaning (``align.fa_steps = 60``
is the paper's 60 FA steps); the profile only scales budgets, the same way for every method.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Profile:
    """Budgets and backbones of a sweep (equal for every method)."""

    name: str
    backbone_1d: str
    backbone_2d: str
    finetune_epochs: int | None      # None: the task's paper value (Table 9)
    fa_scale: float                  # FA steps run = round(config value × scale), at least 1
    fld_scale: float                 # FLD epochs run = round(config value × scale), at least 1
    max_train_samples: int | None    # cap on training samples per task (None: all)
    max_eval_samples: int | None     # cap on validation/test samples (None: all)
    source_samples: int              # proxy samples for source features / head
    source_head_epochs: int
    proxy_2d: str
    proxy_1d: str
    batch_size: int | None           # None: the task's paper value
    num_samples: int                 # trials per (task, method) search
    seeds: int                       # final runs per (task, method)
    grace_period: int                # ASHA grace period (epochs), equal for every method
    synthetic_size: str = "small"    # synthetic preset generated when no real data is found
    image_size: int | None = None    # 2D: input size of the body (None: the body's own)
    #: search trials per stage-1 configuration: a new configuration of a cached stage's
    #: parameters is followed by ``stage_reuse - 1`` trials that keep it and draw only the later
    #: stages' parameters, so they reuse its cached output (1: every trial draws everything)
    stage_reuse: int = 1
    # ---- how models are built and fine-tuned (the same for every method of a sweep) ----------
    #: standardise inputs and outputs with train statistics (``TargetModel.set_standardization``)
    standardize: bool = False
    #: the 1D dense head: the reference's parameter-free ``"pooler"`` or a zero-initialised ``"linear"``
    dense_head_1d: str = "pooler"
    #: 1D embedders: the conv's bias is drawn from U(-b, b) when b > 0 (0: the reference's zeros).
    #: Not for 2D: a 4x4 patch keeps its shape through the LayerNorm, and darcy measured worse
    #: with it (0.172 against 0.158, docs/quick-profile.md)
    embedder_bias: float = 0.0
    #: most tokens of a 1D body (caps each task's ``target_seq_len``; None: the task's value)
    max_tokens_1d: int | None = None
    #: fine-tuning optimizer for every task (None: the task's Table 9 optimizer)
    finetune_optimizer: str | None = None
    #: the fine-tuning lr that a task's paper lr maps to (None: the paper lr itself); searched
    #: learning rates are scaled by the same factor, so the space keeps its shape around it
    finetune_lr: float | None = None
    # ---- how long a trial may run (not part of the results: ``repr=False`` keeps them out of
    # the cells' content keys, so a changed limit never reruns a finished cell) ---------------
    #: per-trial wall-clock limit: ``timeout_base_s + timeout_per_epoch_s`` × fine-tuning epochs
    timeout_base_s: float = field(default=900.0, repr=False)
    timeout_per_epoch_s: float = field(default=60.0, repr=False)
    #: a running trial that has not reported for this long gets a warning (at most half its limit)
    stall_warning_s: float = field(default=300.0, repr=False)

    def trial_timeout(self, epochs: int) -> float:
        """Seconds a trial with ``epochs`` fine-tuning epochs may run before it is stopped."""
        return self.timeout_base_s + self.timeout_per_epoch_s * max(1, int(epochs))

    def fa_steps(self, configured: int) -> int:
        """FA optimizer steps actually run for a configured count (0 stays 0)."""
        return 0 if configured <= 0 else max(1, round(configured * self.fa_scale))

    def fld_epochs(self, configured: int) -> int:
        """FLD epochs actually run for a configured count (0 stays 0)."""
        return 0 if configured <= 0 else max(1, round(configured * self.fld_scale))

    def epochs(self, task_epochs: int) -> int:
        """Fine-tuning epochs: the profile's fixed budget, or the task's paper value."""
        return self.finetune_epochs or task_epochs

    def lr_factor(self, paper_lr: float) -> float:
        """Multiplier from a task's paper fine-tuning lr (and the searched values) to the lr run."""
        return 1.0 if self.finetune_lr is None else float(self.finetune_lr) / float(paper_lr)

    def target_seq_len(self, task_value: int | None) -> int | None:
        """A 1D task's token budget under this profile."""
        if self.max_tokens_1d is None:
            return task_value
        return self.max_tokens_1d if task_value is None else min(task_value, self.max_tokens_1d)

    def backbone(self, modality: str) -> str:
        return self.backbone_1d if modality == "1d" else self.backbone_2d

    def with_overrides(self, **kw: Any) -> "Profile":
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


#: How tiny random bodies are trained for a few hundred steps on a CPU (quick and smoke). The
#: paper's recipe (pretrained bodies, Table 9 learning rates of 1e-5..1e-3, 200 epochs of ~2250
#: steps, outputs starting at 0, the parameter-free 1D pooler) learns nothing in ~50 steps: see
#: docs/quick-profile.md for what was measured and why each setting is here.
CPU_RECIPE: dict[str, Any] = dict(standardize=True, dense_head_1d="linear", embedder_bias=1.0,
                                  max_tokens_1d=64, finetune_optimizer="adamw", finetune_lr=3e-3)

PROFILES: dict[str, Profile] = {
    # a laptop / 2-core CPU: tiny random-initialised bodies, 20 epochs, synthetic stand-ins
    "quick": Profile(
        name="quick", backbone_1d="roberta-tiny", backbone_2d="swin-tiny-random",
        finetune_epochs=20, fa_scale=0.15, fld_scale=0.25, max_train_samples=96, max_eval_samples=32,
        source_samples=128, source_head_epochs=3, proxy_2d="synthetic-images",
        proxy_1d="synthetic-text", batch_size=8, num_samples=2, seeds=2, grace_period=5,
        synthetic_size="small", stage_reuse=2, **CPU_RECIPE),
    # the fastest end-to-end check of the whole pipeline (tests, CI): a couple of epochs on a
    # handful of samples; the numbers mean nothing
    "smoke": Profile(
        name="smoke", backbone_1d="roberta-tiny", backbone_2d="swin-tiny-random",
        finetune_epochs=2, fa_scale=0.1, fld_scale=0.25, max_train_samples=16, max_eval_samples=8,
        source_samples=32, source_head_epochs=1, proxy_2d="synthetic-images",
        proxy_1d="synthetic-text", batch_size=8, num_samples=2, seeds=2, grace_period=1,
        synthetic_size="tiny", stage_reuse=2, timeout_base_s=600.0, stall_warning_s=120.0,
        **CPU_RECIPE),
    # the paper: RoBERTa-base / Swin-base, Table 9 epochs, 5000 proxy samples, 5 seeds
    "paper": Profile(
        name="paper", backbone_1d="roberta-base", backbone_2d="swin-base",
        finetune_epochs=None, fa_scale=1.0, fld_scale=1.0, max_train_samples=None,
        max_eval_samples=None, source_samples=5000, source_head_epochs=20, proxy_2d="cifar10",
        proxy_1d="conll2003", batch_size=None, num_samples=20, seeds=5, grace_period=20,
        synthetic_size="medium", stage_reuse=4, timeout_base_s=3600.0, timeout_per_epoch_s=900.0,
        stall_warning_s=3600.0),
}


#: Per-suite adjustments of a profile, applied by ``get_profile(name, suite=...)``: the same for
#: every method of that suite's sweeps, so comparisons stay fair. NAS-Bench-360's quick default
#: runs 10 tasks × 7 methods (PDEBench's 8) within the same 900-s budget on a 2-core CPU; its
#: trials spend most of their CPU in fine-tuning steps, so it fine-tunes for 10 epochs (the ASHA
#: grace period scaled with them) instead of 20. Measured: docs/nasbench360.md ("The quick default").
SUITE_ADJUSTMENTS: dict[tuple[str, str], dict[str, Any]] = {
    ("nasbench360", "quick"): dict(finetune_epochs=10, grace_period=3),
}


def get_profile(name: str, suite: str | None = None) -> Profile:
    """Profile ``name``, with ``suite``'s adjustments (:data:`SUITE_ADJUSTMENTS`) when given."""
    from harness.suites import did_you_mean

    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}{did_you_mean(name, PROFILES)}; "
                         f"profiles: {', '.join(PROFILES)}")
    adjust = SUITE_ADJUSTMENTS.get((suite, name)) if suite is not None else None
    return replace(PROFILES[name], **adjust) if adjust else PROFILES[name]
