"""What every field-to-field specialist baseline declares alike: no pretrained body, the specialist
search space, dense-regression tasks only, and named runs only (not in the default sweep)."""
from __future__ import annotations

from harness.methods.contract import Method, Stage
from search_spaces.common import specialist_defaults, specialist_space


class FieldSpecialist(Method):
    """Base of ``fno`` and ``unet``: a subclass adds its name, paper, sizes and ``stage_finetune``
    (build the net, wrap it in :class:`~specialists.fields.FieldModel`, ``ctx.fit`` it)."""

    uses_body = False
    in_default_sweep = False     # its CPU cells cost more than the default run's budget allows
    stages = (Stage("finetune", ("finetune.lr", "finetune.weight_decay")),)

    def search_space(self, task):
        return specialist_space(task)

    def defaults(self, task):
        return specialist_defaults(task)

    def supports(self, task):
        if task.kind != "dense_regression":
            return False, f"needs a field target (dense regression), not {task.kind}"
        return True, ""
