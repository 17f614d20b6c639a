"""The :class:`Tracker`: the sweep / cell / trial run hierarchy over one MLflow client."""
from __future__ import annotations

import os
import socket
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import yaml
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunTag, ViewType
from mlflow.exceptions import MlflowException

from harness.store_uri import sqlite_file
from harness.tracking.names import (EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, FINAL_STATUSES, KIND_TAG,
                                    MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH,
                                    MAX_PARAM_VALUE_LEN, MAX_TAG_VALUE_LEN, OWNER_TAG,
                                    PARAM_CHANGED_PREFIX, PARAM_TRUNCATED_PREFIX, PARENT_TAG,
                                    PREVIOUS_STATUS_TAG, ParamChangedWarning, REOPEN_COUNT_TAG,
                                    RUN_KEY_TAG, RunRef, STALE_TAG, _PROCESS_TOKEN)
from harness.tracking.retry import RetryPolicy, _retry
from harness.tracking.store import _artifact_location, _check_store_uri, _is_remote, _safe_segment
from harness.tracking.values import (T, _chunks, _clean_key, _content_hash, _filter_quote,
                                     _metric_value, _param_str, _to_plain, flatten)


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

    def search(self, filter_string: str) -> list[Run]:
        """The experiment's active runs matching an MLflow filter string, oldest first."""
        return self._search(filter_string)

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
        killed = []
        for r in self._running_under(parent_id):
            rid = r.info.run_id
            if rid in skip or r.data.tags.get(OWNER_TAG) == self.owner:
                continue
            self.set_tags(rid, {STALE_TAG: "1"})
            self.finish(rid, "KILLED")
            killed.append(rid)
        return killed

    def finish_all(self, parent_id: str, status: str) -> list[str]:
        """End every RUNNING run under ``parent_id`` (this process's too) and ``parent_id`` itself
        with ``status`` (FAILED, KILLED): a sweep that stops early ends each run it opened.
        Returns the ids of the descendants it ended."""
        ended = []
        for r in self._running_under(parent_id):
            self.finish(r.info.run_id, status)
            ended.append(r.info.run_id)
        self.finish(parent_id, status)
        return ended

    def _running_under(self, parent_id: str) -> list[Run]:
        """RUNNING runs with ``parent_id`` among their ancestors (at any depth; not itself)."""
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

        return [r for r in running
                if r.info.run_id != parent_id and parent_id in ancestors(r.info.run_id)]
