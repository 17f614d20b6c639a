"""Readers for both PDEBench HDF5 layouts that read only the frames and samples a task needs.

* single layout: one array per key, first axis = sample (``tensor`` (N, T, X[, Y]) and friends);
* multi layout: one group per sample, ``"0000"``, ``"0001"``…, each with ``data`` (T, X[, Y], C).

A real Advection file is 10000×201×1024 floats (8 GB), so nothing here loads a dataset whole:
single-layout arrays are read as hyperslabs (one time index, strided space) over contiguous blocks
of samples; multi-layout groups are read one frame at a time.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import h5py
import numpy as np

from harness.data.catalog import PdebenchFile
from harness.data.errors import CorruptFile, MissingDataFile, SchemaMismatch
from harness.data.splits import SplitIndices, audit_read as _audit, split_indices  # noqa: F401
from harness.data.taskdata import SPLITS, TaskData

if TYPE_CHECKING:
    from harness.suites.base import Task

# Bump when the way arrays are read or built changes (it enters every task version).
READER_VERSION = "1"

_BLOCK = 512          # samples per hyperslab read in the single layout
_ZSCORE_EPS = 1e-5    # ORCA's UnitGaussianNormalizer epsilon


# ----------------------------------------------------------------------------- locating files
def candidate_paths(spec: PdebenchFile, root: Path) -> list[Path]:
    """Where a task's file may live under ``root``: the upstream layout, then flat."""
    return [Path(root) / spec.rel_path, Path(root) / spec.filename]


def find_file(spec: PdebenchFile, root: Path, task_name: str = "") -> Path:
    """The first existing candidate path, or a :class:`MissingDataFile` saying how to get it.

    A NAS-Bench-360 dataset record is located by ``harness.data.nb360.load.find_dataset``
    (all of its files must be present)."""
    if not isinstance(spec, PdebenchFile):
        from harness.data.nb360.load import find_dataset

        return find_dataset(spec, root, task_name)
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise MissingDataFile(
            f"data root {root} is a file, not a directory: pass the folder that holds the "
            f"suite's data files (the task {task_name or spec.filename!r} expects {spec.filename} "
            f"under it).")
    for p in candidate_paths(spec, root):
        if p.is_file():
            return p
    tried = " or ".join(str(p) for p in candidate_paths(spec, root))
    name = task_name or spec.filename
    raise MissingDataFile(
        f"data file for task {name!r} not found: expected {tried}.\n"
        f"  Make synthetic data:  python -m harness.data synth --suite pdebench --root {root}"
        f"{' --tasks ' + task_name if task_name else ''}\n"
        f"  Download the real file: python -m harness.data download --suite pdebench --root {root}"
        f"{' --tasks ' + task_name if task_name else ''}")


def open_h5(path: Path) -> h5py.File:
    """Open read-only, turning h5py/OSError failures into a :class:`CorruptFile` naming the file."""
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        size = path.stat().st_size if path.exists() else 0
        raise CorruptFile(
            f"cannot open {path} as HDF5 ({size} bytes): {exc}. The file is truncated or not an "
            f"HDF5 file; delete it and re-create it (synth) or re-download it (download).") from exc


def data_source(f: h5py.File) -> str:
    """``"synthetic"`` when the file says so in its attributes, else ``"real"``."""
    return "synthetic" if bool(f.attrs.get("synthetic", False)) else "real"


# ----------------------------------------------------------------------------- schema helpers
def _dataset(f: h5py.File, key: str, path: Path, where: str = "") -> h5py.Dataset:
    node = f.get(key)
    if not isinstance(node, h5py.Dataset):
        found = sorted(f.keys())
        raise SchemaMismatch(
            f"{path}: key {where}{key!r} is missing (found keys {found}); expected the PDEBench "
            f"layout for this file. Re-create it with `python -m harness.data synth` or re-download it.")
    if node.dtype != np.float32:
        raise SchemaMismatch(
            f"{path}: dataset {where}{key!r} has dtype {node.dtype}, expected float32. "
            f"Convert it (e.g. h5py: f[{key!r}][...].astype('float32')) or re-create the file.")
    return node


def _expect_rank(ds: h5py.Dataset, rank: int, axes: str, path: Path) -> None:
    if ds.ndim != rank:
        raise SchemaMismatch(
            f"{path}: dataset {ds.name!r} has shape {ds.shape} (rank {ds.ndim}), expected rank "
            f"{rank} with axes {axes}.")


