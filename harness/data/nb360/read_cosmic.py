"""Cosmic-ray masks from deepCR's HST ACS/WFC data [ORCA load_cosmic, PairedDatasetImagePath].

``cosmic/{train,test}_dirs.npy`` list image paths beginning ``./`` (written by upstream's
``preprocess_cosmic.py``: F435W galaxy fields only); a path is read at ``root + path[2:]``. Each
file is a float (3, H, W) array: image, cosmic-ray mask, ignore mask (a 2-channel file has no
ignore mask: zeros). If the folder holds ``sky.npy``, the image gets
``sky[int(name.split('_')[0]) − 1] · U(−0.9, 3)`` added (sky augmentation).

Construction as upstream except where noted: the fixed crop ``[64:192, 64:192]`` (128 × 128;
files smaller than 192 px — synthetic stand-ins — use the centred half, ``[H/4 : 3H/4]``);
inputs (N, 1, 128, 128), targets the mask (N, 1, 128, 128), ``aux["ignore"]`` the ignore mask
(the loss and the metric leave those pixels out). Sky augmentation is drawn once per training
file with a fixed seed; upstream also applies it, unseeded, to the test images, which makes test
scores random, so validation and test images are used as they are. Validation is a seeded 10 %
of the training files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data.errors import SchemaMismatch
from harness.data.nb360.formats import load_npy, require_file
from harness.data.nb360.lazy import eager_limit, maybe_lazy
from harness.data.nb360.building import Built, Context, carve


def read_dirs(ctx: Context, rel: str) -> np.ndarray:
    path = require_file(ctx.path(rel), "Cosmic file list", ctx.task.name)
    arr = np.asarray(load_npy(path, mmap=False))
    if arr.ndim != 1 or not all(isinstance(v, (str, np.str_)) for v in arr[:50]):
        raise SchemaMismatch(f"{path}: expected a 1-D array of path strings, found dtype "
                             f"{arr.dtype} shape {arr.shape}")
    return arr.astype(str)


def crop_window(h: int, w: int, path: Path) -> tuple[int, int]:
    """(offset, size) of the square crop for an H × W image."""
    if h >= 192 and w >= 192:
        return 64, 128
    if h != w or h < 8:
        raise SchemaMismatch(f"{path}: image {h} × {w}; expected at least 192 × 192 (upstream's "
                             f"fixed [64:192] crop) or a small square stand-in")
    return h // 4, h // 2


def read_item(ctx: Context, rel: str, rng: np.random.Generator | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, mask, ignore), each (1, S, S) float32, of one listed file."""
    if not rel.startswith("./"):
        raise SchemaMismatch(f"listed path {rel!r} does not start with './' (upstream strips the "
                             f"first two characters and reads it under the data root)")
    path = ctx.root / rel[2:]
    if not path.is_file():
        raise SchemaMismatch(f"{path}: listed in the Cosmic file list but missing")
    data = np.asarray(load_npy(path, mmap=False))
    if data.ndim != 3 or data.shape[0] not in (2, 3):
        raise SchemaMismatch(f"{path}: shape {data.shape}, expected (3, H, W) image/mask/ignore "
                             f"or (2, H, W) image/mask")
    image, mask = data[0].astype(np.float64), data[1]
    ignore = data[2] if data.shape[0] == 3 else np.zeros_like(data[0])
    if rng is not None:
        sky_path = path.parent / "sky.npy"
        if sky_path.is_file():
            sky = np.asarray(load_npy(sky_path, mmap=False)).ravel()
            k = int(path.name.split("_")[0]) - 1
            if not 0 <= k < len(sky):
                raise SchemaMismatch(f"{path}: sky index {k + 1} from the file name, but "
                                     f"{sky_path} holds {len(sky)} values")
            image = image + sky[k] * rng.uniform(-0.9, 3.0)
    off, size = crop_window(*image.shape, path)
    win = np.s_[off:off + size, off:off + size]
    return (image[win][None].astype(np.float32), mask[win][None].astype(np.float32),
            ignore[win][None].astype(np.float32))


def build_cosmic(ctx: Context) -> Built:
    sp = ctx.task.split
    out = Built()
    train_dirs = read_dirs(ctx, "cosmic/train_dirs.npy") if {"train", "val"} & set(ctx.splits) else None
    lists, idx = {}, {}
    if train_dirs is not None:
        tr, va = carve(len(train_dirs), sp.val_fraction, sp.val_seed)
        lists.update(train=train_dirs[tr], val=train_dirs[va])
        idx.update(train=tr, val=va)
    if "test" in ctx.splits:
        lists["test"] = read_dirs(ctx, "cosmic/test_dirs.npy")
        idx["test"] = np.arange(len(lists["test"]))
    for s in ctx.splits:
        paths = lists[s]
        if len(paths) == 0:
            raise SchemaMismatch(f"{ctx.path('cosmic')}: the {s} file list is empty")
        train = s == "train"

        def item(i, paths=paths, train=train):
            rng = np.random.default_rng([sp.shuffle_seed, int(i)]) if train else None
            return read_item(ctx, str(paths[i]), rng)

        shape = item(0)[0].shape
        if 3 * len(paths) * int(np.prod(shape)) * 4 <= eager_limit():   # one read per file
            x, y, ign = (np.stack(a) for a in zip(*(item(i) for i in range(len(paths)))))
        else:
            x, y, ign = (maybe_lazy(len(paths), shape, np.float32,
                                    lambda ii, k=k, item=item: np.stack([item(i)[k] for i in ii]),
                                    block=64) for k in range(3))
        out.x[s], out.y[s], out.aux[s] = x, y, {"ignore": ign}
        out.indices[s] = idx[s]
    return out
