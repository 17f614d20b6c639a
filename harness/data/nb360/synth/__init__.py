"""Synthetic NAS-Bench-360 stand-ins, written in the upstream file formats and labelled synthetic.

``generate(task, root, size, seed)`` writes a task's files where the real ones would be (the
readers cannot tell the format apart) and a marker ``<first required path>.synthetic.json``
listing every file with its size, the generator version, seed and size preset; the readers
report such data as ``source == "synthetic"``. Each task plants a learnable signal (see the
generator modules). Presets: ``tiny`` for tests, ``small`` for the quick profile (a few hundred
samples, small grids), ``medium`` for longer local runs.
"""
from __future__ import annotations

import json
import time
import zlib
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from harness.data.errors import DataError
from harness.data.nb360.catalog import DATASETS, TASK_NAMES

from . import audio_clips, fields, images, proteins, series
from .files import FileSet, write_marker

__all__ = ["SIZES", "GENERATORS", "generate", "generate_suite"]

#: task → (module with VERSION, generator function)
GENERATORS = MappingProxyType({
    "cifar100": (images, images.cifar100), "spherical": (images, images.spherical),
    "ninapro": (series, series.ninapro), "fsd50k": (audio_clips, audio_clips.fsd50k),
    "darcy-flow": (fields, fields.darcy_flow), "psicov": (proteins, proteins.psicov),
    "cosmic": (fields, fields.cosmic), "ecg": (series, series.ecg),
    "satellite": (series, series.satellite), "deepsea": (series, series.deepsea),
})


