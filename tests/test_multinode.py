"""The real sweep on a multi-node Ray cluster simulated on this machine.

``ray.cluster_utils.Cluster``: a head with 0 CPUs (it runs no trial) and two worker nodes of
1 CPU each, with custom resources ``node_a`` / ``node_b``. The sweep runs in this process through
``harness.sweep.main([... "--address", cluster.address, ...])`` on tiny synthetic data, with the
Tune storage and the MLflow sqlite store in a folder every node sees (one machine: every folder is
shared).

1. Trials land on both worker nodes (``node_id`` in ``results.parquet``), and the leaderboard is
   written.
2. With the preflight wired into the sweep, an unusable ``--storage`` stops it before any trial
   (exit code 2); skipped while ``harness.sweep`` does not call ``harness.cluster.preflight``.
3. One worker node is killed (``cluster.remove_node``) while its first trial runs: the sweep still
   ends with exit code 0, every cell has all its rows, and every result reported after the kill
   comes from the surviving node (the interrupted trial is retried there from its checkpoint,
   ``--max-failures 1``). The node that hosts the engine's data registry actor is never the one
   killed: losing it fails every later trial (see 4).
4. Where that registry actor lives: on the driver's node it is safe; Ray currently places it on
   any node, and the test is marked xfail (with the node named) when it lands on a worker.

Every Ray process lives under a private ``RAY_TMPDIR`` (``ray.init()`` elsewhere on this machine
never finds this cluster) and is ended at the end, by pid.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from raycluster import descendants, private_ray_tmpdir, start_cluster

from harness.data import synth

TASKS = ("advection", "darcy")
pytestmark = pytest.mark.slow


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mn-data")
    for t in TASKS:
        synth.generate(t, root, size="tiny", seed=0)
    return root


@pytest.fixture(scope="module")
def cluster():
    """(Cluster, [node_a, node_b], processes seen): not connected (the sweep connects). A test
    that removes a node adds its processes to ``seen`` first, so that they are ended too."""
    seen: dict[int, str] = {}
    with private_ray_tmpdir(), start_cluster(connect=False, seen=seen) as (c, workers):
        yield c, workers, seen


def sweep_args(c, root: Path, data: Path, name: str) -> list[str]:
    shared = root / "shared"
    return ["--suite", "pdebench", "--tasks", ",".join(TASKS), "--methods", "nft",
            "--profile", "smoke", "--num-samples", "2", "--seeds", "2",
            "--data-root", str(data), "--runs-dir", str(root / "runs"), "--name", name,
            "--address", c.address, "--storage", str(shared / "tune"),
            "--tracking-uri", f"sqlite:///{shared / 'mlflow.db'}", "--max-failures", "1"]


def trial_results(exp_dir: Path) -> list[dict]:
    """Every result line Tune wrote for the experiment's trials."""
    rows = []
    for f in exp_dir.glob("*/result.json"):
        for line in f.read_text().splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:      # a line being written
                    pass
    return rows


def reported_at(result: dict) -> float:
    """When a result was reported: the harness's float stamp (Tune's ``timestamp`` is whole
    seconds, so a report 1.5 s after the kill can carry a stamp before it)."""
    return float(result.get("reported_at", result["timestamp"]))


def check_cells(df: pd.DataFrame) -> None:
    """Every cell: 2 search rows and 2 seeds × (test, val) final rows, all ok."""
    for t in TASKS:
        cell = df[df.task == t]
        search, final = cell[cell.phase == "search"], cell[cell.phase == "final"]
        assert len(search) == 2, cell
        assert len(final) == 4 and set(final.split) == {"test", "val"}, cell
        assert (final.status == "ok").all(), final[["seed", "split", "status", "error"]]


# ----------------------------------------------------------------------------- tests
def test_sweep_spreads_trials_over_nodes(cluster, data_root, tmp_path):
    from harness.sweep import main

    c, workers, _ = cluster
    t0 = time.perf_counter()
    rc = main(sweep_args(c, tmp_path, data_root, "mn-spread"))
    took = time.perf_counter() - t0
    assert rc == 0
    sweep = tmp_path / "runs" / "mn-spread"
    df = pd.read_parquet(sweep / "results.parquet")
    check_cells(df)
    nodes = set(df.node_id.dropna())
    worker_ids = {w.node_id for w in workers}
    assert len(nodes) >= 2, f"all trials on one node: {nodes}"
    assert nodes <= worker_ids, "a trial ran on the head (0 CPUs) or on an unknown node"
    assert (sweep / "leaderboard").is_dir() and any((sweep / "leaderboard").iterdir())
    print(f"\nsweep on 2 worker nodes: {took:.1f} s, rows per node: "
          f"{df.node_id.str[:8].value_counts().to_dict()}")


def test_sweep_refuses_storage_the_nodes_cannot_use(cluster, data_root, tmp_path, capsys):
    """With the preflight wired in (harness.sweep calls harness.cluster.preflight after
    connecting), an unusable --storage stops the sweep before any trial: exit code 2."""
    import inspect

    import harness.sweep.cli
    from harness.sweep import main

    if "preflight(" not in inspect.getsource(harness.sweep.cli):
        pytest.skip("harness.sweep does not call harness.cluster.preflight yet")
    c, _, _ = cluster
    args = sweep_args(c, tmp_path, data_root, "mn-refused")
    args[args.index("--storage") + 1] = "foo://bucket/tune"
    t0 = time.perf_counter()
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "cluster preflight: 1 error(s)" in err and "foo://" in err
    assert not (tmp_path / "runs" / "mn-refused" / "results.parquet").exists()
    assert time.perf_counter() - t0 < 60


