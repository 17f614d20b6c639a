"""The sweep engine: every (task, method) search of a sweep inside ONE Ray Tune experiment.

Each cell keeps its own Optuna TPE study (seeded, paper defaults first) and its own ASHA
scheduler, so each cell is an independent search with the same budget and grace period; but all
cells share one Tuner, one trial-actor pool and one experiment checkpoint. One module per job:

* :mod:`~harness.engine.plan` — :class:`CellPlan` (what a cell searches) and the content keys
  that decide whether a finished cell runs again (:func:`cell_content_key`, :func:`done_marker`);
* :mod:`~harness.engine.registry` — the tasks' data in Ray's object store, named in one actor;
* :mod:`~harness.engine.trainables` — the function Tune runs per trial (light or data-parallel);
* :mod:`~harness.engine.study` and :mod:`~harness.engine.searcher` — :class:`CellSearcher`
  multiplexes the cells' Optuna studies (round-robin, preferably one trial in flight per cell),
  groups a two-stage method's trials by stage-1 configuration (``stage_reuse``) and, once a
  cell's search is over, queues its final runs: the selected configuration with N seeds;
* :mod:`~harness.engine.scheduler` — :class:`CellScheduler` routes each search trial to its
  cell's ASHA and never stops final runs;
* :mod:`~harness.engine.callback` and :mod:`~harness.engine.rows` — :class:`SweepCallback`
  mirrors trials into MLflow, keeps the live progress matrix, and writes a cell's rows (then its
  done marker) when its last final run ends;
* :mod:`~harness.engine.run` — :func:`run_cells`, a new or restored experiment.

Because trial actors are reused across cells (``reuse_actors``), a trial's fixed cost is a
config reset on a warm process instead of a new process that imports torch, transformers and POT
— the largest cost of short trials on a small machine.
"""
from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it. Imported on first use (PEP 562), so that
#: ``harness.engine.plan`` and the sweep's planning do not pay for importing Ray Tune.
_EXPORTS = {
    "CELL_KEY": "harness.keys", "HARNESS_KEYS": "harness.keys", "PHASE_KEY": "harness.keys",
    "method_config": "harness.keys", "unwrap": "harness.keys",
    "CellPlan": "harness.engine.plan", "cell_content_key": "harness.engine.plan",
    "cell_description": "harness.engine.plan", "config_hash": "harness.engine.plan",
    "done_marker": "harness.engine.plan",
    "REGISTRY_ACTOR": "harness.engine.registry", "DataRegistry": "harness.engine.registry",
    "FinalDataLoader": "harness.engine.registry", "data_registry": "harness.engine.registry",
    "fetch": "harness.engine.registry", "register": "harness.engine.registry",
    "TrialRecord": "harness.engine.rows", "row_meta": "harness.engine.rows",
    "SweepCallback": "harness.engine.callback", "trial_error_text": "harness.engine.callback",
    "CellScheduler": "harness.engine.scheduler",
    "CellSearcher": "harness.engine.searcher", "make_sampler": "harness.engine.searcher",
    "make_trainable": "harness.engine.trainables",
    "run_cells": "harness.engine.run",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'harness.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
