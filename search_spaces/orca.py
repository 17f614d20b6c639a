"""ORCA: alignment steps (its 60 "embedder epochs"), embedder lr, shared fine-tuning."""
from __future__ import annotations

from search_spaces.common import around, embedder_lr, fa_steps_param, finetune_defaults, finetune_space


def space(task):
    return {"align.fa_steps": fa_steps_param(), "align.lr": around(embedder_lr(task)),
            **finetune_space(task)}


def defaults(task):
    return {"align.fa_steps": task.defaults.fa_epochs, "align.lr": embedder_lr(task),
            **finetune_defaults(task)}
