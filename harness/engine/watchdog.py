"""No trial hangs a sweep for ever: a per-trial wall-clock limit and a stall warning.

A trial that stops reporting (a hung data loader, a deadlocked collective) sends Tune no result,
so nothing that runs on results (stoppers, schedulers) can end it. The driver watches instead:

* every trial enrols its Ray actor in the named :class:`TrialWatch` actor when it starts
  (:func:`enrol_trial`, called by the trainables);
* the sweep's Tune callback calls :meth:`TrialWatchdog.check` at every step of the experiment;
  a trial that has not reported for ``stall_after`` seconds gets one warning line naming it; a
  trial running longer than its cell's limit is marked expired in :class:`TrialWatch` and its
  actors are killed with ``ray.kill`` (public Ray API). Tune sees the actor die; a retry of the
  trial finds itself expired and raises :class:`TrialTimeout` at once, so a hung trial is not run
  again, and the callback records it with status ``timeout``.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

WATCH_ACTOR = "harness-trial-watch"
TIMEOUT_STATUS = "timeout"


class TrialTimeout(RuntimeError):
    """Raised by a retry of a trial that was stopped for running past its wall-clock limit."""


class TrialWatch:
    """Named actor: trial id -> the actors running it, and the trials stopped for their limit."""

    def __init__(self):
        self.actors: dict[str, list] = {}
        self.expired: dict[str, str] = {}

    def enrol(self, trial_id: str, actor: Any) -> str | None:
        """Record one actor of ``trial_id``; returns the expiry message if it already expired."""
        if trial_id in self.expired:
            return self.expired[trial_id]
        self.actors.setdefault(trial_id, []).append(actor)
        return None

    def expire(self, trial_id: str, message: str) -> list:
        """Mark ``trial_id`` expired; returns (and forgets) its actors, for the caller to kill."""
        self.expired[trial_id] = message
        return self.actors.pop(trial_id, [])

    def forget(self, trial_id: str) -> None:
        self.actors.pop(trial_id, None)


# The creating process (the driver) keeps the owning handle: the actor lives while it does.
_WATCH: dict[str, Any] = {}


def trial_watch():
    """The :class:`TrialWatch` actor of this Ray session, created on the driver's node.

    The driver must ask first (:func:`harness.engine.run.run_cells` does): an actor dies with the
    process that created it, and a trial's actor may be the one that is killed."""
    import ray

    ctx = ray.get_runtime_context()
    job = f"{ctx.get_session_name()}/{ctx.get_job_id()}"
    if job not in _WATCH:
        _WATCH.clear()
        try:
            _WATCH[job] = ray.get_actor(WATCH_ACTOR)
        except ValueError:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = NodeAffinitySchedulingStrategy(node_id=ctx.get_node_id(), soft=False)
            _WATCH[job] = ray.remote(num_cpus=0)(TrialWatch).options(
                name=WATCH_ACTOR, get_if_exists=True, scheduling_strategy=here).remote()
    return _WATCH[job]


def enrol_trial(trial_id: str | None) -> None:
    """Called by a trial when it starts: enrol its actor, or raise if the trial was stopped for
    its limit before (a retry of a hung trial is not run again)."""
    import ray

    if not trial_id or not ray.is_initialized():
        return
    try:
        actor = ray.get_runtime_context().current_actor
    except RuntimeError:          # not in an actor (a local run): nothing to stop
        return
    try:
        expired = ray.get(trial_watch().enrol.remote(trial_id, actor))
    except (ValueError, ray.exceptions.RayActorError):
        _WATCH.clear()        # no watch (its driver is gone): run unwatched rather than fail
        return
    if expired:
        raise TrialTimeout(f"{expired} (this retry was not run)")


