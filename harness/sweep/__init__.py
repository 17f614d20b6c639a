"""``python -m harness.sweep --suite pdebench``: every method on every task, fairly, then a leaderboard.

Per (task, method) cell: a Ray Tune search (Optuna TPE, paper defaults first, ASHA) on the
validation split, then the selected configuration re-run with N seeds on the test split. Cells run
concurrently in one Tune experiment (:mod:`harness.engine`); results land in a parquet table (the
source of truth), in MLflow (one experiment per suite, a parent run per sweep, nested cell and
trial runs), and in a leaderboard.

With no flag but ``--suite`` it runs on a laptop CPU: synthetic data (generated on first use), tiny
random-initialised backbones and small budgets (profile ``quick``). ``--profile paper`` uses the
paper's backbones, epochs and budgets on real data.

Modules: :mod:`~harness.sweep.planning` (the plan, without Ray), :mod:`~harness.sweep.parts`
(``plan.json``, resume, ``--retry-failed``), :mod:`~harness.sweep.execute` (this run's cells),
:mod:`~harness.sweep.report` (what is printed and published), :mod:`~harness.sweep.preflight`
(bodies, data and tracking store checked before Ray starts), :mod:`~harness.sweep.tracking` (the
sweep's MLflow run, guarded, and caught up from the table after an outage),
:mod:`~harness.sweep.ray_session` and :mod:`~harness.sweep.cli` (the command and :func:`run`);
:mod:`~harness.sweep.paths` (the name and folders, checked first), :mod:`~harness.sweep.lock`
(one sweep per name at a time) and :mod:`~harness.sweep.leftovers` (the Ray processes a killed
sweep left, ended by pid).
"""
from __future__ import annotations

from harness.sweep.cli import (EXIT_FAILED_CELLS, EXIT_INTERRUPTED, EXIT_STOPPED, build_parser, main,
                              run)
from harness.sweep.parts import (PlanChanged, cell_failed, load_plan, plan_diff, resume_plan,
                                 retire_failed, save_plan)
from harness.sweep.planning import CellEntry, SweepPlan, ensure_data, plan_sweep
from harness.sweep.report import coverage_matrix, dry_run_text

__all__ = ["EXIT_FAILED_CELLS", "EXIT_INTERRUPTED", "EXIT_STOPPED", "CellEntry", "PlanChanged", "SweepPlan",
           "build_parser", "cell_failed", "coverage_matrix", "dry_run_text", "ensure_data",
           "load_plan", "main", "plan_diff", "plan_sweep", "resume_plan", "retire_failed", "run",
           "save_plan"]
