"""Preflight checks for a sweep on a multi-node Ray cluster, and help with Ray 2.60's token auth.

On one machine every path is shared by construction, so nothing here has anything to say. Once the
cluster has more than one alive node, two things have to be reachable from every node, and
:func:`preflight` checks both before any trial starts:

* **the Tune storage** (``--storage``). Trials persist their checkpoints and results under it
  from whichever node they run on, and Ray stopped syncing worker-node folders to the head in
  Ray 2.7. It must be an object-store URI that pyarrow (which Ray Tune uses for storage)
  understands (``s3://``, ``gs://``, ``abfs://``, ``hdfs://`` ...), or a folder that is mounted at
  the same path on every node. A local path is *verified*: the driver writes a probe file and a
  Ray task pinned to each other node (``NodeAffinitySchedulingStrategy(soft=False)``) reads it and
  writes a reply that the driver reads back. A node that cannot see or write the folder is an
  error that names the node.
* **the MLflow tracking store** (``--tracking-uri``). An ``http(s)://`` server (checked to answer
  from the driver) or a database server (``postgresql://``, ``mysql://`` ...) is fine. A
  ``sqlite:///`` database is probed like storage: on a folder every node sees it is a warning
  (works, but sqlite over NFS is not safe for many writers); on a node-local disk it is an error
  (:data:`LOCAL_TRACKING_LEVEL`).

Two more folders are checked when given, as warnings: the stage cache (``cache_dir``; not shared
means each node rebuilds it) and the data folder (``data_root``; read-only check of a sample of
files, since nodes read it only when Ray's object store has no copy of the data).

Each finding is a :class:`ClusterIssue` (what, why, how to fix, level). The sweep refuses to start
on errors and prints warnings (see ``docs/cluster.md``). ``python -m harness.cluster --address
auto --storage ... --tracking-uri ...`` runs the same checks on their own.

:func:`auth_mode_hint` and :func:`connect_error_message` explain the most common reason a node or
driver cannot join a Ray 2.60 cluster: token authentication enabled on one side only.
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlparse

from harness.store_uri import sqlite_file

__all__ = [
    "ERROR",
    "WARNING",
    "ClusterIssue",
    "alive_nodes",
    "auth_mode_hint",
    "connect_error_message",
    "format_issues",
    "has_errors",
    "preflight",
]

ERROR = "error"
WARNING = "warning"

#: Level of a tracking store that lives on one node's local disk (sqlite:/// or a file store) when
#: the cluster has several nodes. The harness writes MLflow from the Tune driver process only, so
#: such a store does work while every sweep of a project is started on the machine that holds it;
#: it is an error because any other way of starting or resuming the sweep (another host, ``ray job
#: submit`` on a different node, a ``ray://`` client whose Tune driver runs on the head) silently
#: writes to a different, empty database.
LOCAL_TRACKING_LEVEL = ERROR

#: Tracking URIs served by a process that every node reaches over the network.
SERVER_TRACKING_SCHEMES = ("http", "https", "databricks", "databricks-uc")
#: SQLAlchemy database URIs MLflow accepts (``postgresql+psycopg2://`` and so on match too).
DATABASE_TRACKING_SCHEMES = ("postgresql", "postgres", "mysql", "mssql", "oracle")

AUTH_MODE_ENV = "RAY_AUTH_MODE"
PROBE_PREFIX = ".harness-preflight-"
DEFAULT_PROBE_TIMEOUT = 30.0
HTTP_TIMEOUT = 5.0

FIX_STORAGE = ("pass --storage a folder mounted at the same path on every node (NFS, EFS, "
               "Filestore, a CephFS or Lustre mount ...), or an object-store URI such as "
               "--storage s3://BUCKET/harness-runs (the nodes need credentials for it)")
FIX_TRACKING = ("start an MLflow server that every node can reach, e.g. on the head: "
                "`mlflow server --backend-store-uri postgresql://USER:PASS@DBHOST/mlflow "
                "--artifacts-destination s3://BUCKET/mlflow --host 0.0.0.0 --port 5000`, and pass "
                "--tracking-uri http://HEAD:5000")


# ----------------------------------------------------------------------------- issues
@dataclass(frozen=True)
class ClusterIssue:
    """One thing a multi-node sweep needs and does not have."""

    level: str                  # "error" (the sweep refuses to start) or "warning" (printed)
    what: str                   # what is missing or wrong
    why: str                    # why it matters on a cluster
    fix: str                    # how to fix it
    node: str | None = None     # the node concerned, when it is one node's problem

    def __post_init__(self):
        if self.level not in (ERROR, WARNING):
            raise ValueError(f"level must be {ERROR!r} or {WARNING!r}, got {self.level!r}")

    def __str__(self) -> str:
        return f"{self.level}: {self.what}"


def has_errors(issues: Iterable[ClusterIssue]) -> bool:
    return any(i.level == ERROR for i in issues)


def format_issues(issues: Sequence[ClusterIssue]) -> str:
    """A readable block: errors first, each with why and how to fix."""
    if not issues:
        return "cluster preflight: no issues"
    errors = [i for i in issues if i.level == ERROR]
    warnings_ = [i for i in issues if i.level == WARNING]
    head = (f"cluster preflight: {len(errors)} error(s), {len(warnings_)} warning(s)"
            + ("; the sweep will not start until the errors are fixed" if errors else ""))
    lines = [head]
    for i in errors + warnings_:
        lines.append(f"  {i.level.upper():<8}{i.what}")
        lines.append(f"          why: {i.why}")
        lines.append(f"          fix: {i.fix}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- nodes
def alive_nodes(nodes: Iterable[Mapping[str, Any]] | None = None) -> list[dict]:
    """The alive node records (as ``ray.nodes()`` returns them), head first."""
    if nodes is None:
        import ray

        nodes = ray.nodes()
    alive = [dict(n) for n in nodes if n.get("Alive", n.get("alive", False))]
    return sorted(alive, key=lambda n: not _is_head(n))


def _is_head(node: Mapping[str, Any]) -> bool:
    return "node:__internal_head__" in (node.get("Resources") or {})


def _node_label(node: Mapping[str, Any]) -> str:
    nid = str(node.get("NodeID", "?"))
    addr = node.get("NodeManagerAddress") or "?"
    host = node.get("NodeManagerHostname")
    custom = sorted(k for k in (node.get("Resources") or {})
                    if k not in ("CPU", "GPU", "memory", "object_store_memory")
                    and not k.startswith(("node:", "accelerator_type:")))
    extra = f", resources {','.join(custom)}" if custom else ""
    hostpart = f" on {host}" if host and host != addr else ""
    role = "head " if _is_head(node) else ""
    return f"{role}node {addr}{hostpart} (id {nid[:12]}{extra})"


# ----------------------------------------------------------------------------- classification
def _scheme(uri: str) -> str:
    """The URI scheme, lower case; '' for a plain path (Windows drive letters included)."""
    if re.match(r"^[A-Za-z]:[\\/]", uri):
        return ""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*):", uri)
    return m.group(1).lower() if m else ""


def _local_path(uri: str) -> Path | None:
    """The absolute local path of a plain path or ``file://`` URI, else None."""
    scheme = _scheme(uri)
    if scheme == "file":
        return Path(urlparse(uri).path).resolve()
    if scheme == "":
        return Path(os.path.expanduser(uri)).resolve()
    return None


