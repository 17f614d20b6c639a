"""Real sweeps against each other (issue 13, items 2 and 8): a second sweep of a running one is
refused at once; after a ``kill -9`` of the driver, the Ray processes it left running are found by
their recorded pid and ended by the next sweep's start or by ``--cleanup``, and the stale lock is
taken over.

The sweep runs a plugin method whose trial waits for a gate file, so the first sweep is
certainly still running (or certainly killed mid-trial) when the test acts.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from harness.data import synth

pytestmark = pytest.mark.slow

GATED = textwrap.dedent('''
    import os, time
    from pathlib import Path
    from harness.methods.contract import Method, Stage
    from harness.methods.space import LogFloat

    GATE = Path(GATE_PATH)

    class Gated(Method):
        """Says it started (its worker's pid), then waits for the test to open the gate."""
        name = "gated"
        version = "1"
        stages = (Stage("fit", ("fit.lr",)),)

        def search_space(self, task):
            return {"fit.lr": LogFloat(1e-3, 1e-1)}

        def defaults(self, task):
            return {"fit.lr": 1e-2}

        def stage_fit(self, ctx, config, upstream):
            (GATE.parent / "started").write_text(str(os.getpid()))
            for _ in range(1500):
                if GATE.exists():
                    break
                time.sleep(0.1)
            ctx.report(1, {ctx.metric_key: 0.3, "test_nrmse": 0.3})
            return {"metrics": {ctx.metric_key: 0.3, "test_nrmse": 0.3}}
''')

# a sweep whose methods come from the test's plugin folder (argv[1]); the rest is the sweep's argv
DRIVER = textwrap.dedent('''
    import sys
    from pathlib import Path
    from harness.methods import discovery

    discovery.BASELINES_DIR = Path(sys.argv[1])
    from harness.sweep import main

    sys.exit(main(sys.argv[2:]))
''')


def _env():
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("leftover-data")
    synth.generate("advection", root, size="tiny", seed=0)
    return root


class GatedSweep:
    """The sweep command, its plugin folder and its gate."""

    def __init__(self, tmp_path: Path, data: Path, name: str):
        self.plugins = tmp_path / "plugins"
        self.plugins.mkdir()
        self.gate = self.plugins / "gate"
        (self.plugins / "gated.py").write_text(GATED.replace("GATE_PATH", repr(str(self.gate))))
        self.runs, self.name = tmp_path / "runs", name
        self.args = ["--suite", "pdebench", "--tasks", "advection", "--methods", "gated",
                     "--profile", "smoke", "--num-samples", "1", "--seeds", "1",
                     "--data-root", str(data), "--runs-dir", str(self.runs), "--name", name]
        self.cmd = [sys.executable, "-c", DRIVER, str(self.plugins), *self.args]
        self.record_file = self.runs / name / "ray_processes.json"

    def start_until_a_trial_runs(self, log: Path) -> subprocess.Popen:
        """Start the sweep; return once its trial waits at the gate and the pid record lists
        the trial's worker (so the raylet's agents, started before it, are recorded too)."""
        proc = subprocess.Popen(self.cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                env=_env(), start_new_session=True)
        started = self.plugins / "started"
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if started.exists() and self.record_file.exists() and started.read_text():
                pids = {e["pid"] for e in json.loads(self.record_file.read_text())["processes"]}
                if int(started.read_text()) in pids:
                    return proc
            time.sleep(0.3)
        raise AssertionError(f"the sweep's trial did not start (exit {proc.poll()}):\n"
                             + log.read_text()[-3000:])

    def recorded(self) -> list[dict]:
        return json.loads(self.record_file.read_text())["processes"]


def _running(entries: list[dict]) -> list[int]:
    """Recorded processes still running: same pid, same start time."""
    out = []
    for e in entries:
        try:
            p = psutil.Process(e["pid"])
            if abs(p.create_time() - e["pid_started"]) < 0.01 and p.status() != psutil.STATUS_ZOMBIE:
                out.append(e["pid"])
        except psutil.Error:
            pass
    return out


def _reap(proc: subprocess.Popen, entries: list[dict]) -> None:
    """Test hygiene whatever happened: end the sweep's group and every recorded process."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in _running(entries):
        os.kill(pid, signal.SIGKILL)


def test_second_sweep_refused_then_the_killed_ones_lock_and_ray_processes_are_taken_over(
        data, tmp_path):
    sweep = GatedSweep(tmp_path, data, "locked")
    first = sweep.start_until_a_trial_runs(tmp_path / "first.log")
    entries = sweep.recorded()
    try:
        # the same --name and --runs-dir while the first runs: refused at once, nothing touched
        plan_before = (sweep.runs / "locked" / "plan.json").read_text()
        second = subprocess.run(sweep.cmd, capture_output=True, text=True, env=_env(), timeout=120)
        assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
        assert f"sweep 'locked' in {sweep.runs} is already running: pid {first.pid}" in second.stderr
        assert "resuming" not in second.stdout + second.stderr
        assert (sweep.runs / "locked" / "plan.json").read_text() == plan_before

        first.send_signal(signal.SIGKILL)                  # kill -9 of the driver, mid-trial
        first.wait(timeout=30)
        entries = sweep.recorded()
        assert len(entries) >= 3                           # gcs, raylet, agents, workers ...
        time.sleep(3)
        left = _running(entries)
        assert left, "expected Ray processes to outlive the killed driver"   # what issue 13 saw

        sweep.gate.write_text("open")
        third = subprocess.run(sweep.cmd, capture_output=True, text=True, env=_env(), timeout=400)
        out = third.stdout + third.stderr
        assert third.returncode == 0, out[-4000:]
        assert f"taking over the lock of sweep 'locked' left by pid {first.pid}" in out
        assert f"Ray process(es) left running by an earlier run of sweep 'locked' (driver pid " \
               f"{first.pid})" in out
        for pid in left:
            assert f"(pid {pid})" in out
        assert _running(entries) == []
    finally:
        _reap(first, entries)

    assert not (sweep.runs / "locked" / "sweep.lock").exists()       # released at the end
    assert not sweep.record_file.exists()                             # its Ray ended cleanly
    plan = json.loads((sweep.runs / "locked" / "plan.json").read_text())
    assert len(plan["parts"]) == 1                      # one part: the second never planned
    df = pd.read_parquet(sweep.runs / "locked" / "results.parquet")
    final = df[(df.phase == "final") & (df.split == "test")]
    assert final.status.tolist() == ["ok"] and final.value.tolist() == [0.3]
    from harness.tracking import runs_tree

    tree = runs_tree(f"sqlite:///{sweep.runs / 'mlflow.db'}", "pdebench")
    assert (tree.kind == "sweep").sum() == 1 and (tree.kind == "cell").sum() == 1


def test_cleanup_ends_what_a_killed_sweep_left_and_refuses_while_it_runs(data, tmp_path):
    sweep = GatedSweep(tmp_path, data, "tidy")
    cleanup = [sys.executable, "-m", "harness.sweep", "--cleanup", "--name", "tidy",
               "--runs-dir", str(sweep.runs)]
    first = sweep.start_until_a_trial_runs(tmp_path / "first.log")
    entries = sweep.recorded()
    try:
        live = subprocess.run(cleanup, capture_output=True, text=True, env=_env(), timeout=120)
        assert live.returncode == 2, live.stdout + live.stderr
        assert f"already running: pid {first.pid}" in live.stderr
        trial_worker = int((sweep.plugins / "started").read_text())
        assert first.poll() is None and trial_worker in _running(entries)   # nothing ended

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        entries = sweep.recorded()
        time.sleep(3)
        left = _running(entries)
        assert left

        done = subprocess.run(cleanup, capture_output=True, text=True, env=_env(), timeout=120)
        out = done.stdout + done.stderr
        assert done.returncode == 0, out
        assert "Ray process(es) left running by an earlier run of sweep 'tidy'" in out
        assert _running(entries) == []
        assert not sweep.record_file.exists() and not (sweep.runs / "tidy" / "sweep.lock").exists()
        again = subprocess.run(cleanup, capture_output=True, text=True, env=_env(), timeout=120)
        assert again.returncode == 0 and "nothing to end" in again.stdout
    finally:
        _reap(first, entries)
