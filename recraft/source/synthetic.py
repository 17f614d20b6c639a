"""Offline stand-ins for the proxy datasets, used when CIFAR-10 / CoNLL-2003 are not on disk.

They are deterministic (the class structure is fixed; ``seed`` draws the samples), labelled, and
built so that a linear head on frozen-body features can learn them:

* ``synthetic-images`` (10 classes, 3×32×32, roughly CIFAR-normalised scale): each class has its
  own mean colour and an oriented sinusoidal grating (class frequency and angle); samples differ by
  grating phase, contrast and pixel noise.
* ``synthetic-text`` (9 classes): each class owns a small set of token ids; a sentence of 12..L-2
  tokens draws each token from its class's set with probability ``p_class`` and from a shared pool
  otherwise; ``[CLS] ... [SEP]`` framing and padding with the body's special ids.

They stand in for the real proxies only so that code paths run without downloads; results
computed with them are labelled by ``ProxyData.proxy_name`` ("synthetic-images (stand-in for CIFAR-10)").
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["synthetic_images", "synthetic_text"]

_CLASS_SEED = 20_240_601  # fixes the class structure independently of the sample seed


def synthetic_images(n: int, seed: int = 0, n_classes: int = 10, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (n, 3, size, size) float32, labels (n,) int64)``; classes are balanced."""
    crng = np.random.default_rng(_CLASS_SEED)
    colours = crng.uniform(-1.0, 1.0, size=(n_classes, 3))
    tints = crng.uniform(-1.0, 1.0, size=(n_classes, 3))
    freqs = crng.uniform(1.0, 5.0, size=n_classes)
    angles = crng.uniform(0.0, math.pi, size=n_classes)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % n_classes)
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    imgs = np.empty((n, 3, size, size), dtype=np.float32)
    for i, k in enumerate(labels):
        phase = rng.uniform(0, 2 * math.pi)
        contrast = rng.uniform(0.5, 1.0)
        u = (xx * math.cos(angles[k]) + yy * math.sin(angles[k])) / size
        grating = np.sin(2 * math.pi * freqs[k] * u + phase)
        img = colours[k][:, None, None] + contrast * tints[k][:, None, None] * grating[None]
        img = img + rng.normal(0.0, 0.3, size=img.shape)
        imgs[i] = img
    return torch.from_numpy(imgs), torch.from_numpy(labels.astype(np.int64))


def synthetic_text(
    n: int,
    seed: int = 0,
    n_classes: int = 9,
    length: int = 32,
    vocab_size: int = 1000,
    pad_id: int = 1,
    cls_id: int | None = 0,
    sep_id: int | None = 2,
    words_per_class: int = 16,
    shared_words: int = 64,
    p_class: float = 0.6,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ids (n, length), attention_mask (n, length), labels (n,))``; classes are balanced."""
    needed = n_classes * words_per_class + shared_words
    specials = [i for i in (pad_id, cls_id, sep_id) if i is not None]
    lo = max(specials) + 1
    if vocab_size >= 2000 + needed:
        lo = max(lo, 2000)  # skip the low ids of real vocabularies (special/unused entries)
    if lo + needed > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} too small for {needed} synthetic word ids")
    crng = np.random.default_rng(_CLASS_SEED)
    pool = lo + crng.permutation(needed)
    class_words = pool[: n_classes * words_per_class].reshape(n_classes, words_per_class)
    shared = pool[n_classes * words_per_class:]

    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % n_classes)
    room = length - (cls_id is not None) - (sep_id is not None)
    ids = np.full((n, length), pad_id, dtype=np.int64)
    mask = np.zeros((n, length), dtype=np.int64)
    for i, k in enumerate(labels):
        m = int(rng.integers(min(12, room), room + 1))
        from_class = rng.random(m) < p_class
        words = np.where(from_class, rng.choice(class_words[k], size=m), rng.choice(shared, size=m))
        seq = list(words)
        if cls_id is not None:
            seq = [cls_id] + seq
        if sep_id is not None:
            seq = seq + [sep_id]
        ids[i, : len(seq)] = seq
        mask[i, : len(seq)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(labels.astype(np.int64))
