"""The sweep's data registry: each task's arrays in Ray's object store, named in one actor.

The driver reads a task's search data (train + val) once and registers it as ``search:<task>``;
when a cell's search ends, :class:`FinalDataLoader` reads its final data (+ test) as
``final:<cell>``. Trial processes fetch by name and keep a small per-process cache.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from harness.keys import SEARCH

REGISTRY_ACTOR = "harness-data-registry"


class DataRegistry:
    """Named actor: ``"search:<task>"`` / ``"final:<cell>"`` -> object ref of the TaskData."""

    def __init__(self):
        self.refs: dict[str, list] = {}

    def put(self, key: str, wrapped_ref: list) -> None:
        self.refs[key] = wrapped_ref

    def get(self, key: str) -> list | None:
        return self.refs.get(key)


# The creating process keeps the owning handle: a named actor dies when its owner's references go.
_REGISTRY: dict[str, Any] = {}


def data_registry():
    """The registry actor: created (and kept alive) by the first process that asks — the driver."""
    import ray

    ctx = ray.get_runtime_context()
    job = f"{ctx.get_session_name()}/{ctx.get_job_id()}"   # job ids repeat across clusters
    if job not in _REGISTRY:
        _REGISTRY.clear()
        try:
            _REGISTRY[job] = ray.get_actor(REGISTRY_ACTOR)
        except ValueError:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            # on the driver's node: losing a worker node must not lose the sweep's data index
            here = NodeAffinitySchedulingStrategy(node_id=ctx.get_node_id(), soft=False)
            _REGISTRY[job] = ray.remote(num_cpus=0)(DataRegistry).options(
                name=REGISTRY_ACTOR, get_if_exists=True, scheduling_strategy=here).remote()
    return _REGISTRY[job]


def register(key: str, data) -> None:
    """Put ``data`` in the object store (owned by this process) and name it in the registry."""
    import ray

    ray.get(data_registry().put.remote(key, [ray.put(data)]))


_LOCAL_DATA: dict[str, Any] = {}


def fetch(key: str, fallback: Callable[[], Any] | None = None):
    """The TaskData registered under ``key`` (cached per worker process, by object id, so a
    re-registered key is fetched anew). ``fallback`` reads it from disk when nothing is
    registered — after a resumed sweep, for a cell whose search ended before the interruption."""
    import ray

    try:
        wrapped = ray.get(data_registry().get.remote(key))
    except (ValueError, ray.exceptions.RayActorError):
        _REGISTRY.clear()          # a dead handle: look the actor up again next time
        wrapped = None
    if wrapped is None:
        if fallback is None:
            raise KeyError(f"no data registered under {key!r}")
        register(key, fallback())
        wrapped = ray.get(data_registry().get.remote(key))
    oid = wrapped[0].hex()
    if oid not in _LOCAL_DATA:
        if len(_LOCAL_DATA) > 16:
            _LOCAL_DATA.clear()
        _LOCAL_DATA[oid] = ray.get(wrapped[0])
    return _LOCAL_DATA[oid]


def data_key(cell_key: str, task: str, phase: str) -> str:
    """The registry name of the data a trial of ``cell_key`` reads in ``phase``."""
    return f"search:{task}" if phase == SEARCH else f"final:{cell_key}"


def cell_data(cell, cell_key: str, phase: str):
    """The data a trial of ``cell`` may read in ``phase`` (search: train+val; final: +test)."""
    def read():
        from harness.suites import get_suite
        from harness.trial.data import load_for_phase

        if not cell.data_root:
            raise KeyError(f"no data registered for {cell_key} ({phase}) and no data_root to read")
        return load_for_phase(get_suite(cell.suite)[cell.task], cell.data_root, cell.profile, phase)

    return fetch(data_key(cell_key, cell.task, phase), fallback=read)


class FinalDataLoader:
    """Called by the searcher when a cell's search is over: reads the final data (with the test
    split) for that cell — the first and only time the test split is read — and registers it."""

    def __init__(self, tasks: Mapping[str, Any], data_root: str, profile):
        self.tasks, self.data_root, self.profile = dict(tasks), data_root, profile

    def __call__(self, cell_key: str) -> None:
        from harness.trial.data import load_for_phase

        task = self.tasks[cell_key.split("/", 1)[0]]
        register(data_key(cell_key, task.name, "final"),
                 load_for_phase(task, self.data_root, self.profile, "final"))
