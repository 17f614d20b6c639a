"""Tracking that never stops a sweep: bounded waits, one-line warnings, and a note of what is behind.

The results table is the sweep's source of truth and MLflow its browsing view, so an MLflow outage
must cost the view, never the results. :class:`GuardedTracker` wraps a :class:`Tracker` for the
sweep's driver:

* every call is bounded: MLflow's HTTP client waits at most :data:`HTTP_DEFAULTS` (its own
  ``MLFLOW_HTTP_REQUEST_*`` variables, set only where the user has not set them), and the tracker's
  retry policy is :data:`SWEEP_RETRY` (a few tries within seconds, not minutes);
* a call that still fails returns ``None`` instead of raising, prints one warning line, and writes
  ``tracking-behind.json`` in the sweep folder;
* while the server is down, calls are skipped without waiting, and every ``retry_after_s`` (60 s)
  one call is tried again; the first that works prints "answers again". (A server that accepts
  connections and never answers costs each such try up to ~35 s of the driver's time: 10 s HTTP
  timeout, one HTTP retry, within the tracker's 15 s deadline.)

What was not logged is logged by the next run of the same sweep, from the results table
(:func:`harness.engine.catchup.catch_up`), which removes the note once MLflow has everything.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, MutableMapping

from harness.tracking.retry import RetryPolicy, _is_transient

#: MLflow's own HTTP settings for a sweep (defaults 120 s timeout and 7 retries with backoff, which
#: made one call to a dead server block for about four minutes)
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                 "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
#: the tracker's retries on top of MLflow's: a few tries, all within seconds
SWEEP_RETRY = RetryPolicy(attempts=3, base_delay_s=0.5, max_delay_s=2.0, deadline_s=15.0)
BEHIND_FILE = "tracking-behind.json"
#: the guard of each sweep this process runs (by its note's path): a Tune callback unpickled from a
#: restored experiment shares it, so the end-of-run summary counts what the callback missed
_LIVE: dict[str, "GuardedTracker"] = {}


def bound_http_waits(env: MutableMapping[str, str] = os.environ) -> None:
    """Set :data:`HTTP_DEFAULTS` in ``env`` where the user has not set them."""
    for key, value in HTTP_DEFAULTS.items():
        env.setdefault(key, value)


def _one_line(exc: BaseException, limit: int = 240) -> str:
    """The error in one short line; a connection failure as its cause ("[Errno 111] Connection
    refused"), not MLflow's and urllib3's nested retry messages."""
    text = str(exc).strip()
    cause = re.search(r"\[Errno -?\d+\][^\"')]*|Read timed out|Connection aborted", text)
    if cause:
        return f"{type(exc).__name__}: {cause.group(0).strip()}"[:limit]
    lines = text.splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:limit]


