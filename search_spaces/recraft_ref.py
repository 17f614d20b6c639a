"""RECRAFT as the released code runs it: no ε knob (τ = 0.4 is hard-coded, 2D only), FA steps,
FLD epochs, embedder lr and the shared fine-tuning parameters."""
from __future__ import annotations

from search_spaces.common import (around, embedder_lr, fa_steps_param, finetune_defaults,
                                  finetune_space, fld_epochs_param)


def space(task):
    return {"align.fa_steps": fa_steps_param(), "align.fld_epochs": fld_epochs_param(),
            "align.lr": around(embedder_lr(task)), **finetune_space(task)}


def defaults(task):
    return {"align.fa_steps": task.defaults.fa_epochs, "align.fld_epochs": task.defaults.fld_epochs,
            "align.lr": embedder_lr(task), **finetune_defaults(task)}