def _read(ds: h5py.Dataset, sel, path: Path) -> np.ndarray:
    try:
        return np.asarray(ds[sel], dtype=np.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise CorruptFile(
            f"{path}: reading dataset {ds.name!r} failed ({exc}); the file is probably truncated "
            f"or damaged. Re-create or re-download it.") from exc


def time_index(times: np.ndarray, wanted: float, path: Path, key: str) -> int:
    """Index of the frame at physical time ``wanted`` in a time coordinate (tolerant to float32)."""
    times = np.asarray(times, dtype=np.float64)
    if times.size == 0:
        raise SchemaMismatch(f"{path}: time coordinate {key!r} is empty")
    i = int(np.argmin(np.abs(times - wanted)))
    spacing = float(np.min(np.diff(times))) if times.size > 1 else 1.0
    tol = max(1e-6 * max(1.0, abs(wanted)), 0.01 * abs(spacing))
    if abs(times[i] - wanted) > tol:
        raise SchemaMismatch(
            f"{path}: no frame at t={wanted:g} in {key!r} (frames span {times[0]:g}..{times[-1]:g}, "
            f"{times.size} values, nearest {times[i]:g}); the task needs that time. Re-create the "
            f"file with a size preset that saves it.")
    return i


def spatial_stride(task: "Task", file_n: int, axis: str, path: Path) -> int:
    """Stride that maps the file's grid to the task's output grid (ORCA's stride on real files).

    A file on the real grid uses the task's stride; a finer or coarser grid that divides evenly is
    subsampled to the same output size; a grid smaller than the output is used as is (small
    synthetic sets), which :func:`harness.data.check` reports.
    """
    real_n = task.file.real_sizes[axis]
    out_n = real_n // task.construction.spatial_stride
    if file_n == real_n:
        return task.construction.spatial_stride
    if file_n >= out_n and file_n % out_n == 0:
        return file_n // out_n
    if file_n < out_n:
        return 1
    raise SchemaMismatch(
        f"{path}: axis {axis} has {file_n} points; task {task.name!r} needs {out_n} points "
        f"(the real file has {real_n}, subsampled by {task.construction.spatial_stride}), and "
        f"{file_n} is not a multiple of {out_n}.")


def task_splits(task: "Task", n: int) -> SplitIndices:
    s = task.split
    return split_indices(n, s.test_fraction, s.test_from, s.val_fraction, s.val_seed)


# ----------------------------------------------------------------------------- field reading
def _single_field(f: h5py.File, path: Path, task: "Task", key: str, t: float | None,
                  samples: np.ndarray) -> np.ndarray:
    """``key`` at time ``t`` for the given sample indices: (n, X) or (n, X, Y)."""
    ds = _dataset(f, key, path)
    spec = next((k for k in task.file.keys if k.key == key), None)
    rank = len(spec.axes) if spec else ds.ndim
    _expect_rank(ds, rank, str(spec.axes if spec else "?"), path)
    n_total = ds.shape[0]
    if samples.size and samples.max() >= n_total:
        raise SchemaMismatch(f"{path}: {key!r} has {n_total} samples, index {samples.max()} asked")
    # spatial layout after the sample (and time) axes
    if spec is not None and "T" in spec.axes:
        if t is None:
            raise SchemaMismatch(f"{path}: {key!r} is time-dependent but the task gives no time")
        tkey = "t-coordinate"
        tcoord = _read(_dataset(f, tkey, path), (), path)
        n_frames = ds.shape[1]
        if tcoord.shape[0] < n_frames:
            raise SchemaMismatch(
                f"{path}: {tkey!r} has {tcoord.shape[0]} values but {key!r} has {n_frames} frames; "
                f"expected at least {n_frames} (PDEBench stores {n_frames}+1).")
        ti = time_index(tcoord[:n_frames], t, path, tkey)
        space_shape = ds.shape[2:]
        head = (ti,)
    elif spec is not None and "1" in spec.axes[1:2]:  # Darcy `tensor` (N, 1, X, Y)
        space_shape = ds.shape[2:]
        head = (0,)
    else:
        space_shape = ds.shape[1:]
        head = ()
    axes = ("X", "Y")[: len(space_shape)]
    strides = [spatial_stride(task, n, ax, path) for n, ax in zip(space_shape, axes)]
    space_sel = tuple(slice(None, None, s) for s in strides)
    out_shape = tuple(len(range(0, n, s)) for n, s in zip(space_shape, strides))
    out = np.empty((samples.size, *out_shape), dtype=np.float32)
    if samples.size == 0:
        return out
    # read contiguous blocks covering the requested samples, then pick rows in memory
    order = np.argsort(samples, kind="stable")
    sorted_idx = samples[order]
    pos = 0
    while pos < sorted_idx.size:
        lo = int(sorted_idx[pos])
        hi = min(lo + _BLOCK, n_total)
        end = int(np.searchsorted(sorted_idx, hi, side="left"))
        block = _read(ds, (slice(lo, hi), *head, *space_sel), path)
        out[order[pos:end]] = block[sorted_idx[pos:end] - lo]
        pos = end
    return out


def _multi_keys(f: h5py.File, path: Path) -> list[str]:
    keys = sorted(k for k in f.keys() if isinstance(f[k], h5py.Group))
    if not keys:
        raise SchemaMismatch(
            f"{path}: no seed groups ('0000', '0001', …) found; top-level keys are "
            f"{sorted(f.keys())}. Expected the PDEBench per-seed layout.")
    return keys


def _multi_field(f: h5py.File, path: Path, task: "Task", groups: list[str], channel: int,
                 t: float | None) -> np.ndarray:
    """Channel ``channel`` at time ``t`` from each seed group: (n, X) or (n, X, Y)."""
    spec = next(k for k in task.file.keys if k.key == "data")
    rows = []
    for g in groups:
        ds = _dataset(f[g], "data", path, where=f"{g}/")
        _expect_rank(ds, len(spec.axes), str(spec.axes), path)
        n_ch = ds.shape[-1]
        if channel >= n_ch:
            raise SchemaMismatch(
                f"{path}: {g}/data has {n_ch} channel(s) on its last axis; the task needs channel "
                f"{channel} (expected axes {spec.axes}).")
        tds = _dataset(f[g], "grid/t", path, where=f"{g}/")
        tcoord = _read(tds, (), path)
        if tcoord.shape[0] != ds.shape[0]:
            raise SchemaMismatch(
                f"{path}: {g}/grid/t has {tcoord.shape[0]} values but {g}/data has "
                f"{ds.shape[0]} frames; expected equal lengths.")
        ti = time_index(tcoord, t, path, f"{g}/grid/t")
        space_shape = ds.shape[1:-1]
        axes = ("X", "Y")[: len(space_shape)]
        strides = [spatial_stride(task, n, ax, path) for n, ax in zip(space_shape, axes)]
        sel = (ti, *(slice(None, None, s) for s in strides), channel)
        rows.append(_read(ds, sel, path))
    if not rows:
        return np.empty((0,), dtype=np.float32)
    return np.stack(rows).astype(np.float32, copy=False)


def _fields(f: h5py.File, path: Path, task: "Task", keys: Iterable, t: float | None,
            positions: np.ndarray, groups: list[str] | None) -> np.ndarray:
    """The task's input or target for the given positions: (n, C, L) or (n, C, H, W)."""
    c = task.construction
    parts = []
    for key in keys:
        if task.file.layout == "single":
            parts.append(_single_field(f, path, task, str(key), t, positions))
        else:
            sel = [groups[i] for i in positions]
            parts.append(_multi_field(f, path, task, sel, int(key), t))
    if c.concat_fields:
        arr = np.concatenate(parts, axis=-1)[:, None]      # (n, 1, K·X), channel-major
    else:
        arr = np.stack(parts, axis=1)                        # (n, C, ...)
    return np.ascontiguousarray(arr, dtype=np.float32)


def load_task(task: "Task", root: Path, splits: tuple[str, ...]) -> TaskData:
    """Read the requested splits of ``task`` from the file under ``root``."""
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ValueError(f"unknown split {bad[0]!r}; splits are {SPLITS}")
    path = find_file(task.file, root, task.name)
    _audit(task.name, splits, path)
    c = task.construction
    with open_h5(path) as f:
        source = data_source(f)
        attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
        if task.file.layout == "single":
            first_key = str(c.input_keys[0])
            n = _dataset(f, first_key, path).shape[0]
            groups = None
        else:
            groups = _multi_keys(f, path)
            n = len(groups)
        idx = task_splits(task, n)
        if n < 10:
            raise SchemaMismatch(f"{path}: only {n} samples; at least 10 are needed for the splits")
        x, y = {}, {}
        for s in splits:
            pos = idx.get(s)
            x[s] = _fields(f, path, task, c.input_keys, c.input_time, pos, groups)
            y[s] = _fields(f, path, task, c.target_keys, c.target_time, pos, groups)
        if c.zscore:
            # statistics from train inputs only, applied to x and y of every split (ORCA)
            train_x = x["train"] if "train" in x else _fields(
                f, path, task, c.input_keys, c.input_time, idx.train, groups)
            mean = train_x.mean(axis=0, keepdims=True)
            std = train_x.std(axis=0, ddof=1, keepdims=True)
            for s in splits:
                x[s] = ((x[s] - mean) / (std + _ZSCORE_EPS)).astype(np.float32)
                y[s] = ((y[s] - mean) / (std + _ZSCORE_EPS)).astype(np.float32)
    for s in splits:
        for name, arr in (("input", x[s]), ("target", y[s])):
            if not np.all(np.isfinite(arr)):
                raise SchemaMismatch(
                    f"{path}: the {s} {name} of task {task.name!r} contains NaN or inf values; "
                    f"the file is damaged or was written by a diverged solver.")
    return TaskData(task=task.name, task_version=task.version, source=source, path=path,
                    x=x, y=y, indices={s: idx.get(s) for s in splits}, attrs=attrs)