class GuardedTracker:
    """A :class:`Tracker` whose calls never raise: a failed call returns None, says so in one line
    and marks the sweep's tracking as behind (see the module docstring).

    Attributes other than methods (``experiment_id``, ``tracking_uri`` ...) are the tracker's own.
    """

    def __init__(self, tracker, behind_file: str | os.PathLike | None = None, *,
                 retry_after_s: float = 60.0,
                 warn: Callable[[str], None] | None = None) -> None:
        self._tracker = tracker
        self._behind_file = Path(behind_file) if behind_file is not None else None
        self._retry_after_s = retry_after_s
        self._warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
        self.down_since: float | None = None      # monotonic time of the failure that began it
        self._next_try = 0.0
        self.failed = 0                           # calls that failed
        self.skipped = 0                          # calls not tried while the server was down
        self.first_error: str | None = None
        if tracker is not None and self._behind_file is not None:
            _LIVE[str(self._behind_file)] = self

    @property
    def tracker(self):
        """The wrapped :class:`Tracker`."""
        return self._tracker

    @property
    def behind(self) -> bool:
        """Whether something this run meant to log is not in MLflow."""
        return bool(self.failed or self.skipped)

    def __reduce__(self):
        # Tune pickles the sweep's callback, tracker included, with the experiment; a restored
        # experiment rebuilds the tracker from its URI, which must not fail while MLflow is down
        args = self._tracker.__reduce__()[1] if self._tracker is not None else None
        return (_rebuild_guard, (args, self._behind_file, self._retry_after_s))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or "_tracker" not in self.__dict__:
            raise AttributeError(name)      # during unpickling, before __init__'s attributes
        if self._tracker is None:           # rebuilt while MLflow was down: nothing is logged
            if name in ("experiment_id", "tracking_uri", "remote"):
                return None
            return lambda *args, **kwargs: self._skip()
        attr = getattr(self._tracker, name)
        if not callable(attr):
            return attr

        def guarded(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, attr, *args, **kwargs)

        return guarded

    def _skip(self) -> None:
        self.skipped += 1
        self._note_behind()

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, or None when tracking is down or the call fails."""
        now = time.monotonic()
        if self.down_since is not None and now < self._next_try:
            self.skipped += 1
            return None
        try:
            out = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - no tracking error may stop the sweep
            self.record_failure(what, exc)
            return None
        if self.down_since is not None:
            self._warn(f"tracking: MLflow at {self._uri()} answers again after "
                       f"{time.monotonic() - self.down_since:.0f} s; {self.skipped + self.failed} "
                       "call(s) missed meanwhile are logged from the results table at the end of this "
                       "run (or by the next run of this sweep)")
            self.down_since = None
        return out

    def reset(self) -> None:
        """Forget what was missed (after it was caught up)."""
        self.failed = self.skipped = 0
        self.first_error, self.down_since = None, None

    def summary(self) -> str:
        """One line for the end of the run: what is behind and how to catch it up ('' if nothing)."""
        if not self.behind:
            return ""
        return (f"tracking is behind: {self.failed} MLflow call(s) failed and {self.skipped} were "
                f"skipped while {self._uri()} did not answer (first: {self.first_error}); every "
                f"result is in the results table; run the same command again with the server up "
                f"to log what is missing in MLflow (no run is duplicated)")

    # .. internals .............................................................................
    def _uri(self) -> str:
        return str(getattr(self._tracker, "tracking_uri", None) or self.__dict__.get("uri_hint", "?"))

    def record_failure(self, what: str, exc: Exception) -> None:
        """Count a failed call, note the sweep as behind, and warn (once per outage)."""
        self.failed += 1
        line = _one_line(exc)
        if self.first_error is None:
            self.first_error = f"{what}: {line}"
        self._note_behind()
        outage = _is_transient(exc, remote=bool(getattr(self._tracker, "remote", False)))
        if not outage:
            self._warn(f"warning: tracking: MLflow refused {what} ({line}); the sweep goes on and "
                       "its results table is complete")
            return
        if self.down_since is None:
            self.down_since = time.monotonic()
            self._warn(f"warning: tracking: MLflow at {self._uri()} does not answer ({what}: {line}); "
                       "the sweep goes on and writes every result to its results table; MLflow is "
                       f"retried every {self._retry_after_s:.0f} s and caught up by a rerun")
        self._next_try = time.monotonic() + self._retry_after_s

    def _note_behind(self) -> None:
        if self._behind_file is None or self._behind_file.exists():
            return
        try:
            self._behind_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._behind_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"since": datetime.now(timezone.utc).isoformat(),
                                       "tracking_uri": self._uri(),
                                       "first_error": self.first_error}, indent=1))
            tmp.replace(self._behind_file)
        except OSError:
            pass   # the note is a courtesy: the catch-up checks MLflow against the table anyway


def _rebuild_guard(tracker_args, behind_file, retry_after_s: float) -> GuardedTracker:
    """Unpickle a :class:`GuardedTracker`: its tracker is rebuilt from the URI, or left out (and
    every call skipped, noted as behind) when MLflow does not answer."""
    from harness.tracking.tracker import _rebuild_tracker

    live = _LIVE.get(str(behind_file)) if behind_file is not None else None
    if live is not None:
        return live
    tracker, error = None, None
    if tracker_args is not None:
        try:
            tracker = _rebuild_tracker(*tracker_args)
        except Exception as exc:  # noqa: BLE001 - the sweep goes on without MLflow
            error = exc
    guard = GuardedTracker(tracker, behind_file, retry_after_s=retry_after_s)
    guard.uri_hint = tracker_args[0] if tracker_args else "?"
    if error is not None:
        guard.record_failure("reconnect", error)
    return guard
