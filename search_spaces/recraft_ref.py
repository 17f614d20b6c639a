"""RECRAFT as the released code runs it: no ε knob (τ = 0.4 is hard-coded, 2D only), FA steps,
FLD epochs, embedder lr and the shared fine-tuning parameters."""
from __future__ import annotations

from search_spaces.common import finetune_defaults, finetune_space, stage1_defaults, stage1_space

KNOBS = dict(fa_steps=True, fld_epochs=True, lr=True)


def space(task):
    return {**stage1_space(task, **KNOBS), **finetune_space(task)}


def defaults(task):
    return {**stage1_defaults(task, **KNOBS), **finetune_defaults(task)}
