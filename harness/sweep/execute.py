"""The cells a run of a sweep executes: which are left, their data and trial specs, and the run."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.engine.plan import done_marker
from harness.keys import ATTEMPT_TAG
from harness.sweep.parts import (attempt_of, cell_failed, earlier_attempts, interrupted_cells,
                                 lost_rows, next_part, record_part,
                                 refuse_retry_while_interrupted, retire_cells)
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
    retry: list[tuple[str, Path]] = field(default_factory=list)  # (cell, marker) to move aside
    lost: list[tuple[str, Path]] = field(default_factory=list)   # done markers that lost rows
    deferred: list[str] = field(default_factory=list)  # lost cells left for the next run
    new_part: dict[str, Any] | None = None             # the part plan.json gets (None: resume)

    def unfinished(self, results_dir: Path) -> list[str]:
        """Cells of this run without their done marker (every cell ends with one, failed too),
        and cells that lost their rows but could not run again in this run."""
        return [c.key for c in self.todo
                if not done_marker(results_dir, c.key, c.content).exists()] + self.deferred


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
    under ``--retry-failed``, or finished but without their rows), the part they run in, their
    search data and row metadata. Refusals (damaged result parts, a changed plan, unreadable
    data) come from here, and nothing is written: :func:`commit_work` does that."""
    from harness.engine.rows import row_meta
    from harness.results import DamagedResults, damaged_parts
    from harness.trial.data import load_for_phase

    damaged = damaged_parts(sp.results_dir)
    if damaged:
        raise DamagedResults("\n".join(str(e) for e in damaged))
    every, todo, done_before, retry, lost = plan_cells(sp), [], set(), [], []
    for c in every:
        marker = done_marker(sp.results_dir, c.key, c.content)
        if marker.exists():
            why = lost_rows(sp.results_dir, c.key, marker)
            if why:
                # a done marker never outlives its rows: the cell is unfinished and runs again
                print(f"warning: cell {c.key} was marked finished, but {why}; it runs again "
                      f"(its marker is kept under {sp.results_dir / 'superseded'})",
                      file=sys.stderr, flush=True)
                lost.append((c, marker))
                continue
            if not (args.retry_failed and cell_failed(marker, c.plan.seeds)):
                done_before.add(c.key)
                continue
            retry.append((c.key, marker))
        todo.append(c)
    pending = interrupted_cells(sp.sweep_dir, sp.results_dir)
    if retry:
        refuse_retry_while_interrupted(pending)
    deferred = []
    if lost and pending:
        # the interrupted experiment is resumed as it was: a lost cell cannot join it
        deferred = [c.key for c, _ in lost]
        print(f"note: {len(deferred)} cell(s) that lost their rows run again once the interrupted "
              f"cells are finished: run the same command again after this run", file=sys.stderr)
    else:
        todo += [c for c, _ in lost]
    attempts = {key: attempt_of(sp.results_dir, marker) for key, marker in retry}
    if not deferred:
        attempts.update({c.key: attempt_of(sp.results_dir, m) for c, m in lost})
    part, restore_path, new_part = next_part(sp.sweep_dir, storage, sp.name, todo, sp.results_dir)
    for key, n in earlier_attempts(sp.sweep_dir, part, [c.key for c in todo]).items():
        attempts[key] = attempts.get(key, 1) + n     # a cell restarted after a left part
    work = SweepWork(data_root, storage, interleaved(sp, todo), done_before, part, restore_path,
                     retry=retry, lost=[] if deferred else [(c.key, m) for c, m in lost],
                     deferred=deferred, new_part=new_part)
    # search data (train + val only) is read once per task and shared with every trial
    tasks = {c.task.name: c.task for c in work.todo}
    work.search_data = {name: load_for_phase(t, data_root, sp.profile, "search")
                        for name, t in tasks.items()}
    # every planned cell gets a trainable entry: a resumed experiment re-adds its finished trials
    for c in every:
        cell = cell_spec(args, sp, c, data_root, storage)
        work.cells[c.key] = (cell, c.method)
        if c.key in done_before or c.key in deferred:
            continue
        meta = row_meta(cell, c.method, c.task, work.search_data[c.task.name].source, sp.name,
                        {ATTEMPT_TAG: attempts[c.key]} if c.key in attempts else None,
                        data=sp.data_facts.get(c.task.name))
        work.meta[c.key] = dict(meta, content=c.content, attempt=attempts.get(c.key, 1))
    return work


def commit_work(sp: SweepPlan, work: SweepWork) -> None:
    """Write what :func:`prepare_work` decided: failed (``--retry-failed``) and row-less cells
    move aside (kept under ``results/superseded/``), a new part goes into ``plan.json``."""
    sp.results_dir.mkdir(parents=True, exist_ok=True)
    if work.retry:
        retire_cells(sp.sweep_dir, sp.results_dir, work.retry, "retrying")
    if work.lost:
        retire_cells(sp.sweep_dir, sp.results_dir, work.lost, "running again")
    record_part(sp.sweep_dir, work.new_part)


def execute(args, sp: SweepPlan, work: SweepWork, tracker, sweep_run: str,
            progress: Callable[[dict], None]):
    """Run the work's cells in one Tune experiment (new, or the interrupted one resumed); returns
    the experiment's :class:`~harness.engine.callback.SweepCallback`."""
    from harness.engine.registry import FinalDataLoader
    from harness.engine.run import run_cells
    from harness.engine.watchdog import trial_limits
    from harness.studies import storage_url
    from harness.sweep.ray_session import trial_slots

    if work.restore_path:
        print(f"resuming the interrupted sweep from {work.restore_path} "
              f"({len(work.todo)} unfinished cell(s))", flush=True)
    return run_cells(work.cells, [c.plan for c in work.todo], work.search_data, name=work.part,
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
