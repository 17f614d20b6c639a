"""PSICOV stand-in: compact random-walk chains and features that carry their contacts.

A protein of length L is a 3-D walk of 3.8 Å steps pulled toward its centre (so it folds back
on itself and has long-range contacts); ``cb_map`` is its pairwise distance matrix. Features:
``ccmpred = exp(−d/6) + noise`` and ``potential = −1/d + noise`` (the learnable signal),
``freecon`` noise, ``ss``/``pssm``/``sa``/``entropy`` uniform in [0, 1], ``seq`` random residues.
Test proteins all share one length (upstream's MAE8 scores every test protein on the first
one's length, so equal lengths make both readings agree). Proteins fit the declared window.
"""
from __future__ import annotations

import numpy as np

from .files import FileSet

VERSION = "nb360-proteins-1"
AMINO = "ACDEFGHIKLMNPQRSTVWY"


def chain(rng: np.random.Generator, length: int) -> np.ndarray:
    pos = np.zeros((length, 3))
    for i in range(1, length):
        step = rng.normal(0, 1, 3) - 0.08 * (pos[i - 1] - pos[:i].mean(0))
        pos[i] = pos[i - 1] + 3.8 * step / np.linalg.norm(step)
    return pos


def protein(rng: np.random.Generator, length: int) -> tuple[dict, np.ndarray]:
    pos = chain(rng, length)
    d = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1))
    dd = np.maximum(d, 1.0)
    feats = {
        "seq": "".join(rng.choice(list(AMINO), length)),
        "ss": rng.uniform(0, 1, (3, length)), "pssm": rng.uniform(0, 1, (length, 22)),
        "sa": rng.uniform(0, 1, length), "entropy": rng.uniform(0, 1, length),
        "ccmpred": np.exp(-dd / 6.0) + rng.normal(0, 0.05, (length, length)),
        "freecon": rng.normal(0, 0.1, (length, length)),
        "potential": -1.0 / dd + rng.normal(0, 0.02, (length, length)),
    }
    return feats, d


def psicov(rng: np.random.Generator, fs: FileSet, n_train: int, n_test: int, crop: int,
           min_len: int, max_len: int) -> dict:
    test_len = int(rng.integers(min_len, max_len + 1))
    for group, n in (("deepcov", n_train), ("psicov", n_test)):
        ids = []
        for i in range(n):
            pid = f"syn{group[:2]}{i:04d}"
            length = test_len if group == "psicov" else int(rng.integers(min_len, max_len + 1))
            feats, d = protein(rng, length)
            fs.pickle(f"protein/{group}/features/{pid}.pkl", feats)
            triple = np.empty(3, dtype=object)
            triple[0], triple[1], triple[2] = length, feats["seq"], d
            fs.npy(f"protein/{group}/distance/{pid}-cb.npy", triple)
            ids.append(f"{pid} {length}")
        fs.text(f"protein/{group}.lst", "\n".join(ids) + "\n")
    return {"crop": crop}
