"""Metrics by name: the field metrics (:mod:`harness.scoring.fields`: ``nrmse``, ``rmse``,
PDEBench's per-channel forms) and the NAS-Bench-360 task metrics (:mod:`harness.scoring`).

Kept as the one lookup every caller uses; the implementations live in :mod:`harness.scoring`, so
this module depends on them and never the other way round.
"""
from __future__ import annotations

from harness.scoring.fields import (EPS, METRICS, nrmse, nrmse_per_sample, pdebench_nrmse,  # noqa: F401
                                    pdebench_rmse, rmse, rmse_per_sample)


def get_metric(name: str):
    """A metric function by name: ``nrmse``, ``rmse``, or a task metric of
    :mod:`harness.scoring` (``error_rate``, ``map_error``, ``mae8``, ... and their
    ``*_upstream`` variants), which take ``(pred, target, **aux)`` and return a float."""
    if name in METRICS:
        return METRICS[name]
    from harness import scoring

    if name in scoring.METRICS:
        return scoring.METRICS[name]
    known = [*METRICS, *scoring.METRICS]
    raise ValueError(f"unknown metric {name!r}; known: {', '.join(known)}") from None
