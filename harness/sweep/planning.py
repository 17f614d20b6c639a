"""A sweep's plan, resolved without starting Ray: profile, tasks, methods, coverage and its cells."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
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
    #: --trial-timeout in seconds (None: no limit), and whether it was given (else: the profile's)
    trial_timeout: float | None = None
    trial_timeout_given: bool = False
    #: task -> what its data file is (harness.data.facts.DataFacts), filled by ensure_data
    data_facts: dict = field(default_factory=dict)

    @property
    def sweep_dir(self) -> Path:
        return self.runs / self.name

    @property
    def results_dir(self) -> Path:
        return self.sweep_dir / "results"

    @property
    def synthetic_root(self) -> Path:
        """Where generated files go: one folder per synthetic size (``small``, the quick profile's,
        at ``runs/data/synthetic``), so that a smoke sweep's tiny files are never read by a quick
        sweep in the same runs folder (files are generated only where missing)."""
        size = self.profile.synthetic_size
        return self.runs / "data" / ("synthetic" if size == "small" else f"synthetic-{size}")

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
    from harness.sweep.paths import check_data_root, check_name, check_runs_dir

    if args.name is not None:
        check_name(args.name)
    runs = check_runs_dir(args.runs_dir)
    profile = get_profile(args.profile, suite=args.suite)
    check_flags(args)
    from harness.engine.watchdog import parse_duration

    raw_timeout = getattr(args, "trial_timeout", None)
    trial_timeout = parse_duration(raw_timeout)       # ValueError: exit 2 naming the value
    profile = profile.with_overrides(num_samples=args.num_samples, seeds=args.seeds,
                                     stage_reuse=args.stage_reuse)
    tasks = select_tasks(args.suite, args.tasks)
    entries = discover()
    if args.methods:
        names = [m.strip() for m in args.methods.split(",") if m.strip()]
    else:
        # the compared methods first, then the floors (reference predictors); a method that
        # declares in_default_sweep = False runs only when --methods names it
        names = sorted((n for n, e in entries.items()
                        if e.available and getattr(e.method, "in_default_sweep", True)),
                       key=lambda n: (getattr(entries[n].method, "role", "method") == "floor", n))
    methods = [get_method(n, entries) for n in names]
    data_root = check_data_root(args.data_root) if args.data_root else None
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
    for cell in dropped_cells(getattr(args, "drop_cell", None), coverage):
        coverage[cell] = "skip: left out (--drop-cell)"
    return SweepPlan(profile=profile, tasks=tasks, methods=methods,
                     broken={n: e for n, e in entries.items() if not e.available},
                     name=args.name or f"{args.suite}-{profile.name}",
                     runs=runs, data_root=data_root, coverage=coverage,
                     trial_timeout=trial_timeout, trial_timeout_given=raw_timeout is not None)


def dropped_cells(values: list[str] | None, coverage: dict[tuple[str, str], str]
                  ) -> list[tuple[str, str]]:
    """(task, method) of each ``--drop-cell TASK/METHOD`` (``:`` also separates; commas list
    several); a cell the sweep does not have raises ValueError naming it and the cells it has."""
    out = []
    for value in values or []:
        for item in filter(None, (v.strip() for v in value.split(","))):
            task, sep, method = item.replace(":", "/").partition("/")
            if not sep or (task, method) not in coverage:
                have = ", ".join(f"{t}/{m}" for (t, m), c in coverage.items() if c == "planned")
                raise ValueError(f"--drop-cell {item!r}: expected TASK/METHOD, one of this "
                                 f"sweep's cells: {have}")
            out.append((task, method))
    return out


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
    """The data root to read; in the quick profile, synthetic files are generated on first use.
    Also records what each task's file is (``sp.data_facts``: size, samples, md5, verified)."""
    root = sp.data_root if sp.data_root is not None else _synthetic_data(sp, log)
    from harness.data.facts import describe_data

    for t in sp.tasks:
        try:
            facts = describe_data(t, root, md5_cache=sp.runs / "data" / "md5-cache.json", log=log)
        except DataError:
            continue          # reading the task's data says what is wrong, in its own words
        if facts is not None:
            sp.data_facts[t.name] = facts
    return root


def _synthetic_data(sp: SweepPlan, log) -> Path:
    """The synthetic data root, with the files that are missing generated (first use only)."""
    from harness.data.readers import find_file

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
