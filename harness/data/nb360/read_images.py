"""CIFAR-100 (torchvision's python pickles) and Spherical CIFAR-100 (a gzip pickle).

CIFAR-100 [ORCA load_cifar]: ``cifar-100-python/{train,test}`` are pickled dicts with ``data``
(N × 3072 uint8: the R, G and B planes of a 32 × 32 image) and ``fine_labels``; inputs are
``ToTensor`` (÷255) then ``Normalize`` with the CIFAR-100 channel statistics. The random crop and
flip of the training transform are on-the-fly augmentation (``Task.construction.train_augment``).
torchvision would also check the files' md5s on load, which rejects a synthetic stand-in; the
published md5 is checked on download instead.

Spherical [ORCA load_spherical]: ``s2_cifar100.gz`` is a gzip pickle of
``{"train": {"images", "labels"}, "test": {...}}``, images (N, 3, 60, 60) on a 0–255 scale;
inputs are images ÷ 255 (no normalisation), labels int64. RECRAFT also appends the first 2,500
test images to the training set; this harness does not (it would leak test data).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data.errors import SchemaMismatch
from harness.data.nb360.formats import load_gzip_pickle, load_pickle, require_file
from harness.data.nb360.lazy import maybe_lazy
from harness.data.nb360.building import Built, Context, carve, check_labels


def _key(d: dict, name: str, path: Path, where: str = "") -> object:
    for k in (name, name.encode()):
        if k in d:
            return d[k]
    found = sorted(str(k) for k in d)
    raise SchemaMismatch(f"{path}: key {where}{name!r} is missing (found keys {found}); expected "
                         f"the upstream layout of this file.")


def _assemble(ctx: Context, tr: tuple, te: tuple, to_float) -> Built:
    """Train/val carve of the training arrays plus the test arrays; ``to_float`` maps raw rows."""
    (x_tr, y_tr), (x_te, y_te) = tr, te
    sp = ctx.task.split
    train_idx, val_idx = carve(len(y_tr), sp.val_fraction, sp.val_seed)
    out = Built()
    for s in ctx.splits:
        src_x, src_y, idx = {"train": (x_tr, y_tr, train_idx), "val": (x_tr, y_tr, val_idx),
                             "test": (x_te, y_te, np.arange(len(y_te)))}[s]
        sample = to_float(src_x[:1]).shape[1:]
        out.x[s] = maybe_lazy(len(idx), sample, np.float32,
                              lambda i, src=src_x, ix=idx: to_float(src[ix[i]]))
        out.y[s] = np.asarray(src_y, dtype=np.int64)[idx]
        out.indices[s] = idx
    return out


def _cifar_file(ctx: Context, rel: str) -> tuple[np.ndarray, np.ndarray]:
    path = require_file(ctx.path(rel), "CIFAR-100 batch file", ctx.task.name)
    d = load_pickle(path, encoding="latin1")
    if not isinstance(d, dict):
        raise SchemaMismatch(f"{path}: holds a {type(d).__name__}, expected a dict with 'data' and "
                             f"'fine_labels' (torchvision's CIFAR-100 layout)")
    data = np.asarray(_key(d, "data", path))
    labels = np.asarray(_key(d, "fine_labels", path))
    if data.ndim != 2 or data.shape[1] != 3072:
        raise SchemaMismatch(f"{path}: 'data' has shape {data.shape}, expected (N, 3072) "
                             f"(three 32 × 32 colour planes per row)")
    if data.dtype != np.uint8:
        raise SchemaMismatch(f"{path}: 'data' has dtype {data.dtype}, expected uint8")
    if labels.shape != (data.shape[0],):
        raise SchemaMismatch(f"{path}: 'fine_labels' has {labels.size} entries for "
                             f"{data.shape[0]} images; expected one label per image")
    check_labels(labels, 0, ctx.task.head.num_classes - 1, path, "'fine_labels'")
    return data, labels


def build_cifar100(ctx: Context) -> Built:
    mean = np.asarray(ctx.params["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(ctx.params["std"], dtype=np.float32).reshape(1, 3, 1, 1)

    def to_float(rows: np.ndarray) -> np.ndarray:
        img = rows.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
        return (img - mean) / std

    tr = _cifar_file(ctx, ctx.task.file.required[0]) if {"train", "val"} & set(ctx.splits) \
        else (np.zeros((0, 3072), np.uint8), np.zeros(0, np.int64))
    te = _cifar_file(ctx, ctx.task.file.required[1]) if "test" in ctx.splits \
        else (np.zeros((0, 3072), np.uint8), np.zeros(0, np.int64))
    return _assemble(ctx, tr, te, to_float)


def _spherical_part(d: dict, part: str, path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    sub = _key(d, part, path)
    if not isinstance(sub, dict):
        raise SchemaMismatch(f"{path}: [{part!r}] is a {type(sub).__name__}, expected a dict with "
                             f"'images' and 'labels'")
    images = np.asarray(_key(sub, "images", path, f"{part}/"))
    labels = np.asarray(_key(sub, "labels", path, f"{part}/"))
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise SchemaMismatch(f"{path}: {part}/images has shape {images.shape}, expected "
                             f"(N, 3, H, H) channel-first (published: H = 60)")
    if not np.issubdtype(images.dtype, np.number):
        raise SchemaMismatch(f"{path}: {part}/images has dtype {images.dtype}, expected numbers")
    if labels.shape != (images.shape[0],):
        raise SchemaMismatch(f"{path}: {part}/labels has shape {labels.shape}, expected "
                             f"({images.shape[0]},), one label per image")
    check_labels(labels, 0, n_classes - 1, path, f"{part}/labels")
    return images, labels


def build_spherical(ctx: Context) -> Built:
    path = require_file(ctx.path(ctx.task.file.required[0]), "Spherical CIFAR-100 file", ctx.task.name)
    d = load_gzip_pickle(path, encoding="latin1")
    if not isinstance(d, dict):
        raise SchemaMismatch(f"{path}: holds a {type(d).__name__}, expected a dict with 'train' "
                             f"and 'test'")
    k = ctx.task.head.num_classes
    tr = _spherical_part(d, "train", path, k)
    te = _spherical_part(d, "test", path, k)

    def to_float(rows: np.ndarray) -> np.ndarray:
        return rows.astype(np.float32) / np.float32(255.0)

    return _assemble(ctx, tr, te, to_float)
