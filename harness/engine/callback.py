"""The sweep's Tune callback: MLflow mirroring, live progress, and each cell's rows when it ends."""
from __future__ import annotations

import errno
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from ray.tune import Callback

from harness.engine.checkpoints import prune_trial_checkpoints
from harness.engine.plan import CellPlan, config_hash, done_marker
from harness.engine.rows import TrialRecord, cell_rows, cell_summary, write_marker
from harness.engine.watchdog import TIMEOUT_STATUS, active_watchdog
from harness.keys import (CELL_KEY, CONFIG_HASH_TAG, ERROR_TAG, FINAL, PHASE_KEY, PHASE_TAG,
                          SEARCH, SEED_KEY, SEED_TAG, STATUS_TAG, TRIAL_ID_TAG, method_config,
                          unwrap)
from harness.results import append_rows

#: the callback Tune set up last in this process (see :func:`active_callback`)
_ACTIVE: list["SweepCallback"] = []


def active_callback() -> "SweepCallback | None":
    """The SweepCallback of the experiment this process ran last.

    After ``Tuner.restore`` Tune runs the callback it unpickled from the experiment, not the one
    the caller built; Tune calls :meth:`SweepCallback.setup` on it (public callback API), which
    records it here.
    """
    return _ACTIVE[-1] if _ACTIVE else None


def forget_active_callback() -> None:
    """Forget the recorded callback (before an experiment starts, and once it is read)."""
    _ACTIVE.clear()


def _numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    skip = {"training_iteration", "timestamp", "time_this_iter_s", "time_total_s", "pid",
            "time_since_restore", "iterations_since_restore", "epoch", "done", "reported_at"}
    return {k: float(v) for k, v in metrics.items()
            if not isinstance(v, bool) and isinstance(v, (int, float)) and k not in skip}


def cell_run_key(task: str, method: str, attempt: int = 1) -> str:
    """The MLflow run key of a cell's run; a retried cell gets its own run (``#<attempt>``)."""
    return f"cell:{task}/{method}" + (f"#{attempt}" if attempt > 1 else "")


def trial_run_key(cell: str, phase: str, config_hash_: str, seed: int) -> str:
    """The MLflow run key of a search trial (one per configuration) or a final seed."""
    if phase == FINAL:
        return f"trial:{cell}:final:{config_hash_}:{seed}"
    return f"trial:{cell}:search:{config_hash_}"


def trial_error_text(trial) -> str:
    """The end of a failed trial's error (from its error.txt), for the results table."""
    path = getattr(trial, "error_file", None)
    try:
        if path and Path(path).exists():
            text = Path(path).read_text(errors="replace").strip()
            lines = [ln for ln in text.splitlines() if ln.strip()]
            # the last line is the exception; keep a little traceback context before it
            return "\n".join(lines[-6:])[-4000:]
    except OSError:
        pass
    return str(getattr(trial, "error_msg", None) or "the trial raised (no error file found)")[-4000:]


