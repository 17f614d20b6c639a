"""The cells a run of a sweep executes: which are left, their data and trial specs, and the run."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.engine.plan import done_marker
from harness.keys import ATTEMPT_TAG
from harness.sweep.parts import cell_failed, earlier_attempts, resume_plan, retire_failed
from harness.sweep.planning import CellEntry, SweepPlan, interleaved, plan_cells


@dataclass
class SweepWork:
    """This run's share of a sweep: the cells left to run and what their trials need."""

    data_root: Path
    storage: str                          # Ray Tune storage (a shared folder or URI)
    todo: list[CellEntry]                 # cells to run, in search order (methods, then tasks)
    done_before: set[str]                 # cells finished by an earlier run of this sweep
    part: str                             # the Tune experiment of this run (see plan.json)
    restore_path: str | None              # the interrupted experiment to resume, if any
    cells: dict[str, tuple] = field(default_factory=dict)   # every planned cell: (CellSpec, Method)
    meta: dict[str, dict] = field(default_factory=dict)     # cells to run: static row fields, tags
    search_data: dict[str, Any] = field(default_factory=dict)   # task -> its train + val data

    def unfinished(self, results_dir: Path) -> list[str]:
        """Cells of this run without their done marker (every cell ends with one, failed too)."""
        return [c.key for c in self.todo
                if not done_marker(results_dir, c.key, c.content).exists()]


def cell_spec(args, sp: SweepPlan, c: CellEntry, data_root: Path, storage: str):
    """The picklable spec every trial of cell ``c`` runs with."""
    from harness.trial.context import CellSpec

    return CellSpec(sweep=sp.name, suite=args.suite, task=c.task.name, method=c.method.name,
                    profile=sp.profile, cache_dir=str(sp.sweep_dir / "cache"), storage_path=storage,
                    workers=args.workers_per_trial,
                    cpus_per_trial=c.method.resources.cpus if args.cpus_per_trial is None
                    else args.cpus_per_trial,
                    gpus_per_trial=c.method.resources.gpus if args.gpus_per_trial is None
                    else args.gpus_per_trial,
                    data_root=str(data_root))


def prepare_work(args, sp: SweepPlan, data_root: Path, storage: str) -> SweepWork:
    """Cells to run (planned, not finished with the same content by an earlier run, or failed
    under ``--retry-failed``), the part they run in, their search data and row metadata."""
    from harness.engine.rows import row_meta
    from harness.trial.data import load_for_phase

    every, todo, done_before, retry = plan_cells(sp), [], set(), []
    for c in every:
        marker = done_marker(sp.results_dir, c.key, c.content)
        if marker.exists():
            if not (args.retry_failed and cell_failed(marker, c.plan.seeds)):
                done_before.add(c.key)
                continue
            retry.append((c.key, marker))
        todo.append(c)
    attempts = retire_failed(sp.sweep_dir, sp.results_dir, retry) if retry else {}
    part, restore_path = resume_plan(sp.sweep_dir, storage, sp.name, todo, sp.results_dir)
    for key, n in earlier_attempts(sp.sweep_dir, part, [c.key for c in todo]).items():
        attempts[key] = attempts.get(key, 1) + n     # a cell restarted after a left part
    work = SweepWork(data_root, storage, interleaved(sp, todo), done_before, part, restore_path)
    # search data (train + val only) is read once per task and shared with every trial
    tasks = {c.task.name: c.task for c in work.todo}
    work.search_data = {name: load_for_phase(t, data_root, sp.profile, "search")
                        for name, t in tasks.items()}
    # every planned cell gets a trainable entry: a resumed experiment re-adds its finished trials
    for c in every:
        cell = cell_spec(args, sp, c, data_root, storage)
        work.cells[c.key] = (cell, c.method)
        if c.key in done_before:
            continue
        meta = row_meta(cell, c.method, c.task, work.search_data[c.task.name].source, sp.name,
                        {ATTEMPT_TAG: attempts[c.key]} if c.key in attempts else None,
                        data=sp.data_facts.get(c.task.name))
        work.meta[c.key] = dict(meta, content=c.content, attempt=attempts.get(c.key, 1))
    return work


def execute(args, sp: SweepPlan, work: SweepWork, tracker, sweep_run: str,
            progress: Callable[[dict], None]) -> None:
    """Run the work's cells in one Tune experiment (new, or the interrupted one resumed)."""
    from harness.engine.registry import FinalDataLoader
    from harness.engine.run import run_cells
    from harness.engine.watchdog import trial_limits
    from harness.studies import storage_url
    from harness.sweep.ray_session import trial_slots

    if work.restore_path:
        print(f"resuming the interrupted sweep from {work.restore_path} "
              f"({len(work.todo)} unfinished cell(s))", flush=True)
    run_cells(work.cells, [c.plan for c in work.todo], work.search_data, name=work.part,
              storage_path=work.storage, results_dir=str(sp.results_dir), meta=work.meta,
              final_loader=FinalDataLoader({t.name: t for t in sp.tasks}, str(work.data_root),
                                           sp.profile),
              max_concurrent=trial_slots(args), max_failures=args.max_failures,
              workers=args.workers_per_trial, cpus=args.cpus_per_trial or 1.0,
              gpus=args.gpus_per_trial or 0.0, tracker=tracker, sweep_run_id=sweep_run,
              progress=progress, restore_path=work.restore_path,
              study_storage=storage_url(sp.sweep_dir),
              limits=trial_limits({c.key: (sp.profile, c.plan.max_t) for c in work.todo},
                                  sp.trial_timeout, sp.trial_timeout_given))