def _offline_uri(uri: str) -> str:
    """``uri`` rewritten so that pyarrow resolves it without a network call.

    ``FileSystem.from_uri('s3://bucket/x')`` asks AWS for the bucket's region (a HeadBucket call
    that hangs or fails offline); with an explicit ``region`` it only builds the client.
    """
    if _scheme(uri) == "s3" and "region=" not in uri:
        return uri + ("&" if "?" in uri else "?") + "region=us-east-1"
    return uri


def _storage_scheme_issue(uri: str) -> ClusterIssue | None:
    """Whether pyarrow (hence Ray Tune) knows ``uri``'s filesystem; never contacts the network for
    s3/gs/abfs (pyarrow builds those clients lazily)."""
    import pyarrow.fs

    scheme = _scheme(uri)
    try:
        pyarrow.fs.FileSystem.from_uri(_offline_uri(uri))
    except Exception as exc:  # noqa: BLE001 - any failure is reported
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Unrecognized filesystem type" in text:
            return ClusterIssue(
                ERROR, f"storage {uri!r}: pyarrow does not know the {scheme}:// scheme",
                "Ray Tune opens its storage with pyarrow.fs.FileSystem.from_uri, which accepts "
                "local paths and s3://, gs://, abfs(s)://, hdfs:// URIs; the sweep would fail "
                "when Tune creates its experiment folder",
                FIX_STORAGE)
        return ClusterIssue(
            ERROR, f"storage {uri!r}: the driver cannot open it ({text})",
            "Ray Tune's driver writes the experiment state there before any trial starts, so "
            "the sweep would fail at once (an hdfs:// URI needs a JVM and libhdfs on every node)",
            f"install what the {scheme}:// filesystem needs on every node, or {FIX_STORAGE}")
    return None


