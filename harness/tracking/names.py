"""Tag names, MLflow's limits and the small types the tracker uses."""
from __future__ import annotations

import uuid
from typing import NamedTuple

# --- names -------------------------------------------------------------------------------------
RUN_KEY_TAG = "harness.run_key"
KIND_TAG = "harness.kind"                      # sweep | cell | trial (or caller's own)
OWNER_TAG = "harness.owner"                    # host:pid:token of the process that (re)opened it
REOPEN_COUNT_TAG = "harness.reopen_count"
PREVIOUS_STATUS_TAG = "harness.previous_status"
STALE_TAG = "harness.stale"
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
PARAM_CHANGED_PREFIX = "param_changed."
PARAM_TRUNCATED_PREFIX = "param_truncated."

# --- MLflow limits (mlflow.utils.validation, 3.17) --------------------------------------------
MAX_PARAM_VALUE_LEN = 6000
MAX_TAG_VALUE_LEN = 8000
MAX_KEY_LEN = 250
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000

FINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")

# One token per process: runs (re)opened by this process carry it in ``harness.owner``.
_PROCESS_TOKEN = uuid.uuid4().hex[:8]


class ParamChangedWarning(UserWarning):
    """A param was logged again with a different value; it went to a ``param_changed.*`` tag."""


class RunRef(NamedTuple):
    """What :meth:`Tracker.find_or_create` returns: ``run_id, reopened = tracker.find_or_create(...)``."""

    run_id: str
    reopened: bool
