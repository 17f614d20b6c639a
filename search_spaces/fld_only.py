"""FLD-only ablation: RECRAFT's FLD phase (with the ε-recalibrated source head) without FA. The
embedder lr is not searched: in the sequential default it drives only FA (FLD runs at the code's
fixed lr)."""
from __future__ import annotations

from search_spaces.common import finetune_defaults, finetune_space, stage1_defaults, stage1_space

KNOBS = dict(epsilon=True, fld_epochs=True)


def space(task):
    return {**stage1_space(task, **KNOBS), **finetune_space(task)}


def defaults(task):
    return {**stage1_defaults(task, **KNOBS), **finetune_defaults(task)}