def _tracking_kind(uri: str | None) -> str:
    """'server' | 'database' | 'sqlite' | 'file' | 'unknown'."""
    if not uri:
        return "file"          # MLflow's own default is ./mlruns (a file store)
    scheme = _scheme(uri)
    base = scheme.split("+", 1)[0]
    if scheme in SERVER_TRACKING_SCHEMES or uri in ("databricks", "databricks-uc"):
        return "server"
    if base == "sqlite":
        return "sqlite"
    if base in DATABASE_TRACKING_SCHEMES:
        return "database"
    if scheme in ("", "file"):
        return "file"
    return "unknown"


def _server_answers(uri: str, timeout: float = HTTP_TIMEOUT) -> str | None:
    """None when something answers HTTP at ``uri`` (any status), else why not."""
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None            # it answered (maybe 401/403 behind a proxy): reachable
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{type(reason).__name__}: {reason}"


# ----------------------------------------------------------------------------- probing
def _node_probe(probe: str, token: str, reply: str) -> dict:
    """Runs on one node: can it read the driver's probe file, and write a reply next to it?

    It creates nothing but the reply: a folder missing on this node stays missing.
    """
    import ray

    out: dict[str, Any] = {"node_id": ray.get_runtime_context().get_node_id(),
                           "hostname": socket.gethostname(), "read": None, "write": None}
    folder = Path(probe).parent
    try:
        if Path(probe).read_text() != token:
            out["read"] = "a file of that name holds another probe's token"
    except FileNotFoundError:
        out["read"] = ("the folder exists there but the driver's probe file is not in it"
                       if folder.is_dir() else "the folder does not exist there")
    except OSError as exc:
        out["read"] = f"{type(exc).__name__}: {exc}"
    if not folder.is_dir():
        out["write"] = "the folder does not exist there"
        return out
    try:
        Path(reply).write_text(out["node_id"])
    except OSError as exc:
        out["write"] = f"{type(exc).__name__}: {exc}"
    return out


def _node_unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


@dataclass
class _Seen:
    """What one node made of a probe folder."""

    node_id: str
    shared: bool = False            # it read the driver's file and the driver read its reply
    answered: bool = True
    problem: str | None = None      # why it is not shared, in words


