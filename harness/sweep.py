"""``python -m harness.sweep --suite pdebench``: every method on every task, fairly, then a leaderboard.

Per (task, method) cell: a Ray Tune search (Optuna TPE, paper defaults first, ASHA) on the
validation split, then the selected configuration re-run with N seeds on the test split. Cells run
concurrently as Ray tasks; results land in a parquet table (the source of truth), in MLflow (one
experiment per suite, a parent run per sweep, nested cell and trial runs), and in a leaderboard.

With no flag but ``--suite`` it runs on a laptop CPU: synthetic data (generated on first use), tiny
random-initialised backbones and small budgets (profile ``quick``). ``--profile paper`` uses the
paper's backbones, epochs and budgets on real data.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from harness.data.errors import DataError

EXIT_INTERRUPTED = 130
EXIT_FAILED_CELLS = 3   # the sweep ended, but some cells have failed runs (rows say why)
_STARTED_RAY = [False]   # whether the running sweep started the Ray session it uses


# ----------------------------------------------------------------------------- arguments
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harness.sweep",
        description="Compare cross-modal fine-tuning methods on a suite: search on validation, "
                    "seeded final runs on test, MLflow tracking and a leaderboard.")
    p.add_argument("--suite", default="pdebench")
    p.add_argument("--tasks", default=None, help="comma-separated task names (default: all)")
    p.add_argument("--methods", default=None, help="comma-separated method names (default: all)")
    p.add_argument("--profile", default="quick", help="quick (CPU default) or paper")
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
                   help=">1 runs each trial as a data-parallel Ray Train TorchTrainer")
    p.add_argument("--max-failures", type=int, default=1, help="retries of a trial that raises")
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
    p.add_argument("--dry-run", action="store_true", help="print the plan and coverage, run nothing")
    return p


# ----------------------------------------------------------------------------- planning
def plan(args) -> dict[str, Any]:
    """Resolve everything a sweep needs without starting Ray (also what --dry-run prints)."""
    from harness.methods.discovery import discover, get_method
    from harness.profiles import get_profile
    from harness.suites import select_tasks

    profile = get_profile(args.profile)
    for flag, value, low in (("--stage-reuse", args.stage_reuse, 1),
                             ("--num-samples", args.num_samples, 1), ("--seeds", args.seeds, 0)):
        if value is not None and value < low:
            raise SystemExit(f"{flag} must be at least {low}, got {value}")
    profile = profile.with_overrides(num_samples=args.num_samples, seeds=args.seeds,
                                     stage_reuse=args.stage_reuse)
    tasks = select_tasks(args.suite, args.tasks)
    entries = discover()
    if args.methods:
        names = [m.strip() for m in args.methods.split(",") if m.strip()]
    else:
        # the compared methods first, then the floors (reference predictors)
        names = sorted((n for n, e in entries.items() if e.available),
                       key=lambda n: (getattr(entries[n].method, "role", "method") == "floor", n))
    methods = [get_method(n, entries) for n in names]
    broken = {n: e for n, e in entries.items() if not e.available}
    name = args.name or f"{args.suite}-{profile.name}"
    runs = Path(args.runs_dir).resolve()
    sweep_dir = runs / name
    synthetic_root = runs / "data" / "synthetic"
    data_root = Path(args.data_root).resolve() if args.data_root else None
    if data_root is None and profile.name not in ("quick", "smoke"):
        raise SystemExit(
            f"error: profile {profile.name!r} runs on the real PDEBench files: pass --data-root DIR "
            f"(get them with `python -m harness.data download --suite {args.suite} --root DIR`), or "
            f"use --profile quick for synthetic data.")
    coverage = {}
    for t in tasks:
        for m in methods:
            ok, why = m.supports(t)
            coverage[(t.name, m.name)] = "planned" if ok else f"skip: {why}"
    return {"profile": profile, "tasks": tasks, "methods": methods, "broken": broken,
            "name": name, "runs": runs, "sweep_dir": sweep_dir, "data_root": data_root,
            "synthetic_root": synthetic_root, "coverage": coverage}


def ensure_data(p: dict[str, Any], log=print) -> Path:
    """The data root to read; in the quick profile, synthetic files are generated on first use."""
    from harness.data.readers import find_file

    if p["data_root"] is not None:
        return p["data_root"]
    root = p["synthetic_root"]
    missing = []
    for t in p["tasks"]:
        try:
            find_file(t.file, root, t.name)
        except DataError:
            missing.append(t.name)
    if missing:
        from harness.data import synth

        log(f"generating synthetic data for {len(missing)} task(s) in {root} "
            f"(size {p['profile'].synthetic_size}; first use only) ...")
        t0 = time.perf_counter()
        synth.generate_suite(root, size=p["profile"].synthetic_size, seed=0, tasks=missing,
                             progress=lambda *a, **k: None)
        log(f"  done in {time.perf_counter() - t0:.1f} s")
    return root


def coverage_matrix(p: dict[str, Any], states: dict[str, dict] | None = None) -> str:
    """Task × method table of planned/skip (dry run) or live states with the best value so far."""
    methods = [m.name for m in p["methods"]]
    width = max(14, *(len(m) + 2 for m in methods))
    lines = [f"{'task':<24}" + "".join(f"{m:>{width}}" for m in methods)]
    for t in p["tasks"]:
        cells = []
        for m in methods:
            key = f"{t.name}/{m}"
            cov = p["coverage"][(t.name, m)]
            if states is None or cov.startswith("skip"):
                text = "planned" if cov == "planned" else "skip"
            else:
                st = states.get(key, {"state": "queued"})
                text = st.get("state", "queued")
                if st.get("best") is not None:
                    text += f" {t.metric.display(st['best'])}"
                text = text[:width - 1]
            cells.append(f"{text:>{width}}")
        lines.append(f"{t.name:<24}" + "".join(cells))
    return "\n".join(lines)


def banner(p: dict[str, Any], data_root: Path, tracking_uri: str, results_dir: Path) -> str:
    from harness.tracking import ui_command
    from recraft.presets import describe_backbone

    prof = p["profile"]
    modalities = sorted({t.modality for t in p["tasks"]})
    bodies = ", ".join(f"{m.upper()} {describe_backbone(prof.backbone(m))}" for m in modalities)
    lines = []
    if p["data_root"] is None or prof.name in ("quick", "smoke"):
        lines += ["=" * 78,
                  f"{prof.name.upper()} PROFILE: synthetic data in PDEBench's format ({data_root}),",
                  f"bodies: {bodies};",
                  f"{prof.finetune_epochs} epochs, {prof.num_samples} trials and {prof.seeds} seeds "
                  f"per cell, floors (mean, ridge, persistence) beside the methods.",
                  "Small synthetic problems and tiny bodies: not the paper's results.",
                  "The real thing: python -m harness.data download --suite pdebench --root data/pdebench",
                  "                python -m harness.sweep --suite pdebench --profile paper "
                  "--data-root data/pdebench",
                  "=" * 78]
    if not (p["data_root"] is None or prof.name in ("quick", "smoke")):
        lines += [f"bodies:     {bodies}"]
    lines += [f"results:    {results_dir}",
              f"MLflow:     {tracking_uri}  (experiment {p['tasks'][0].suite!r})",
              f"MLflow UI:  {ui_command(tracking_uri)}"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- running
def _ray_init(args) -> bool:
    """Connect to Ray; returns whether this call started it (and so should shut it down).

    In a process where Ray is already initialised (a notebook, a test) the sweep uses that
    session instead of failing.
    """
    import ray

    if ray.is_initialized():
        return False

    env = {k: os.environ[k] for k in ("HARNESS_DATA_AUDIT",) if k in os.environ}
    env.update({"RAY_TRAIN_V2_ENABLED": "0", "RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS": "0",
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", "PYTHONWARNINGS": "ignore"})
    if not args.address:   # the local instance started here; a given cluster keeps its mode
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "runtime_env": {"env_vars": env}, "configure_logging": True,
                              "logging_level": "ERROR"}
    # without --address, always start a private local instance, never attach to a cluster that
    # happens to run on this machine
    kwargs["address"] = args.address or "local"
    ray.init(**kwargs)
    return True


def _trial_slots(args) -> int:
    """Trials running at once: what the cluster holds (or --max-concurrent)."""
    import ray

    if args.max_concurrent:
        return max(1, args.max_concurrent)
    res = ray.cluster_resources()
    per = (args.cpus_per_trial or 1.0) * max(1, args.workers_per_trial)
    slots = res.get("CPU", 1.0) // per
    if args.gpus_per_trial:
        slots = min(slots, res.get("GPU", 0.0) // args.gpus_per_trial)
    return max(1, int(slots))


def run(args) -> int:
    import ray

    from harness.engine import (CellPlan, FinalDataLoader, cell_content_key, cell_description,
                                done_marker, row_meta, run_cells)
    from harness.results import read_results, write_table
    from harness.trial.context import CellSpec
    from harness.trial.data import load_for_phase
    from harness.tracking import Tracker, default_tracking_uri

    p = plan(args)
    if p["broken"]:
        for n, e in p["broken"].items():
            print(f"warning: method plugin {n!r} ({e.origin}) is unavailable: "
                  f"{(e.error or '').splitlines()[0]}", file=sys.stderr)
    if args.dry_run:
        print(dry_run_text(p))
        return 0
    prof = p["profile"]
    sweep_dir = p["sweep_dir"]
    results_dir = sweep_dir / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    data_root = ensure_data(p)
    tracking_uri = args.tracking_uri or default_tracking_uri(p["runs"])
    storage = args.storage or str(sweep_dir / "tune")
    cache_dir = str(sweep_dir / "cache")
    print(banner(p, data_root, tracking_uri, results_dir), flush=True)

    from harness.cluster import (auth_mode_hint, connect_error_message, format_issues,
                                 has_errors, preflight)

    if args.address and auth_mode_hint():
        print(f"note: {auth_mode_hint()}", file=sys.stderr, flush=True)
    try:
        owns_ray = _ray_init(args)
    except Exception as exc:  # noqa: BLE001 - ConnectionError, ray AuthenticationError ...
        if not args.address:
            raise
        print(f"error: {connect_error_message(exc, args.address)}", file=sys.stderr)
        return 2
    _STARTED_RAY[0] = owns_ray

    def shutdown():
        if owns_ray:
            ray.shutdown()

    # a multi-node cluster needs storage and tracking every node can reach: check before starting
    issues = preflight(args.address, storage, tracking_uri, cache_dir=cache_dir,
                       data_root=str(data_root))
    if issues:
        print(format_issues(issues), file=sys.stderr, flush=True)
    if has_errors(issues):
        shutdown()
        return 2

    tracker = Tracker(tracking_uri, args.suite)
    sweep_run = tracker.sweep_run(p["name"], tags={"harness.suite": args.suite,
                                                   "harness.profile": prof.name,
                                                   "harness.kind": "sweep"},
                                  params={"profile": prof.name,
                                          "tasks": ",".join(t.name for t in p["tasks"]),
                                          "methods": ",".join(m.name for m in p["methods"])})
    tracker.mark_stale_running(sweep_run)

    # cells to run: planned, and not finished (same content) by an earlier run of this sweep
    cells, plans, meta, todo, done_before, described, every = {}, [], {}, [], set(), {}, []
    retry: list[tuple[str, Path]] = []
    for t in p["tasks"]:
        for m in p["methods"]:
            key = f"{t.name}/{m.name}"
            if p["coverage"][(t.name, m.name)] != "planned":
                continue
            plan_ = CellPlan.of(t, m, num_samples=prof.num_samples, seeds=prof.seeds,
                                max_t=prof.epochs(t.defaults.epochs),
                                grace_period=prof.grace_period, stage_reuse=prof.stage_reuse)
            content = cell_content_key(t, m, prof, plan_)
            described[key] = {"content": content,
                              "description": cell_description(t, m, prof, plan_)}
            every.append((t, m, key, plan_, content))
            marker = done_marker(results_dir, key, content)
            if marker.exists():
                if not (args.retry_failed and cell_failed(marker, plan_.seeds)):
                    done_before.add(key)
                    continue
                retry.append((key, marker))
            todo.append((t, m, key, plan_, content))
    attempts = retire_failed(sweep_dir, results_dir, retry) if retry else {}
    part, restore_path = resume_plan(sweep_dir, storage, p["name"], todo, described, results_dir)
    # interleave tasks so that concurrent trials hit different tasks
    order_m = [m.name for m in p["methods"]]
    order_t = [t.name for t in p["tasks"]]
    todo.sort(key=lambda item: (order_m.index(item[1].name), order_t.index(item[0].name)))
    # search data (train + val only) is read once per task and shared with every trial
    search_data = {t.name: load_for_phase(t, data_root, prof, "search")
                   for t in {item[0].name: item[0] for item in todo}.values()}
    # every planned cell gets a trainable entry: a resumed experiment re-adds its finished trials
    for t, m, key, plan_, content in every:
        cpus = args.cpus_per_trial if args.cpus_per_trial is not None else m.resources.cpus
        gpus = args.gpus_per_trial if args.gpus_per_trial is not None else m.resources.gpus
        cell = CellSpec(sweep=p["name"], suite=args.suite, task=t.name, method=m.name,
                        profile=prof, cache_dir=cache_dir, storage_path=storage,
                        workers=args.workers_per_trial, cpus_per_trial=cpus, gpus_per_trial=gpus,
                        data_root=str(data_root))
        cells[key] = (cell, m)
        if key in done_before:
            continue
        meta[key] = row_meta(cell, m, t, search_data[t.name].source, p["name"],
                             {"harness.attempt": attempts[key]} if key in attempts else None)
        meta[key]["content"] = content
        meta[key]["attempt"] = attempts.get(key, 1)
    plans = [item[3] for item in todo]    # in the interleaved order: cells are searched in it
    t0 = time.perf_counter()

    from harness.progress import ProgressView, finished_trials

    view = ProgressView(total_trials=sum(pl.num_samples + pl.seeds for pl in plans))

    def show(states):
        full = {k: {"state": "done (earlier)"} for k in done_before}
        full.update(states)
        view.show(coverage_matrix(p, full), finished_trials(states))

    interrupted = False
    if todo:
        try:
            if restore_path:
                print(f"resuming the interrupted sweep from {restore_path} "
                      f"({len(todo)} unfinished cell(s))", flush=True)
            run_cells(cells, plans, search_data, name=part, storage_path=storage,
                      results_dir=str(results_dir), meta=meta,
                      final_loader=FinalDataLoader({t.name: t for t in p["tasks"]},
                                                   str(data_root), prof),
                      max_concurrent=_trial_slots(args), max_failures=args.max_failures,
                      workers=args.workers_per_trial, cpus=args.cpus_per_trial or 1.0,
                      gpus=args.gpus_per_trial or 0.0, tracker=tracker, sweep_run_id=sweep_run,
                      progress=show, restore_path=restore_path)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            view.close()
    unfinished = [item[2] for item in todo
                  if not done_marker(results_dir, item[2], item[4]).exists()]
    # every cell ends with rows (failed ones too), so an unfinished cell means the run was stopped
    # (Ctrl-C: Tune stops gracefully and checkpoints the experiment)
    if interrupted or unfinished:
        print(f"\ninterrupted: {len(todo) - len(unfinished)} cell(s) finished and saved, "
              f"{len(unfinished)} unfinished; run the same command again to resume.",
              file=sys.stderr)
        tracker.finish(sweep_run, "KILLED")
        shutdown()
        return EXIT_INTERRUPTED

    df = read_results(results_dir)
    df = df[df["sweep"] == p["name"]]
    write_table(df, sweep_dir / "results.parquet")
    lb_text = finish_leaderboard(df, sweep_dir, tracker, sweep_run, args.reference)
    print("\n" + lb_text)
    elapsed = time.perf_counter() - t0
    failed = sorted(set(df[(df.phase == "final") & (df.status != "ok")]["task"] + "/" +
                        df[(df.phase == "final") & (df.status != "ok")]["method"]))
    print(f"\nsweep {p['name']!r}: {len(todo)} cell(s) run now, {len(done_before)} finished "
          f"earlier, {len(unfinished)} unfinished, cells with failed runs: {failed or 'none'}; "
          f"{elapsed:.0f} s.\nResults: {sweep_dir / 'results.parquet'}\nLeaderboard: "
          f"{sweep_dir / 'leaderboard'}\nMLflow UI: {ui_command_for(tracking_uri)}\n"
          f"{run_table_hint(tracker.experiment_id, tracking_uri, sweep_dir)}")
    tracker.log_metrics(sweep_run, {"wall_seconds": elapsed, "cells_unfinished": len(unfinished)},
                        step=0)
    tracker.finish(sweep_run, "FINISHED" if not unfinished else "FAILED")
    shutdown()
    if unfinished:
        return 1
    if failed:
        # scripts and CI must notice: finished rows are kept, the failed cells' rows say why
        print(f"{len(failed)} cell(s) have failed runs (exit code {EXIT_FAILED_CELLS}); their "
              f"errors are in the results' `error` column and in MLflow", file=sys.stderr)
        return EXIT_FAILED_CELLS
    return 0


def load_plan(plan_file: Path) -> dict[str, Any]:
    """The sweep's ``plan.json``: its parts (one Tune experiment each) and their cells."""
    return json.loads(plan_file.read_text()) if plan_file.exists() else {"parts": []}


