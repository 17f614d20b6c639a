"""NinaPro, Satellite, ECG and DeepSEA stand-ins (1-D signals and sequences).

* NinaPro: gesture ``k`` has its own 16 channel gains and oscillation frequency; a window is
  gains × sin(2π f t + channel phase) plus noise, (N, 52, 16) float32.
* Satellite: class ``c`` is an offset, a yearly harmonic and a second harmonic with class
  amplitudes and phases over 46 steps, plus noise; classes overlap a little.
* ECG: records of 300 Hz beats. N: regular RR ≈ 0.8 s, P wave, narrow QRS, T wave. A: RR
  jittered ±30 %, no P wave. O: wide QRS with occasional early (ectopic) beats. ~: noise and
  baseline wander. Class shares about 59/9/29/3 %.
* DeepSEA: uniform random bases; label ``j`` has an 8–12-base motif (a peaked PWM); a sample is
  positive for ``j`` with probability 0.1–0.25 and then carries several copies of the motif;
  about 2 % of negatives carry one decoy copy.
"""
from __future__ import annotations

import numpy as np

from .files import FileSet

VERSION = "nb360-series-1"


def ninapro(rng: np.random.Generator, fs: FileSet, n_train: int, n_val: int, n_test: int,
            classes: int = 18, noise: float = 0.5) -> dict:
    gains = rng.uniform(0.2, 2.0, (classes, 16))
    freqs = rng.uniform(1.0, 8.0, classes)
    t = np.arange(52) / 52.0
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        y = rng.integers(0, classes, n)
        phase = rng.uniform(0, 2 * np.pi, (n, 1, 16))
        x = gains[y][:, None, :] * np.sin(2 * np.pi * freqs[y][:, None, None] * t[None, :, None] + phase)
        x = x + rng.normal(0, noise, x.shape)
        fs.npy(f"ninaPro/ninapro_{split}.npy", x.astype(np.float32))
        fs.npy(f"ninaPro/label_{split}.npy", y.astype(np.int64))
    return {}


def satellite(rng: np.random.Generator, fs: FileSet, n_train: int, n_test: int,
              classes: int = 24, noise: float = 0.35) -> dict:
    base = rng.normal(0, 1, classes)
    amp, amp2 = rng.uniform(0.5, 2.0, classes), rng.uniform(0.0, 1.0, classes)
    ph, ph2 = rng.uniform(0, 2 * np.pi, classes), rng.uniform(0, 2 * np.pi, classes)
    t = np.arange(46)
    for split, n in (("train", n_train), ("test", n_test)):
        y = rng.integers(0, classes, n)
        x = (base[y, None] + amp[y, None] * np.sin(2 * np.pi * t / 46 + ph[y, None])
             + amp2[y, None] * np.sin(4 * np.pi * t / 46 + ph2[y, None])
             + rng.normal(0, noise, (n, 46)))
        fs.npy(f"satellite_{split}.npy", {"data": x.astype(np.float32), "label": (y + 1).astype(np.int64)})
    return {}


def _beats(rng: np.random.Generator, length: int, kind: int, fs_hz: float = 300.0) -> np.ndarray:
    t = np.arange(length)
    x = np.zeros(length)

    def bump(centre, width, height):
        return height * np.exp(-0.5 * ((t - centre) / width) ** 2)

    if kind == 3:   # noisy: wander plus noise, the occasional beat
        x += 0.8 * np.sin(2 * np.pi * t / rng.uniform(300, 900)) + rng.normal(0, 0.6, length)
        for c in rng.uniform(0, length, max(1, length // 600)):
            x += bump(c, 4, 1.0)
        return x
    pos = rng.uniform(0, 100)
    while pos < length:
        rr = 0.8 * fs_hz
        if kind == 1:
            rr *= rng.uniform(0.7, 1.3)
        width = 8.0 if kind == 2 else 3.5
        if kind == 2 and rng.random() < 0.25:
            rr *= 0.6   # an early, ectopic beat
        if kind != 1:
            x += bump(pos - 45, 6, 0.15)          # P wave
        x += bump(pos, width, 1.5) + bump(pos + 6 * width / 3.5, width, -0.3)
        x += bump(pos + 90, 15, 0.35)             # T wave
        pos += rr
    return x + 0.04 * np.sin(2 * np.pi * t / 700) + rng.normal(0, 0.05, length)


def ecg(rng: np.random.Generator, fs: FileSet, n_records: int, min_len: int, max_len: int) -> dict:
    kinds = rng.choice(4, n_records, p=[0.59, 0.09, 0.29, 0.03])
    kinds[:4] = [0, 1, 2, 3]   # every class present even in a tiny file
    data = np.empty(n_records, dtype=object)
    for i, k in enumerate(kinds):
        data[i] = (200.0 * _beats(rng, int(rng.integers(min_len, max_len + 1)), int(k))).astype(np.float64)
    fs.pickle("challenge2017.pkl", {"data": data, "label": ["NAO~"[k] for k in kinds]})
    return {}


def deepsea(rng: np.random.Generator, fs: FileSet, n_train: int, n_val: int, n_test: int,
            length: int = 1000, labels: int = 36, copies: int = 3) -> dict:
    widths = rng.integers(8, 13, labels)
    pwms = [rng.dirichlet(np.full(4, 0.1), w) for w in widths]
    prevalence = rng.uniform(0.1, 0.25, labels)
    arrays = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        bases = rng.integers(0, 4, (n, length))
        y = (rng.random((n, labels)) < prevalence).astype(np.uint8)
        for i in range(n):
            for j in range(labels):
                k = copies if y[i, j] else (1 if rng.random() < 0.02 else 0)
                for _ in range(k):
                    w = widths[j]
                    start = int(rng.integers(0, length - w))
                    # one base per motif position, drawn from that position's PWM row
                    draws = rng.random(w)[:, None] > np.cumsum(pwms[j], axis=1)[:, :3]
                    bases[i, start:start + w] = draws.sum(axis=1)
        arrays[f"x_{split}"] = np.eye(4, dtype=np.uint8)[bases]
        arrays[f"y_{split}"] = y
    fs.npz("deepsea_filtered.npz", **arrays)
    return {}
