"""MLflow tracking for sweeps: the harness owns the run hierarchy.

One experiment per suite (e.g. ``pdebench``), tagged ``mlflow.experimentKind=custom_model_development``
so the MLflow UI opens on its model-training view. Inside it:

    sweep run                      kind=sweep   name = sweep name
      cell run (task, method)      kind=cell    name = "advection/recraft"
        trial run (search trial    kind=trial   name = caller's (Tune trial id, "seed-0", ...)
                   or final seed)

Nesting is the ``mlflow.parentRunId`` tag, which is what the UI nests on.

Design
------
* **Explicit client, no global state.** Every call goes through one ``mlflow.MlflowClient`` owned by
  the :class:`Tracker`; nothing touches ``mlflow.start_run``'s active-run stack. A Tracker can be
  used from several threads at once, and it pickles as ``(tracking_uri, experiment, artifact_root)``
  so a Ray worker rebuilds its own client from the URI.
* **Identity and resume.** Each run carries a ``harness.run_key`` tag: a content key chosen by the
  caller (sweep name + task + method + config hash + seed, ...). :meth:`Tracker.find_or_create`
  looks the key up under the given parent and *reopens* the run it finds (status back to RUNNING,
  ``harness.reopen_count`` incremented) instead of creating a duplicate. Keys need only be unique
  under their parent. Two processes that race to create the *same* key at the same instant can
  still both create it; the harness gives each key a single owner so this should not happen, and
  if it does, the lookup returns the oldest of the runs and warns.
* **Stale runs.** A killed driver leaves its runs RUNNING. :meth:`Tracker.mark_stale_running` sets
  every RUNNING descendant of a parent to **KILLED** (tag ``harness.stale=1``) so the UI tells the
  truth; when the resumed sweep reaches one of them again, ``find_or_create`` reopens it (KILLED ->
  RUNNING) and it continues in the same run. So: mark_stale_running *kills*, find_or_create *reopens*.
  Call ``mark_stale_running`` once when a sweep (re)starts, right after reopening the sweep run and
  before any trial starts; runs this process itself has (re)opened are never touched.
* **Params.** Nested configs are flattened with dots (``align.epsilon``, ``finetune.lr``),
  stringified and truncated to MLflow's 6000-character limit (tag ``param_truncated.<key>`` holds
  the original length), and sent in batches of <= 100. On reopen the same value is skipped; a
  *different* value does not raise (MLflow forbids changing a param): it is recorded as a tag
  ``param_changed.<key>`` (the new value) and a :class:`ParamChangedWarning` is issued. The full
  config is also stored as a YAML artifact, which is the lossless record.
* **Metrics.** Logged per step (epoch) through ``log_batch`` (<= 1000 per batch). Nested dicts are
  flattened like params. Numbers (bool, int, float, numpy / torch scalars) are logged as floats.
  **Non-finite values (NaN, +inf, -inf) are all logged as NaN**, consistently on every store, so a
  diverged trial keeps one point per step and is visible in the plot where it diverged. Values that
  are not numbers (strings, None, arrays) are skipped with a warning.
* **Retries.** Every client call goes through :func:`_retry`: bounded attempts with exponential
  backoff and full jitter, and an overall deadline (see :class:`RetryPolicy`). Only transient errors
  are retried: sqlite "database is locked" (MLflow's sqlite sessions already wait 20 s on a lock
  before that surfaces), MLflow ``TEMPORARILY_UNAVAILABLE``-like error codes,
  HTTP 5xx from a remote server, connection errors and timeouts. Anything else (a bad request, a
  changed param) is raised at once. Creating a run is not idempotent, so a retried create first
  looks its key up, in case the failed attempt actually committed. Note that MLflow's HTTP client
  already retries 5xx / connection errors itself (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, default 7,
  with backoff, up to minutes); this wrapper sits on top, and its deadline stops it from
  multiplying that wait. ``MlflowClient.set_terminated`` prints a "View run" link per run on an
  HTTP store; set ``MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT=true`` to silence it.
* **Storage.** MLflow 3.17 refuses a plain file store, so :func:`default_tracking_uri` gives a
  sqlite database; artifacts go under ``<base_dir>/mlartifacts/<experiment>`` (set as the
  experiment's artifact location, so nothing lands in the CWD's ``./mlruns``). With a remote
  ``http(s)://`` server and no ``artifact_root``, the server's default (proxied) artifact store is
  used, which needs no shared filesystem.

Modules: :mod:`~harness.tracking.tracker` (the :class:`Tracker`), :mod:`~harness.tracking.retry`,
:mod:`~harness.tracking.store` (URIs, artifact location, UI command), :mod:`~harness.tracking.values`
(params, keys, metric values), :mod:`~harness.tracking.names` (tags, limits) and
:mod:`~harness.tracking.tree` (reading the hierarchy back).
"""
from __future__ import annotations

from harness.tracking.names import (EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, KIND_TAG, PARENT_TAG,
                                    RUN_KEY_TAG, ParamChangedWarning, RunRef)
from harness.tracking.retry import RetryPolicy, _is_transient, _retry
from harness.tracking.store import default_tracking_uri, ui_command
from harness.tracking.tracker import Tracker, _rebuild_tracker
from harness.tracking.tree import runs_tree
from harness.tracking.values import flatten

__all__ = [
    "EXPERIMENT_KIND",
    "EXPERIMENT_KIND_TAG",
    "KIND_TAG",
    "PARENT_TAG",
    "RUN_KEY_TAG",
    "ParamChangedWarning",
    "RetryPolicy",
    "RunRef",
    "Tracker",
    "default_tracking_uri",
    "flatten",
    "runs_tree",
    "ui_command",
]
# for tests and for Trackers pickled before the split (they name harness.tracking._rebuild_tracker)
_PRIVATE_REEXPORTS = (_is_transient, _retry, _rebuild_tracker)
