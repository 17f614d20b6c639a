"""FLD-only ablation: RECRAFT's FLD (with the ε-recalibrated source head) without FA."""
from __future__ import annotations

from search_spaces.common import (around, embedder_lr, epsilon_param, finetune_defaults,
                                  finetune_space, fld_epochs_param, nearest_epsilon)


def space(task):
    return {"align.epsilon": epsilon_param(), "align.fld_epochs": fld_epochs_param(),
            "align.lr": around(embedder_lr(task)), **finetune_space(task)}


def defaults(task):
    return {"align.epsilon": nearest_epsilon(task.defaults.epsilon),
            "align.fld_epochs": task.defaults.fld_epochs, "align.lr": embedder_lr(task),
            **finetune_defaults(task)}
