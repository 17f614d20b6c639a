"""The preflight: storage, tracking store, stage cache and data folder, checked from every node."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from harness.cluster.auth import connect_error_message
from harness.cluster.bodies import node_body_issues
from harness.cluster.issues import (DEFAULT_PROBE_TIMEOUT, ERROR, FIX_STORAGE, FIX_TRACKING,
                                    LOCAL_TRACKING_LEVEL, WARNING, ClusterIssue)
from harness.cluster.probe import _client_mode, _node_issues, _probe_everywhere, _Seen, alive_nodes
from harness.cluster.stores import (_local_path, _redact, _scheme, _server_answers,
                                    _storage_scheme_issue, _tracking_kind)
from harness.store_uri import sqlite_file


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


def preflight(address: str | None, storage: str | None, tracking_uri: str | None, *,
              nodes: Iterable[Mapping[str, Any]] | None = None, cache_dir: str | None = None,
              data_root: str | None = None, bodies: Mapping[str, Sequence[str]] | None = None,
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
        bodies: body name -> the planned cells that load it; a body whose weights a node lacks
            is an error naming the node (trials load their body from their node's disk).
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
        issues += node_body_issues(bodies or {}, alive, timeout)
        return issues
    finally:
        if connected_here:
            ray.shutdown()
