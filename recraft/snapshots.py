"""Feature snapshots for the paper's Fig. 2: source and target features after stage 1.

A fine-tuning method's first final run (seed 1: the sweep numbers final seeds from 1) writes, before stage 2 changes anything, the
token-mean embedder features of up to :data:`MAX_TARGET` training inputs (what FA aligns; after
stage 1 for aligning methods, at initialisation for NFT) and up to :data:`MAX_SOURCE` of the
source features (the body's own input layer on the proxy, the cloud FA aligns to, identical for
every method of a seed), into ``<sweep>/features/<task>/<method>.npz``. ``harness.report`` draws
them as a 2D embedding per task and method.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

MAX_TARGET = 256
#: the final run that saves the snapshot (the harness's first final seed)
SNAPSHOT_SEED = 1
MAX_SOURCE = 1000


def snapshot_path(sweep_dir: Path, task: str, method: str) -> Path:
    """Where the snapshot of a cell lives."""
    return Path(sweep_dir) / "features" / task / f"{method}.npz"


@torch.no_grad()
def target_features(model, x: np.ndarray, device, batch_size: int = 64) -> np.ndarray:
    """Token-mean embedder features of ``x`` (the model's current embedder)."""
    model = model.to(device).eval()
    out = [model.pooled_embedding(torch.as_tensor(x[i:i + batch_size], dtype=torch.float32,
                                                  device=device)).float().cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def save_snapshot(path: Path, source: np.ndarray, target: np.ndarray, *, aligned: bool,
                  seed: int = 0) -> Path:
    """Write the snapshot atomically (subsampled with ``seed``); returns its path."""
    rng = np.random.default_rng(seed)
    if len(source) > MAX_SOURCE:
        source = source[np.sort(rng.choice(len(source), MAX_SOURCE, replace=False))]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, source=np.asarray(source, np.float32),
                        target=np.asarray(target[:MAX_TARGET], np.float32),
                        aligned=np.asarray(aligned))
    tmp.replace(path)
    return path