def save_plan(plan_file: Path, saved: dict[str, Any]) -> None:
    """Write ``plan.json`` atomically (a crash leaves the old or the new file, never half)."""
    tmp = plan_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(saved, indent=1, default=str))
    tmp.replace(plan_file)


def cell_failed(marker: Path, seeds: int) -> bool:
    """Whether a finished cell's marker says some of its runs failed (fewer ok finals than seeds,
    or no configuration could be selected)."""
    summary = json.loads(marker.read_text())
    return summary.get("finals_ok", 0) < seeds or summary.get("best_val") is None


def retire_failed(sweep_dir: Path, results_dir: Path, retry: list[tuple[str, Path]]) -> dict[str, int]:
    """Move failed cells' rows and markers to ``results/superseded/`` so they run again.

    Refused while the sweep's last part is unfinished (resume it first). Each cell is also taken
    out of the part that ran it in ``plan.json``, so this run starts a new part for it. Returns
    cell -> attempt number (2 for the first retry), which tags its new MLflow runs.
    """
    from harness.engine import done_marker
    from harness.results import retire_cell, retired_attempts

    plan_file = sweep_dir / "plan.json"
    saved = load_plan(plan_file)
    if saved["parts"]:
        last = saved["parts"][-1]
        pending = [k for k, v in last["cells"].items()
                   if not done_marker(results_dir, k, v["content"]).exists()]
        if pending:
            raise ValueError(f"--retry-failed: this sweep has {len(pending)} unfinished cell(s) "
                             f"from an interrupted run ({', '.join(sorted(pending)[:3])}...); "
                             f"rerun the same command without --retry-failed to finish them first")
    attempts = {}
    for key, marker in retry:
        attempts[key] = retired_attempts(results_dir, marker.name) + 2
        dest = retire_cell(results_dir, key, marker)
        for part in saved["parts"]:
            part["cells"].pop(key, None)
        print(f"retrying {key} (attempt {attempts[key]}): its earlier rows moved to {dest}",
              flush=True)
    if saved["parts"]:
        save_plan(plan_file, saved)
    return attempts


