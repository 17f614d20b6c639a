"""A sweep's plan, resolved without starting Ray: profile, tasks, methods, coverage and its cells."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.errors import DataError


@dataclass
class SweepPlan:
    """Everything a sweep needs before it runs (also what ``--dry-run`` prints)."""

    profile: Any                       # harness.profiles.Profile, budgets overridden by flags
    tasks: list                        # harness.suites.base.Task, in suite order
    methods: list                      # harness.methods.contract.Method, in run order
    broken: dict                       # method name -> discovery entry of an unavailable plugin
    name: str                          # the sweep's name (--name or <suite>-<profile>)
    runs: Path                         # --runs-dir, resolved
    data_root: Path | None             # --data-root; None: synthetic data under runs/data
    coverage: dict[tuple[str, str], str]   # (task, method) -> "planned" | "skip: <why>"

    @property
    def sweep_dir(self) -> Path:
        return self.runs / self.name

    @property
    def results_dir(self) -> Path:
        return self.sweep_dir / "results"

    @property
    def synthetic_root(self) -> Path:
        return self.runs / "data" / "synthetic"

    @property
    def synthetic(self) -> bool:
        """Whether the sweep runs on synthetic data with tiny bodies (quick/smoke profiles)."""
        return self.data_root is None or self.profile.name in ("quick", "smoke")

    def planned(self) -> list[tuple[Any, Any]]:
        """(task, method) pairs that run: every method that supports the task."""
        return [(t, m) for t in self.tasks for m in self.methods
                if self.coverage[(t.name, m.name)] == "planned"]


@dataclass
class CellEntry:
    """One planned cell: its task and method, its search plan and its content key."""

    task: Any
    method: Any
    plan: Any                          # harness.engine.plan.CellPlan
    content: str                       # harness.engine.plan.cell_content_key
    description: dict                  # harness.engine.plan.cell_description (for plan.json)

    @property
    def key(self) -> str:
        return self.plan.key

    @property
    def saved(self) -> dict[str, Any]:
        """The cell as ``plan.json`` records it."""
        return {"content": self.content, "description": self.description}


#: numeric flags: (attribute, the smallest value allowed, what is allowed, what the value is for)
FLAG_LIMITS = (("num_samples", 1, "an integer >= 1", "search trials per cell"),
               ("seeds", 1, "an integer >= 1",
                "final runs per cell on the test split; with 0 nothing would be ranked"),
               ("stage_reuse", 1, "an integer >= 1", "search trials per stage-1 configuration"),
               ("max_concurrent", 1, "an integer >= 1", "trials run at once"),
               ("workers_per_trial", 1, "an integer >= 1", "workers per trial"),
               ("max_failures", 0, "an integer >= 0", "retries of a trial that raises"),
               ("cpus_per_trial", 1e-9, "a number above 0", "CPUs per trial"),
               ("gpus_per_trial", 0, "a number >= 0", "GPUs per trial"))


def check_flags(args) -> None:
    """Refuse numeric flags out of range (ValueError naming each flag, its value and what is
    allowed), before anything is written or started."""
    bad = [f"--{attr.replace('_', '-')} {value} is not allowed: it must be {allowed} ({what})"
           for attr, low, allowed, what in FLAG_LIMITS
           if (value := getattr(args, attr, None)) is not None and value < low]
    if bad:
        raise ValueError("; ".join(bad))


def plan_sweep(args) -> SweepPlan:
    """Resolve everything a sweep needs without starting Ray (also what --dry-run prints)."""
    from harness.methods.discovery import discover, get_method
    from harness.profiles import get_profile
    from harness.suites import select_tasks

    profile = get_profile(args.profile)
    check_flags(args)
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
    data_root = Path(args.data_root).resolve() if args.data_root else None
    if data_root is None and profile.name not in ("quick", "smoke"):
        raise ValueError(
            f"profile {profile.name!r} runs on the real PDEBench files: pass --data-root DIR "
            f"(get them with `python -m harness.data download --suite {args.suite} --root DIR`), or "
            f"use --profile quick for synthetic data.")
    coverage = {}
    for t in tasks:
        for m in methods:
            ok, why = m.supports(t)
            coverage[(t.name, m.name)] = "planned" if ok else f"skip: {why}"
    return SweepPlan(profile=profile, tasks=tasks, methods=methods,
                     broken={n: e for n, e in entries.items() if not e.available},
                     name=args.name or f"{args.suite}-{profile.name}",
                     runs=Path(args.runs_dir).resolve(), data_root=data_root, coverage=coverage)


def plan_cells(sp: SweepPlan) -> list[CellEntry]:
    """Every planned cell with its search plan and content key, in task-then-method order."""
    from harness.engine.plan import CellPlan, cell_content_key, cell_description

    prof, cells = sp.profile, []
    for t, m in sp.planned():
        plan = CellPlan.of(t, m, num_samples=prof.num_samples, seeds=prof.seeds,
                           max_t=prof.epochs(t.defaults.epochs), grace_period=prof.grace_period,
                           stage_reuse=prof.stage_reuse)
        cells.append(CellEntry(t, m, plan, cell_content_key(t, m, prof, plan),
                               cell_description(t, m, prof, plan)))
    return cells


def interleaved(sp: SweepPlan, cells: list[CellEntry]) -> list[CellEntry]:
    """``cells`` method by method, tasks in turn: concurrent trials hit different tasks."""
    order_m = [m.name for m in sp.methods]
    order_t = [t.name for t in sp.tasks]
    return sorted(cells, key=lambda c: (order_m.index(c.method.name), order_t.index(c.task.name)))


def ensure_data(sp: SweepPlan, log=print) -> Path:
    """The data root to read; in the quick profile, synthetic files are generated on first use."""
    from harness.data.readers import find_file

    if sp.data_root is not None:
        return sp.data_root
    root = sp.synthetic_root
    missing = []
    for t in sp.tasks:
        try:
            find_file(t.file, root, t.name)
        except DataError:
            missing.append(t.name)
    if missing:
        from harness.data import synth

        log(f"generating synthetic data for {len(missing)} task(s) in {root} "
            f"(size {sp.profile.synthetic_size}; first use only) ...")
        t0 = time.perf_counter()
        synth.generate_suite(root, size=sp.profile.synthetic_size, seed=0, tasks=missing,
                             progress=lambda *a, **k: None)
        log(f"  done in {time.perf_counter() - t0:.1f} s")
    return root
