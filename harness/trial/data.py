"""Task data as trials get it: only the splits a phase may read, capped to the profile's budget."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.profiles import Profile
from harness.suites.base import Task, TaskData

#: which splits each phase may read: the search never sees the test split
PHASE_SPLITS = {"search": ("train", "val"), "final": ("train", "val", "test")}


def cap(data: TaskData, profile: Profile) -> TaskData:
    """Keep the first ``max_train_samples`` training and ``max_eval_samples`` validation samples.

    The splits are already a seeded shuffle of the file's samples, so the first N are a fair
    sample; the test split is never capped.
    """
    limits = {"train": profile.max_train_samples, "val": profile.max_eval_samples}
    x, y, idx = dict(data.x), dict(data.y), dict(data.indices)
    aux = {s: dict(v) for s, v in data.aux.items()}
    for s, n in limits.items():
        if n is not None and s in x and len(x[s]) > n:
            x[s], y[s], idx[s] = x[s][:n], y[s][:n], idx[s][:n]
            for k in aux.get(s, {}):   # per-sample extras (masks, lengths) stay aligned
                aux[s][k] = aux[s][k][:n]
    return dataclasses.replace(data, x=x, y=y, indices=idx, aux=aux)


def load_for_phase(task: Task, root: str | Path, profile: Profile, phase: str) -> TaskData:
    """Read the splits ``phase`` may use (search: train+val; final: +test), capped by the profile."""
    if phase not in PHASE_SPLITS:
        raise ValueError(f"unknown phase {phase!r}; expected one of {list(PHASE_SPLITS)}")
    return cap(task.load(root, splits=PHASE_SPLITS[phase]), profile)