def parse_duration(text: str | float | None) -> float | None:
    """Seconds from ``"90"``, ``"90s"``, ``"30m"``, ``"2h"``; ``0``/``"0"``/``"none"`` -> None (no
    limit). Raises ValueError naming the value otherwise."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = str(text).strip().lower()
        if s in ("none", "off", "0"):
            return None
        scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(s[-1:], None)
        try:
            value = float(s[:-1] if scale else s) * (scale or 1.0)
        except ValueError:
            value = float("nan")
    if not value == value or value < 0:
        raise ValueError(f"--trial-timeout: expected seconds (e.g. 900, 15m, 2h; 0 for no limit), "
                         f"got {text!r}")
    return value or None


@dataclass
class TrialLimits:
    """Wall-clock limit per cell (None: no limit) and the silence that gets a stall warning."""

    timeout: dict[str, float | None] = field(default_factory=dict)    # cell key -> seconds
    stall_after: dict[str, float] = field(default_factory=dict)       # cell key -> seconds


def trial_limits(cells: Mapping[str, tuple[Any, int]], flag: float | None,
                 flag_given: bool) -> TrialLimits:
    """Each cell's limits: ``--trial-timeout`` when given, else its profile's default for its
    epochs (``cells``: cell key -> (profile, fine-tuning epochs))."""
    limits = TrialLimits()
    for key, (profile, epochs) in cells.items():
        timeout = flag if flag_given else profile.trial_timeout(epochs)
        limits.timeout[key] = timeout
        stall = profile.stall_warning_s
        limits.stall_after[key] = min(stall, timeout / 2) if timeout else stall
    return limits


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class TrialWatchdog:
    """Driver side: stall warnings and the per-trial limit (see the module docstring).

    ``warn`` prints a line (the progress view's, so it does not break its status line);
    ``stop`` ends a trial's actors (``ray.kill`` by default; tests may pass their own).
    """

    def __init__(self, limits: TrialLimits, warn: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time, every: float = 1.0,
                 stop: Callable[[str, str], None] | None = None):
        self.limits = limits
        self.warn = warn or _say
        self.clock, self.every = clock, every
        self.stop = stop or stop_trial_actors
        self.started: dict[str, float] = {}      # trial id -> start of its current run
        self.reported: dict[str, float] = {}     # trial id -> last report (or start)
        self.warned: set[str] = set()             # trials warned about in their current silence
        self.expired: dict[str, str] = {}         # trial id -> why it was stopped
        self._last_check = 0.0

    def started_trial(self, trial_id: str) -> None:
        now = self.clock()
        self.started[trial_id] = self.reported[trial_id] = now
        self.warned.discard(trial_id)

    def reported_trial(self, trial_id: str) -> None:
        self.reported[trial_id] = self.clock()
        self.warned.discard(trial_id)

    def ended_trial(self, trial_id: str) -> None:
        self.started.pop(trial_id, None)
        self.reported.pop(trial_id, None)
        self.warned.discard(trial_id)

    def check(self, running: Mapping[str, tuple[str, str]]) -> list[str]:
        """Warn about silent trials and stop those past their limit; returns the trials stopped.

        ``running``: trial id -> (cell key, a short description such as ``search`` or
        ``final seed 2``) of every trial Tune runs now.
        """
        from harness.progress import format_duration

        now = self.clock()
        if now - self._last_check < self.every:
            return []
        self._last_check = now
        stopped = []
        for tid, (cell, what) in running.items():
            if tid in self.expired or tid not in self.started:
                continue
            limit = self.limits.timeout.get(cell)
            ran, silent = now - self.started[tid], now - self.reported[tid]
            if limit is not None and ran > limit:
                why = (f"trial {tid} ({cell}, {what}) ran {format_duration(ran)}, past the "
                       f"per-trial limit of {format_duration(limit)} (--trial-timeout); it was "
                       f"stopped")
                self.expired[tid] = why
                self.warn(f"timeout: {why}")
                self.stop(tid, why)
                stopped.append(tid)
                continue
            stall = self.limits.stall_after.get(cell)
            if stall is not None and silent > stall and tid not in self.warned:
                self.warned.add(tid)
                end = (f"; it will be stopped when it has run {format_duration(limit)} "
                       f"(--trial-timeout)" if limit is not None else
                       "; no time limit is set (--trial-timeout)")
                self.warn(f"warning: trial {tid} ({cell}, {what}) has not reported for "
                          f"{format_duration(silent)} (running {format_duration(ran)}){end}")
        return stopped


def stop_trial_actors(trial_id: str, why: str) -> None:
    """Mark ``trial_id`` expired in the watch and kill its actors (Tune then sees them die)."""
    import ray

    for actor in ray.get(trial_watch().expire.remote(trial_id, why)):
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone: nothing left to stop
            pass


#: the watchdog of the experiment this process runs (see :func:`active_watchdog`)
_ACTIVE: list[TrialWatchdog] = []


def install_watchdog(watchdog: TrialWatchdog | None) -> None:
    """Make ``watchdog`` the one the sweep's callback uses (also a restored callback, which Tune
    unpickles and which so never holds this run's limits itself)."""
    _ACTIVE[:] = [watchdog] if watchdog is not None else []


def active_watchdog() -> TrialWatchdog | None:
    return _ACTIVE[-1] if _ACTIVE else None
