"""Faults: a driver killed mid-sweep resumes without rerunning or duplicating anything; a changed
plan is refused with its difference shown; a raising trial and a NaN trial get their statuses."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.data import synth

TASKS = "advection,darcy"
METHODS = "nft,recraft"


def _cmd(data, runs, *extra):
    return [sys.executable, "-m", "harness.sweep", "--suite", "pdebench", "--tasks", TASKS,
            "--methods", METHODS, "--profile", "smoke", "--num-samples", "2", "--seeds", "2",
            "--data-root", str(data), "--runs-dir", str(runs), "--name", "resume", *extra]


def _env():
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    return env


def _kill_group(proc):
    """kill -9 the driver, then reap what it leaves behind (Ray's agents outlive a killed driver)."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(2)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    time.sleep(1)


def _start_until_a_cell_is_done(data, runs, cells_dir, log_path):
    """Start the sweep as its own process group; return once a cell has finished (or it ended)."""
    log = open(log_path, "w")
    proc = subprocess.Popen(_cmd(data, runs), stdout=log, stderr=subprocess.STDOUT, env=_env(),
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if cells_dir.exists() and len(list(cells_dir.glob("*.json"))) >= 1:
            break
        time.sleep(0.5)
    return proc


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume-data")
    for t in TASKS.split(","):
        synth.generate(t, root, size="tiny", seed=0)
    return root


def test_driver_killed_mid_sweep_resumes_without_rerun_or_duplicates(data, tmp_path):
    runs = tmp_path / "runs"
    cells_dir = runs / "resume" / "results" / "cells"
    proc = _start_until_a_cell_is_done(data, runs, cells_dir, tmp_path / "first.log")
    assert proc.poll() is None, "the sweep ended before it could be killed: " + \
        (tmp_path / "first.log").read_text()[-2000:]
    _kill_group(proc)
    before = {p.name: p.stat().st_mtime_ns for p in cells_dir.glob("*.json")}
    assert 1 <= len(before) < 4

    # a changed plan for the unfinished cells is refused, with the difference and a new name
    cmd = _cmd(data, runs)
    cmd[cmd.index("--num-samples") + 1] = "3"
    changed = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert changed.returncode == 2, changed.stdout[-2000:] + changed.stderr[-2000:]
    assert "num_samples: 2 -> 3" in changed.stderr
    assert "--name resume-2" in changed.stderr

    done = subprocess.run(_cmd(data, runs), capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "resuming the interrupted sweep" in done.stdout
    after = {p.name: p.stat().st_mtime_ns for p in cells_dir.glob("*.json")}
    assert len(after) == 4
    for name, mtime in before.items():            # finished cells were not run again
        assert after[name] == mtime

    df = pd.read_parquet(runs / "resume" / "results.parquet")
    for (t, m), cell in df.groupby(["task", "method"]):
        assert (cell.phase == "search").sum() == 2, (t, m)
        final = cell[cell.phase == "final"]
        assert sorted(final.seed.astype(int)) == [1, 1, 2, 2], (t, m)
        assert final.status.eq("ok").all(), final[["status", "error"]]

    from harness.tracking import runs_tree

    tree = runs_tree(f"sqlite:///{runs / 'mlflow.db'}", "pdebench")
    assert (tree.kind == "sweep").sum() == 1
    assert (tree.kind == "cell").sum() == 4
    trials = tree[tree.kind == "trial"]
    assert len(trials) == trials.run_key.nunique()          # no duplicated run
    assert len(trials) >= 4 * 4
    running = tree[tree.status.eq("RUNNING")]
    assert running.empty, running[["kind", "name", "task", "method", "phase"]].to_string()


FAULTY = textwrap.dedent('''
    import math
    import numpy as np
    from harness.methods.contract import Method, Stage
    from harness.methods.space import Fixed, LogFloat

    class _Base(Method):
        version = "1"
        stages = (Stage("fit", ("fit.lr",)),)

        def search_space(self, task):
            return {"fit.lr": LogFloat(1e-3, 1e-1)}

        def defaults(self, task):
            return {"fit.lr": 1e-2}

    class Raises(_Base):
        """Always raises: retried, then recorded as failed."""
        name = "always-raises"

        def stage_fit(self, ctx, config, upstream):
            raise RuntimeError("boom: this method always fails")

    class GoesNaN(_Base):
        """Reports a NaN loss in its second epoch: stopped as diverged."""
        name = "goes-nan"

        def stage_fit(self, ctx, config, upstream):
            for epoch in (1, 2, 3):
                loss = 1.0 if epoch == 1 else float("nan")
                ctx.check_finite("train_loss", loss)
                ctx.report(epoch, {ctx.metric_key: 0.5, "train_loss": loss})
            return {"metrics": {}}
''')


def test_raising_and_nan_trials_are_recorded_and_the_sweep_completes(data, tmp_path, monkeypatch):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "faulty.py").write_text(FAULTY)
    (plugins / "nft.py").write_text((Path(__file__).parents[1] / "baselines" / "nft.py").read_text())
    from harness.methods import discovery

    monkeypatch.setattr(discovery, "BASELINES_DIR", plugins)
    from harness.sweep import main

    rc = main(["--suite", "pdebench", "--tasks", "advection", "--methods",
               "always-raises,goes-nan,nft", "--profile", "smoke", "--num-samples", "2",
               "--seeds", "1", "--max-failures", "1", "--data-root", str(data),
               "--runs-dir", str(tmp_path / "runs"), "--name", "faults"])
    assert rc == 3          # the sweep ended, but two cells have failed runs
    df = pd.read_parquet(tmp_path / "runs" / "faults" / "results.parquet")
    raises = df[df.method == "always-raises"]
    assert set(raises[raises.phase == "search"].status) == {"failed"}
    assert raises[raises.phase == "search"].error.str.contains("boom").all()
    nan = df[df.method == "goes-nan"]
    assert set(nan[nan.phase == "search"].status) == {"diverged"}
    # neither produced a selectable config: each shows as one failed final cell
    for m in ("always-raises", "goes-nan"):
        final = df[(df.method == m) & (df.phase == "final")]
        assert list(final.status) == ["failed"] and final.error.str.contains("no configuration").all()
    assert df[(df.method == "nft") & (df.phase == "final") & (df.split == "test")].status.eq("ok").all()
    board = (tmp_path / "runs" / "faults" / "leaderboard" / "leaderboard.md").read_text()
    assert "always-raises" in board and "✗" in board

    # the bug is fixed (same method version, so the cell is not "new"): a plain rerun skips the
    # finished cells; --retry-failed runs the failed ones again and keeps their old rows aside
    (plugins / "faulty.py").write_text(FAULTY.replace(
        'raise RuntimeError("boom: this method always fails")',
        'ctx.report(1, {ctx.metric_key: 0.3, "test_nrmse": 0.3})\n'
        '        return {"metrics": {ctx.metric_key: 0.3, "test_nrmse": 0.3}}'))
    args = ["--suite", "pdebench", "--tasks", "advection", "--methods", "always-raises,goes-nan,nft",
            "--profile", "smoke", "--num-samples", "2", "--seeds", "1", "--max-failures", "1",
            "--data-root", str(data), "--runs-dir", str(tmp_path / "runs"), "--name", "faults"]
    nft_marker = sorted((tmp_path / "runs" / "faults" / "results" / "cells").glob("advection__nft-*"))
    mtime = nft_marker[0].stat().st_mtime
    assert main(args + ["--retry-failed"]) == 3          # goes-nan still diverges
    assert nft_marker[0].stat().st_mtime == mtime        # a cell that was fine is not rerun
    df2 = pd.read_parquet(tmp_path / "runs" / "faults" / "results.parquet")
    fixed = df2[(df2.method == "always-raises")]
    assert set(fixed.status) <= {"ok", "stopped"}        # only the new attempt's rows
    assert fixed[(fixed.phase == "final") & (fixed.split == "test")].value.tolist() == [0.3]
    assert len(df2[df2.method == "nft"]) == len(df[df.method == "nft"])
    old = pd.concat([pd.read_parquet(f) for f in
                     (tmp_path / "runs" / "faults" / "results" / "superseded").rglob("*.parquet")])
    assert set(old.method) == {"always-raises", "goes-nan"}     # kept, not deleted
    assert "boom" in " ".join(old.error.dropna())
    from harness.tracking import runs_tree

    tree = runs_tree(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}", "pdebench")
    cells = tree[(tree.kind == "cell") & (tree.method == "always-raises")]
    assert sorted(cells.status) == ["FAILED", "FINISHED"]     # the failed attempt stays visible


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(data, tmp_path):
    runs = tmp_path / "runs"
    cells_dir = runs / "resume" / "results" / "cells"
    proc = _start_until_a_cell_is_done(data, runs, cells_dir, tmp_path / "first.log")
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGINT)                     # what Ctrl-C sends
    try:
        rc = proc.wait(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)          # reap anything left behind
        except ProcessLookupError:
            pass
    out = (tmp_path / "first.log").read_text()
    assert rc == 130, out[-3000:]
    assert "run the same command again to resume" in out
    done = subprocess.run(_cmd(data, runs), capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len(list(cells_dir.glob("*.json"))) == 4
    df = pd.read_parquet(runs / "resume" / "results.parquet")
    assert (df.phase == "search").sum() == 4 * 2
    assert (df[df.phase == "final"].split == "test").sum() == 4 * 2
