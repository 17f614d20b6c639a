"""Real Ray clusters on this machine for the tests, and ending every process they leave behind.

``private_ray_tmpdir()`` gives Ray its own ``RAY_TMPDIR``, so ``ray.init()`` in other processes on
this machine never finds these clusters; ``start_cluster()`` starts a
``ray.cluster_utils.Cluster`` (a head with 0 CPUs and two 1-CPU worker nodes) and, on exit, shuts
it down and kills by pid whatever it left running.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


# ----------------------------------------------------------------------------- process hygiene
def _parents() -> dict[int, int]:
    """pid -> parent pid of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                out[int(d)] = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return out


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def descendants() -> dict[int, str]:
    """pid -> start time of every process below this one."""
    parents, found, todo = _parents(), {}, [os.getpid()]
    while todo:
        p = todo.pop()
        for c, pp in parents.items():
            if pp == p and c not in found:
                found[c] = _start_time(c)
                todo.append(c)
    return {p: t for p, t in found.items() if t is not None}


def kill_leftovers(procs: dict[int, str], grace: float = 5.0) -> list[int]:
    """SIGKILL the processes of ``procs`` still alive after ``grace`` s (same pid and start time:
    not a reused pid), e.g. a killed node's ray::DashboardAgent / RuntimeEnvAgent, orphaned when
    its raylet died."""
    deadline = time.time() + grace
    while True:
        alive = [p for p, t in procs.items() if _start_time(p) == t]
        if not alive or time.time() > deadline:
            break
        time.sleep(0.2)
    for p in alive:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return alive


# ----------------------------------------------------------------------------- clusters
@contextlib.contextmanager
def private_ray_tmpdir() -> Iterator[str]:
    """A private RAY_TMPDIR (short: Ray's socket paths must stay under 108 bytes), with
    RAY_AUTH_MODE=disabled and no RAY_ADDRESS; removed on exit."""
    import ray

    if ray.is_initialized():        # left over by an earlier test: these need their own clusters
        ray.shutdown()
    d = tempfile.mkdtemp(prefix="rh", dir="/tmp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_TMPDIR", d)
        mp.setenv("RAY_AUTH_MODE", "disabled")
        mp.delenv("RAY_ADDRESS", raising=False)
        yield d
    shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def start_cluster(connect: bool = True, seen: dict[int, str] | None = None) -> Iterator[tuple]:
    """(Cluster, [node_a, node_b]): head (0 CPUs, resource ``head``) + two 1-CPU worker nodes
    (resources ``node_a`` / ``node_b``); run it inside ``private_ray_tmpdir()``.

    ``connect``: also connect this process as the driver (not for a sweep, which connects itself).
    ``seen``: processes to end on exit besides this process's descendants then, e.g. a removed
    node's agents, no longer below this process once their raylet is gone.
    """
    import ray
    from ray.cluster_utils import Cluster

    seen = {} if seen is None else seen
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "resources": {"head": 1},
                                                      "include_dashboard": False})
    try:
        workers = [c.add_node(num_cpus=1, resources={"node_a": 1}),
                   c.add_node(num_cpus=1, resources={"node_b": 1})]
        c.wait_for_nodes()
        if connect:
            ray.init(address=c.address, log_to_driver=False, logging_level="ERROR")
        yield c, workers
    finally:
        seen.update(descendants())
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()
        kill_leftovers(seen)
