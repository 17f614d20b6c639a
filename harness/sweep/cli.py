"""``python -m harness.sweep``: the command line and the run of a sweep, step by step."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from harness.data.errors import DataError
from harness.profiles import PROFILES
from harness.sweep.disk import disk_full_error, disk_full_headline, disk_use_line
from harness.sweep.execute import commit_work, execute, prepare_work
from harness.sweep.leftovers import RayProcessRecord, end_recorded
from harness.sweep.lock import SweepLock, acquire
from harness.sweep.planning import ensure_data, plan_sweep
from harness.sweep.preflight import planned_bodies, sweep_preflight
from harness.sweep.ray_session import start_ray
from harness.sweep.report import (banner, dry_run_text, failed_cells, finish_leaderboard,
                                  progress_printer, run_table_hint, unavailable_warnings)

EXIT_INTERRUPTED = 130
EXIT_STOPPED = 1        # the sweep stopped with cells unfinished (disk full, ...): rerun to resume
EXIT_FAILED_CELLS = 3   # the sweep ended, but some cells have failed runs (rows say why)
_STARTED_RAY = [False]   # whether the running sweep started the Ray session it uses
_RAY_RECORD: list[RayProcessRecord | None] = [None]   # the pids of the Ray it started


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harness.sweep",
        description="Compare cross-modal fine-tuning methods on a suite: search on validation, "
                    "seeded final runs on test, MLflow tracking and a leaderboard.")
    p.add_argument("--suite", default="pdebench")
    p.add_argument("--tasks", default=None, help="comma-separated task names (default: all)")
    p.add_argument("--methods", default=None,
                   help="comma-separated method names (default: every available method except "
                        "those run only on request, marked 'named only' by harness.list)")
    p.add_argument("--profile", default="quick",
                   help=f"one of {', '.join(PROFILES)}: quick (default: a 2-core CPU), smoke "
                        "(the fastest pipeline check), paper (the paper's setting)")
    p.add_argument("--num-samples", type=int, default=None, help="search trials per (task, method)")
    p.add_argument("--seeds", type=int, default=None, help="final runs per (task, method)")
    p.add_argument("--stage-reuse", type=int, default=None,
                   help="search trials per stage-1 configuration (default: the profile's; "
                        "1 draws every parameter anew each trial)")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="cells searched at once (default: trial slots the cluster has)")
    p.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPUs per trial (default: each method's resources hint, 0 on CPU)")
    p.add_argument("--cpus-per-trial", type=float, default=None,
                   help="CPUs per trial (default: each method's resources hint, 1)")
    p.add_argument("--workers-per-trial", type=int, default=1,
                   help=">1 runs each trial as a data-parallel Ray Train TorchTrainer "
                        "(methods' resources.workers is not read)")
    p.add_argument("--max-failures", type=int, default=1, help="retries of a trial that raises")
    p.add_argument("--trial-timeout", default=None, metavar="SECONDS",
                   help="wall-clock limit per trial (e.g. 900, 15m, 2h; 0: none); a trial past "
                        "it is stopped with status 'timeout' and not retried (default: the "
                        "profile's, scaled to its epochs)")
    p.add_argument("--address", default=None, help="an existing Ray cluster (e.g. auto, ray://...)")
    p.add_argument("--storage", default=None, help="Ray results storage: a shared folder or URI")
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite store)")
    p.add_argument("--data-root", default=None, help="folder with the suite's data files")
    p.add_argument("--runs-dir", default="runs", help="where sweeps keep results (default ./runs)")
    p.add_argument("--name", default=None, help="sweep name (default: <suite>-<profile>)")
    p.add_argument("--reference", action="store_true",
                   help="show the paper's published numbers as unranked reference rows")
    p.add_argument("--retry-failed", action="store_true",
                   help="run again the cells that ended with failed runs (their earlier rows move "
                        "to results/superseded/, kept)")
    p.add_argument("--drop-cell", action="append", default=None, metavar="TASK/METHOD",
                   help="leave a cell out of this run (e.g. one that hung), also when resuming "
                        "an interrupted sweep; repeat or comma-separate for several")
    p.add_argument("--dry-run", action="store_true", help="print the plan and coverage, run nothing")
    p.add_argument("--cleanup", action="store_true",
                   help="end the Ray processes an earlier, killed run of sweep --name left "
                        "running on this host (recorded by pid), then exit")
    p.add_argument("--break-lock", action="store_true",
                   help="take over the lock of sweep --name held by a process on another host "
                        "that you checked no longer runs")
    return p


def run(args) -> int:
    """Plan, lock, check, connect, run the unfinished cells, publish; the exit code.

    Everything that can refuse the sweep (flags, damaged results, a changed plan, data) is checked
    before anything but the lock file is written; every MLflow run it opened is ended on every
    way out.
    """
    from harness.tracking.guard import bound_http_waits

    bound_http_waits()      # an MLflow call waits seconds, not minutes, for a dead server
    sp = plan_sweep(args)
    for line in unavailable_warnings(sp):
        print(line, file=sys.stderr)
    if args.dry_run:
        print(dry_run_text(sp))
        return 0
    lock = lock_sweep(args, sp.sweep_dir)     # before anything of the sweep is read or written
    try:
        try:
            return _run_planned(args, sp)
        except Exception as exc:   # noqa: BLE001 - only a full disk is explained here
            full = disk_full_error(exc)
            if full is None:
                raise
            print(disk_full_headline(full, sp.sweep_dir,
                                     args.max_concurrent or os.cpu_count() or 1),
                  file=sys.stderr, flush=True)
            return _stop(EXIT_STOPPED)
    finally:
        _stop(0)
        lock.release()


def _run_planned(args, sp) -> int:
    """:func:`run` once this process holds the sweep's lock."""
    from harness.cluster import (auth_mode_hint, connect_error_message, format_issues,
                                 has_errors, preflight)
    from harness.tracking import default_tracking_uri

    data_root = ensure_data(sp)
    tracking_uri = args.tracking_uri or default_tracking_uri(sp.runs)
    storage = args.storage or str(sp.sweep_dir / "tune")
    print(banner(sp, data_root, tracking_uri), flush=True)
    # everything the driver can check, before Ray starts: every problem at once, then exit 2
    local = sweep_preflight(sp, data_root, tracking_uri)
    if local:
        print(format_issues(local, title="preflight"), file=sys.stderr, flush=True)
        return 2
    work = prepare_work(args, sp, data_root, storage)      # refusals; nothing written yet
    if args.address and auth_mode_hint():
        print(f"note: {auth_mode_hint()}", file=sys.stderr, flush=True)
    record = None if args.address else RayProcessRecord(sp.sweep_dir)   # before ray.init
    try:
        _STARTED_RAY[0] = start_ray(args)
        if _STARTED_RAY[0] and record is not None:
            _RAY_RECORD[0] = record.start()
    except Exception as exc:  # noqa: BLE001 - ConnectionError, ray AuthenticationError ...
        if not args.address:
            raise
        print(f"error: {connect_error_message(exc, args.address)}", file=sys.stderr)
        return 2
    # a multi-node cluster needs storage and tracking every node can reach: check before starting
    issues = preflight(args.address, storage, tracking_uri, cache_dir=str(sp.sweep_dir / "cache"),
                       data_root=str(data_root), bodies=planned_bodies(sp))
    if issues:
        print(format_issues(issues), file=sys.stderr, flush=True)
    if has_errors(issues):
        return _stop(2)
    tracker, sweep_run = open_sweep_run(args, sp, tracking_uri)
    try:
        return _stop(_run_cells(args, sp, work, tracker, sweep_run, tracking_uri))
    except BaseException as exc:
        # whatever stopped the sweep (a refusal, a full disk, a bug): no run is left RUNNING
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        try:
            tracker.finish_all(sweep_run, status)
        except Exception as end_exc:  # noqa: BLE001 - the first error is the one to report
            print(f"warning: could not end the MLflow runs as {status}: {end_exc}", file=sys.stderr)
        raise


