"""Training helpers of the stages: the harness's (:mod:`harness.trial.training`, re-exported so the
stage-1 code and older imports keep working) and stage 1's reference schedule.

A baseline imports the shared helpers from :mod:`harness.trial.training` (or, better, lets
``ctx.fit`` train it), not from here.
"""
from __future__ import annotations

from harness.trial.training import (OPTIMIZERS, batches, evaluate, evaluate_models,  # noqa: F401
                                    make_optimizer, to_tensor, trainable, warmup_linear)

__all__ = ["OPTIMIZERS", "batches", "evaluate", "evaluate_models", "make_optimizer",
           "reference_milestones", "to_tensor", "trainable", "warmup_linear"]


def reference_milestones(scale: float) -> tuple[int, ...]:
    """The reference code's StepLR milestones [20, 40, 60] in steps of a run scaled by ``scale``
    (strictly increasing, at least 1)."""
    out: list[int] = []
    for m in (20, 40, 60):
        v = max(1, round(m * scale))
        out.append(max(v, out[-1] + 1) if out else v)
    return tuple(out)
