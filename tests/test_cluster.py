"""harness.cluster: the multi-node preflight, against real Ray clusters on this machine.

* Single node (a local ``ray.init``): no issues, whatever the paths.
* Several nodes (``ray.cluster_utils.Cluster``: a head with 0 CPUs and two 1-CPU worker nodes
  with custom resources). All nodes run on this machine, so every local folder IS shared, and the
  probe finds it so.
* A node that does not see a folder: an extra worker node started inside its own **mount
  namespace** (``unshare -m``) with an empty tmpfs mounted over one folder. Its raylet and the
  Ray workers it starts (which run the probe tasks) really do not see what the driver writes in
  that folder, exactly as a node without the NFS mount would not; the rest of the filesystem
  (Ray's session folder included) is shared as usual. Skipped where mount namespaces are not
  allowed.
* URIs (s3://, http://, postgresql:// ...) are classified without contacting anything; the
  http check talks to a throwaway server on 127.0.0.1.

Every Ray instance here lives under a private ``RAY_TMPDIR``, so ``ray.init()`` in other
processes on this machine never finds these clusters, and they are shut down at the end (with
any process they leave behind, by pid).
"""
from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from raycluster import descendants, kill_leftovers, private_ray_tmpdir, start_cluster

from harness import cluster as hc

ROOT = Path(__file__).resolve().parents[1]

# A worker node in its own mount namespace, with an empty tmpfs over HIDDEN (argv[2]).
NS_NODE = r"""
import json, subprocess, sys
gcs, hidden, resources = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "harness-hidden", hidden], check=True)
import ray._private.node, ray._private.parameter
params = ray._private.parameter.RayParams(
    gcs_address=gcs, num_cpus=1, resources=resources, object_store_memory=80 * 1024 * 1024,
    min_worker_port=0, max_worker_port=0, include_log_monitor=False, node_manager_port=0)
params.dashboard_agent_listen_port = None
node = ray._private.node.Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
print("READY", node.node_id, flush=True)
sys.stdin.read()                      # until the test closes stdin (or dies)
node.kill_all_processes(check_alive=False, allow_graceful=True, wait=True)
"""


@pytest.fixture(scope="module")
def ray_tmp():
    """A private RAY_TMPDIR for the Ray instances of this module."""
    with private_ray_tmpdir() as d:
        yield d


@pytest.fixture(scope="module")
def multinode(ray_tmp):
    """head (0 CPUs) + node_a + node_b (1 CPU each), and this process connected as driver."""
    with start_cluster(connect=True) as (c, workers):
        yield c, workers


