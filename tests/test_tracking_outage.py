"""A tracking outage never loses results: a real MLflow server killed mid-sweep, the sweep goes on
and writes every row, and a rerun with the server back catches MLflow up without duplicate runs.
Also the pieces on their own: the guarded tracker and the catch-up from a results table."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from harness.data import synth
from harness.engine.catchup import catch_up
from harness.results import normalise
from harness.tracking import RUN_KEY_TAG, Tracker, default_tracking_uri
from harness.tracking.guard import BEHIND_FILE, GuardedTracker

TASK = "advection"
METHODS = "nft,recraft"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(db: Path, port: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    with open(log, "a") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}",
             "--default-artifact-root", str(db.parent / "artifacts"),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                _stop_server(proc)
                raise RuntimeError(f"mlflow server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)


def _stop_server(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)      # a crash, not a clean shutdown
    proc.wait(15)


def _trial_runs_logged(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as con:
        try:
            return con.execute("select count(*) from tags where key='harness.kind' "
                               "and value='trial'").fetchone()[0]
        except sqlite3.OperationalError:     # the schema is not there yet
            return 0


def _cmd(data: Path, runs: Path, uri: str) -> list[str]:
    return [sys.executable, "-m", "harness.sweep", "--suite", "pdebench", "--tasks", TASK,
            "--methods", METHODS, "--profile", "smoke", "--num-samples", "2", "--seeds", "2",
            "--data-root", str(data), "--runs-dir", str(runs), "--name", "outage",
            "--tracking-uri", uri]


def _env() -> dict:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.mark.slow
def test_server_killed_mid_sweep_keeps_every_row_and_a_rerun_catches_mlflow_up(tmp_path):
    data = tmp_path / "data"
    synth.generate(TASK, data, size="tiny", seed=0)
    runs, db, port = tmp_path / "runs", tmp_path / "mlflow" / "mlflow.db", _free_port()
    db.parent.mkdir()
    uri = f"http://127.0.0.1:{port}"
    server = _start_server(db, port, tmp_path / "server.log")
    log_path = tmp_path / "first.log"
    try:
        with open(log_path, "w") as log:
            sweep = subprocess.Popen(_cmd(data, runs, uri), stdout=log, stderr=subprocess.STDOUT,
                                     env=_env(), start_new_session=True)
            try:
                # the server dies once the first trial is in MLflow, and stays down
                deadline = time.monotonic() + 240
                while _trial_runs_logged(db) < 1 and sweep.poll() is None \
                        and time.monotonic() < deadline:
                    time.sleep(0.3)
                _stop_server(server)
                rc = sweep.wait(timeout=280)
            finally:
                if sweep.poll() is None:
                    os.killpg(sweep.pid, signal.SIGKILL)
                    sweep.wait(30)
    finally:
        _stop_server(server)
    out = log_path.read_text()
    assert rc == 0, out[-4000:]
    assert "does not answer" in out and "tracking is behind" in out, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    # every row is in the table: 2 cells x (2 search rows + 2 seeds x (test, val))
    table = pd.read_parquet(runs / "outage" / "results.parquet")
    assert len(table) == 12 and set(table["method"]) == {"nft", "recraft"}
    assert (runs / "outage" / BEHIND_FILE).exists()
    logged_during = _trial_runs_logged(db)
    assert logged_during < 8, "the server died too late to test anything"

    # the server comes back on the same port and database; the rerun logs what was missed
    server = _start_server(db, port, tmp_path / "server.log")
    try:
        again = subprocess.run(_cmd(data, runs, uri), capture_output=True, text=True, env=_env(),
                               timeout=280)
        assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
        assert "caught MLflow up" in again.stdout, again.stdout[-3000:]
        assert "tracking is behind" not in again.stderr
        assert not (runs / "outage" / BEHIND_FILE).exists()
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("pdebench")
        every = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL,
                                   max_results=1000)
    finally:
        _stop_server(server)
    by_kind: dict[str, list] = {}
    for r in every:
        by_kind.setdefault(r.data.tags.get("harness.kind"), []).append(r)
    trials, cells, sweeps = by_kind.get("trial", []), by_kind["cell"], by_kind["sweep"]
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"
    assert len(cells) == 2 and {c.info.status for c in cells} == {"FINISHED"}
    keys = [(r.data.tags["mlflow.parentRunId"], r.data.tags[RUN_KEY_TAG]) for r in trials]
    assert len(keys) == len(set(keys)), "a run key was logged twice"
    # one run per search configuration and per final seed, all closed, each row's values logged
    want = {(m, h) for m, h in zip(table["method"], table["config_hash"])}
    assert len(trials) == 8 and {r.info.status for r in trials} <= {"FINISHED", "FAILED"}
    assert {(r.data.tags["harness.method"], r.data.tags["harness.config_hash"])
            for r in trials} == want
    finals = [r for r in trials if r.data.tags.get("harness.phase") == "final"]
    assert all("test_nrmse" in r.data.metrics for r in finals)


# --------------------------------------------------------------------------- the pieces alone
class _Down:
    """A tracker whose server is gone: every call fails as a refused connection does."""

    tracking_uri, remote, calls = "http://127.0.0.1:1", True, 0

    def log_metrics(self, *a, **k):
        _Down.calls += 1
        raise ConnectionError("[Errno 111] Connection refused")


def test_guarded_tracker_skips_calls_while_down_warns_once_and_notes_it(tmp_path):
    lines: list[str] = []
    guarded = GuardedTracker(_Down(), tmp_path / BEHIND_FILE, retry_after_s=3600,
                             warn=lines.append)
    assert [guarded.log_metrics("r", {"a": 1}, step=i) for i in range(5)] == [None] * 5
    assert _Down.calls == 1                       # tried once, then skipped until retry_after
    assert guarded.failed == 1 and guarded.skipped == 4 and guarded.behind
    assert len(lines) == 1 and "does not answer" in lines[0] and "\n" not in lines[0]
    note = json.loads((tmp_path / BEHIND_FILE).read_text())
    assert note["tracking_uri"] == "http://127.0.0.1:1" and "Connection refused" in note["first_error"]
    assert "tracking is behind" in guarded.summary()


def _rows(sweep: str) -> pd.DataFrame:
    base = dict(sweep=sweep, suite="pdebench", task="advection", method="nft", metric="nrmse",
                direction="min", data_source="synthetic", profile="smoke", role="method")
    rows = [dict(base, phase="search", trial_id=f"t{i}", seed=0, split="val", value=0.5 + i,
                 status="ok", epochs=2, config_hash=f"h{i}", config_json=json.dumps({"lr": i}))
            for i in range(2)]
    for s in range(2):
        for split, v in (("test", 0.4 + s), ("val", 0.3 + s)):
            rows.append(dict(base, phase="final", trial_id=f"seed-{s}", seed=s, split=split,
                             value=v, status="ok", epochs=3, config_hash="h0",
                             config_json=json.dumps({"lr": 0})))
    return normalise(rows)


def test_catch_up_logs_what_the_table_has_once(tmp_path):
    tracker = Tracker(default_tracking_uri(tmp_path), "pdebench")
    sweep = tracker.sweep_run("s")
    rows = _rows("s")
    first = catch_up(tracker, sweep, rows)
    assert (first.trials, first.cells) == (4, 1)         # 2 search configs + 2 final seeds
    again = catch_up(tracker, sweep, rows)
    assert not again                                       # complete: nothing touched
    runs = tracker.search("tags.`harness.kind` = 'trial'")
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    seed1 = [r for r in runs if r.data.tags.get("harness.seed") == "1"][0]
    assert seed1.data.metrics == {"test_nrmse": pytest.approx(1.4), "val_nrmse": pytest.approx(1.3)}
    # a run left open by an outage (RUNNING) is completed in place, not duplicated
    open_one = runs[0].info.run_id
    tracker.client.update_run(open_one, status="RUNNING")
    assert catch_up(tracker, sweep, rows).trials == 1
    assert tracker.get_run(open_one).info.status == "FINISHED"
    assert len(tracker.search("tags.`harness.kind` = 'trial'")) == 4


def test_guarded_tracker_says_when_the_server_answers_again():
    class Flaky:
        tracking_uri, remote, fails = "http://127.0.0.1:9", True, 1

        def set_tags(self, run_id, tags):
            if Flaky.fails:
                Flaky.fails -= 1
                raise ConnectionError("[Errno 111] Connection refused")
            return "ok"

    lines: list[str] = []
    guarded = GuardedTracker(Flaky(), None, retry_after_s=0, warn=lines.append)
    assert guarded.set_tags("r", {}) is None and guarded.down_since is not None
    assert guarded.set_tags("r", {}) == "ok" and guarded.down_since is None
    assert len(lines) == 2 and "answers again" in lines[1] and guarded.behind
    guarded.reset()
    assert not guarded.behind and guarded.summary() == ""


def test_guarded_tracker_pickles_with_the_callback_and_survives_a_dead_server(tmp_path,
                                                                              monkeypatch):
    """Tune pickles the sweep's callback (tracker included) with the experiment; a resumed
    experiment unpickles it, and that must work whether or not MLflow answers."""
    import pickle

    from harness.tracking.guard import HTTP_DEFAULTS, SWEEP_RETRY, _rebuild_guard

    for key, value in HTTP_DEFAULTS.items():       # what a sweep sets: seconds, not minutes
        monkeypatch.setenv(key, value)
    tracker = Tracker(default_tracking_uri(tmp_path), "pdebench")
    live = GuardedTracker(tracker, tmp_path / BEHIND_FILE)
    # in the process that runs the sweep, the callback's copy is the sweep's own guard
    assert pickle.loads(pickle.dumps(live)) is live
    # elsewhere (no live guard of that sweep) it is rebuilt from the URI
    alone = GuardedTracker(tracker, None)
    back = pickle.loads(pickle.dumps(alone))
    assert back is not alone and back.tracker is not tracker
    assert back.experiment_id == live.experiment_id
    assert back.sweep_run("s") == live.sweep_run("s")          # the same run, found by its key
    assert not back.behind
    # the server is gone when the experiment is restored: calls are skipped and noted
    note = tmp_path / "dead" / BEHIND_FILE
    restored = _rebuild_guard(("http://127.0.0.1:1", "pdebench", None, SWEEP_RETRY), note, 60.0)
    assert restored.tracker is None and restored.behind and note.exists()
    assert restored.cell_run("sweep", "advection", "nft") is None and restored.skipped == 1
    assert restored.experiment_id is None and "127.0.0.1:1" in restored.summary()
