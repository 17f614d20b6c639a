"""harness.tracking against real MLflow: a sqlite store in tmp_path, and a real `mlflow server`.

A fresh MLflow database runs ~70 alembic migrations (2-10 s on 2 busy cores), so one migrated
database is made per session and *copied* for each test (0.2 s): every test still has its own store.
"""
from __future__ import annotations

import math
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE

from harness.tracking import (EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, PARENT_TAG, RUN_KEY_TAG,
                              ParamChangedWarning, RetryPolicy, Tracker, _is_transient, _retry,
                              default_tracking_uri, flatten, runs_tree, ui_command)

CONFIG = {
    "align": {"epsilon": 0.05, "iters": 200, "loss": "otdd"},
    "finetune": {"lr": 3e-4, "epochs": 3, "layers": [0, 1, 2]},
    "backbone": "roberta-base",
    "seed": 0,
}


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory) -> Path:
    """An empty, fully migrated MLflow sqlite database (made once)."""
    d = tmp_path_factory.mktemp("mlflow-template")
    uri = default_tracking_uri(d)
    MlflowClient(tracking_uri=uri).search_experiments()  # creates the tables
    return d / "mlflow.db"


@pytest.fixture
def store(tmp_path, migrated_db) -> tuple[Path, str]:
    """(base_dir, tracking_uri) of a private copy of the migrated database."""
    base = tmp_path / "track"
    base.mkdir()
    shutil.copy(migrated_db, base / "mlflow.db")
    return base, default_tracking_uri(base)


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """Run the test from an unrelated CWD, to catch anything written to ./mlruns."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path, migrated_db):
    """A real `mlflow server` on 127.0.0.1 (low-memory mode); yields (uri, artifacts_dir, seconds to start)."""
    srv = tmp_path / "server"
    srv.mkdir()
    shutil.copy(migrated_db, srv / "mlflow.db")
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_CURRENT_TEST", "MLFLOW_TRACKING_URI")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    log = open(srv / "server.log", "wb")
    cmd = [sys.executable, "-m", "mlflow", "server",
           "--backend-store-uri", f"sqlite:///{srv / 'mlflow.db'}",
           "--artifacts-destination", str(srv / "artifacts"),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=srv, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = t0 + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode}:\n"
                            + (srv / "server.log").read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.read().strip() == b"OK":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not answer /health within 90 s")
            time.sleep(0.25)
        yield url, srv / "artifacts", time.monotonic() - t0
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


# --- shared checks ----------------------------------------------------------------------------
_TAG_FIELDS = ("suite", "task", "method", "task_version", "method_version", "data_source",
               "backbone", "profile", "config_hash", "phase")


def _tags(*values, seed=None) -> dict[str, str]:
    """Provenance tags as the harness writes them: ``harness.<field>``, None fields left out."""
    tags = {f"harness.{k}": str(v) for k, v in zip(_TAG_FIELDS, values) if v is not None}
    return tags | ({"harness.seed": str(seed)} if seed is not None else {})


def _build_hierarchy(tr: Tracker) -> dict:
    tags = _tags("pdebench", None, None, None, None, "synthetic", "roberta-base",
                         "smoke", None, "search")
    sweep = tr.sweep_run("smoke-sweep", tags=tags, params={"budget": {"trials": 3}})
    cells = {m: tr.cell_run(sweep, "advection", m,
                            tags=_tags("pdebench", "advection", m, "v1", "0.1",
                                               "synthetic", "roberta-base", "smoke", None, "search"))
             for m in ("recraft", "orca")}
    trials = []
    for i in range(3):
        cfg = {**CONFIG, "align": {**CONFIG["align"], "epsilon": 0.05 * (i + 1)}, "seed": i}
        t = tr.trial_run(cells["recraft"], f"trial-{i}", cfg,
                         tags=_tags("pdebench", "advection", "recraft", "v1", "0.1",
                                            "synthetic", "roberta-base", "smoke", f"h{i}",
                                            "search", seed=i))
        for epoch in range(3):
            tr.log_metrics(t, {"train": {"loss": 1.0 / (epoch + 1)}, "val_nrmse": 0.5 - 0.1 * epoch},
                           step=epoch)
        tr.finish(t)
        trials.append((t, cfg))
    for c in cells.values():
        tr.finish(c)
    tr.finish(sweep)
    return {"sweep": sweep, "cells": cells, "trials": trials}


def _check_hierarchy(tr: Tracker, h: dict, tmp_path: Path) -> None:
    c = tr.client
    exp = c.get_experiment(tr.experiment_id)
    assert exp.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND

    runs = c.search_runs([tr.experiment_id], max_results=100)
    assert len(runs) == 1 + 2 + 3
    by_id = {r.info.run_id: r for r in runs}
    sweep = by_id[h["sweep"]]
    assert PARENT_TAG not in sweep.data.tags
    assert sweep.data.tags["harness.kind"] == "sweep"
    assert sweep.data.params["budget.trials"] == "3"

    cell_runs = [r for r in runs if r.data.tags.get(PARENT_TAG) == h["sweep"]]
    assert sorted(r.info.run_name for r in cell_runs) == ["advection/orca", "advection/recraft"]
    assert all(r.data.tags["mlflow.runName"].startswith("advection/") for r in cell_runs)
    assert all(r.data.tags["harness.kind"] == "cell" for r in cell_runs)

    under = [r for r in runs if r.data.tags.get(PARENT_TAG) == h["cells"]["recraft"]]
    assert len(under) == 3
    assert not [r for r in runs if r.data.tags.get(PARENT_TAG) == h["cells"]["orca"]]
    for t, cfg in h["trials"]:
        r = by_id[t]
        assert r.info.status == "FINISHED"
        assert r.data.tags[RUN_KEY_TAG]
        assert r.data.tags["harness.suite"] == "pdebench"
        assert r.data.tags["harness.method"] == "recraft"
        assert r.data.tags["harness.seed"] == str(cfg["seed"])
        assert r.data.tags["harness.phase"] == "search"
        assert r.data.params["align.epsilon"] == str(cfg["align"]["epsilon"])
        assert r.data.params["finetune.lr"] == str(CONFIG["finetune"]["lr"])
        assert r.data.params["finetune.layers"] == "[0, 1, 2]"
        hist = c.get_metric_history(t, "val_nrmse")
        assert sorted(m.step for m in hist) == [0, 1, 2]
        assert [m.value for m in sorted(hist, key=lambda m: m.step)] == pytest.approx([0.5, 0.4, 0.3])
        assert len(c.get_metric_history(t, "train.loss")) == 3
        dl = tmp_path / f"dl-{t}"
        dl.mkdir()
        path = c.download_artifacts(t, "config.yaml", str(dl))
        assert yaml.safe_load(Path(path).read_text()) == cfg

    tree = runs_tree(tr.tracking_uri, tr.experiment_name)
    assert len(tree) == 6
    assert list(tree["depth"].value_counts().sort_index()) == [1, 2, 3]
    assert tree.iloc[0]["run_id"] == h["sweep"] and tree.iloc[0]["kind"] == "sweep"
    assert set(tree[tree.kind == "trial"]["parent_id"]) == {h["cells"]["recraft"]}


# --- tests ------------------------------------------------------------------------------------
def test_default_tracking_uri_and_file_store_refused(tmp_path, store):
    uri = default_tracking_uri(tmp_path / "a" / "b")
    assert uri == f"sqlite:///{(tmp_path / 'a' / 'b').resolve()}/mlflow.db"
    assert (tmp_path / "a" / "b").is_dir()
    for bad in (str(tmp_path / "mlruns"), (tmp_path / "mlruns").as_uri(), "./mlruns"):
        with pytest.raises(ValueError, match="sqlite"):
            Tracker(bad, "x")
    assert runs_tree(store[1], "no-such-experiment").empty


def test_hierarchy_sqlite(store, elsewhere, tmp_path):
    base, uri = store
    tr = Tracker(uri, "pdebench")
    loc = tr.artifact_location
    assert loc.startswith((base / "mlartifacts").resolve().as_uri())
    h = _build_hierarchy(tr)
    _check_hierarchy(tr, h, tmp_path)
    # artifacts under the base dir, nothing in the CWD
    assert list((base / "mlartifacts").rglob("config.yaml"))
    assert list(elsewhere.iterdir()) == []
    # a second Tracker reuses the experiment
    assert Tracker(uri, "pdebench").experiment_id == tr.experiment_id


def test_explicit_artifact_root(store, elsewhere, tmp_path):
    _, uri = store
    root = tmp_path / "arts"
    tr = Tracker(uri, "suite-b", artifact_root=root)
    assert tr.artifact_location == root.resolve().as_uri()
    run = tr.sweep_run("s")
    src = tmp_path / "note.txt"
    src.write_text("hello")
    tr.log_file(run, src)
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "a.txt").write_text("a")
    tr.log_dir(run, d, artifact_path="outputs")
    assert (root / run / "artifacts" / "note.txt").read_text() == "hello"
    assert (root / run / "artifacts" / "outputs" / "sub" / "a.txt").read_text() == "a"
    assert list(elsewhere.iterdir()) == []


def test_find_or_create_reopens_instead_of_duplicating(store):
    _, uri = store
    tr = Tracker(uri, "pdebench")
    sweep = tr.sweep_run("s1")
    key = "s1/advection/recraft/abc123/seed0"
    params = {"align": {"epsilon": 0.1}, "finetune": {"lr": 1e-3}}
    rid, reopened = tr.find_or_create(key, "seed-0", parent_id=sweep, kind="trial", params=params)
    assert not reopened
    tr.log_metrics(rid, {"loss": 1.0}, step=0)
    tr.finish(rid, "FAILED")

    rid2, reopened2 = tr.find_or_create(key, "seed-0", parent_id=sweep, kind="trial", params=params)
    assert (rid2, reopened2) == (rid, True)
    run = tr.get_run(rid)
    assert run.info.status == "RUNNING"
    assert run.data.tags["harness.reopen_count"] == "1"
    assert run.data.tags["harness.previous_status"] == "FAILED"
    hits = tr.client.search_runs([tr.experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{key}'")
    assert len(hits) == 1
    tr.log_metrics(rid, {"loss": 0.5}, step=1)   # continues the same history
    assert [m.step for m in tr.client.get_metric_history(rid, "loss")] == [0, 1]

    # same key under another parent is a different run
    other, reopened3 = tr.find_or_create(key, "seed-0", parent_id=tr.sweep_run("s2"), kind="trial")
    assert other != rid and not reopened3

    # a changed value does not crash: recorded as a tag, with a warning
    with pytest.warns(ParamChangedWarning, match="align.epsilon"):
        changed = tr.log_params(rid, {"align": {"epsilon": 0.2}, "finetune": {"lr": 1e-3},
                                      "new": {"param": 7}})
    assert changed == ["align.epsilon"]
    run = tr.get_run(rid)
    assert run.data.params["align.epsilon"] == "0.1"
    assert run.data.tags["param_changed.align.epsilon"] == "0.2"
    assert run.data.params["new.param"] == "7"

    # the convenience constructors are idempotent too
    cell = tr.cell_run(sweep, "advection", "recraft")
    assert tr.cell_run(sweep, "advection", "recraft") == cell
    t = tr.trial_run(cell, "trial-0", CONFIG)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # same params again: no warning at all
        assert tr.trial_run(cell, "trial-0", CONFIG) == t
    assert len(tr.client.search_runs([tr.experiment_id])) == 6   # s1, s2, 2 keyed, cell, trial


def test_params_flatten_truncate_and_batch(store):
    _, uri = store
    tr = Tracker(uri, "pdebench")
    rid = tr.sweep_run("p")
    config = {"stage": {f"p{i:03d}": i for i in range(230)},    # > 2 batches of 100
              "align": {"epsilon": 0.1, "nested": {"deep": True}, "empty": {}},
              "long": "x" * 7000, "weird key!": "v", "path": Path("/data/x.h5"), "none": None}
    tr.log_params(rid, config)
    p = tr.get_run(rid).data.params
    t = tr.get_run(rid).data.tags
    assert len([k for k in p if k.startswith("stage.")]) == 230
    assert p["stage.p229"] == "229"
    assert p["align.epsilon"] == "0.1" and p["align.nested.deep"] == "True"
    assert p["align.empty"] == "{}"
    assert len(p["long"]) == 6000 and t["param_truncated.long"] == "7000"
    assert p["weird key_"] == "v"
    assert p["path"] == "/data/x.h5" and p["none"] == "None"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tr.log_params(rid, config) == []     # re-logging the same (truncated) values is fine
    assert flatten({"a": {"b": {"c": 1}}, "d": 2}) == {"a.b.c": 1, "d": 2}


def test_metrics_non_finite_logged_as_nan(store):
    _, uri = store
    tr = Tracker(uri, "pdebench")
    rid = tr.sweep_run("m")
    np = pytest.importorskip("numpy")
    for step, v in enumerate([1.0, float("nan"), float("inf"), -float("inf"), np.float32(0.5)]):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            n = tr.log_metrics(rid, {"loss": v, "note": "text", "flag": True}, step=step)
        assert n == 2 and any("note" in str(x.message) for x in w)
    hist = sorted(tr.client.get_metric_history(rid, "loss"), key=lambda m: m.step)
    assert [m.step for m in hist] == [0, 1, 2, 3, 4]
    assert hist[0].value == 1.0 and hist[4].value == 0.5
    assert all(math.isnan(m.value) for m in hist[1:4])
    assert "note" not in tr.get_run(rid).data.metrics


def test_mark_stale_running_kills_then_find_or_create_reopens(store):
    _, uri = store
    dead = Tracker(uri, "pdebench")
    dead.owner = "dead-host:1:deadbeef"          # as if another (now killed) driver opened them
    sweep = dead.sweep_run("resume")
    cell = dead.cell_run(sweep, "burgers", "orca")
    done = dead.trial_run(cell, "t-done", {"lr": 1})
    dead.finish(done)
    hung = [dead.trial_run(cell, f"t-{i}", {"lr": i + 2}) for i in range(2)]
    other_sweep = dead.sweep_run("another-sweep")
    other_cell = dead.cell_run(other_sweep, "burgers", "orca")

    tr = Tracker(uri, "pdebench")
    assert tr.sweep_run("resume") == sweep        # reopened by this driver, so not "stale"
    killed = tr.mark_stale_running(sweep)
    assert set(killed) == {cell, *hung}
    status = {r: tr.get_run(r).info.status for r in (sweep, cell, done, *hung, other_cell)}
    assert status == {sweep: "RUNNING", cell: "KILLED", done: "FINISHED", hung[0]: "KILLED",
                      hung[1]: "KILLED", other_cell: "RUNNING"}
    assert tr.get_run(cell).data.tags["harness.stale"] == "1"
    # the resumed sweep reaches the cell and the trial again: same runs, RUNNING again
    assert tr.cell_run(sweep, "burgers", "orca") == cell
    assert tr.trial_run(cell, "t-0", {"lr": 2}) == hung[0]
    r = tr.get_run(hung[0])
    assert r.info.status == "RUNNING" and r.data.tags["harness.previous_status"] == "KILLED"
    assert tr.mark_stale_running(sweep) == []     # now owned by this process


def test_retry_policy_is_bounded_and_selective():
    calls = []

    def flaky(n_fail, exc):
        def f():
            calls.append(1)
            if len(calls) <= n_fail:
                raise exc
            return "ok"
        return f

    fast = RetryPolicy(attempts=4, base_delay_s=0.001, max_delay_s=0.01, deadline_s=5)
    locked = MlflowException("(sqlite3.OperationalError) database is locked",
                             error_code=TEMPORARILY_UNAVAILABLE)
    assert _retry(flaky(2, locked), policy=fast) == "ok" and len(calls) == 3
    calls.clear()
    with pytest.raises(MlflowException):
        _retry(flaky(10, locked), policy=fast)
    assert len(calls) == 4
    calls.clear()
    bad = MlflowException("Changing param values is not allowed", error_code=INVALID_PARAMETER_VALUE)
    with pytest.raises(MlflowException):
        _retry(flaky(1, bad), policy=fast)
    assert len(calls) == 1
    # a retried create looks for what the failed try may have committed
    calls.clear()
    assert _retry(flaky(1, ConnectionError("reset")), policy=fast, on_retry=lambda: "found") == "found"
    assert len(calls) == 1
    # classification
    assert _is_transient(MlflowException("API request to http://x failed with exception "
                                         "HTTPConnectionPool: Max retries exceeded"))
    assert _is_transient(MlflowException("(sqlite3.OperationalError) database is locked"))
    assert _is_transient(MlflowException("boom", error_code=INVALID_PARAMETER_VALUE)) is False
    assert _is_transient(MlflowException("Changing param values is not allowed. Param with "
                                         "key='train.timeout' ... 'database is locked'",
                                         error_code=INVALID_PARAMETER_VALUE), remote=True) is False
    assert _is_transient(MlflowException("server error"), remote=True)       # INTERNAL_ERROR = 500
    assert _is_transient(MlflowException("server error"), remote=False) is False


def _thread_worker(tr: Tracker, cell: str, i: int, errors: list) -> None:
    try:
        rid = tr.trial_run(cell, f"thread-{i}", {"worker": {"i": i, "lr": 0.1 * i}})
        for step in range(20):
            tr.log_metrics(rid, {"loss": step + i / 100, "acc": step / 20}, step=step)
        tr.finish(rid)
    except Exception as exc:  # noqa: BLE001 - surfaced by the test
        errors.append(repr(exc))


def _check_concurrent_logging(tr: Tracker, name: str) -> None:
    """8 threads log params and 20 points each to their own trial runs at once; every point lands."""
    cell = tr.cell_run(tr.sweep_run(name), "advection", "recraft")
    errors: list = []
    # half the threads share the Tracker, half get a pickled copy (what a Ray worker receives)
    handles = [tr if i % 2 else pickle.loads(pickle.dumps(tr)) for i in range(8)]
    assert handles[0] is not tr and handles[0].experiment_id == tr.experiment_id
    threads = [threading.Thread(target=_thread_worker, args=(handles[i], cell, i, errors))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    trials = tr.client.search_runs([tr.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{cell}'")
    assert len(trials) == 8
    for r in trials:
        assert r.info.status == "FINISHED"
        i = int(r.data.params["worker.i"])
        loss = tr.client.get_metric_history(r.info.run_id, "loss")
        assert sorted(m.step for m in loss) == list(range(20))
        assert sorted(m.value for m in loss) == pytest.approx([s + i / 100 for s in range(20)])
        assert len(tr.client.get_metric_history(r.info.run_id, "acc")) == 20


def test_concurrent_threads_same_sqlite_store(store):
    _, uri = store
    _check_concurrent_logging(Tracker(uri, "pdebench"), "conc")


def test_hierarchy_over_http_server(mlflow_server, elsewhere, tmp_path):
    url, server_artifacts, startup_s = mlflow_server
    print(f"mlflow server answered /health after {startup_s:.1f} s")
    tr = Tracker(url, "pdebench")                 # no artifact_root: the server's proxied store
    assert tr.artifact_location.startswith("mlflow-artifacts:")
    h = _build_hierarchy(tr)
    _check_hierarchy(tr, h, tmp_path)
    # resume semantics over HTTP too
    rid, reopened = tr.find_or_create(tr.get_run(h["trials"][0][0]).data.tags[RUN_KEY_TAG],
                                      "trial-0", parent_id=h["cells"]["recraft"])
    assert (rid, reopened) == (h["trials"][0][0], True)
    tr.log_metrics(rid, {"val_nrmse": float("inf")}, step=3)
    assert math.isnan(sorted(tr.client.get_metric_history(rid, "val_nrmse"),
                             key=lambda m: m.step)[-1].value)
    assert list(server_artifacts.rglob("config.yaml"))   # uploaded through the server
    assert list(elsewhere.iterdir()) == []
    # many writers at once over HTTP: every param and metric point arrives
    _check_concurrent_logging(tr, "conc-http")


def test_ui_command(store):
    _, uri = store
    cmd = ui_command(uri, port=5123)
    assert uri in cmd
    assert cmd.startswith("MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow ui ")
    assert "--workers 1" in cmd and "--host 127.0.0.1" in cmd and "--port 5123" in cmd
    assert ui_command("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_sqlite_file_of_tracking_uris(tmp_path, monkeypatch):
    from harness.store_uri import sqlite_file

    monkeypatch.chdir(tmp_path)
    assert sqlite_file(f"sqlite:///{tmp_path}/a/mlflow.db") == tmp_path / "a" / "mlflow.db"
    assert sqlite_file("sqlite:///rel/mlflow.db?timeout=5") == tmp_path / "rel" / "mlflow.db"
    assert sqlite_file("sqlite+pysqlite:///x.db") == tmp_path / "x.db"
    for uri in ("sqlite:///:memory:", "sqlite://", "http://127.0.0.1:5000",
                "postgresql://u@h/db", "file:///tmp/mlruns"):
        assert sqlite_file(uri) is None, uri
