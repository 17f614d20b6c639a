"""NinaPro (six ``.npy`` files), Satellite (``.npy`` holding a dict) and DeepSEA (one ``.npz``).

NinaPro [ORCA load_ninapro]: ``ninaPro/ninapro_{train,val,test}.npy`` hold (N, 52, 16) windows
and ``label_*.npy`` the gestures 0–17 (cast to int8 upstream); inputs become (N, 1, 16, 52) by
swapping the last two axes. ORCA trains on train+val; here val is the published val file.

Satellite [ORCA load_satellite]: ``satellite_{train,test}.npy`` are ``np.save`` of a dict with
``data`` (N, 46) and ``label`` (N,) in 1–24; labels are shifted to 0–23, inputs (N, 1, 46) with no
normalisation (NAS-Bench-360's own code z-scores rows; ORCA does not).

DeepSEA [ORCA load_deepsea]: ``deepsea_filtered.npz`` holds ``x_{train,val,test}`` (N, 1000, 4)
one-hot DNA and ``y_*`` (N, 36) labels; inputs are (N, 4, 1000) float32, targets float32. The
published val split is the validation set (ORCA appends it to train). Members stored without
compression are memory-mapped, so the 2.4 GB test split is read in blocks.
"""
from __future__ import annotations

import numpy as np

from harness.data.errors import SchemaMismatch
from harness.data.nb360.formats import NpzArrays, load_npy, require_file
from harness.data.nb360.lazy import maybe_lazy
from harness.data.nb360.building import Built, Context, carve, check_labels


def build_ninapro(ctx: Context) -> Built:
    out = Built()
    k = ctx.task.head.num_classes
    for s in ctx.splits:
        xp = require_file(ctx.path(f"ninaPro/ninapro_{s}.npy"), "NinaPro inputs", ctx.task.name)
        yp = require_file(ctx.path(f"ninaPro/label_{s}.npy"), "NinaPro labels", ctx.task.name)
        x = np.asarray(load_npy(xp, encoding="bytes"))
        y = np.asarray(load_npy(yp, encoding="bytes"))
        if x.ndim != 3 or x.shape[1:] != (52, 16):
            raise SchemaMismatch(f"{xp}: shape {x.shape}, expected (N, 52, 16) "
                                 f"(52 time samples × 16 EMG channels)")
        if not np.issubdtype(x.dtype, np.number):
            raise SchemaMismatch(f"{xp}: dtype {x.dtype}, expected numbers")
        if y.shape != (x.shape[0],):
            raise SchemaMismatch(f"{yp}: shape {y.shape}, expected ({x.shape[0]},) to match {xp.name}")
        check_labels(y, 0, k - 1, yp, "labels")
        out.x[s] = np.ascontiguousarray(np.transpose(x, (0, 2, 1))[:, None], dtype=np.float32)
        out.y[s] = y.astype(np.int8).astype(np.int64)   # upstream's int8 cast, then long
        out.indices[s] = np.arange(len(y))
    return out


def _satellite_file(ctx: Context, rel: str) -> tuple[np.ndarray, np.ndarray]:
    path = require_file(ctx.path(rel), "Satellite file", ctx.task.name)
    arr = load_npy(path)
    d = arr[()] if isinstance(arr, np.ndarray) and arr.dtype == object and arr.ndim == 0 else arr
    if not isinstance(d, dict):
        raise SchemaMismatch(f"{path}: holds a {type(d).__name__} array of shape "
                             f"{getattr(d, 'shape', '?')}, expected np.save of a dict with 'data' "
                             f"and 'label'")
    for key in ("data", "label"):
        if key not in d:
            raise SchemaMismatch(f"{path}: key {key!r} is missing (found keys {sorted(d)})")
    x, y = np.asarray(d["data"]), np.asarray(d["label"])
    if x.ndim != 2 or x.shape[1] != 46:
        raise SchemaMismatch(f"{path}: 'data' has shape {x.shape}, expected (N, 46)")
    if y.shape != (x.shape[0],):
        raise SchemaMismatch(f"{path}: 'label' has shape {y.shape}, expected ({x.shape[0]},)")
    check_labels(y, 1, ctx.task.head.num_classes, path, "'label' (1-based)")
    return x, y.astype(np.int64) - 1


def build_satellite(ctx: Context) -> Built:
    out = Built()
    sp = ctx.task.split
    if {"train", "val"} & set(ctx.splits):
        x, y = _satellite_file(ctx, "satellite_train.npy")
        tr, va = carve(len(y), sp.val_fraction, sp.val_seed)
        for s, idx in (("train", tr), ("val", va)):
            if s in ctx.splits:
                out.x[s] = np.ascontiguousarray(x[idx][:, None], dtype=np.float32)
                out.y[s], out.indices[s] = y[idx], idx
    if "test" in ctx.splits:
        x, y = _satellite_file(ctx, "satellite_test.npy")
        out.x["test"] = np.ascontiguousarray(x[:, None], dtype=np.float32)
        out.y["test"], out.indices["test"] = y, np.arange(len(y))
    return out


def build_deepsea(ctx: Context) -> Built:
    path = require_file(ctx.path("deepsea_filtered.npz"), "DeepSEA file", ctx.task.name)
    n_labels = ctx.task.head.num_classes
    out = Built()
    with NpzArrays(path) as npz:
        for s in ctx.splits:
            x, y = npz.get(f"x_{s}"), npz.get(f"y_{s}")
            if x.ndim != 3 or x.shape[2] != 4:
                raise SchemaMismatch(f"{path}: 'x_{s}' has shape {x.shape}, expected (N, L, 4) "
                                     f"one-hot DNA (published L = 1000)")
            if y.shape != (x.shape[0], n_labels):
                raise SchemaMismatch(f"{path}: 'y_{s}' has shape {y.shape}, expected "
                                     f"({x.shape[0]}, {n_labels}) to match 'x_{s}'")
            y = np.asarray(y, dtype=np.float32)
            if not np.all((y == 0) | (y == 1)):
                raise SchemaMismatch(f"{path}: 'y_{s}' holds values other than 0 and 1")

            def fetch(i, arr=x):
                return np.transpose(np.asarray(arr[np.sort(i)])[np.argsort(np.argsort(i))],
                                    (0, 2, 1))

            out.x[s] = maybe_lazy(x.shape[0], (4, x.shape[1]), np.float32, fetch, block=1024)
            out.y[s], out.indices[s] = y, np.arange(x.shape[0])
    return out