def _preset(tasks: dict[str, dict[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType({k: MappingProxyType(v) for k, v in tasks.items()})


SIZES: Mapping[str, Mapping[str, Mapping[str, Any]]] = MappingProxyType({
    # tests: every task in a couple of seconds
    "tiny": _preset({
        "cifar100": {"n_train": 40, "n_test": 20, "classes": 10},
        "spherical": {"n_train": 40, "n_test": 20, "classes": 10, "size": 24},
        "ninapro": {"n_train": 30, "n_val": 10, "n_test": 10},
        "fsd50k": {"n_train": 12, "n_val": 4, "n_test": 6, "labels_used": 6, "n_noise": 2},
        "darcy-flow": {"n_train": 20, "n_test": 10, "resolution": 16},
        "psicov": {"n_train": 10, "n_test": 4, "crop": 48, "min_len": 28, "max_len": 36},
        "cosmic": {"n_train": 12, "n_test": 6, "size": 32},
        "ecg": {"n_records": 16, "min_len": 1200, "max_len": 2000},
        "satellite": {"n_train": 60, "n_test": 20},
        "deepsea": {"n_train": 30, "n_val": 10, "n_test": 10, "length": 200},
    }),
    # the quick profile's default: a few hundred samples per task, small grids
    "small": _preset({
        "cifar100": {"n_train": 500, "n_test": 100, "classes": 10},
        "spherical": {"n_train": 500, "n_test": 100, "classes": 10},
        "ninapro": {"n_train": 300, "n_val": 60, "n_test": 60},
        "fsd50k": {"n_train": 160, "n_val": 32, "n_test": 48, "labels_used": 20},
        "darcy-flow": {"n_train": 200, "n_test": 50, "resolution": 43},
        "psicov": {"n_train": 100, "n_test": 20, "crop": 64, "min_len": 40, "max_len": 54},
        "cosmic": {"n_train": 120, "n_test": 40, "size": 64},
        "ecg": {"n_records": 120, "min_len": 1500, "max_len": 4000},
        "satellite": {"n_train": 600, "n_test": 100},
        "deepsea": {"n_train": 300, "n_val": 60, "n_test": 100, "length": 250},
    }),
    # upstream shapes where they are cheap (CIFAR/Spherical 100 classes, Darcy 85², DeepSEA 1000)
    "medium": _preset({
        "cifar100": {"n_train": 5000, "n_test": 1000, "classes": 100},
        "spherical": {"n_train": 5000, "n_test": 1000, "classes": 100},
        "ninapro": {"n_train": 2638, "n_val": 659, "n_test": 659},
        "fsd50k": {"n_train": 1000, "n_val": 200, "n_test": 400, "labels_used": 200},
        "darcy-flow": {"n_train": 1000, "n_test": 100, "resolution": 85},
        "psicov": {"n_train": 400, "n_test": 60, "crop": 128, "min_len": 60, "max_len": 118},
        "cosmic": {"n_train": 600, "n_test": 120, "size": 256},
        "ecg": {"n_records": 600, "min_len": 3000, "max_len": 18000},
        "satellite": {"n_train": 10000, "n_test": 2000},
        "deepsea": {"n_train": 2000, "n_val": 500, "n_test": 1000, "length": 1000},
    }),
})


class NotSyntheticFile(DataError, FileExistsError):
    """The target path holds data this package did not write (e.g. a real download)."""


class UnknownName(DataError, ValueError):
    """An unknown task or size name."""


def _check(task: str, size: str) -> None:
    if task not in GENERATORS:
        raise UnknownName(f"unknown nasbench360 task {task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    if size not in SIZES:
        raise UnknownName(f"unknown size {size!r} for nasbench360; valid sizes: {', '.join(SIZES)}")


def _rng(task: str, seed: int) -> np.random.Generator:
    # one independent stream per task, stable under reordering of the task table
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(task.encode())]))


def _up_to_date(root: Path, marker: dict, want: dict) -> bool:
    if not marker.get("complete") or any(marker.get(k) != want[k] for k in
                                         ("generator_version", "seed", "size")):
        return False
    return all((root / rel).is_file() and (root / rel).stat().st_size == n
               for rel, n in marker.get("files", {}).items())


def _existing_marker(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"synthetic": True, "files": {}}    # ours, but unreadable: regenerate
    return m if isinstance(m, dict) and m.get("synthetic") is True else None


def _generate(task: str, root: Path, size: str, seed: int, overwrite: bool) -> tuple[Path, bool]:
    _check(task, size)
    spec = DATASETS[task]
    root = Path(root)
    marker_path = root / spec.marker
    module, fn = GENERATORS[task]
    want = {"synthetic": True, "task": task, "generator_version": module.VERSION,
            "seed": int(seed), "size": size}
    found = _existing_marker(marker_path)
    if found is not None and not overwrite and _up_to_date(root, found, want):
        return root / spec.required[0].rstrip("/"), False
    if found is None and not overwrite:
        present = [rel for rel in spec.required if (root / rel.rstrip("/")).exists()]
        if present:
            raise NotSyntheticFile(
                f"{root / present[0]} exists and has no synthetic-data marker ({marker_path}), so "
                f"it is not data written by harness.data synth; not replacing it (pass "
                f"--overwrite, or use another root)")
    for rel in (found or {}).get("files", {}):      # a stale synthetic set: remove what it wrote
        target = (root / rel).resolve()
        if root.resolve() in target.parents:
            target.unlink(missing_ok=True)
    write_marker(root, spec.marker, {**want, "complete": False, "files": {}})
    fs = FileSet(root)
    params = fn(_rng(task, seed), fs, **SIZES[size][task])
    write_marker(root, spec.marker, {**want, **params, "complete": True, "files": fs.written,
                                     "note": "SYNTHETIC stand-in, not NAS-Bench-360 data"})
    return root / spec.required[0].rstrip("/"), True


def generate(task: str, root: Path, size: str = "small", seed: int = 0,
             overwrite: bool = False) -> Path:
    """Write ``task``'s synthetic files under ``root``; returns the task's first required path.

    Deterministic for (task, size, seed). An up-to-date synthetic set is kept; a stale one is
    replaced; data without a marker (real files) raises :class:`NotSyntheticFile` unless
    ``overwrite``."""
    return _generate(task, root, size, seed, overwrite)[0]


def generate_suite(root: Path, size: str = "small", seed: int = 0,
                   tasks: Iterable[str] | None = None,
                   progress: Callable[[str], object] | None = print,
                   overwrite: bool = False) -> dict[str, Path]:
    """Generate several tasks (all ten by default); returns task → path."""
    names = list(TASK_NAMES if tasks is None else tasks)
    for name in names:
        _check(name, size)
    out = {}
    for name in names:
        start = time.perf_counter()
        out[name], written = _generate(name, Path(root), size, seed, overwrite)
        if progress is not None:
            how = f"{time.perf_counter() - start:.1f} s" if written else "up to date, kept"
            progress(f"[synth] {name}: {out[name]} (synthetic, {how})")
    return out
