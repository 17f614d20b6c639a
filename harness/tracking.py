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
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import re
import shlex
import socket
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, TypeVar
from urllib.parse import urlparse

import pandas as pd
import yaml
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunTag, ViewType
from mlflow.exceptions import MlflowException

from harness.store_uri import sqlite_file

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

_log = logging.getLogger(__name__)

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

T = TypeVar("T")


class ParamChangedWarning(UserWarning):
    """A param was logged again with a different value; it went to a ``param_changed.*`` tag."""


class RunRef(NamedTuple):
    """What :meth:`Tracker.find_or_create` returns: ``run_id, reopened = tracker.find_or_create(...)``."""

    run_id: str
    reopened: bool


# --- retries ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retry of transient tracking errors.

    Attempt ``n`` (1-based) that fails transiently sleeps ``uniform(0, min(max_delay_s,
    base_delay_s * 2**(n-1)))`` and tries again, up to ``attempts`` tries in all, and no new try
    starts once ``deadline_s`` has passed since the first one. Defaults: 6 tries, waits of at most
    0.2, 0.4, 0.8, 1.6, 3.2 s, 60 s deadline.
    """

    attempts: int = 6
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    deadline_s: float = 60.0


_TRANSIENT_CODES = frozenset({
    "TEMPORARILY_UNAVAILABLE",
    "SERVICE_UNDER_MAINTENANCE",
    "WORKSPACE_TEMPORARILY_UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "REQUEST_LIMIT_EXCEEDED",
    "RESOURCE_EXHAUSTED",
    "COULD_NOT_ACQUIRE_LOCK",
    "ABORTED",
})
_TRANSIENT_PATTERNS = re.compile(
    r"database is locked|database table is locked|max retries exceeded|connection refused"
    r"|connection reset|connection aborted|remote end closed|remotedisconnected|broken pipe"
    r"|timed out|timeout exception|temporarily unavailable|too many \d+ error responses"
    r"|bad gateway|service unavailable|gateway time-?out|error code 5\d\d",
    re.IGNORECASE,
)


def _is_transient(exc: BaseException, remote: bool = False) -> bool:
    """True for errors worth retrying (locks, 5xx, connection trouble); False for the rest."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    try:  # requests is an mlflow dependency, but keep the check optional
        import requests

        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return True
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, MlflowException):
        if exc.error_code in _TRANSIENT_CODES:
            return True
        if remote:  # a 500/502/503/504 answer from the server (MLflow maps it to an error code)
            try:
                if exc.get_http_status_code() in (500, 502, 503, 504):
                    return True
            except Exception:  # noqa: BLE001 - defensive
                pass
        if exc.error_code != "INTERNAL_ERROR":
            return False  # a definite answer (bad value, not found, ...): the message is data
    return bool(_TRANSIENT_PATTERNS.search(str(exc)))


def _retry(
    call: Callable[..., T],
    *args: Any,
    policy: RetryPolicy = RetryPolicy(),
    remote: bool = False,
    what: str = "",
    on_retry: Callable[[], T | None] | None = None,
    **kwargs: Any,
) -> T:
    """Call ``call(*args, **kwargs)``, retrying transient errors under ``policy``.

    ``on_retry`` (optional) runs before each new try; if it returns something other than None, that
    value is returned instead of calling again (used to make a retried create idempotent).
    """
    start = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return call(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - classified below
            if not _is_transient(exc, remote=remote):
                raise
            elapsed = time.monotonic() - start
            if attempt >= policy.attempts or elapsed >= policy.deadline_s:
                _log.warning("tracking: %s failed after %d tries (%.1f s): %s",
                             what or getattr(call, "__name__", "call"), attempt, elapsed, exc)
                raise
            delay = random.uniform(0.0, min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1)))
            _log.info("tracking: transient error in %s (try %d/%d), retrying in %.2f s: %s",
                      what or getattr(call, "__name__", "call"), attempt, policy.attempts, delay, exc)
            time.sleep(delay)
        if on_retry is not None:
            found = on_retry()
            if found is not None:
                return found


# --- helpers ----------------------------------------------------------------------------------
def default_tracking_uri(base_dir: str | os.PathLike) -> str:
    """``sqlite:///<abs base_dir>/mlflow.db`` (creating ``base_dir``).

    A :class:`Tracker` on this URI puts artifacts under ``<base_dir>/mlartifacts``.
    """
    base = Path(base_dir).expanduser().resolve()
    base.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{base / 'mlflow.db'}"


