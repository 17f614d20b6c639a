"""The sweep's MLflow side: open (or reopen) its run, catch up what an outage missed, and guard
every later call so that tracking can never stop the sweep or cost it a result."""
from __future__ import annotations

import sys

from harness.keys import tag
from harness.sweep.planning import SweepPlan, plan_cells


class TrackingUnavailable(ValueError):
    """The tracking store did not answer when the sweep opened its run (exit 2, nothing run)."""


def open_tracking(args, sp: SweepPlan, tracking_uri: str):
    """(guarded tracker, sweep run id): the sweep's parent MLflow run, reopened by a rerun, with
    MLflow caught up from the results table; later calls go through a
    :class:`~harness.tracking.guard.GuardedTracker`."""
    from harness.engine.catchup import behind_note
    from harness.tracking import KIND_TAG, Tracker
    from harness.tracking.guard import SWEEP_RETRY, GuardedTracker, _one_line

    from harness.tracking.store import _is_remote

    try:
        # a server: a few tries within seconds; a local sqlite store keeps the default policy,
        # whose longer deadline rides out "database is locked" while a UI reads it
        tracker = Tracker(tracking_uri, args.suite,
                          retry=SWEEP_RETRY if _is_remote(tracking_uri) else None)
        sweep_run = tracker.sweep_run(sp.name, tags={tag("suite"): args.suite,
                                                     tag("profile"): sp.profile.name,
                                                     KIND_TAG: "sweep"},
                                      params={"profile": sp.profile.name,
                                              "tasks": ",".join(t.name for t in sp.tasks),
                                              "methods": ",".join(m.name for m in sp.methods)})
        tracker.mark_stale_running(sweep_run)
    except (ValueError, TypeError):
        raise
    except Exception as exc:  # noqa: BLE001 - MlflowException, ConnectionError ...
        raise TrackingUnavailable(
            f"the tracking store {tracking_uri} did not answer when the sweep opened its run "
            f"({_one_line(exc)}); nothing was run. Start the MLflow server (or fix "
            f"--tracking-uri) and run the same command again") from exc
    catch_up_tracking(tracker, sweep_run, sp)
    return GuardedTracker(tracker, behind_note(sp.sweep_dir)), sweep_run


def catch_up_tracking(tracker, sweep_run: str, sp: SweepPlan) -> None:
    """Log to MLflow the rows an earlier run could not (see :mod:`harness.engine.catchup`); a
    failure here is a warning: the next run tries again."""
    from harness.engine.catchup import behind_note, catch_up
    from harness.engine.plan import done_marker
    from harness.results import read_results, retired_attempts
    from harness.tracking.guard import _one_line

    note = behind_note(sp.sweep_dir)
    try:
        rows = read_results(sp.results_dir)
    except Exception:  # noqa: BLE001 - unreadable parts are the resume's business, reported there
        return
    rows = rows[rows["sweep"] == sp.name]
    attempts = {}
    for c in plan_cells(sp):
        marker = done_marker(sp.results_dir, c.key, c.content)
        if marker.exists():
            attempts[c.key] = retired_attempts(sp.results_dir, marker.name) + 1
    try:
        done = catch_up(tracker, sweep_run, rows, attempts)
    except Exception as exc:  # noqa: BLE001 - tracking never stops the sweep
        print(f"warning: tracking: could not catch MLflow up from the results table "
              f"({_one_line(exc)}); the next run tries again", file=sys.stderr, flush=True)
        return
    if done:
        print(f"tracking: caught MLflow up from the results table: {done.trials} trial run(s) and "
              f"{done.cells} cell run(s) logged that an earlier run could not", flush=True)
    note.unlink(missing_ok=True)


def catch_up_if_back(tracker, sweep_run: str, sp: SweepPlan) -> None:
    """At the end of a run whose MLflow fell behind: if the server answers again, log what was
    missed now instead of leaving it to the next run."""
    from harness.engine.catchup import behind_note

    if not getattr(tracker, "behind", False) or tracker.down_since is not None:
        return
    catch_up_tracking(tracker.tracker, sweep_run, sp)
    if not behind_note(sp.sweep_dir).exists():
        tracker.reset()
