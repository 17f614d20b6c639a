"""FSD50K stand-in: tagged tones in noise, as 1-s 22,050 Hz WAV chunks with upstream's manifests.

Label ``j`` (of the ``labels_used`` first labels of a 200-name map) is a tone at a frequency on a
log scale from 150 Hz to 8 kHz. A clip carries 1–3 labels; its audio is the sum of their tones,
each with a random amplitude-modulation envelope, plus pink noise. A clip has 1–3 chunks of
exactly 22,050 samples. ``noise_22050/`` holds pink-noise files for the training mixer.
"""
from __future__ import annotations

import numpy as np

from .files import FileSet

VERSION = "nb360-fsd-1"
RATE = 22050
N_LABELS = 200


def pink(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-RMS 1/f noise."""
    spec = np.fft.rfft(rng.normal(0, 1, n))
    f = np.arange(len(spec))
    spec[1:] /= np.sqrt(f[1:])
    out = np.fft.irfft(spec, n)
    return out / (np.sqrt(np.mean(out ** 2)) + 1e-12)


def _clip_audio(rng: np.random.Generator, freqs: np.ndarray, labels: list[int], n: int) -> np.ndarray:
    t = np.arange(n) / RATE
    x = 0.05 * pink(rng, n)
    for j in labels:
        env = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 4.0) * t + rng.uniform(0, 2 * np.pi))
        x += rng.uniform(0.15, 0.3) * env * np.sin(2 * np.pi * freqs[j] * t + rng.uniform(0, 2 * np.pi))
    return x / max(1.0, np.abs(x).max() / 0.9)


def fsd50k(rng: np.random.Generator, fs: FileSet, n_train: int, n_val: int, n_test: int,
           labels_used: int, n_noise: int = 3) -> dict:
    names = [f"synthetic_tone_{j:03d}" for j in range(N_LABELS)]
    freqs = np.geomspace(150.0, 8000.0, labels_used)
    fs.text("fsd/chunks/lbl_map.json", "{" + ", ".join(f'"{n}": {j}' for j, n in enumerate(names)) + "}\n")
    clip_id = 0
    for split, csv, n in (("train", "tr.csv", n_train), ("val", "val.csv", n_val),
                          ("eval", "eval.csv", n_test)):
        rows = ["files,labels,ext"]
        for _ in range(n):
            clip_id += 1
            labels = sorted(rng.choice(labels_used, int(rng.integers(1, 4)), replace=False).tolist())
            for k in range(int(rng.integers(1, 4))):
                rel = f"clips/{split}/{clip_id}_{k}.wav"
                fs.wav(f"fsd/{rel}", _clip_audio(rng, freqs, labels, RATE), RATE)
                tags = ",".join(names[j] for j in labels)
                rows.append(f'data/{rel},"{tags}",{clip_id}')   # upstream drops "data"
        fs.text(f"fsd/chunks/{csv}", "\n".join(rows) + "\n")
    for k in range(n_noise):
        fs.wav(f"fsd/noise_22050/noise_{k}.wav", 0.3 * pink(rng, 2 * RATE), RATE)
    return {"labels_used": labels_used}
