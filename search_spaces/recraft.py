"""RECRAFT (paper formulation): ε (the recalibration level and FA's weight), FA steps and their
learning rate, FLD epochs (at the code's fixed FLD lr in the sequential default), plus the shared
fine-tuning parameters."""
from __future__ import annotations

from search_spaces.common import finetune_defaults, finetune_space, stage1_defaults, stage1_space

KNOBS = dict(epsilon=True, fa_steps=True, fld_epochs=True, lr=True)


def space(task):
    return {**stage1_space(task, **KNOBS), **finetune_space(task)}


def defaults(task):
    return {**stage1_defaults(task, **KNOBS), **finetune_defaults(task)}