def _run_cells(args, sp, work, tracker, sweep_run: str, tracking_uri: str) -> int:
    """Write the plan, run this run's cells, then publish (or say how to resume)."""
    commit_work(sp, work)
    t0 = time.perf_counter()
    interrupted, freed = False, 0
    if work.todo:
        show = progress_printer(sp, work.done_before,
                                total_trials=sum(c.plan.num_samples + c.plan.seeds for c in work.todo))
        try:
            freed = execute(args, sp, work, tracker, sweep_run, show).freed_bytes
        except KeyboardInterrupt:
            interrupted = True
        finally:
            show.close()
    unfinished = work.unfinished(sp.results_dir)
    # every cell ends with rows (failed ones too), so an unfinished cell means the run was stopped
    # (Ctrl-C: Tune stops gracefully and checkpoints the experiment)
    if interrupted or unfinished:
        # Tune takes Ctrl-C itself and returns: an unfinished cell is an interruption
        print(f"\ninterrupted: {len(work.todo) - len(unfinished)} cell(s) finished and saved, "
              f"{len(unfinished)} unfinished; run the same command again to resume.\n"
              f"{disk_use_line(sp.sweep_dir, freed)}", file=sys.stderr)
        tracker.finish_all(sweep_run, "KILLED")
        _say_if_behind(tracker)
        return EXIT_INTERRUPTED
    return publish(args, sp, work, tracker, sweep_run, tracking_uri, t0, freed)


