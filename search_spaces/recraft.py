"""RECRAFT (paper formulation) and its ablations that keep both stages: ε, FA steps, FLD epochs,
embedder lr, plus the shared fine-tuning parameters."""
from __future__ import annotations

from search_spaces.common import (embedder_lr, epsilon_param, fa_steps_param, finetune_defaults,
                                  finetune_space, fld_epochs_param, around, nearest_epsilon)


def space(task):
    return {"align.epsilon": epsilon_param(), "align.fa_steps": fa_steps_param(),
            "align.fld_epochs": fld_epochs_param(), "align.lr": around(embedder_lr(task)),
            **finetune_space(task)}


def defaults(task):
    return {"align.epsilon": nearest_epsilon(task.defaults.epsilon),
            "align.fa_steps": task.defaults.fa_epochs, "align.fld_epochs": task.defaults.fld_epochs,
            "align.lr": embedder_lr(task), **finetune_defaults(task)}