def registry_node() -> str | None:
    """The node of the sweep's data-registry actor (harness.engine), if it is alive."""
    import ray._private.state

    from harness.engine import REGISTRY_ACTOR

    try:
        for a in ray._private.state.actors().values():
            if a["Name"] == REGISTRY_ACTOR and a["State"] == "ALIVE":
                return a["Address"]["NodeID"]
    except Exception:  # noqa: BLE001, S110 - not connected yet, GCS busy ...
        pass
    return None


def test_sweep_survives_losing_a_node(cluster, data_root, tmp_path):
    """Kill a worker node while a trial runs on it: preferably the node whose first trial has not
    reported yet when the other node's first result lands (each node runs one trial at a time and
    both start at once, so its trial is still running). The node that hosts the engine's data
    registry actor is never the victim: losing it is a known problem (see
    test_data_registry_lives_on_the_driver_node). The interrupted trial is retried on the
    surviving node (--max-failures 1) and the sweep completes."""
    from harness.sweep import main

    c, workers, seen = cluster
    by_id = {w.node_id: w for w in workers}
    exp_dir = tmp_path / "shared" / "tune" / "mn-kill"
    cells_dir = tmp_path / "runs" / "mn-kill" / "results" / "cells"
    stop = threading.Event()
    kill: dict = {}

    def killer():
        deadline = time.time() + 75
        while not stop.is_set() and time.time() < deadline:
            results = trial_results(exp_dir) if exp_dir.is_dir() else []
            reported = {r.get("node_id") for r in results} & set(by_id)
            if reported:
                kill["registry"] = registry_node()
                candidates = [n for n in by_id if n != kill["registry"]]
                idle = [n for n in candidates if n not in reported]
                victim = (idle or candidates)[0]
                kill["cells_done_before"] = len(list(cells_dir.glob("*.json"))) \
                    if cells_dir.is_dir() else 0
                kill["had_reported"] = victim in reported
                seen.update(descendants())              # the victim's agents, to end them later
                kill["time"] = time.time()
                c.remove_node(by_id[victim])
                kill["victim"], kill["took"] = victim, time.time() - kill["time"]
                return
            time.sleep(0.2)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    t0, w0 = time.perf_counter(), time.time()
    try:
        rc = main(sweep_args(c, tmp_path, data_root, "mn-kill"))
    finally:
        stop.set()
        th.join(timeout=30)
    took = time.perf_counter() - t0
    assert "victim" in kill, "no trial result appeared: the node was never killed"
    assert kill["cells_done_before"] == 0, "the kill came after a cell had finished"
    victim = kill["victim"]
    [survivor] = [n for n in by_id if n != victim]
    assert rc == 0
    df = pd.read_parquet(tmp_path / "runs" / "mn-kill" / "results.parquet")
    check_cells(df)
    assert set(df.node_id.dropna()) <= {victim, survivor}
    after = [r for r in trial_results(exp_dir) if reported_at(r) > kill["time"] + 0.5]
    assert after, "no trial reported after the kill"
    assert {r["node_id"] for r in after} == {survivor}
    # a row's node is its trial's last report: trials that ended after the kill ran on the survivor
    last = {}
    for r in trial_results(exp_dir):
        key = r["trial_id"]
        if key not in last or r["training_iteration"] >= last[key]["training_iteration"]:
            last[key] = r
    ended_after = {r["trial_id"] for r in last.values() if reported_at(r) > kill["time"] + 0.5}
    search_after = df[(df.phase == "search") & df.trial_id.isin(ended_after)]
    assert (search_after.node_id == survivor).all()
    errors = {p.parent.name.split("_")[2]: p.read_text() for p in exp_dir.glob("*/error.txt")}
    if not kill["had_reported"]:
        # its first trial was starting or running: it failed with the node, and was retried
        assert errors, "no trial failed with the node"
    for text in errors.values():
        assert "node" in text and "died" in text, text[-2000:]
    print(f"\nkilled node {victim[:8]} ({'after' if kill['had_reported'] else 'before'} its first "
          f"report) {kill['time'] - w0:.0f} s into the sweep (remove_node took {kill['took']:.1f} "
          f"s; registry on {str(kill['registry'])[:8]}); sweep {took:.1f} s; trials failed with "
          f"the node and retried: {sorted(errors)}; rows per node: "
          f"{df.node_id.str[:8].value_counts().to_dict()}")


def test_data_registry_lives_on_the_driver_node(cluster):
    """harness.engine keeps every task's data in the object store and names it in one registry
    actor. Where that actor lives matters: when its node dies, every later trial fails
    (ActorDiedError ... name: harness-data-registry) and so does every unfinished cell. The
    driver's node is the one place whose loss ends the sweep anyway."""
    import ray

    from harness.engine import data_registry

    c, _, _ = cluster
    ray.init(address=c.address, log_to_driver=False, logging_level="ERROR")
    try:
        ray.get(data_registry().get.remote("nothing"))
        here = ray.get_runtime_context().get_node_id()
        where = registry_node()
        assert where is not None
        if where != here:
            pytest.xfail(
                f"the data registry actor was placed on worker node {where[:8]}, not on the "
                f"driver's node {here[:8]}: losing that node fails the rest of the sweep "
                "(harness.engine.data_registry() should pin it with "
                "NodeAffinitySchedulingStrategy(node_id=<driver node>, soft=False))")
    finally:
        ray.shutdown()
