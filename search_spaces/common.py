"""Pieces shared by the method spaces: fine-tuning (every method; :func:`specialist_space` for
models trained from scratch) and stage-1 alignment."""
from __future__ import annotations

from typing import Any

from harness.methods.space import MAIN_LR, Choice, Fixed, IntRange, LogFloat, Param

#: ε on a 0.1 grid over [0.1, 1.0]: the paper's range (its Fig. 5), discrete so that trials with the
#: same ε share one recalibrated source head (the stage cache).
EPSILONS = tuple(round(0.1 * i, 1) for i in range(1, 11))
LR_SPAN = 10.0   # log-uniform over [value / 10, value × 10] around a paper learning rate


def around(value: float, span: float = LR_SPAN, role: str | None = None) -> LogFloat:
    """A log-uniform range centred (in log space) on a paper value."""
    return LogFloat(value / span, value * span, role=role)


def embedder_lr(task) -> float:
    """The reference code's embedder lr: the task lr × 10 when it is ≤ 1e-3 (spec §3.3)."""
    lr = task.defaults.lr
    return lr * 10 if lr <= 1e-3 else lr


def finetune_space(task) -> dict[str, Param]:
    """Fine-tuning hyperparameters, the same for every method. ``finetune.lr`` has the role
    ``MAIN_LR``: a method that trains its final model under another key (a specialist model's own
    ``train.lr``, say) gives that key the same role and shares its common random draws."""
    return {"finetune.lr": around(task.defaults.lr, role=MAIN_LR),
            "finetune.weight_decay": Fixed(task.defaults.weight_decay)}


def finetune_defaults(task) -> dict[str, Any]:
    return {"finetune.lr": task.defaults.lr, "finetune.weight_decay": task.defaults.weight_decay}


#: the lr and weight decay the FNO and U-Net papers train with from scratch (Adam, 1e-3, 1e-4)
SPECIALIST_LR = 1e-3
SPECIALIST_WEIGHT_DECAY = 1e-4


def specialist_space(task) -> dict[str, Param]:
    """The fine-tuning keys of a method that trains its own model from scratch (``uses_body =
    False``): ``finetune.lr`` log-uniform ×/÷ 10 around its papers' 1e-3 (role ``MAIN_LR``, so its
    draws pair with the other methods' learning rates by common random numbers) and the papers'
    weight decay, fixed. The same for every task: these models have no Table 9 row."""
    return {"finetune.lr": around(SPECIALIST_LR, role=MAIN_LR),
            "finetune.weight_decay": Fixed(SPECIALIST_WEIGHT_DECAY)}


def specialist_defaults(task) -> dict[str, Any]:
    """The papers' values of :func:`specialist_space` (the first trial of a search)."""
    return {"finetune.lr": SPECIALIST_LR, "finetune.weight_decay": SPECIALIST_WEIGHT_DECAY}


def epsilon_param() -> Param:
    return Choice(EPSILONS)


def fa_steps_param() -> Param:
    return IntRange(20, 100, step=20)      # paper: 60


def fld_epochs_param() -> Param:
    return IntRange(1, 8)                  # paper: 4


def nearest_epsilon(value: float) -> float:
    return min(EPSILONS, key=lambda e: abs(e - value))


def stage1_space(task, *, epsilon: bool = False, fa_steps: bool = False, fld_epochs: bool = False,
                 lr: bool = False) -> dict[str, Param]:
    """The stage-1 knobs a method searches. Search only the knobs that change what the method
    does (``tests/test_ablation_plans.py`` checks that each searched knob does and each left out
    does not, e.g. ε for FA-only, whose only term it scales)."""
    out: dict[str, Param] = {}
    if epsilon:
        out["align.epsilon"] = epsilon_param()
    if fa_steps:
        out["align.fa_steps"] = fa_steps_param()
    if fld_epochs:
        out["align.fld_epochs"] = fld_epochs_param()
    if lr:
        out["align.lr"] = around(embedder_lr(task))
    return out


def stage1_defaults(task, *, epsilon: bool = False, fa_steps: bool = False,
                    fld_epochs: bool = False, lr: bool = False) -> dict[str, Any]:
    """The paper's values of the knobs :func:`stage1_space` searches."""
    d = task.defaults
    out: dict[str, Any] = {}
    if epsilon:
        out["align.epsilon"] = nearest_epsilon(d.epsilon)
    if fa_steps:
        out["align.fa_steps"] = d.fa_epochs
    if fld_epochs:
        out["align.fld_epochs"] = d.fld_epochs
    if lr:
        out["align.lr"] = embedder_lr(task)
    return out
