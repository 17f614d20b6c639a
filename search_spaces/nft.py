"""Naive fine-tuning: only the shared fine-tuning parameters."""
from __future__ import annotations

from search_spaces.common import finetune_defaults, finetune_space


def space(task):
    return finetune_space(task)


def defaults(task):
    return finetune_defaults(task)
