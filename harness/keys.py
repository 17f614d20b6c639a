"""Names that the engine, the trials, the results and MLflow share: config keys, phases and tags.

A trial's config is the method's own parameters plus the harness's keys below; the engine adds
them, the trial strips them (:func:`method_config`). Result columns are :data:`harness.results.COLUMNS`.
This module imports nothing, so every layer (even a trial running without Ray) can use it.
"""
from __future__ import annotations

from typing import Any, Mapping

#: the cell ("task/method") a trial belongs to
CELL_KEY = "harness.cell"
#: :data:`SEARCH` (validation) or :data:`FINAL` (a seeded run that also reads the test split)
PHASE_KEY = "harness.phase"
#: the trial's seed
SEED_KEY = "harness.seed"
#: the harness's keys in a trial config (everything else is the method's)
HARNESS_KEYS = (CELL_KEY, PHASE_KEY, SEED_KEY)
#: where a Ray Train ``TorchTrainer`` trial nests its Tune config
TRAIN_LOOP_KEY = "train_loop_config"

SEARCH = "search"
FINAL = "final"

#: MLflow tags are ``harness.<field>``; the cell tags repeat these result columns
TAG_PREFIX = "harness."
CELL_TAG_FIELDS = ("suite", "task", "method", "task_version", "method_version", "data_source",
                   "backbone", "role", "profile")
STATUS_TAG = "harness.status"
ERROR_TAG = "harness.error"
ATTEMPT_TAG = "harness.attempt"
CONFIG_HASH_TAG = "harness.config_hash"
TRIAL_ID_TAG = "harness.trial_id"
PHASE_TAG = "harness.phase"
SEED_TAG = "harness.seed"


def tag(field: str) -> str:
    """The MLflow tag of a harness field, e.g. ``tag("task") == "harness.task"``."""
    return TAG_PREFIX + field


def unwrap(config: Mapping[str, Any]) -> dict[str, Any]:
    """The flat trial config (TorchTrainer trials nest it under :data:`TRAIN_LOOP_KEY`)."""
    return dict(config.get(TRAIN_LOOP_KEY, config))


def method_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial config without the harness's own keys."""
    return {k: v for k, v in unwrap(config).items() if k not in HARNESS_KEYS}