class SweepCallback(Callback):
    """MLflow mirroring, live progress and the cell's rows, from Tune's trial events."""

    def __init__(self, plans: list[CellPlan], meta: Mapping[str, dict], results_dir: str,
                 tracker=None, sweep_run_id: str | None = None,
                 progress: Callable[[dict], None] | None = None, print_every: float = 5.0):
        self.plans = {p.key: p for p in plans}
        self.meta = meta                    # cell key -> static row fields (task version, ...)
        self.results_dir = results_dir
        self.tracker, self.sweep_run_id = tracker, sweep_run_id
        self.progress, self.print_every = progress, print_every
        self.records: dict[str, TrialRecord] = {}
        self.cell_runs: dict[str, str] = {}
        self.cell_state: dict[str, dict] = {k: {"state": "queued", "best": None} for k in self.plans}
        self.written: set[str] = set()
        self.searcher = None                # the CellSearcher, set by run_cells (same process)
        self.freed_bytes = 0                # trial checkpoints removed (harness.engine.checkpoints)
        self.disk_full: OSError | None = None   # ENOSPC met: the experiment stops at the next step
        self._trials: dict[str, Any] = {}   # trial id -> Tune trial whose checkpoint is kept
        self._last_print = 0.0
        self._dirty = True

    def __getstate__(self):
        # Tune pickles its callbacks with the experiment: live Trial objects stay out of it
        return dict(self.__dict__, _trials={})

    def _prune(self, trial) -> None:
        self._trials.pop(trial.trial_id, None)
        self.freed_bytes += prune_trial_checkpoints(trial)

    def setup(self, **info):
        _ACTIVE[:] = [self]

    # -- helpers
    def _record(self, trial) -> TrialRecord:
        rec = self.records.get(trial.trial_id)
        if rec is None:
            cfg = unwrap(trial.config or {})
            rec = TrialRecord(trial.trial_id, cfg[CELL_KEY], cfg[PHASE_KEY], int(cfg.get(SEED_KEY, 0)),
                              method_config(cfg))
            self.records[trial.trial_id] = rec
        return rec

    def _cell_run(self, key: str) -> str | None:
        if self.tracker is None or not self.sweep_run_id:
            return None
        if key not in self.cell_runs:
            m = self.meta[key]
            # a retried cell gets its own MLflow run (the failed attempt's run stays as it was)
            run = self.tracker.cell_run(self.sweep_run_id, m["task"], m["method"], tags=m["tags"],
                                        run_key=cell_run_key(m["task"], m["method"],
                                                             m.get("attempt", 1)))
            if run is None:         # tracking is down (a GuardedTracker): try again next time
                return None
            self.cell_runs[key] = run
        return self.cell_runs[key]

    def _open_run(self, rec: TrialRecord) -> None:
        parent = self._cell_run(rec.cell)
        if parent is None or rec.run_id is not None:
            return
        h = config_hash(rec.config)
        tags = dict(self.meta[rec.cell]["tags"], **{PHASE_TAG: rec.phase, CONFIG_HASH_TAG: h,
                                                    TRIAL_ID_TAG: rec.trial_id})
        key = trial_run_key(rec.cell, rec.phase, h, rec.seed)
        if rec.phase == FINAL:
            name = f"final-seed-{rec.seed}"
            tags[SEED_TAG] = str(rec.seed)
        else:
            name = f"trial-{rec.trial_id}"
        rec.run_id = self.tracker.trial_run(parent, name, rec.config, tags, run_key=key)

    def _improve(self, rec: TrialRecord, value: float, epoch: int | None = None) -> None:
        """Track a trial's best value and its epoch (the first epoch that reached it, as the fit
        selects), and its cell's best search value (for the progress view)."""
        plan = self.plans[rec.cell]
        if math.isnan(rec.best) or plan.better(value, rec.best):
            rec.best = float(value)
            rec.best_epoch = epoch
        if rec.phase == SEARCH:
            cs = self.cell_state[rec.cell]
            if plan.better(value, cs["best"]):
                cs["best"] = float(value)
                self._dirty = True

    # -- Tune events
    def on_step_begin(self, iteration, trials, **info):
        if getattr(self, "_synced", False):
            return
        self._synced = True
        # after Tuner.restore this callback comes back as it was pickled when the experiment
        # started: rebuild the records of trials that ended before the interruption
        for trial in trials:
            if trial.trial_id in self.records or not trial.config:
                continue
            cfg = unwrap(trial.config)
            if CELL_KEY not in cfg or cfg[CELL_KEY] not in self.plans:
                continue
            self._rebuild(trial)
        if self.searcher is not None:
            for key, st in self.searcher.state.items():
                if st.get("searched") and st.get("best_config") is not None \
                        and key not in self.written:
                    self.cell_state[key]["state"] = "final"

    def _rebuild(self, trial) -> None:
        rec = self._record(trial)
        rec.last = dict(trial.last_result or {})
        rec.epochs = int(rec.last.get("training_iteration", 0) or 0)
        plan = self.plans[rec.cell]
        try:
            stats = trial.metric_analysis.get(plan.metric) or {}
        except AttributeError:
            stats = {}
        best = stats.get("min" if plan.mode == "min" else "max")
        if best is None:
            best = rec.last.get(plan.metric, math.nan)
        rec.best = float(best) if best is not None else math.nan
        if trial.status == "TERMINATED":
            self._end(trial, "ok")
        elif trial.status == "ERROR":
            self._end(trial, "failed", "the trial raised before the sweep was interrupted")

    def on_trial_start(self, iteration, trials, trial, **info):
        rec = self._record(trial)
        rec.started = time.time()
        watchdog = active_watchdog()
        if watchdog is not None:
            watchdog.started_trial(trial.trial_id)
        self._open_run(rec)
        self.cell_state[rec.cell]["state"] = "final" if rec.phase == FINAL else "running"
        self._dirty = True

    def on_trial_result(self, iteration, trials, trial, result, **info):
        rec = self._record(trial)
        watchdog = active_watchdog()
        if watchdog is not None:
            watchdog.reported_trial(trial.trial_id)
        self._open_run(rec)
        rec.last = dict(result)
        rec.epochs = int(result.get("training_iteration", rec.epochs) or rec.epochs)
        v = result.get(self.plans[rec.cell].metric)
        if v is not None and not result.get("diverged") and math.isfinite(v):
            epoch = result.get("epoch", rec.epochs)
            self._improve(rec, v, int(epoch) if isinstance(epoch, (int, float)) else rec.epochs)
        if self.tracker is not None and rec.run_id:
            step = int(result.get("epoch", rec.epochs) or rec.epochs)
            self.tracker.log_metrics(rec.run_id, _numeric(result), step=step)

    def _end(self, trial, status: str, error: str | None = None) -> None:
        rec = self._record(trial)
        plan = self.plans[rec.cell]
        watchdog = active_watchdog()
        if watchdog is not None:
            watchdog.ended_trial(trial.trial_id)
        if watchdog is not None and trial.trial_id in watchdog.expired:
            # stopped by the per-trial limit: not a crash of the method, and not retried
            status, error = TIMEOUT_STATUS, watchdog.expired[trial.trial_id]
        elif rec.last.get("diverged"):
            status, error = "diverged", "the trial's loss or metric became non-finite or exploded"
        elif status == "ok" and rec.phase == SEARCH and rec.epochs < plan.max_t:
            status = "stopped"          # early-stopped by ASHA: a valid, shorter trial
        rec.status, rec.error, rec.wall = status, error, time.time() - rec.started
        cs = self.cell_state[rec.cell]      # for the progress view's remaining-time estimate
        cs["finished_trials"] = cs.get("finished_trials", 0) + 1
        # the results table first: whatever MLflow does next, the cell's rows are written
        self._maybe_finish_cell(rec.cell)
        self._dirty = True
        if self.tracker is not None and rec.run_id:
            self.tracker.set_tags(rec.run_id, {STATUS_TAG: status,
                                               **({ERROR_TAG: error[:5000]} if error else {})})
            self.tracker.finish(rec.run_id, "FINISHED" if status in ("ok", "stopped") else "FAILED")
        if status == "failed" and rec.cell not in self.written:
            self._trials[trial.trial_id] = trial   # a resume restarts it from its checkpoint
        else:
            self._prune(trial)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._end(trial, "ok")

    def on_trial_error(self, iteration, trials, trial, **info):
        error = trial_error_text(trial)
        if "[Errno 28]" in error or "No space left on device" in error:
            # not the trial's fault: stop the sweep (its cell stays unfinished, a rerun after
            # freeing space resumes the trial from its checkpoint) instead of a failed row
            self.disk_full = self.disk_full or OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self._trials[trial.trial_id] = trial
            return
        self._end(trial, "failed", error)

    def on_step_end(self, iteration, trials, **info):
        if self.disk_full is not None:
            # raised here, not in a trial event: Tune would take it for the trial's own error
            raise self.disk_full
        watchdog = active_watchdog()
        if watchdog is not None:
            watchdog.check({t.trial_id: (rec.cell, rec.phase if rec.phase == SEARCH
                                         else f"final seed {rec.seed}")
                            for t in trials if t.status == "RUNNING"
                            for rec in [self.records.get(t.trial_id)] if rec is not None})
        now = time.time()
        if self.progress is not None and self._dirty and now - self._last_print >= self.print_every:
            self.progress(self.cell_state)
            self._last_print, self._dirty = now, False

    def on_experiment_end(self, trials, **info):
        if self.progress is not None:
            self.progress(self.cell_state)

    # -- cells
    def _maybe_finish_cell(self, key: str) -> None:
        if key not in self.written and \
                done_marker(self.results_dir, key, self.meta[key].get("content", "")).exists():
            # finished before a resume: its rows are already in the table
            self.written.add(key)
            self.cell_state[key]["state"] = "done"
        if key in self.written:
            # a trial of a finished cell that ran at an interruption is rerun by the restore
            # (Tune restores at trial granularity): its result is not written again, and the cell
            # run it reopened is closed again
            run = self.cell_runs.get(key)
            if self.tracker is not None and run and not any(
                    r.status == "running" for r in self.records.values() if r.cell == key):
                self.tracker.finish(run, "FINISHED")
            return
        plan = self.plans[key]
        recs = [r for r in self.records.values() if r.cell == key]
        search = [r for r in recs if r.phase == SEARCH and r.status != "running"]
        finals = [r for r in recs if r.phase == FINAL and r.status != "running"]
        if len(search) < plan.num_samples:
            return
        scored = [r for r in search if r.status in ("ok", "stopped") and math.isfinite(r.best)]
        if scored and len(finals) < plan.seeds:
            return
        self.write_cell(key, search, finals, selected=bool(scored))

    def write_cell(self, key: str, search: list[TrialRecord], finals: list[TrialRecord],
                   selected: bool) -> None:
        """Append the cell's rows, then write its done marker and close its MLflow run."""
        m, plan = self.meta[key], self.plans[key]
        now = datetime.now(timezone.utc).isoformat()
        rows = cell_rows(m["row"], plan, search, finals, selected, now)
        searcher_state = self.searcher.state.get(key, {}) if self.searcher is not None else {}
        summary = cell_summary(key, plan, search, finals, searcher_state.get("search_finished_at"))
        part = None
        try:
            part = append_rows(self.results_dir, rows, tag=key.replace("/", "__"))
            # the marker names its rows: a rerun finds a cell whose part went missing unfinished
            summary.update(rows=len(rows), part=part.name if part is not None else None)
            write_marker(done_marker(self.results_dir, key, m.get("content", "")), summary)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            if part is not None:        # rows and marker both or neither: no duplicate on resume
                part.unlink(missing_ok=True)
            self.disk_full = self.disk_full or exc
            return
        self.written.add(key)
        for trial_id, trial in list(self._trials.items()):
            if self.records.get(trial_id) is not None and self.records[trial_id].cell == key:
                self._prune(trial)
        state = "done" if summary["finals_ok"] else "failed"
        self.cell_state[key]["state"] = state
        run = self.cell_runs.get(key)
        if self.tracker is not None and run:
            self.tracker.set_tags(run, {STATUS_TAG: state})
            self.tracker.finish(run, "FINISHED" if summary["finals_ok"] else "FAILED")