def _probe_folder(folder: Path, nodes: Sequence[Mapping[str, Any]], timeout: float) -> dict:
    """Write a probe file in ``folder`` here; from a task pinned to every node in ``nodes``, read
    it and write a reply beside it; then read the replies here.

    Returns ``{"driver": error-or-None, "nodes": {node_id: _Seen}}``.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = uuid.uuid4().hex
    probe = folder / f"{PROBE_PREFIX}{token}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_text(token)
    except OSError as exc:
        return {"driver": f"{type(exc).__name__}: {exc}", "nodes": {}}
    remote = ray.remote(num_cpus=0, max_retries=0)(_node_probe)
    refs, replies = {}, {}
    try:
        for n in nodes:
            nid = n["NodeID"]
            replies[nid] = folder / f"{PROBE_PREFIX}{token}-{nid[:16]}"
            refs[nid] = remote.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=nid, soft=False),
                name="harness-preflight-probe").remote(str(probe), token, str(replies[nid]))
        pending = list(refs.values())
        ready, _ = ray.wait(pending, num_returns=len(pending), timeout=timeout) if pending \
            else ([], [])
        ready = set(ready)
        seen: dict[str, _Seen] = {}
        orphans: list[tuple[str, str]] = []
        for nid, ref in refs.items():
            if ref not in ready:
                ray.cancel(ref, force=True)
                seen[nid] = _Seen(nid, answered=False,
                                  problem=f"no answer within {timeout:.0f} s (the node is busy, "
                                          "or cannot start a Ray worker)")
                continue
            try:
                res = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a dead node, a failed worker ...
                seen[nid] = _Seen(nid, answered=False,
                                  problem=f"the probe task failed: {type(exc).__name__}: "
                                          f"{str(exc)[:300]}")
                continue
            back = replies[nid].exists()
            s = _Seen(nid, shared=res["read"] is None and back)
            if res["read"] is not None:
                s.problem = f"it cannot see the driver's file: {res['read']}"
            elif res["write"] is not None:
                s.problem = f"it can read but cannot write there: {res['write']}"
            elif not back:
                s.problem = ("it can write there, but the driver does not see what it wrote "
                             "(a node-local folder holding a copy of the file?)")
            seen[nid] = s
            if res["write"] is None and not back:
                orphans.append((nid, str(replies[nid])))
        # the replies written on node-local disks: remove them there (fire and forget)
        for nid, path in orphans:
            ray.remote(num_cpus=0, max_retries=0)(_node_unlink).options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=nid, soft=False)
            ).remote(path)
        return {"driver": None, "nodes": seen}
    finally:
        for path in [probe, *replies.values()]:
            try:
                path.unlink()
            except OSError:
                pass


def _probe_everywhere(folder: Path, nodes: Sequence[Mapping[str, Any]], timeout: float) -> dict:
    """:func:`_probe_folder` from the node Tune's driver runs on: this process, or with a
    ``ray://`` client, the client server's node (Ray Tune runs its driver there)."""
    import ray

    if not ray.is_initialized():
        return {"driver": None, "nodes": {
            n["NodeID"]: _Seen(n["NodeID"], answered=False, problem="not connected to the cluster")
            for n in nodes}}
    here = ray.get_runtime_context().get_node_id()
    others = [n for n in nodes if n["NodeID"] != here]
    if not _client_mode():
        return _probe_folder(folder, others, timeout)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(num_cpus=0, max_retries=0)(_probe_folder).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False))
    return ray.get(task.remote(folder, others, timeout), timeout=timeout + 30)


def _client_mode() -> bool:
    try:
        import ray.util.client

        return bool(ray.util.client.ray.is_connected())
    except Exception:  # noqa: BLE001
        return False


def _node_issues(result: dict, nodes: Sequence[Mapping[str, Any]], *, level: str, what: str,
                 why: str, fix: str, joiner: str = "with") -> list[ClusterIssue]:
    """One issue per node that does not share the probed folder; a node that did not answer is
    a warning (not verified), whatever ``level``."""
    by_id = {n["NodeID"]: n for n in nodes}
    issues = []
    for nid, s in result["nodes"].items():
        if s.shared:
            continue
        label = _node_label(by_id.get(nid, {"NodeID": nid}))
        if not s.answered:
            issues.append(ClusterIssue(WARNING, f"could not check {what} on {label}: {s.problem}",
                                       why, fix, node=nid))
        else:
            issues.append(ClusterIssue(level, f"{what} {joiner} {label}: {s.problem}", why, fix,
                                       node=nid))
    return issues


# ----------------------------------------------------------------------------- checks
def _check_storage(storage: str | None, nodes, timeout: float) -> list[ClusterIssue]:
    if not storage:
        return [ClusterIssue(
            ERROR, "no --storage for a multi-node cluster",
            "trials persist checkpoints and results under the Tune storage from the node they run "
            "on; Ray no longer syncs worker-node folders to the head (Ray 2.7+), so a default "
            "folder on the driver's disk loses them and a resumed sweep cannot restore",
            FIX_STORAGE)]
    path = _local_path(storage)
    if path is None:
        issue = _storage_scheme_issue(storage)
        return [issue] if issue else []
    return _check_shared_folder(
        path, nodes, timeout, level=ERROR, label="storage",
        driver_why="Ray Tune's driver writes the experiment state there before any trial starts",
        driver_fix=f"create the folder with write permission for this user, or {FIX_STORAGE}",
        why=("trials on that node write checkpoints and results to their own disk: they fail at "
             "their first checkpoint ('Unable to set up cluster storage'), and a resumed sweep "
             "cannot find what they wrote"),
        fix=FIX_STORAGE)


