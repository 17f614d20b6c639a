"""The cluster's nodes, and whether a folder is the same folder on every one of them."""
from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from harness.cluster.issues import PROBE_PREFIX, WARNING, ClusterIssue


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