def _unshare_cmd() -> list[str] | None:
    for cmd in (["unshare", "-m"], ["unshare", "-r", "-m"]):
        try:
            r = subprocess.run(cmd + ["sh", "-c", ("mount -t tmpfs none /mnt 2>/dev/null || "
                                                   "mount -t tmpfs none /tmp")],
                               check=False, capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if r.returncode == 0:
            return cmd
    return None


@pytest.fixture
def hidden_node(multinode, tmp_path):
    """A third worker node ("node_c") that sees an empty folder at ``tmp_path/private``."""
    cmd = _unshare_cmd()
    if cmd is None:
        pytest.skip("mount namespaces (unshare -m) are not allowed here: cannot give one node "
                    "its own view of a folder")
    c, _ = multinode
    hidden = tmp_path / "private"
    hidden.mkdir()
    before = set(descendants())
    proc = subprocess.Popen(cmd + [sys.executable, "-c", NS_NODE, c.address, str(hidden),
                                   json.dumps({"node_c": 1})],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY"), f"the namespaced node did not start: {line!r}"
        node_id = line.split()[1]
        import ray

        deadline = time.time() + 30
        while not any(n["NodeID"] == node_id and n["Alive"] for n in ray.nodes()):
            assert time.time() < deadline, "node_c never joined"
            time.sleep(0.2)
        yield hidden, node_id
    finally:
        mine = {p: t for p, t in descendants().items() if p not in before}
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        kill_leftovers(mine)


@pytest.fixture(scope="module")
def http_server():
    """Something answering HTTP on 127.0.0.1 (stands in for an `mlflow server`)."""

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_nodes(n: int) -> list[dict]:
    return [{"NodeID": f"{i:02d}" * 28, "Alive": True, "NodeManagerAddress": f"10.0.0.{i + 1}",
             "Resources": {"CPU": 4.0, **({"node:__internal_head__": 1.0} if i == 0 else {})}}
            for i in range(n)]


# ----------------------------------------------------------------------------- no Ray needed
def test_no_cluster_and_one_node_have_no_issues():
    import ray

    if not ray.is_initialized():
        # no address and no Ray: the sweep will start a local single-node cluster
        assert hc.preflight(None, "/not/shared", "sqlite:///mlflow.db") == []
        assert not ray.is_initialized()
    # one alive node (and a dead one): nothing to share
    dead = dict(fake_nodes(2)[1], Alive=False)
    assert hc.preflight(None, "/not/shared", "sqlite:///x.db",
                        nodes=[fake_nodes(1)[0], dead]) == []


def test_object_store_storage_is_accepted_by_scheme_without_network():
    """s3:// gs:// abfs:// are accepted from pyarrow's filesystem registry alone: without the
    region trick pyarrow asks AWS for an s3 bucket's region (a HeadBucket call; 6 s and an error
    offline here)."""
    nodes = fake_nodes(3)
    for uri in ("s3://bucket/x", "s3://bucket/x?endpoint_override=minio:9000",
                "gs://bucket/x", "abfs://container@account.dfs.core.windows.net/x"):
        t0 = time.perf_counter()
        issues = hc.preflight(None, uri, "databricks", nodes=nodes)
        assert issues == [], (uri, hc.format_issues(issues))
        assert time.perf_counter() - t0 < 3, f"{uri} took {time.perf_counter() - t0:.1f} s"
    [issue] = hc.preflight(None, "foo://bucket/x", "databricks", nodes=nodes)
    assert issue.level == hc.ERROR and "foo://" in issue.what and "s3://" in issue.fix


def test_tracking_uris_without_probes(http_server):
    nodes = fake_nodes(2)
    s3 = "s3://bucket/x"
    assert hc.preflight(None, s3, http_server, nodes=nodes) == []
    [down] = hc.preflight(None, s3, f"http://127.0.0.1:{_closed_port()}", nodes=nodes)
    assert down.level == hc.ERROR and "does not answer" in down.what and "mlflow server" in down.fix
    [db] = hc.preflight(None, s3, "postgresql+psycopg2://harness:s3cret@db:5432/mlflow",
                        nodes=nodes)
    assert db.level == hc.WARNING and "s3cret" not in db.what and "./mlruns" in db.why
    [mem] = hc.preflight(None, s3, "sqlite:///:memory:", nodes=nodes)
    assert mem.level == hc.ERROR
    [fs] = hc.preflight(None, s3, "file:///tmp/mlruns", nodes=nodes)
    assert fs.level == hc.ERROR and "file store" in fs.what
    [none] = hc.preflight(None, None, "databricks", nodes=nodes)
    assert none.level == hc.ERROR and "--storage" in none.what


def test_format_issues():
    assert hc.format_issues([]) == "cluster preflight: no issues"
    text = hc.format_issues([
        hc.ClusterIssue(hc.WARNING, "w-what", "w-why", "w-fix"),
        hc.ClusterIssue(hc.ERROR, "e-what", "e-why", "e-fix", node="abc")])
    assert text.splitlines()[0].startswith("cluster preflight: 1 error(s), 1 warning(s)")
    assert text.index("e-what") < text.index("w-what")           # errors first
    for word in ("why: e-why", "fix: e-fix", "WARNING", "ERROR"):
        assert word in text
    with pytest.raises(ValueError):
        hc.ClusterIssue("fatal", "a", "b", "c")
    assert hc.has_errors([hc.ClusterIssue(hc.ERROR, "a", "b", "c")])


def test_auth_mode_hint(monkeypatch, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    assert hc.auth_mode_hint() is None                            # no token, mode unset
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text("t" * 32)
    hint = hc.auth_mode_hint()                                    # the Ray 2.60 trap
    assert hint and "RAY_AUTH_MODE is unset" in hint and "export RAY_AUTH_MODE=token" in hint
    assert "every node" in hint and "RAY_AUTH_MODE=disabled" in hint
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert hc.auth_mode_hint() is None                            # consistent
    (home / ".ray" / "auth_token").unlink()
    assert "no token" in hc.auth_mode_hint()                      # token mode without a token
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert hc.auth_mode_hint() is None
    # a failure that names the cause
    err = RuntimeError("Failed to get cluster ID from GCS server: Unauthenticated: RPC error: "
                       "InvalidAuthToken: Authentication token is missing or incorrect")
    hint = hc.auth_mode_hint(err)
    assert "InvalidAuthToken" in hint and "RAY_AUTH_MODE is disabled" in hint


def test_connect_error_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    # what Ray 2.60 raises on a token mismatch: the exception does not say why
    msg = hc.connect_error_message(ConnectionError("Failed to connect to Ray cluster at "
                                                   "10.0.0.1:6379"), "10.0.0.1:6379")
    assert msg.startswith("could not connect to the Ray cluster at 10.0.0.1:6379")
    assert "InvalidAuthToken" in msg and "export RAY_AUTH_MODE=token" in msg
    assert "RAY_AUTH_MODE is disabled here" in msg and "ray status" in msg
    # an error that does say why
    from ray.exceptions import AuthenticationError

    msg = hc.connect_error_message(AuthenticationError("Token authentication is enabled but the "
                                                       "authentication token is invalid"))
    assert "does not match" in msg and "every node" in msg and "Likely causes" not in msg


def test_deploy_yaml_files_parse():
    """The example configs cannot run here (no cloud, no Kubernetes); they must at least parse and
    carry what the docs promise."""
    launcher = yaml.safe_load((ROOT / "deploy" / "cluster-launcher.yaml").read_text())
    assert {"cluster_name", "provider", "available_node_types", "head_node_type",
            "setup_commands", "head_start_ray_commands",
            "worker_start_ray_commands"} <= set(launcher)
    assert launcher["head_node_type"] in launcher["available_node_types"]
    gpu_workers = [t for n, t in launcher["available_node_types"].items()
                   if n != launcher["head_node_type"]]
    assert gpu_workers and all(t["resources"].get("GPU", 0) >= 1 for t in gpu_workers)
    setup = "\n".join(launcher["setup_commands"])
    assert "pip install -e" in setup and "RAY_AUTH_MODE" in setup
    starts = "\n".join(launcher["head_start_ray_commands"] + launcher["worker_start_ray_commands"])
    assert "RAY_AUTH_MODE" in starts

    docs = list(yaml.safe_load_all((ROOT / "deploy" / "kuberay-raycluster.yaml").read_text()))
    [rc] = [d for d in docs if d and d.get("kind") == "RayCluster"]
    assert rc["apiVersion"].startswith("ray.io/")
    spec = rc["spec"]
    pods = [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]
    for pod in pods:
        for ctr in pod["spec"]["containers"]:
            env = {e["name"]: e for e in ctr.get("env", [])}
            assert "RAY_AUTH_MODE" in env, ctr["name"]
            assert ctr["resources"]["requests"] and ctr["resources"]["limits"]
    assert any("nvidia.com/gpu" in c["resources"]["limits"]
               for g in spec["workerGroupSpecs"] for c in g["template"]["spec"]["containers"])


def test_docs_use_real_sweep_flags():
    """Every --flag given to `python -m harness.sweep` in the cluster docs exists."""
    from harness.sweep import build_parser

    known = {a for act in build_parser()._actions for a in act.option_strings}
    docs = [ROOT / "docs" / "cluster.md", ROOT / "deploy" / "manual-ray-start.md",
            ROOT / "deploy" / "cluster-launcher.yaml", ROOT / "deploy" / "kuberay-raycluster.yaml"]
    for doc in docs:
        text = doc.read_text().replace("\\\n", " ")
        commands = [ln for ln in text.splitlines() if "harness.sweep" in ln and "--" in ln]
        assert commands or doc.suffix == ".yaml", f"{doc.name} shows no sweep command"
        for line in commands:
            args = line.split("harness.sweep", 1)[1]
            for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", args):
                assert flag in known, f"{doc.name}: {flag} is not a sweep flag: {line.strip()}"


# ----------------------------------------------------------------------------- real clusters
def test_single_node_local_ray_has_no_issues(ray_tmp):
    import ray

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    procs = descendants()
    try:
        assert len(hc.alive_nodes()) == 1
        assert hc.preflight(None, "/definitely/not/shared", "sqlite:///local.db") == []
    finally:
        ray.shutdown()
        kill_leftovers(procs)


def test_multinode_shared_folder_passes(multinode, tmp_path, http_server):
    c, _ = multinode
    assert len(hc.alive_nodes()) == 3
    t0 = time.perf_counter()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "2D_DarcyFlow.hdf5").write_bytes(b"y" * 10)
    issues = hc.preflight(c.address, str(tmp_path / "tune"), http_server,
                          cache_dir=str(tmp_path / "cache"), data_root=str(tmp_path / "data"))
    took = time.perf_counter() - t0
    assert issues == [], hc.format_issues(issues)
    assert took < 30, f"probing 2 nodes took {took:.1f} s"
    # the probe cleaned up after itself (Tune's folder is created, as Tune would)
    assert not list(tmp_path.rglob(f"{hc.PROBE_PREFIX}*"))


def test_multinode_sqlite_on_shared_folder_is_a_warning(multinode, tmp_path):
    c, _ = multinode
    issues = hc.preflight(c.address, str(tmp_path / "tune"), f"sqlite:///{tmp_path}/mlflow.db")
    [issue] = issues
    assert issue.level == hc.WARNING and "sqlite on a shared folder" in issue.what
    assert "mlflow server" in issue.fix and "--tracking-uri http://" in issue.fix
    assert not hc.has_errors(issues)


def test_multinode_no_storage_is_an_error(multinode, http_server):
    c, _ = multinode
    [issue] = hc.preflight(c.address, None, http_server)
    assert issue.level == hc.ERROR and "s3://" in issue.fix


def test_multinode_folder_hidden_on_one_node(multinode, hidden_node, tmp_path, http_server):
    """node_c does not see ``private/`` (its own tmpfs there): the storage is an error naming
    node_c only, a sqlite store there is an error, and the shared folder next to it still passes."""
    c, workers = multinode
    hidden, node_c = hidden_node
    assert len(hc.alive_nodes()) == 4
    (hidden / "data").mkdir()
    (hidden / "data" / "1D_Advection.hdf5").write_bytes(b"x" * 100)
    issues = hc.preflight(c.address, str(hidden / "tune"), f"sqlite:///{hidden}/mlflow.db",
                          cache_dir=str(tmp_path / "cache"), data_root=str(hidden / "data"))
    text = hc.format_issues(issues)
    assert [i.level for i in issues] == [hc.ERROR, hc.ERROR, hc.WARNING], text
    storage, tracking, data = issues
    assert storage.node == tracking.node == data.node == node_c
    assert "1D_Advection.hdf5" in data.what and "--data-root" in data.fix
    assert "storage" in storage.what and node_c[:12] in storage.what and "node_c" in storage.what
    assert "s3://" in storage.fix and "same path on every node" in storage.fix
    assert "not shared" in tracking.what and "mlflow server" in tracking.fix
    for w in workers:            # the nodes that do share it are not named
        assert w.node_id[:12] not in text
    # the same node, a folder outside the tmpfs: shared
    assert hc.preflight(c.address, str(tmp_path / "tune"), http_server) == []


def test_cli_reports_nodes_and_issues(multinode, tmp_path, http_server):
    """`python -m harness.cluster` against the running cluster, as a user would run it."""
    c, _ = multinode
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    r = subprocess.run([sys.executable, "-m", "harness.cluster", "--address", c.address,
                        "--storage", str(tmp_path / "tune"), "--tracking-uri",
                        f"sqlite:///{tmp_path}/mlflow.db", "--timeout", "20"],
                       check=False, capture_output=True, text=True, timeout=80, env=env,
                       cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 alive node(s)" in r.stdout and "0 error(s), 1 warning(s)" in r.stdout
    r = subprocess.run([sys.executable, "-m", "harness.cluster", "--address", c.address,
                        "--storage", "foo://x", "--tracking-uri", http_server_down()],
                       check=False, capture_output=True, text=True, timeout=80, env=env,
                       cwd=ROOT)
    assert r.returncode == 1 and "2 error(s)" in r.stdout, r.stdout + r.stderr


def http_server_down() -> str:
    return f"http://127.0.0.1:{_closed_port()}"


def test_multinode_body_missing_on_one_node(multinode, hidden_node, tmp_path, http_server):
    """A body whose weights the driver has but node_c does not (its folder is hidden there) is an
    error naming node_c only, with BackboneNotFound's text; a body every node has passes."""
    c, workers = multinode
    hidden, node_c = hidden_node
    body = hidden / "my-body"
    body.mkdir()
    issues = hc.preflight(c.address, str(tmp_path / "tune"), http_server,
                          bodies={str(body): ["advection/nft", "advection/recraft"],
                                  "roberta-tiny": ["advection/nft"]})
    text = hc.format_issues(issues)
    [issue] = issues
    assert issue.level == hc.ERROR and issue.node == node_c, text
    assert f"backbone {str(body)!r}: no weights found" in issue.what and "node_c" in issue.what
    assert "2 planned cell(s)" in issue.why and "does not exist" in issue.why
    for w in workers:
        assert w.node_id[:12] not in text
