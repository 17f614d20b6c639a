"""Whether each planned body's weights are on a machine: here, and on every node of a cluster.

A trial loads its body on the node it runs on, from that node's disk (nothing is downloaded at run
time), so a body present on the driver can still be missing on a worker node.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from harness.cluster.issues import ERROR, WARNING, ClusterIssue
from harness.cluster.probe import _client_mode, _node_label


def body_issue(name: str, cells: Sequence[str], problem: str,
               node: Mapping[str, Any] | None = None) -> ClusterIssue:
    """The issue for a body whose weights are missing (``problem``: the BackboneNotFound text)."""
    lines = problem.strip().splitlines()
    where = f" on {_node_label(node)}" if node else ""
    shown = ", ".join(cells[:4]) + (f" and {len(cells) - 4} more" if len(cells) > 4 else "")
    looked = "; ".join(ln.strip()[2:] for ln in lines[1:] if ln.startswith("  - "))
    return ClusterIssue(
        ERROR, f"{lines[0]}{where}",
        f"{len(cells)} planned cell(s) load this body ({shown}); every one of their trials would "
        "fail" + (f". Looked in: {looked}" if looked else ""),
        "\n".join(ln for ln in lines[1:] if ln.startswith("  *")).strip()
        or (lines[-1] if len(lines) > 1 else f"put the weights of {name!r} on this machine"),
        node=str(node["NodeID"]) if node else None)


def local_body_issues(bodies: Mapping[str, Sequence[str]]) -> list[ClusterIssue]:
    """One issue per body (name -> the cells that load it) whose weights are not on this machine."""
    from recraft.backbones import backbone_problem

    issues = []
    for name, cells in sorted(bodies.items()):
        problem = backbone_problem(name)
        if problem:
            issues.append(body_issue(name, list(cells), problem))
    return issues


def _node_body_problems(names: list[str]) -> dict[str, str | None]:
    """Runs on one node: each body's problem there (None when its weights are found)."""
    from recraft.backbones import backbone_problem

    return {n: backbone_problem(n) for n in names}


def node_body_issues(bodies: Mapping[str, Sequence[str]], nodes: Sequence[Mapping[str, Any]],
                     timeout: float) -> list[ClusterIssue]:
    """The same check from a task pinned to every node other than this one."""
    import ray

    if not bodies or not ray.is_initialized() or _client_mode():
        return []
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    others = [n for n in nodes if n["NodeID"] != here]
    remote = ray.remote(num_cpus=0, max_retries=0)(_node_body_problems)
    names = sorted(bodies)
    refs = {n["NodeID"]: remote.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=n["NodeID"], soft=False),
        name="harness-preflight-bodies").remote(names) for n in others}
    ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout) if refs \
        else ([], [])
    ready = set(ready)
    issues = []
    for node in others:
        ref = refs[node["NodeID"]]
        if ref not in ready:
            ray.cancel(ref, force=True)
            issues.append(ClusterIssue(
                WARNING, f"could not check the bodies' weights on {_node_label(node)}: no answer "
                         f"within {timeout:.0f} s", "trials there load their body from its disk",
                "check the node, or run the sweep's bodies check there: python -c \"from "
                "recraft.backbones import backbone_problem; print(backbone_problem('NAME'))\"",
                node=str(node["NodeID"])))
            continue
        try:
            found = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - a node that cannot run the check
            issues.append(ClusterIssue(
                WARNING, f"could not check the bodies' weights on {_node_label(node)}: "
                         f"{type(exc).__name__}: {str(exc)[:300]}",
                "trials there load their body from its disk", "check the node",
                node=str(node["NodeID"])))
            continue
        for name in names:
            if found.get(name):
                issues.append(body_issue(name, list(bodies[name]), found[name], node))
    return issues