def _check_shared_folder(path: Path, nodes, timeout: float, *, level: str, label: str,
                         driver_why: str, driver_fix: str, why: str, fix: str) -> list[ClusterIssue]:
    """Probe ``path`` from the driver and every node: an issue (at ``level``) when the driver
    cannot write there, else one per node that does not share the folder."""
    result = _probe_everywhere(path, nodes, timeout)
    if result["driver"] is not None:
        return [ClusterIssue(
            level, f"{label} {str(path)!r}: the driver cannot write there ({result['driver']})",
            driver_why, driver_fix)]
    return _node_issues(result, nodes, level=level, what=f"{label} {str(path)!r} is not shared",
                        why=why, fix=fix)


def _check_tracking(tracking_uri: str | None, nodes, timeout: float) -> list[ClusterIssue]:
    kind = _tracking_kind(tracking_uri)
    uri = tracking_uri or "(MLflow's default ./mlruns)"
    if kind == "server":
        if _scheme(uri) in ("http", "https"):
            why_not = _server_answers(uri)
            if why_not is not None:
                return [ClusterIssue(
                    ERROR, f"tracking server {_redact(uri)} does not answer from the driver "
                           f"({why_not})",
                    "every trial and cell is logged there as it runs; MLflow's client retries "
                    "for minutes before it gives up, and then the sweep fails",
                    "start the server (`mlflow server ... --host 0.0.0.0 --port 5000`), open its "
                    "port to the cluster, and check "
                    f"`curl {_redact(uri).rstrip('/')}/health` from the driver")]
        return []
    if kind == "database":
        return [ClusterIssue(
            WARNING, f"tracking URI {_redact(uri)} is a database without an MLflow server",
            "runs are recorded in the database, but artifacts (leaderboard files, results.parquet, "
            "configs) go to MLflow's default artifact root for a database store: ./mlruns in the "
            "driver's working directory, which an MLflow UI elsewhere cannot show",
            "run `mlflow server --backend-store-uri <this URI> --artifacts-destination "
            "s3://BUCKET/mlflow --host 0.0.0.0` on the head and pass --tracking-uri "
            "http://HEAD:5000")]
    if kind == "unknown":
        return [ClusterIssue(
            WARNING, f"tracking URI {_redact(uri)}: unknown scheme {_scheme(uri)!r}",
            "preflight cannot tell whether every node and the MLflow UI reach this store",
            FIX_TRACKING)]
    if kind == "file":
        return [ClusterIssue(
            ERROR, f"tracking URI {uri} is a plain file store",
            "MLflow 3.17 refuses file stores, and a folder on one node's disk is not seen by "
            "the others",
            FIX_TRACKING)]
    # sqlite
    db = sqlite_file(tracking_uri)
    if db is None:
        return [ClusterIssue(
            ERROR, f"tracking URI {uri} is an in-memory sqlite database",
            "everything logged is lost when the driver exits", FIX_TRACKING)]
    result = _probe_everywhere(db.parent, nodes, timeout)
    if result["driver"] is not None:
        return [ClusterIssue(
            ERROR, f"tracking database folder {str(db.parent)!r}: the driver cannot write there "
                   f"({result['driver']})",
            "MLflow cannot create or update its database", FIX_TRACKING)]
    local = _node_issues(
        result, nodes, level=LOCAL_TRACKING_LEVEL,
        what=f"tracking database {str(db)!r} is on a folder that is not shared",
        why=("the sweep records MLflow runs from its driver only, so this works while every sweep "
             "is started on this machine; started or resumed from anywhere else (another host, "
             "`ray job submit`, a ray:// client, whose Tune driver runs on the head) it writes to "
             "a different, empty database, and the MLflow UI has to run on this machine"),
        fix=FIX_TRACKING)
    if local:
        return local
    return [ClusterIssue(
        WARNING, f"tracking database {str(db)!r} is sqlite on a shared folder",
        "every node sees it, so it works, but sqlite's file locking is not safe over NFS and "
        "for many writers at once: expect 'database is locked' retries or a corrupted database "
        "when several sweeps or UIs use it",
        FIX_TRACKING)]


