"""ORCA: alignment steps (its 60 "embedder epochs"), embedder lr, shared fine-tuning."""
from __future__ import annotations

from search_spaces.common import finetune_defaults, finetune_space, stage1_defaults, stage1_space

KNOBS = dict(fa_steps=True, lr=True)


def space(task):
    return {**stage1_space(task, **KNOBS), **finetune_space(task)}


def defaults(task):
    return {**stage1_defaults(task, **KNOBS), **finetune_defaults(task)}
