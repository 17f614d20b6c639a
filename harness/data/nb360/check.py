"""``check`` for NAS-Bench-360 tasks: files present, real or synthetic, readable, splits sane.

The task is read through its real reader (so everything the readers check is checked here);
the report gives samples per split, input/target shapes, value ranges (over at most the first
256 samples of a split), class or label coverage, and notes where counts differ from the
published data. ``verify=True`` also compares files against published or pinned md5s.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data.errors import DataError
from harness.data.nb360.catalog import Nb360Dataset
from harness.data.nb360.lazy import SampleArray
from harness.data.nb360.load import find_dataset, read_marker


def _head(arr, n: int = 256) -> np.ndarray:
    return np.asarray(arr[: min(len(arr), n)]) if isinstance(arr, SampleArray) else np.asarray(arr)


def check_task(task, root: Path, verify: bool = False):
    """Check one NAS-Bench-360 task under ``root``; reports problems instead of raising."""
    from harness.data.report import TaskReport

    spec: Nb360Dataset = task.file
    rep = TaskReport(task=task.name)
    try:
        rep.path = find_dataset(spec, root, task.name)
    except DataError as exc:
        rep.problems.append(str(exc).splitlines()[0])
        return rep
    try:
        marker = read_marker(spec, root)
        rep.source = "synthetic" if marker else "real"
        if marker:
            rep.notes.append(f"SYNTHETIC stand-in: generator {marker.get('generator_version')}, "
                             f"seed {marker.get('seed')}, size {marker.get('size')}, "
                             f"{len(marker.get('files', {}))} files")
        data = task.load(root)
    except DataError as exc:
        rep.problems.append(str(exc))
        return rep
    head = task.head
    for s in data.x:
        x, y = data.split(s)
        rep.counts[s] = len(x)
        if len(x) == 0:
            rep.problems.append(f"split {s!r} is empty")
            continue
        xs, ys = _head(x), _head(y)
        rep.ranges[f"{s}.x"] = (float(xs.min()), float(xs.max()))
        rep.ranges[f"{s}.y"] = (float(ys.min()), float(ys.max()))
        if head.kind == "classification":
            labels = np.asarray(y)
            rep.notes.append(f"{s}: {len(np.unique(labels))} of {head.num_classes} classes present")
        elif head.kind == "multilabel":
            pos = np.asarray(y).sum(axis=0)
            rep.notes.append(f"{s}: {int((pos > 0).sum())} of {head.num_classes} labels have "
                             f"positives; {float(np.asarray(y).mean()):.3f} positives per entry")
    first = next(iter(data.x))
    rep.shapes = {"x": tuple(data.x[first].shape[1:]), "y": tuple(data.y[first].shape[1:])}
    if head.output_shape and head.kind.startswith("dense") and rep.shapes["y"] != head.output_shape:
        rep.notes.append(f"target shape {rep.shapes['y']} (published data: {head.output_shape})")
    if rep.source == "real":   # a partial or different copy of the published data
        counts = dict(rep.counts)
        if task.split.val == "carve" and "train" in counts:
            counts["train"] += counts.pop("val", 0)   # compare before the carve-out
        for s, n in spec.real_counts.items():
            if s in counts and abs(counts[s] - n) > 0.05 * n:
                rep.notes.append(f"{s}: {counts[s]} samples; the published data has about {n}")
    if verify:
        from harness.data.nb360.download import verify_files

        rep.problems += verify_files(spec, Path(root))
    return rep
