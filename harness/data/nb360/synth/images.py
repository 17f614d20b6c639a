"""CIFAR-100 and Spherical CIFAR-100 stand-ins: class-coded colour gratings.

Class ``c`` is a sinusoidal grating with orientation ``c % 10`` (tenths of π) and spatial
frequency ``c // 10`` (1.5 to 6 cycles per image), tinted with a class colour, plus a random
phase and Gaussian pixel noise. Spherical images are 60 × 60, each rolled by a random number of
columns (a stand-in for the sphere's rotations); only orientation and frequency survive that,
which is enough to tell classes apart.
"""
from __future__ import annotations

import numpy as np

from .files import FileSet

VERSION = "nb360-images-1"


def gratings(rng: np.random.Generator, labels: np.ndarray, size: int, noise: float,
             roll: bool) -> np.ndarray:
    """(N, 3, size, size) uint8 images for ``labels``."""
    n = len(labels)
    yy, xx = np.mgrid[0:size, 0:size] / size
    theta = np.pi * (labels % 10) / 10.0
    freq = 1.5 + 0.5 * (labels // 10)
    phase = rng.uniform(0, 2 * np.pi, n)
    wave = np.sin(2 * np.pi * freq[:, None, None]
                  * (xx * np.cos(theta)[:, None, None] + yy * np.sin(theta)[:, None, None])
                  + phase[:, None, None])
    hue = 2 * np.pi * labels / 100.0
    tint = 0.6 + 0.4 * np.stack([np.cos(hue), np.cos(hue + 2.1), np.cos(hue + 4.2)], axis=1)
    img = 128 + 70 * wave[:, None] * tint[:, :, None, None] + rng.normal(0, noise, (n, 3, size, size))
    if roll:
        shifts = rng.integers(0, size, n)
        img = np.stack([np.roll(im, s, axis=-1) for im, s in zip(img, shifts)])
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _labels(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    return rng.integers(0, classes, n)


def cifar100(rng: np.random.Generator, fs: FileSet, n_train: int, n_test: int,
             classes: int, noise: float = 20.0) -> dict:
    """``cifar-100-python/{train,test,meta}`` (torchvision's pickles; ``data`` N × 3072 uint8)."""
    for split, n in (("train", n_train), ("test", n_test)):
        y = _labels(rng, n, classes)
        x = gratings(rng, y, 32, noise, roll=False).reshape(n, 3072)
        fs.pickle(f"cifar-100-python/{split}", {
            "filenames": [f"synthetic_{split}_{i}.png" for i in range(n)],
            "batch_label": f"synthetic {split} batch", "fine_labels": [int(v) for v in y],
            "coarse_labels": [int(v) // 5 for v in y], "data": x})
    fs.pickle("cifar-100-python/meta", {
        "fine_label_names": [f"synthetic_class_{i:02d}" for i in range(100)],
        "coarse_label_names": [f"synthetic_superclass_{i:02d}" for i in range(20)]})
    return {"classes_used": classes}


def spherical(rng: np.random.Generator, fs: FileSet, n_train: int, n_test: int,
              classes: int, size: int = 60, noise: float = 20.0) -> dict:
    """``s2_cifar100.gz``: gzip pickle of {train, test} → {images (N, 3, H, H) 0–255, labels}."""
    data = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = _labels(rng, n, classes)
        data[split] = {"images": gratings(rng, y, size, noise, roll=True), "labels": y.astype(np.int64)}
    fs.pickle("s2_cifar100.gz", data, gz=True)
    return {"classes_used": classes}
