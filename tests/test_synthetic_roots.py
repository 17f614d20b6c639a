"""A smoke sweep's tiny synthetic files are never read by a quick sweep in the same runs folder."""
from __future__ import annotations

from harness.profiles import get_profile
from harness.suites import get_suite
from harness.sweep import ensure_data
from harness.sweep.planning import SweepPlan


def _plan(profile: str, runs) -> SweepPlan:
    tasks = [get_suite("pdebench")["advection"]]
    return SweepPlan(profile=get_profile(profile), tasks=tasks, methods=[], broken={}, name=profile,
                     runs=runs, data_root=None, coverage={})


def test_each_synthetic_size_has_its_own_folder(tmp_path):
    runs = tmp_path / "runs"
    smoke, quick = _plan("smoke", runs), _plan("quick", runs)
    assert quick.synthetic_root == runs / "data" / "synthetic"       # the documented place
    assert smoke.synthetic_root == runs / "data" / "synthetic-tiny"
    task = smoke.tasks[0]
    logs: list[str] = []
    ensure_data(smoke, log=logs.append)
    n_smoke = len(task.load(smoke.synthetic_root, splits=("train",)).split("train")[0])
    logs.clear()
    ensure_data(quick, log=logs.append)      # the smoke files exist, but not at the quick size
    assert any("generating synthetic data for 1 task(s)" in line for line in logs)
    n_quick = len(task.load(quick.synthetic_root, splits=("train",)).split("train")[0])
    assert n_quick > n_smoke
