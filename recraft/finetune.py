"""Stage 2 of every fine-tuning method: the harness's fit routine (:mod:`harness.trial.fit`).

Kept so that older imports work: ``finetune`` is :func:`harness.trial.fit.fit`,
``FinetuneSettings`` is :class:`~harness.trial.fit.FitSettings` and ``FinetuneResult`` is
:class:`~harness.trial.fit.FitResult`. A method's stage calls ``ctx.fit`` instead.
"""
from __future__ import annotations

from harness.trial.fit import FitResult, FitSettings, fit

__all__ = ["FinetuneResult", "FinetuneSettings", "finetune"]

FinetuneSettings = FitSettings
FinetuneResult = FitResult
finetune = fit
