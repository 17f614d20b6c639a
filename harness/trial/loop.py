"""The trial: one method, one task, one config — written once, run three ways.

:func:`trial_body` is the training loop. It follows Ray Train's per-worker contract through a
:class:`~harness.trial.session.Session`, so it runs unchanged

* in-process (:func:`run_local`, no Ray: the plain entry point and tests),
* as a single-worker Ray Tune function trainable (:func:`tune_trainable`, the light path), and
* on every worker of a Ray Train ``TorchTrainer``, data-parallel, through a
  :class:`~harness.trial.session.TrainSession` (see :func:`harness.engine.trainables.make_trainable`).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping

import math

from harness.keys import SEED_KEY
from harness.trial.context import CellSpec, Diverged, TrialContext, seed_everything
from harness.trial.session import LocalSession, Session, TuneSession

if TYPE_CHECKING:
    from harness.methods.contract import Method
    from harness.suites.base import TaskData


def split_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """(method config, seed) from a trial config that may carry :data:`SEED_KEY`."""
    cfg = dict(config)
    seed = int(cfg.pop(SEED_KEY, 0))
    return cfg, seed


def run_method(ctx: TrialContext, config: Mapping[str, Any]) -> dict[str, Any]:
    """Run the method's stages in order; returns the merged stage outputs."""
    method = ctx.method
    method.check_config(ctx.task, config)
    upstream: dict[str, Any] = {}
    for stage in method.stages:
        fn = method.stage_callable(stage)
        t0 = time.perf_counter()
        ctx.current_stage = (stage.name, t0)
        out = fn(ctx, dict(config), upstream) or {}
        ctx.stage_seconds[stage.name] = time.perf_counter() - t0
        ctx.current_stage = None
        upstream.update(out)
    return upstream


def trial_body(session: Session, cell: CellSpec, method: "Method", data: "TaskData",
               config: Mapping[str, Any]) -> dict[str, Any]:
    """The training loop of one trial (every runtime calls this)."""
    from harness.suites import get_suite

    method_config, seed = split_config(config)
    seed_everything(seed)   # same on every rank: identical stage 1, DDP shards differ by rank
    task = get_suite(cell.suite)[cell.task]
    ctx = TrialContext(task=task, data=data, profile=cell.profile, method=method, seed=seed,
                       phase=cell.phase, session=session, cell=cell)
    try:
        out = run_method(ctx, method_config)
        out["status"] = "ok"
    except Diverged as exc:
        # a diverged trial ends normally (no retry) with the worst value, flagged for the results
        worst = math.inf if task.metric.direction == "min" else -math.inf
        session.report({ctx.metric_key: worst, "diverged": 1.0, "epoch": len(ctx.history) + 1})
        out = {"status": "diverged", "error": f"Diverged: {exc}", "metrics": {}}
    out.setdefault("history", ctx.history)
    out.setdefault("cache_events", ctx.cache_events)
    out.setdefault("stage_seconds", ctx.stage_seconds)
    return out


def run_local(cell: CellSpec, method: "Method", data: "TaskData", config: Mapping[str, Any],
              on_report=None) -> dict[str, Any]:
    """Run one trial in this process, without Ray."""
    return trial_body(LocalSession(on_report), cell, method, data, config)


# ------------------------------------------------------------------ Ray Tune, single worker
def tune_trainable(config: dict, cell: CellSpec = None, method: "Method" = None,
                   data: "TaskData" = None) -> None:
    """Ray Tune function trainable (wrap with ``tune.with_parameters``)."""
    import torch

    torch.set_num_threads(max(1, int(cell.cpus_per_trial)))
    trial_body(TuneSession(), cell, method, data, config)