def _is_remote(tracking_uri: str) -> bool:
    return urlparse(tracking_uri).scheme in ("http", "https")


def _check_store_uri(tracking_uri: str) -> None:
    scheme = urlparse(tracking_uri).scheme
    looks_like_path = scheme == "" and ("/" in tracking_uri or os.sep in tracking_uri
                                        or tracking_uri.startswith("."))
    if (scheme == "file" or looks_like_path) \
            and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
        raise ValueError(
            f"tracking URI {tracking_uri!r} is a plain file store, which MLflow 3.17 refuses; "
            "use a database, e.g. harness.tracking.default_tracking_uri(base_dir) -> sqlite:///..."
        )


def _artifact_location(root: str | os.PathLike) -> str:
    s = str(root)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", s) and not re.match(r"^[A-Za-z]:[\\/]", s):
        return s  # already a URI (file:, s3:, mlflow-artifacts:, ...)
    p = Path(s).expanduser().resolve()
    p.mkdir(parents=True, exist_ok=True)
    return p.as_uri()


def _safe_segment(name: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", name).strip("._") or "experiment"


_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


def _clean_key(key: Any) -> str:
    """A key MLflow accepts: allowed characters only, no empty/./.. path parts, <= 250 chars."""
    k = _BAD_KEY_CHARS.sub("_", str(key))
    parts = [p for p in k.split("/") if p not in ("", ".", "..")]
    k = "/".join(parts) or "_"
    return k[:MAX_KEY_LEN]


def _to_plain(obj: Any) -> Any:
    """Convert a config to plain YAML/JSON types (dicts, lists, str, int, float, bool, None)."""
    if isinstance(obj, Mapping):
        return {str(k): _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [_to_plain(v) for v in items]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    item = getattr(obj, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return _to_plain(item())
        except Exception:  # noqa: BLE001 - not a scalar (e.g. an array)
            pass
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return _to_plain(tolist())
    return str(obj)


def flatten(config: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """``{"align": {"epsilon": 0.1}}`` -> ``{"align.epsilon": 0.1}``. Non-dict leaves are kept
    as they are; an empty dict becomes one ``{}`` leaf."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key, sep))
        else:
            out[key] = v
    return out


def _param_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    plain = _to_plain(value)
    if isinstance(plain, (list, dict)):
        return json.dumps(plain, sort_keys=False, default=str)
    return str(plain)


def _content_hash(obj: Any, length: int = 12) -> str:
    blob = json.dumps(_to_plain(obj), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _metric_value(v: Any) -> float | None:
    """A float for MLflow, NaN for any non-finite number, None for something that is not a number."""
    if not isinstance(v, (bool, int, float)):
        item = getattr(v, "item", None)  # numpy / torch scalars (and one-element arrays)
        if not callable(item):
            return None
        try:
            v = item()
        except Exception:  # noqa: BLE001 - an array with more than one element
            return None
        if not isinstance(v, (bool, int, float)):
            return None
    f = float(v)
    return f if math.isfinite(f) else math.nan


def _filter_quote(value: str) -> str:
    """Quote a string for an MLflow search filter (MLflow's parser has no escapes)."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"run key {value!r} contains both quote characters; MLflow cannot search for it")


def ui_command(tracking_uri: str, port: int = 5000, host: str = "127.0.0.1") -> str:
    """The command line that opens the MLflow UI on this store, in its low-memory form
    (2 processes, ~0.5 GB, instead of ~16 processes and ~3 GB).

    For a remote ``http(s)://`` tracking server there is nothing to start: the server is the UI,
    and its URL is returned.
    """
    if _is_remote(tracking_uri):
        return tracking_uri
    return (
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow ui "
        f"--backend-store-uri {shlex.quote(tracking_uri)} --workers 1 "
        f"--host {shlex.quote(host)} --port {int(port)}"
    )


# --- the tracker ------------------------------------------------------------------------------
def _rebuild_tracker(tracking_uri: str, experiment: str, artifact_root: str | None,
                     retry: RetryPolicy) -> "Tracker":
    return Tracker(tracking_uri, experiment, artifact_root, retry=retry)


class Tracker:
    """The harness's MLflow writer for one experiment (suite). Thread-safe; picklable.

    Args:
        tracking_uri: ``sqlite:///...`` (see :func:`default_tracking_uri`) or ``http(s)://host:port``.
        experiment: experiment name, one per suite (e.g. ``"pdebench"``); created if missing.
        artifact_root: where the experiment's artifacts go, used only when the experiment is
            created. Default: ``<sqlite db folder>/mlartifacts/<experiment>`` for a sqlite store,
            the server's default for a remote one.
        retry: the :class:`RetryPolicy` for every client call.

    Make the first Tracker on a new sqlite store in the driver, before workers start: creating an
    MLflow database runs its schema migrations, which must not race between processes.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        artifact_root: str | os.PathLike | None = None,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        _check_store_uri(tracking_uri)
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment
        self._artifact_root_arg = None if artifact_root is None else str(artifact_root)
        self.retry_policy = retry or RetryPolicy()
        self.remote = _is_remote(tracking_uri)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}"
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.experiment_id = self._ensure_experiment()

    def __reduce__(self):
        return (_rebuild_tracker, (self.tracking_uri, self.experiment_name,
                                   self._artifact_root_arg, self.retry_policy))

    def __repr__(self) -> str:
        return (f"Tracker(tracking_uri={self.tracking_uri!r}, experiment={self.experiment_name!r}, "
                f"experiment_id={self.experiment_id!r})")

    # .. plumbing ..............................................................................
    def _call(self, fn: Callable[..., T], *args: Any, what: str = "", **kwargs: Any) -> T:
        return _retry(fn, *args, policy=self.retry_policy, remote=self.remote,
                      what=what or getattr(fn, "__name__", ""), **kwargs)

    def _wanted_artifact_location(self) -> str | None:
        if self._artifact_root_arg is not None:
            return _artifact_location(self._artifact_root_arg)
        db = sqlite_file(self.tracking_uri)
        if db is not None:
            return _artifact_location(db.parent / "mlartifacts" / _safe_segment(self.experiment_name))
        return None

    def _ensure_experiment(self) -> str:
        exp = self._call(self.client.get_experiment_by_name, self.experiment_name)
        wanted = self._wanted_artifact_location()
        if exp is None:
            try:
                exp_id = self._call(self.client.create_experiment, self.experiment_name,
                                    artifact_location=wanted,
                                    tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
                return exp_id
            except MlflowException:
                exp = self._call(self.client.get_experiment_by_name, self.experiment_name)
                if exp is None:
                    raise
        if exp.lifecycle_stage == "deleted":
            warnings.warn(f"MLflow experiment {self.experiment_name!r} was deleted; restoring it",
                          stacklevel=3)
            self._call(self.client.restore_experiment, exp.experiment_id)
        if wanted is not None and self._artifact_root_arg is not None \
                and exp.artifact_location.rstrip("/") != wanted.rstrip("/"):
            warnings.warn(
                f"experiment {self.experiment_name!r} already exists with artifact location "
                f"{exp.artifact_location!r}; the requested {wanted!r} is ignored", stacklevel=3)
        if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            self._call(self.client.set_experiment_tag, exp.experiment_id,
                       EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return exp.experiment_id

    @property
    def artifact_location(self) -> str:
        """The experiment's artifact location (a URI)."""
        return self._call(self.client.get_experiment, self.experiment_id).artifact_location

    def get_run(self, run_id: str) -> Run:
        return self._call(self.client.get_run, run_id)

    def _search(self, filter_string: str, view: int = ViewType.ACTIVE_ONLY) -> list[Run]:
        runs: list[Run] = []
        token = None
        while True:
            page = self._call(self.client.search_runs, [self.experiment_id],
                              filter_string=filter_string, run_view_type=view,
                              max_results=1000, order_by=["attributes.start_time ASC"],
                              page_token=token, what="search_runs")
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    # .. identity ..............................................................................
    def find(self, run_key: str, parent_id: str | None = None) -> Run | None:
        """The (oldest active) run with this ``harness.run_key`` under ``parent_id`` (None: a
        top-level run), or None."""
        runs = self._search(f"tags.`{RUN_KEY_TAG}` = {_filter_quote(run_key)}")
        runs = [r for r in runs if r.data.tags.get(PARENT_TAG) == parent_id]
        if len(runs) > 1:
            warnings.warn(f"{len(runs)} MLflow runs share run key {run_key!r} under parent "
                          f"{parent_id!r}; using the oldest, {runs[0].info.run_id}", stacklevel=3)
        return runs[0] if runs else None

    def find_or_create(
        self,
        run_key: str,
        name: str,
        *,
        parent_id: str | None = None,
        kind: str = "run",
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> RunRef:
        """Reopen the run with ``run_key`` under ``parent_id``, or create it.

        A found run (any status: RUNNING, KILLED, FAILED, FINISHED) is set to RUNNING again, its
        ``harness.reopen_count`` is incremented and ``harness.previous_status`` records what it
        was; ``tags`` are (re)applied and ``params`` logged with :meth:`log_params` rules (same
        value: fine; changed value: ``param_changed.*`` tag + warning). Returns ``(run_id, reopened)``.
        """
        _filter_quote(run_key)  # fail early on an unsearchable key
        extra = self._clean_tags(tags or {})
        existing = self.find(run_key, parent_id)
        if existing is not None:
            run_id = existing.info.run_id
            count = int(existing.data.tags.get(REOPEN_COUNT_TAG, "0") or 0) + 1
            self._call(self.client.update_run, run_id, status="RUNNING")
            self.set_tags(run_id, {**extra, REOPEN_COUNT_TAG: count,
                                   PREVIOUS_STATUS_TAG: existing.info.status, OWNER_TAG: self.owner})
            if params:
                self.log_params(run_id, params)
            return RunRef(run_id, True)

        base = {RUN_KEY_TAG: run_key, KIND_TAG: kind, OWNER_TAG: self.owner}
        if parent_id is not None:
            base[PARENT_TAG] = parent_id
        all_tags = {**extra, **base}
        first = dict(list(all_tags.items())[:MAX_PARAMS_TAGS_PER_BATCH])
        rest = {k: v for k, v in all_tags.items() if k not in first}

        def created_meanwhile() -> Run | None:
            return self.find(run_key, parent_id)

        run = _retry(self.client.create_run, self.experiment_id, tags=first, run_name=name,
                     policy=self.retry_policy, remote=self.remote, what="create_run",
                     on_retry=created_meanwhile)
        run_id = run.info.run_id
        if rest:
            self.set_tags(run_id, rest)
        if params:
            self.log_params(run_id, params)
        return RunRef(run_id, False)

    # .. the hierarchy .........................................................................
    def sweep_run(self, name: str, tags: Mapping[str, Any] | None = None,
                  params: Mapping[str, Any] | None = None, *, run_key: str | None = None) -> str:
        """The top-level run of a sweep (key default ``sweep:<name>``); reopened on resume."""
        return self.find_or_create(run_key or f"sweep:{name}", name, kind="sweep",
                                   tags=tags, params=params).run_id

    def cell_run(self, parent_id: str, task: str, method: str,
                 tags: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None,
                 *, run_key: str | None = None) -> str:
        """The (task, method) group under a sweep, named ``"<task>/<method>"`` (key default
        ``cell:<task>/<method>``, unique under its parent); reopened on resume."""
        all_tags = {"harness.task": task, "harness.method": method, **(tags or {})}
        return self.find_or_create(run_key or f"cell:{task}/{method}", f"{task}/{method}",
                                   parent_id=parent_id, kind="cell", tags=all_tags,
                                   params=params).run_id

    def trial_run(self, parent_id: str, name: str, config: Mapping[str, Any],
                  tags: Mapping[str, Any] | None = None, *, run_key: str | None = None,
                  config_artifact: bool = True) -> str:
        """One search trial or final seed under a cell. ``config`` is logged as flat params and
        (``config_artifact``) as ``config.yaml``. Key default: ``trial:<name>:<hash of config>``."""
        key = run_key or f"trial:{name}:{_content_hash(config)}"
        run_id = self.find_or_create(key, name, parent_id=parent_id, kind="trial",
                                     tags=tags, params=config).run_id
        if config_artifact:
            self.log_config_artifact(run_id, config)
        return run_id

    # .. logging ...............................................................................
    def _clean_tags(self, tags: Mapping[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in tags.items():
            if v is None:
                continue
            key = str(k) if str(k).startswith("mlflow.") else _clean_key(k)
            out[key] = _param_str(v)[:MAX_TAG_VALUE_LEN]
        return out

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set tags (stringified, keys sanitised, values cut to 8000 chars; None values skipped)."""
        items = [RunTag(k, v) for k, v in self._clean_tags(tags).items()]
        for chunk in _chunks(items, MAX_PARAMS_TAGS_PER_BATCH):
            self._call(self.client.log_batch, run_id, tags=chunk, what="log_batch(tags)")

    def log_params(self, run_id: str, config: Mapping[str, Any]) -> list[str]:
        """Log ``config`` as flat, stage-qualified params; returns the keys whose value changed.

        Rules: nested dicts flattened with dots; values stringified (lists/dicts as JSON) and cut
        to 6000 chars (tag ``param_truncated.<key>`` = original length); keys sanitised to MLflow's
        alphabet; batches of <= 100. A param already logged with the same value is skipped; one
        with a different value is not re-logged (MLflow forbids it) but recorded as tag
        ``param_changed.<key>`` = new value, with a :class:`ParamChangedWarning`.
        """
        values: dict[str, str] = {}
        truncated: dict[str, int] = {}
        for k, v in flatten(config).items():
            key = _clean_key(k)
            s = _param_str(v)
            if len(s) > MAX_PARAM_VALUE_LEN:
                truncated[key] = len(s)
                s = s[:MAX_PARAM_VALUE_LEN]
            if key in values and values[key] != s:
                warnings.warn(f"params {k!r} and another key both map to {key!r}; keeping the first",
                              ParamChangedWarning, stacklevel=2)
                continue
            values.setdefault(key, s)
        if not values:
            return []
        for attempt in (1, 2):
            existing = self.get_run(run_id).data.params
            new = [Param(k, v) for k, v in values.items() if k not in existing]
            changed = {k: v for k, v in values.items() if k in existing and existing[k] != v}
            try:
                for chunk in _chunks(new, MAX_PARAMS_TAGS_PER_BATCH):
                    self._call(self.client.log_batch, run_id, params=chunk, what="log_batch(params)")
                break
            except MlflowException as exc:
                # another writer logged one of these keys in between: recompute once
                if attempt == 2 or exc.error_code != "INVALID_PARAMETER_VALUE":
                    raise
        tags: dict[str, Any] = {f"{PARAM_TRUNCATED_PREFIX}{k}": n for k, n in truncated.items()}
        for k, v in changed.items():
            warnings.warn(f"run {run_id}: param {k!r} was {existing[k][:200]!r}, now {v[:200]!r}; "
                          f"MLflow params are immutable, recorded as tag {PARAM_CHANGED_PREFIX}{k}",
                          ParamChangedWarning, stacklevel=2)
            tags[f"{PARAM_CHANGED_PREFIX}{k}"] = v
        if tags:
            self.set_tags(run_id, tags)
        return sorted(changed)

    def log_metrics(self, run_id: str, metrics: Mapping[str, Any], step: int,
                    timestamp_ms: int | None = None) -> int:
        """Log one step (epoch) of metrics in batches; returns how many values were logged.

        Nested dicts flatten with dots. Non-finite numbers (NaN, +-inf) are logged as NaN; values
        that are not numbers are skipped with a warning.
        """
        ts = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
        batch: list[Metric] = []
        for k, v in flatten(metrics).items():
            f = _metric_value(v)
            if f is None:
                warnings.warn(f"metric {k!r}={v!r} is not a number; skipped", stacklevel=2)
                continue
            batch.append(Metric(_clean_key(k), f, ts, int(step)))
        for chunk in _chunks(batch, MAX_METRICS_PER_BATCH):
            self._call(self.client.log_batch, run_id, metrics=chunk, what="log_batch(metrics)")
        return len(batch)

    def log_config_artifact(self, run_id: str, config: Mapping[str, Any],
                            name: str = "config.yaml", artifact_path: str | None = None) -> None:
        """Store the full (unflattened, untruncated) config as a YAML artifact."""
        text = yaml.safe_dump(_to_plain(config), sort_keys=False, default_flow_style=False,
                              allow_unicode=True)
        with tempfile.TemporaryDirectory(prefix="harness-cfg-") as d:
            p = Path(d) / name
            p.write_text(text, encoding="utf-8")
            self._call(self.client.log_artifact, run_id, str(p), artifact_path, what="log_artifact")

    def log_file(self, run_id: str, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        self._call(self.client.log_artifact, run_id, os.fspath(path), artifact_path, what="log_artifact")

    def log_dir(self, run_id: str, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        self._call(self.client.log_artifacts, run_id, os.fspath(path), artifact_path, what="log_artifacts")

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        """End a run as FINISHED, FAILED or KILLED."""
        status = status.upper()
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {FINAL_STATUSES}, not {status!r}")
        self._call(self.client.set_terminated, run_id, status=status)

    # .. stale runs ............................................................................
    def mark_stale_running(self, parent_id: str, exclude: Iterable[str] = ()) -> list[str]:
        """Set every RUNNING descendant of ``parent_id`` (at any depth; not the parent itself) to
        KILLED with tag ``harness.stale=1``, and return their ids.

        Runs in ``exclude`` and runs (re)opened by this very process (``harness.owner``) are left
        alone. A killed run is reopened later by :meth:`find_or_create` when the resumed sweep gets
        to it. Call this when a sweep starts, before any trial runs: a run owned by another live
        process (a Ray worker of *this* sweep) would be marked too.
        """
        skip = set(exclude)
        running = self._search("attributes.status = 'RUNNING'")
        parent_of: dict[str, str | None] = {r.info.run_id: r.data.tags.get(PARENT_TAG) for r in running}

        def ancestors(run_id: str) -> Iterator[str]:
            seen = set()
            cur = parent_of.get(run_id)
            while cur and cur not in seen:
                seen.add(cur)
                yield cur
                if cur not in parent_of:
                    try:
                        parent_of[cur] = self.get_run(cur).data.tags.get(PARENT_TAG)
                    except MlflowException:
                        parent_of[cur] = None
                cur = parent_of[cur]

        killed = []
        for r in running:
            rid = r.info.run_id
            if rid == parent_id or rid in skip or r.data.tags.get(OWNER_TAG) == self.owner:
                continue
            if parent_id in ancestors(rid):
                self.set_tags(rid, {STALE_TAG: "1"})
                self.finish(rid, "KILLED")
                killed.append(rid)
        return killed


# --- reading back -----------------------------------------------------------------------------
TREE_COLUMNS = ["run_id", "parent_id", "depth", "name", "status", "kind", "run_key", "task",
                "method", "phase", "seed", "reopen_count", "start_time", "end_time"]


def runs_tree(tracking_uri: str, experiment: str) -> pd.DataFrame:
    """Every active run of ``experiment`` in tree order (parents before their children, siblings by
    start time), one row each: ``run_id, parent_id, depth, name, status, kind, run_key, task,
    method, phase, seed, reopen_count, start_time, end_time``. Empty if the experiment is missing."""
    client = MlflowClient(tracking_uri=tracking_uri)
    remote = _is_remote(tracking_uri)
    exp = _retry(client.get_experiment_by_name, experiment, remote=remote)
    if exp is None:
        return pd.DataFrame(columns=TREE_COLUMNS)
    runs: list[Run] = []
    token = None
    while True:
        page = _retry(client.search_runs, [exp.experiment_id], run_view_type=ViewType.ACTIVE_ONLY,
                      max_results=1000, order_by=["attributes.start_time ASC"], page_token=token,
                      remote=remote)
        runs.extend(page)
        token = page.token
        if not token:
            break
    rows = {}
    children: dict[str | None, list[str]] = {}
    for r in runs:
        t = r.data.tags
        pid = t.get(PARENT_TAG)
        rows[r.info.run_id] = {
            "run_id": r.info.run_id, "parent_id": pid, "name": r.info.run_name,
            "status": r.info.status, "kind": t.get(KIND_TAG), "run_key": t.get(RUN_KEY_TAG),
            "task": t.get("harness.task"), "method": t.get("harness.method"),
            "phase": t.get("harness.phase"), "seed": t.get("harness.seed"),
            "reopen_count": int(t.get(REOPEN_COUNT_TAG, "0") or 0),
            "start_time": pd.to_datetime(r.info.start_time, unit="ms") if r.info.start_time else pd.NaT,
            "end_time": pd.to_datetime(r.info.end_time, unit="ms") if r.info.end_time else pd.NaT,
        }
        children.setdefault(pid, []).append(r.info.run_id)
    ordered: list[dict] = []
    visited: set[str] = set()

    def walk(rid: str, depth: int) -> None:
        if rid in visited:
            return
        visited.add(rid)
        ordered.append({**rows[rid], "depth": depth})
        for c in children.get(rid, []):
            walk(c, depth + 1)

    roots = [rid for rid, row in rows.items() if row["parent_id"] not in rows]
    for rid in roots:
        walk(rid, 0)
    for rid in rows:  # a cycle of parent tags cannot happen via the Tracker, but be total
        walk(rid, 0)
    return pd.DataFrame(ordered, columns=TREE_COLUMNS)
