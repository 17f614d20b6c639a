"""RECRAFT without ε-recalibration: RECRAFT's knobs except ε, which without the recalibration
only scales FA in its own phase (inert under Adam, a factor on the searched lr under SGD)."""
from __future__ import annotations

from search_spaces.common import finetune_defaults, finetune_space, stage1_defaults, stage1_space

KNOBS = dict(fa_steps=True, fld_epochs=True, lr=True)


def space(task):
    return {**stage1_space(task, **KNOBS), **finetune_space(task)}


def defaults(task):
    return {**stage1_defaults(task, **KNOBS), **finetune_defaults(task)}