class PlanChanged(ValueError):
    """Rerunning an interrupted sweep with a different plan (space, budgets, versions, cells)."""


def resume_plan(sweep_dir: Path, storage: str, name: str, todo: list, described: dict,
                results_dir: Path) -> tuple[str, str | None]:
    """(Tune experiment name, path to restore or None) for this run of the sweep.

    A sweep runs in *parts*: one Tune experiment each, recorded in ``plan.json``. If the last part
    has unfinished cells and its experiment can be restored, this run resumes it (searcher state,
    finished trials, MLflow runs), provided every unfinished cell is planned exactly as before;
    otherwise the difference is shown and a new ``--name`` suggested. Cells added to a sweep whose
    parts are all finished run in a new part.
    """
    from ray import tune

    from harness.engine import done_marker

    plan_file = sweep_dir / "plan.json"
    saved = load_plan(plan_file)
    current = {item[2]: described[item[2]] for item in todo}
    last = saved["parts"][-1] if saved["parts"] else None
    if last is not None:
        unfinished = {k: v for k, v in last["cells"].items()
                      if not done_marker(results_dir, k, v["content"]).exists()}
        path = f"{storage.rstrip('/')}/{last['tune_name']}"
        if unfinished and tune.Tuner.can_restore(path):
            diff = plan_diff(unfinished, current)
            if diff:
                raise PlanChanged(
                    f"sweep {name!r} was interrupted and its unfinished cells were planned "
                    f"differently:\n{diff}\nRerun the original command to finish it, or start a "
                    f"new sweep with --name {name}-2.")
            return last["tune_name"], path
    tune_name = name if not saved["parts"] else f"{name}.{len(saved['parts']) + 1}"
    if todo:
        saved["parts"].append({"tune_name": tune_name, "cells": current})
        save_plan(plan_file, saved)
    return tune_name, None


