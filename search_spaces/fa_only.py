"""FA-only ablation: RECRAFT's FA phase without FLD. ε is not searched: it only scales FA, the
one term left (inert under Adam, a factor on the searched lr under SGD), and no source head is
used."""
from __future__ import annotations

from search_spaces.common import finetune_defaults, finetune_space, stage1_defaults, stage1_space

KNOBS = dict(fa_steps=True, lr=True)


def space(task):
    return {**stage1_space(task, **KNOBS), **finetune_space(task)}


def defaults(task):
    return {**stage1_defaults(task, **KNOBS), **finetune_defaults(task)}
