"""RECRAFT's two stages, as one import point for the method plugins and scripts.

* stage 1 — :mod:`recraft.align`: :class:`AlignSettings` → :func:`plan_stage1` → a
  :class:`Stage1Plan` that the :class:`Aligner` runs with its FA and FLD term objects
  (:func:`run_alignment` does all three);
* stage 2 — the harness's fit routine (:mod:`harness.trial.fit`, which a method's stage calls as
  ``ctx.fit``), re-exported here as :func:`finetune` with :class:`FinetuneSettings`;
* the shared training helpers (the task's optimizer, the warm-up schedule, evaluation) are in
  :mod:`harness.trial.training` (re-exported by :mod:`recraft.training`).
"""
from __future__ import annotations

from recraft.align import (AlignResult, AlignSettings, Aligner, Stage1Plan, plan_stage1,
                           run_alignment)
from recraft.finetune import FinetuneResult, FinetuneSettings, finetune

__all__ = ["AlignResult", "AlignSettings", "Aligner", "FinetuneResult", "FinetuneSettings",
           "Stage1Plan", "finetune", "plan_stage1", "run_alignment"]