def open_sweep_run(args, sp, tracking_uri: str):
    """(guarded tracker, sweep run id): the sweep's parent MLflow run, reopened by a rerun, with
    MLflow caught up from the results table (see :mod:`harness.sweep.tracking`)."""
    from harness.sweep.tracking import open_tracking

    return open_tracking(args, sp, tracking_uri)


def publish(args, sp, work, tracker, sweep_run: str, tracking_uri: str, t0: float,
            freed: int = 0) -> int:
    """Consolidate the results, write the leaderboard, print the summary; the exit code."""
    from harness.results import read_results, replace_table
    from harness.sweep.tracking import catch_up_if_back
    from harness.tracking import ui_command

    catch_up_if_back(tracker, sweep_run, sp)      # MLflow fell behind and answers again
    df = read_results(sp.results_dir)
    df = df[df["sweep"] == sp.name]
    kept = replace_table(df, sp.sweep_dir / "results.parquet")
    if kept:
        print(f"warning: {kept}", file=sys.stderr, flush=True)
    print("\n" + finish_leaderboard(df, sp.sweep_dir, tracker, sweep_run, args.reference))
    elapsed = time.perf_counter() - t0
    failed = failed_cells(df)
    print(f"\nsweep {sp.name!r}: {len(work.todo)} cell(s) run now, {len(work.done_before)} finished "
          f"earlier, 0 unfinished, cells with failed runs: {failed or 'none'}; "
          f"{elapsed:.0f} s.\nResults: {sp.sweep_dir / 'results.parquet'}\nLeaderboard: "
          f"{sp.sweep_dir / 'leaderboard'}\nMLflow UI: {ui_command(tracking_uri)}\n"
          f"{run_table_hint(tracker.experiment_id, tracking_uri, sp.sweep_dir)}\n"
          f"{disk_use_line(sp.sweep_dir, freed)}")
    tracker.log_metrics(sweep_run, {"wall_seconds": elapsed, "cells_unfinished": 0}, step=0)
    tracker.finish(sweep_run, "FINISHED")
    _say_if_behind(tracker)
    if failed:
        # scripts and CI must notice: finished rows are kept, the failed cells' rows say why
        print(f"{len(failed)} cell(s) have failed runs (exit code {EXIT_FAILED_CELLS}); their "
              f"errors are in the results' `error` column and in MLflow", file=sys.stderr)
        return EXIT_FAILED_CELLS
    return 0


def _say_if_behind(tracker) -> None:
    """One line when MLflow missed something this run (the results table has it all)."""
    line = tracker.summary() if hasattr(tracker, "summary") else ""
    if line:
        print(line, file=sys.stderr, flush=True)


def _stop(code: int) -> int:
    """Shut down the Ray session this sweep started (not one it joined), and end what it left
    running; returns ``code``."""
    if _STARTED_RAY[0]:
        import ray

        ray.shutdown()
    if _RAY_RECORD[0] is not None:
        left = _RAY_RECORD[0].stop(ended_cleanly=True)
        _RAY_RECORD[0] = None
        if left:
            print(f"note: ended {len(left)} Ray process(es) still running after ray.shutdown()",
                  file=sys.stderr)
    return code


def lock_sweep(args, sweep_dir: Path) -> SweepLock:
    """Take the sweep's exclusive lock (or raise ``SweepLocked``: exit 2), then end the Ray
    processes an earlier, killed run of this sweep left behind on this host."""
    command = getattr(args, "command_line", None) or shlex.join(sys.argv)
    lock = acquire(sweep_dir, command, break_lock=getattr(args, "break_lock", False),
                   log=lambda line: print(line, file=sys.stderr, flush=True))
    try:
        end_recorded(sweep_dir, log=lambda line: print(line, file=sys.stderr, flush=True))
    except BaseException:
        lock.release()
        raise
    return lock


def cleanup(args) -> int:
    """``--cleanup``: end what an earlier run of sweep ``--name`` left running; the exit code."""
    from harness.sweep.leftovers import RECORD_FILE
    from harness.sweep.paths import check_name, check_runs_dir

    name = check_name(args.name or f"{args.suite}-{args.profile}")
    sweep_dir = check_runs_dir(args.runs_dir) / name
    if not (sweep_dir / RECORD_FILE).exists():
        print(f"sweep {name!r} in {sweep_dir.parent}: no Ray processes recorded, nothing to end.")
        return 0
    with lock_sweep(args, sweep_dir):
        print(f"sweep {name!r} in {sweep_dir.parent}: cleanup done.")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["python", "-m", "harness.sweep",
                                    *(sys.argv[1:] if argv is None else argv)])
    try:
        return cleanup(args) if args.cleanup else run(args)
    except (ValueError, DataError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        _stop(2)          # only a Ray session this sweep started is shut down
        return 2
    finally:
        _STARTED_RAY[0] = False
