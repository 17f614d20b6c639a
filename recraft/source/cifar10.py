"""CIFAR-10 from its standard "python version" batch files (``cifar-10-batches-py``).

Each of ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` is a pickled dict with ``b"data"``
(an ``(N, 3072)`` uint8 array: 1024 red, then 1024 green, then 1024 blue values, row-major 32×32) and
``b"labels"`` (N ints in 0..9). The files are read with an unpickler that only admits the numpy
array reconstruction globals, so a tampered file cannot run code.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

__all__ = ["CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "find_cifar10", "read_cifar10", "load_cifar10_subset"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"CIFAR-10 batch files hold only numpy arrays; refusing {module}.{name}")


def _load_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        d = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path}: not a CIFAR-10 batch (no b'data'/b'labels' keys)")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: b'data' has shape {data.shape}, expected (N, 3072)")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
    return data, labels


def find_cifar10(root: str | os.PathLike | None) -> Path | None:
    """The folder holding the batch files: ``root`` itself or ``root/cifar-10-batches-py``."""
    if root is None:
        return None
    root = Path(root).expanduser()
    for d in (root, root / "cifar-10-batches-py"):
        if (d / TRAIN_FILES[0]).is_file():
            return d
    return None


def read_cifar10(root: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """All images of a split as ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64.

    ``split="train"`` reads ``data_batch_1..5`` (those present; at least ``data_batch_1``),
    ``"test"`` reads ``test_batch``.
    """
    d = find_cifar10(root)
    if d is None:
        raise FileNotFoundError(f"no CIFAR-10 batch files (data_batch_1, ...) in {root} or {Path(root) / 'cifar-10-batches-py'}")
    names = TRAIN_FILES if split == "train" else TEST_FILES if split == "test" else None
    if names is None:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    xs, ys = [], []
    for n in names:
        if (d / n).is_file():
            x, y = _load_batch(d / n)
            xs.append(x)
            ys.append(y)
    if not xs:
        raise FileNotFoundError(f"{d}: none of {', '.join(names)}")
    x = np.concatenate(xs).reshape(-1, 3, 32, 32)
    return x, np.concatenate(ys)


def load_cifar10_subset(root: str | os.PathLike, n: int, seed: int = 0, split: str = "train",
                        normalise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of ``n`` images (float, CIFAR-10-normalised) and their labels.

    The subset is ``numpy.random.default_rng(seed).permutation(N)[:n]``; no augmentation (the
    reference applies random crop + flip once; we keep the source features deterministic).
    """
    x, y = read_cifar10(root, split)
    if n > len(x):
        raise ValueError(f"asked for {n} CIFAR-10 images, the {split} split has {len(x)}")
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    imgs = torch.from_numpy(x[idx].astype(np.float32) / 255.0)
    if normalise:
        mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
        imgs = (imgs - mean) / std
    return imgs, torch.from_numpy(y[idx]).long()
