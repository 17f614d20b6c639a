"""Load a NAS-Bench-360 task: locate its files, tell real from synthetic, build the splits.

Each task's builder (``read_*`` modules) reproduces the upstream loader's construction and
returns :class:`Built`; this module adds the validation carve-out bookkeeping, the audit line,
finiteness checks and the :class:`~harness.suites.base.TaskData` wrapper.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from harness.data.errors import MissingDataFile, SchemaMismatch
from harness.data.nb360.catalog import Nb360Dataset
from harness.data.nb360.building import Built, Context, carve, check_labels  # noqa: F401 (re-exported)
from harness.data.nb360.lazy import SampleArray

if TYPE_CHECKING:
    from harness.suites.base import Task, TaskData

# Bump when the way arrays are read or built changes (it enters every nasbench360 task version).
READER_VERSION = "nb360-1"


# ----------------------------------------------------------------------------- locating files
def missing_paths(spec: Nb360Dataset, root: Path) -> list[Path]:
    """The required paths of ``spec`` that are absent under ``root``."""
    out = []
    for rel in spec.required:
        p = Path(root) / rel.rstrip("/")
        if not (p.is_dir() if rel.endswith("/") else p.is_file()):
            out.append(p)
    return out


def find_dataset(spec: Nb360Dataset, root: Path, task_name: str = "") -> Path:
    """The first required path when all are present, else :class:`MissingDataFile` saying how to
    get them."""
    missing = missing_paths(spec, root)
    if not missing:
        return Path(root) / spec.required[0].rstrip("/")
    name = task_name or spec.key
    raise MissingDataFile(
        f"data for task {name!r} not found under {root}: missing {', '.join(map(str, missing))}.\n"
        f"  Make synthetic data:  python -m harness.data synth --suite nasbench360 --root {root} "
        f"--tasks {name}\n"
        f"  Download the real data: python -m harness.data download --suite nasbench360 "
        f"--root {root} --tasks {name}")


def read_marker(spec: Nb360Dataset, root: Path) -> dict[str, Any] | None:
    """The synthetic-data marker of ``spec`` under ``root`` (None: real data).

    The marker records every file the generator wrote with its size; a listed file whose size
    differs means real data was copied over synthetic data, which raises instead of mislabelling.
    """
    path = Path(root) / spec.marker
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SchemaMismatch(f"{path}: unreadable synthetic-data marker ({exc}); delete it and "
                             f"re-create the data with `python -m harness.data synth`.") from exc
    if not isinstance(marker, dict) or marker.get("synthetic") is not True:
        raise SchemaMismatch(f"{path}: not a synthetic-data marker (expected "
                             f'{{"synthetic": true, ...}}); delete it.')
    if not marker.get("complete"):
        raise SchemaMismatch(f"{path}: synthetic data generation did not finish; re-create it "
                             f"with `python -m harness.data synth --suite nasbench360`.")
    for rel, size in (marker.get("files") or {}).items():
        f = Path(root) / rel
        if f.is_file() and f.stat().st_size != size:
            raise SchemaMismatch(
                f"{f}: {f.stat().st_size} bytes, but the synthetic-data marker {path} recorded "
                f"{size}: the file was replaced (a real download over synthetic data?). Delete "
                f"{path} if the data is real, or re-create it with `python -m harness.data synth "
                f"--overwrite`.")
    return marker


def _check_finite(task: str, split: str, what: str, arr: Any, path: Path) -> None:
    sample = arr[: min(len(arr), 256)] if isinstance(arr, SampleArray) else arr
    sample = np.asarray(sample)
    if sample.dtype.kind == "f" and not np.all(np.isfinite(sample)):
        raise SchemaMismatch(f"{path}: the {split} {what} of task {task!r} contains NaN or inf "
                             f"values; the file is damaged.")


def _audit(task: str, splits: tuple[str, ...], path: Path) -> None:
    from harness.data.splits import audit_read as audit

    audit(task, splits, path)


# ----------------------------------------------------------------------------- entry point
def _builders() -> dict[str, Callable[[Context], Built]]:
    from harness.data.nb360 import (read_arrays, read_cosmic, read_darcy, read_ecg, read_fsd,
                                    read_images, read_psicov)

    return {"cifar100": read_images.build_cifar100, "spherical": read_images.build_spherical,
            "ninapro": read_arrays.build_ninapro, "satellite": read_arrays.build_satellite,
            "deepsea": read_arrays.build_deepsea, "ecg": read_ecg.build_ecg,
            "fsd50k": read_fsd.build_fsd, "darcy-flow": read_darcy.build_darcy,
            "psicov": read_psicov.build_psicov, "cosmic": read_cosmic.build_cosmic}


def load_task(task: "Task", root: Path, splits: tuple[str, ...]) -> "TaskData":
    """Read the requested splits of NAS-Bench-360 ``task`` from ``root``."""
    from harness.data.taskdata import SPLITS, TaskData

    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ValueError(f"unknown split {bad[0]!r}; splits are {SPLITS}")
    spec: Nb360Dataset = task.file
    path = find_dataset(spec, root, task.name)
    marker = read_marker(spec, root)
    _audit(task.name, splits, path)
    ctx = Context(task, Path(root), tuple(splits), "synthetic" if marker else "real", marker or {})
    builders = _builders()
    if task.construction.reader not in builders:
        raise ValueError(f"task {task.name!r}: unknown reader {task.construction.reader!r}")
    built = builders[task.construction.reader](ctx)
    for s in splits:
        _check_finite(task.name, s, "input", built.x[s], path)
        _check_finite(task.name, s, "target", built.y[s], path)
        if len(built.x[s]) != len(built.y[s]):
            raise SchemaMismatch(f"{path}: {len(built.x[s])} {s} inputs but {len(built.y[s])} "
                                 f"targets for task {task.name!r}")
    attrs = dict(built.attrs)
    if marker:
        attrs.update({k: marker[k] for k in ("generator_version", "seed", "size") if k in marker})
        attrs["synthetic"] = True
    return TaskData(task=task.name, task_version=task.version, source=ctx.source, path=path,
                    x=built.x, y=built.y, indices=built.indices, attrs=attrs, aux=built.aux)
