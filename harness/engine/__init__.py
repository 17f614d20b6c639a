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

from harness.engine.callback import SweepCallback, trial_error_text
from harness.engine.plan import CellPlan, cell_content_key, cell_description, config_hash, done_marker
from harness.engine.registry import (REGISTRY_ACTOR, DataRegistry, FinalDataLoader, data_registry,
                                     fetch, register)
from harness.engine.rows import TrialRecord, row_meta
from harness.engine.run import run_cells
from harness.engine.scheduler import CellScheduler
from harness.engine.searcher import CellSearcher, make_sampler
from harness.engine.trainables import make_trainable
from harness.keys import CELL_KEY, HARNESS_KEYS, PHASE_KEY, method_config, unwrap

__all__ = [
    "CELL_KEY", "HARNESS_KEYS", "PHASE_KEY", "REGISTRY_ACTOR", "CellPlan", "CellScheduler",
    "CellSearcher", "DataRegistry", "FinalDataLoader", "SweepCallback", "TrialRecord",
    "cell_content_key", "cell_description", "config_hash", "data_registry", "done_marker", "fetch",
    "make_sampler", "make_trainable", "method_config", "register", "row_meta", "run_cells",
    "trial_error_text", "unwrap",
]
