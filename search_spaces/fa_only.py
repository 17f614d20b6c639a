"""FA-only ablation: RECRAFT's ε-weighted FA without FLD."""
from __future__ import annotations

from search_spaces.common import (around, embedder_lr, epsilon_param, fa_steps_param,
                                  finetune_defaults, finetune_space, nearest_epsilon)


def space(task):
    return {"align.epsilon": epsilon_param(), "align.fa_steps": fa_steps_param(),
            "align.lr": around(embedder_lr(task)), **finetune_space(task)}


def defaults(task):
    return {"align.epsilon": nearest_epsilon(task.defaults.epsilon),
            "align.fa_steps": task.defaults.fa_epochs, "align.lr": embedder_lr(task),
            **finetune_defaults(task)}