def _check_cache(cache_dir: str | None, nodes, timeout: float) -> list[ClusterIssue]:
    """The stage cache is an optimisation: not shared is a warning (each node recomputes)."""
    if not cache_dir:
        return []
    path = _local_path(cache_dir)
    if path is None:
        return []
    fix = ("put --runs-dir (the stage cache is <runs-dir>/<sweep>/cache) on a folder mounted at "
           "the same path on every node")
    return _check_shared_folder(
        path, nodes, timeout, level=WARNING, label="stage cache",
        driver_why="trials cannot cache their stage-1 artifacts there", driver_fix=fix,
        why=("trials on that node build their own copy of every cached stage (source side, "
             "alignment) at this path on their disk, which costs time, and fail if they cannot "
             "create the folder there"),
        fix=fix)


def _node_stat(paths: list[str]) -> dict:
    """Runs on one node: the size of each file, or why it cannot be read."""
    out = {}
    for p in paths:
        try:
            with open(p, "rb") as f:
                f.read(1)
            out[p] = os.path.getsize(p)
        except OSError as exc:
            out[p] = f"{type(exc).__name__}: {exc.strerror or exc}"
    return out


def _sample_files(root: Path, limit: int = 40) -> list[Path]:
    """Up to ``limit`` data files under ``root`` (sorted, hidden ones skipped)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith("."):
                found.append(Path(dirpath) / f)
                if len(found) >= limit:
                    return found
    return found


def _check_data_root(data_root: str | None, nodes, timeout: float) -> list[ClusterIssue]:
    """Read-only check (the data folder may be a read-only mount): every node reads a sample of
    the files the driver sees, with the same sizes."""
    if not data_root:
        return []
    path = _local_path(data_root)
    if path is None or not path.is_dir():
        return []
    files = _sample_files(path)
    import ray

    if not files or not ray.is_initialized() or _client_mode():
        return []
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here_sizes = {str(f): f.stat().st_size for f in files}
    here = ray.get_runtime_context().get_node_id()
    others = [n for n in nodes if n["NodeID"] != here]
    if not others:
        return []
    remote = ray.remote(num_cpus=0, max_retries=0)(_node_stat)
    refs = {n["NodeID"]: remote.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=n["NodeID"], soft=False),
        name="harness-preflight-probe").remote(list(here_sizes)) for n in others}
    ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout)
    ready = set(ready)
    seen: dict[str, _Seen] = {}
    for nid, ref in refs.items():
        if ref not in ready:
            ray.cancel(ref, force=True)
            seen[nid] = _Seen(nid, answered=False, problem=f"no answer within {timeout:.0f} s")
            continue
        try:
            sizes = ray.get(ref)
        except Exception as exc:  # noqa: BLE001
            seen[nid] = _Seen(nid, answered=False,
                              problem=f"the probe task failed: {type(exc).__name__}")
            continue
        bad = [(p, v) for p, v in sizes.items() if v != here_sizes[p]]
        if not bad:
            seen[nid] = _Seen(nid, shared=True)
        else:
            p, v = bad[0]
            why = v if isinstance(v, str) else f"{v} bytes there, {here_sizes[p]} here"
            seen[nid] = _Seen(nid, problem=f"{len(bad)} of {len(sizes)} sampled files differ "
                                           f"or are missing (e.g. {p}: {why})")
    return _node_issues(
        {"nodes": seen}, nodes, level=WARNING, what=f"data folder {str(path)!r} differs",
        joiner="on",
        why=("trials read the data the driver puts in Ray's object store, but fall back to reading "
             "--data-root on their node when it is not there (a resumed sweep, or a data "
             "registry that was lost with its node); those trials fail on this node"),
        fix=("put --data-root on a folder mounted at the same path on every node, or copy the "
             "same files to the same path on every node"))


def _redact(uri: str) -> str:
    """A URI with any password replaced by ***."""
    return re.sub(r"(://[^:/@]+:)[^@/]+@", r"\1***@", uri)


def preflight(address: str | None, storage: str | None, tracking_uri: str | None, *,
              nodes: Iterable[Mapping[str, Any]] | None = None, cache_dir: str | None = None,
              data_root: str | None = None,
              timeout: float = DEFAULT_PROBE_TIMEOUT) -> list[ClusterIssue]:
    """What a sweep on this Ray cluster lacks; an empty list when it has one alive node.

    Args:
        address: the ``--address`` the sweep uses. When Ray is already initialised (the sweep
            calls this right after ``ray.init``) it is only used in messages; otherwise this
            connects to it (and disconnects afterwards). None with no Ray running means a local
            single-node cluster: nothing to check.
        storage: the Tune storage path or URI the sweep will use (its resolved ``--storage``).
        tracking_uri: the MLflow tracking URI the sweep will use (its resolved
            ``--tracking-uri``).
        nodes: alive node records as ``ray.nodes()`` returns them (default: ``ray.nodes()``).
        cache_dir: the sweep's stage cache folder; a cache not shared is a warning.
        data_root: the sweep's data folder; files that differ on a node are a warning (nodes
            read it only when the object store has no copy: a resumed sweep, a lost registry).
        timeout: seconds to wait for every node's probe task.
    """
    import ray

    connected_here = False
    if not ray.is_initialized():
        if address is None and nodes is None:
            return []
        if address is not None:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR")
            except Exception as exc:  # noqa: BLE001 - explained to the user
                return [ClusterIssue(ERROR, f"cannot connect to the Ray cluster at {address}",
                                     str(exc) or type(exc).__name__,
                                     connect_error_message(exc, address))]
            connected_here = True
    try:
        alive = alive_nodes(nodes)
        if len(alive) <= 1:
            return []
        issues: list[ClusterIssue] = []
        if _client_mode():
            issues.append(ClusterIssue(
                WARNING, f"connected through a Ray client ({address})",
                "Ray Tune runs its driver, and with it the harness's results writer, on the "
                "client server's node (the head): results/cells, done markers and a sqlite "
                "tracking store are written at this machine's paths on the head's disk",
                "run the sweep on the head node (ssh, or `ray job submit -- python -m "
                "harness.sweep ... --address auto`), or put --runs-dir on a folder both share"))
        issues += _check_storage(storage, alive, timeout)
        issues += _check_tracking(tracking_uri, alive, timeout)
        issues += _check_cache(cache_dir, alive, timeout)
        issues += _check_data_root(data_root, alive, timeout)
        return issues
    finally:
        if connected_here:
            ray.shutdown()


# ----------------------------------------------------------------------------- auth
def _token_sources() -> list[str]:
    """Where this process would find a Ray auth token (env var, token file)."""
    found = []
    if os.environ.get("RAY_AUTH_TOKEN"):
        found.append("$RAY_AUTH_TOKEN")
    p = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if p and Path(p).expanduser().is_file():
        found.append(p)
    default = Path.home() / ".ray" / "auth_token"
    if default.is_file():
        found.append(str(default))
    return found


def _auth_advice() -> str:
    return ("Set the same mode on every node and on the driver, before `ray start` and before the "
            "sweep: `export RAY_AUTH_MODE=token` with the same token everywhere (copy the head's "
            "~/.ray/auth_token to each machine, or export RAY_AUTH_TOKEN=<token>; `ray "
            "get-auth-token` prints it on the head), then restart the nodes that joined without "
            "it. For a private test cluster, `export RAY_AUTH_MODE=disabled` on every node and "
            "the driver instead (and restart the head).")


def _is_auth_failure(exc: BaseException | str | None) -> bool:
    if exc is None:
        return False
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return bool(re.search(r"InvalidAuthToken|AuthenticationError|Unauthenticated|"
                          r"authentication token", text, re.IGNORECASE))


def auth_mode_hint(exc: BaseException | str | None = None) -> str | None:
    """Advice on Ray 2.60's token authentication, or None when nothing looks wrong.

    Ray 2.60 turns token authentication on for a cluster started on a machine that has a token
    (``~/.ray/auth_token``, written by an earlier ``ray.init()``) when ``RAY_AUTH_MODE`` is unset,
    but a node joining with ``ray start --address`` does not turn it on by itself: it is refused
    with ``InvalidAuthToken`` after about 20 s. A driver fails the same way when its
    ``RAY_AUTH_MODE`` is ``disabled``, when its token differs, or when the mode is unset and it
    is given an explicit address (``ray.init`` picks a token up only for ``address="auto"``). Pass ``exc`` (a connection failure, or its
    text) to have it recognised.
    """
    mode = os.environ.get(AUTH_MODE_ENV)
    tokens = _token_sources()
    if _is_auth_failure(exc):
        return (f"Ray refused the connection: token authentication does not match "
                f"(InvalidAuthToken). Here RAY_AUTH_MODE is "
                f"{mode if mode is not None else 'unset'}"
                f"{' with a token in ' + ', '.join(tokens) if tokens else ' and no token is set'}. "
                + _auth_advice())
    if mode is None and tokens:
        return (f"RAY_AUTH_MODE is unset while a Ray auth token exists ({', '.join(tokens)}): "
                "a Ray 2.60 head started here turns token authentication on by itself, but a "
                "node that joins with `ray start --address` does not, nor does a driver given an "
                "explicit address (only `--address auto` picks the token up), and they are "
                "refused with InvalidAuthToken. " + _auth_advice())
    if mode is not None and mode.lower() == "token" and not tokens:
        return ("RAY_AUTH_MODE=token but no token is set here (no $RAY_AUTH_TOKEN, "
                "$RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token): copy the head's ~/.ray/auth_token "
                "to this machine or export RAY_AUTH_TOKEN=<token>. " + _auth_advice())
    return None


def connect_error_message(exc: BaseException | str, address: str | None = None) -> str:
    """What to tell the user when ``ray.init(address=...)`` (or ``ray start --address``) failed.

    Ray 2.60 reports a token mismatch only as ``ConnectionError: Failed to connect to Ray
    cluster at ...`` after about 20 s; the ``InvalidAuthToken`` text is in log lines printed on
    stderr, not in the exception. So an auth failure is named as such when the text shows it, and
    listed as the first likely cause of any other connection failure.
    """
    where = f" at {address}" if address else ""
    text = str(exc) if not isinstance(exc, str) else exc
    first = text.splitlines()[0] if text else type(exc).__name__
    head = f"could not connect to the Ray cluster{where}: {first}"
    if _is_auth_failure(exc):
        return f"{head}\n{auth_mode_hint(exc)}"
    mode = os.environ.get(AUTH_MODE_ENV)
    tokens = _token_sources()
    state = (f"RAY_AUTH_MODE is {mode if mode is not None else 'unset'} here"
             f"{', with a token in ' + ', '.join(tokens) if tokens else ', with no token'}")
    return "\n".join([
        head,
        "Likely causes:",
        "  1. Token authentication differs between this process and the cluster (Ray 2.60; the "
        "log lines above then say 'InvalidAuthToken'); " + state + ". " + _auth_advice(),
        "  2. Nothing listens there: check the address (`ray start --head` prints it; "
        "`--address auto` finds a cluster started on this machine), that the head is running "
        "(`ray status` on the head), and that its port (6379 by default) is open to this "
        "machine.",
    ])


# ----------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m harness.cluster",
        description="Check that a Ray cluster is ready for a multi-node sweep (shared storage, "
                    "tracking server) without running anything.")
    p.add_argument("--address", default="auto", help="Ray cluster address (default: auto)")
    p.add_argument("--storage", default=None, help="the --storage you will pass to the sweep")
    p.add_argument("--tracking-uri", default=None, help="the --tracking-uri of the sweep")
    p.add_argument("--runs-dir", default=None,
                   help="the --runs-dir of the sweep (its stage cache is checked too)")
    p.add_argument("--data-root", default=None, help="the --data-root of the sweep")
    p.add_argument("--timeout", type=float, default=DEFAULT_PROBE_TIMEOUT)
    args = p.parse_args(argv)
    hint = auth_mode_hint()
    if hint:
        print(f"note: {hint}", file=sys.stderr)
    import ray

    t0 = time.perf_counter()
    try:
        ray.init(address=args.address, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    except Exception as exc:  # noqa: BLE001
        print(connect_error_message(exc, args.address), file=sys.stderr)
        return 2
    try:
        nodes = alive_nodes()
        print(f"{len(nodes)} alive node(s):")
        for n in nodes:
            res = n.get("Resources") or {}
            print(f"  {_node_label(n)}: {res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU")
        cache = str(Path(args.runs_dir).resolve()) if args.runs_dir else None
        issues = preflight(args.address, args.storage, args.tracking_uri, cache_dir=cache,
                           data_root=args.data_root, timeout=args.timeout)
    finally:
        ray.shutdown()
    print(format_issues(issues))
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 1 if has_errors(issues) else 0


if __name__ == "__main__":
    sys.exit(main())