def plan_diff(before: dict, now: dict) -> str:
    """Readable differences between saved and current cell plans."""
    lines = []
    for key in sorted(set(before) | set(now)):
        if key not in now:
            lines.append(f"  {key}: planned before, not now (was it dropped from --tasks/--methods?)")
            continue
        if key not in before:
            lines.append(f"  {key}: new cell")
            continue
        a, b = before[key]["description"], now[key]["description"]
        for field_ in sorted(set(a) | set(b)):
            if a.get(field_) != b.get(field_):
                if isinstance(a.get(field_), dict) and isinstance(b.get(field_), dict):
                    for k in sorted(set(a[field_]) | set(b[field_])):
                        if a[field_].get(k) != b[field_].get(k):
                            lines.append(f"  {key}: {field_}.{k}: {a[field_].get(k)!r} -> "
                                         f"{b[field_].get(k)!r}")
                else:
                    lines.append(f"  {key}: {field_}: {a.get(field_)!r} -> {b.get(field_)!r}")
    return "\n".join(lines)


def run_table_hint(experiment_id: str, tracking_uri: str, sweep_dir: Path) -> str:
    """Where to look once the UI runs: its run table (not the GenAI home) and the report command."""
    from harness.report.links import runs_table_url, ui_base_url

    return (f"MLflow run table: {runs_table_url(experiment_id, ui_base_url(tracking_uri))}\n"
            f"Report:     python -m harness.report --sweep {sweep_dir}")


def ui_command_for(tracking_uri: str) -> str:
    from harness.tracking import ui_command

    return ui_command(tracking_uri)


def finish_leaderboard(df, sweep_dir: Path, tracker, sweep_run: str, reference: bool) -> str:
    """Write the leaderboard files, attach them to the sweep run, return the Markdown."""
    from harness.leaderboard import leaderboard_markdown, write_leaderboard

    final = df[(df["phase"] == "final") & (df["split"] == "test")]
    if final.empty:
        return "(no final results: nothing to rank)"
    files = write_leaderboard(df, sweep_dir / "leaderboard", reference=reference)
    if tracker is not None:
        for path in files.values():
            tracker.log_file(sweep_run, path, artifact_path="leaderboard")
        tracker.log_file(sweep_run, sweep_dir / "results.parquet", artifact_path="results")
    return leaderboard_markdown(df, reference=reference)


def dry_run_text(p: dict[str, Any]) -> str:
    from harness.methods.space import searched, space_size

    prof = p["profile"]
    lines = [f"sweep {p['name']!r}: suite {p['tasks'][0].suite}, profile {prof.name} "
             f"({prof.backbone_1d} / {prof.backbone_2d}), {prof.num_samples} trials and "
             f"{prof.seeds} seeds per cell, ASHA grace period {prof.grace_period} epochs",
             f"data: {p['data_root'] or str(p['synthetic_root']) + ' (synthetic, generated on first use)'}",
             "", "methods:"]
    t0 = p["tasks"][0]
    for m in p["methods"]:
        space = m.search_space(t0)
        size = space_size(space)
        lines.append(f"  {m.name:<18} v{m.version}  stages {' -> '.join(s.name for s in m.stages):<20} "
                     f"searched {len(searched(space))} ({'continuous' if size == float('inf') else int(size)})")
    for n, e in p["broken"].items():
        lines.append(f"  {n:<18} UNAVAILABLE: {(e.error or '').splitlines()[0]}")
    n_cells = sum(1 for v in p["coverage"].values() if v == "planned")
    # a method with nothing to search runs one search trial (CellPlan.of)
    trials = {m.name: (prof.num_samples if searched(m.search_space(t0)) else 1) + prof.seeds
              for m in p["methods"]}
    n_runs = sum(trials[m] for (_, m), v in p["coverage"].items() if v == "planned")
    lines += ["", f"coverage ({n_cells} cells, {n_runs} trial runs):", coverage_matrix(p),
              "", "dry run: nothing was run."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, DataError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if _STARTED_RAY[0]:          # only a Ray session this sweep started is shut down
            import ray

            ray.shutdown()
        return 2
    finally:
        _STARTED_RAY[0] = False


if __name__ == "__main__":
    sys.exit(main())
