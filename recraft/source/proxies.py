"""Proxy (source-modality) datasets: real ones when on disk, clearly named stand-ins otherwise.

``load_proxy("auto", modality="images")`` reads CIFAR-10 if it finds the batch files and otherwise
generates ``synthetic-images`` with a :class:`ProxyStandInWarning`; the returned
``ProxyData.proxy_name`` then reads ``"synthetic-images (stand-in for CIFAR-10)"``. Asking for
``"cifar10"`` / ``"conll2003"`` explicitly never falls back: a missing folder is an error.

Where real data is looked for (first hit wins): the ``root`` argument; ``$RECRAFT_CIFAR10_DIR`` /
``$RECRAFT_CONLL_DIR``; ``$RECRAFT_DATA_DIR/{cifar-10-batches-py,cifar10}`` /
``$RECRAFT_DATA_DIR/{conll2003,conll}``.
"""
from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from .cifar10 import CIFAR10_CLASSES, find_cifar10, load_cifar10_subset
from .conll import NER_TAGS, find_conll, load_conll_subset
from .synthetic import synthetic_images, synthetic_text

__all__ = ["ProxyData", "ProxyStandInWarning", "PROXIES", "load_proxy", "locate_proxy", "resolve_proxy"]

log = logging.getLogger(__name__)

PROXIES = ("auto", "cifar10", "conll2003", "synthetic-images", "synthetic-text")
_ALIASES = {"cifar-10": "cifar10", "cifar": "cifar10", "conll": "conll2003", "conll-2003": "conll2003"}
_STAND_IN = {"synthetic-images": "CIFAR-10", "synthetic-text": "CoNLL-2003"}
_MODALITY = {"cifar10": "images", "synthetic-images": "images", "conll2003": "text", "synthetic-text": "text"}


class ProxyStandInWarning(UserWarning):
    """A synthetic stand-in replaced a real proxy dataset that is not on this machine."""


@dataclass
class ProxyData:
    """A labelled proxy sample.

    ``inputs``: images ``(N, 3, 32, 32)`` float (CIFAR-normalised) or token ids ``(N, T)`` long;
    ``attention_mask``: ``(N, T)`` for text, else None; ``labels``: ``(N,)`` long in ``0..n_classes-1``.
    ``name`` is the dataset id, ``proxy_name`` the label to show and record.
    """

    name: str
    proxy_name: str
    modality: str
    inputs: torch.Tensor
    labels: torch.Tensor
    n_classes: int
    attention_mask: torch.Tensor | None = None
    synthetic: bool = False
    source: str = ""
    class_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch_indices(self, batch_size: int, shuffle: bool = False,
                      generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """The sample indices of each mini-batch of one pass (what :meth:`batches` yields)."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        return [order[i: i + batch_size] for i in range(0, n, batch_size)]

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]:
        """Yield ``(inputs, attention_mask or None, labels)`` mini-batches."""
        for idx in self.batch_indices(batch_size, shuffle, generator):
            mask = self.attention_mask[idx] if self.attention_mask is not None else None
            yield self.inputs[idx], mask, self.labels[idx]


def _env_dirs(kind: str) -> list[Path]:
    out = []
    specific = os.environ.get("RECRAFT_CIFAR10_DIR" if kind == "cifar10" else "RECRAFT_CONLL_DIR")
    if specific:
        out.append(Path(specific).expanduser())
    data = os.environ.get("RECRAFT_DATA_DIR")
    if data:
        subs = ("cifar-10-batches-py", "cifar10") if kind == "cifar10" else ("conll2003", "conll")
        out += [Path(data).expanduser() / s for s in subs]
    return out


def locate_proxy(name: str, root: str | os.PathLike | None = None) -> tuple[Path | None, list[str]]:
    """Where the real dataset ``name`` ("cifar10" / "conll2003") is, and the places looked."""
    cands = ([Path(root).expanduser()] if root is not None else []) + _env_dirs(name)
    looked = [str(c) for c in cands]
    for c in cands:
        hit = find_cifar10(c) if name == "cifar10" else find_conll(c, "train")
        if hit is not None:
            return (hit if name == "cifar10" else c), looked
    return None, looked


def resolve_proxy(proxy: str, modality: str | None, root: str | os.PathLike | None = None
                  ) -> tuple[str, Path | None, list[str]]:
    """``(dataset id, folder or None, places looked)`` for a proxy request; no data is read.

    ``"auto"`` gives the real dataset when found, else the synthetic stand-in (folder None).
    """
    proxy = _ALIASES.get(proxy, proxy)
    if proxy not in PROXIES:
        raise ValueError(f"unknown proxy {proxy!r}; choose from {PROXIES}")
    if proxy != "auto":
        if modality is not None and _MODALITY[proxy] != modality:
            raise ValueError(f"proxy {proxy!r} is {_MODALITY[proxy]}, but a {modality} proxy was asked for")
        if proxy in ("cifar10", "conll2003"):
            where, looked = locate_proxy(proxy, root)
            if where is None:
                raise FileNotFoundError(
                    f"{proxy}: not found (looked in: {', '.join(looked) or 'nowhere: pass root= or set '}"
                    f"{'RECRAFT_CIFAR10_DIR' if proxy == 'cifar10' else 'RECRAFT_CONLL_DIR'} / RECRAFT_DATA_DIR). "
                    f"Use proxy='auto' to fall back to the synthetic stand-in."
                )
            return proxy, where, looked
        return proxy, None, []
    if modality not in ("images", "text"):
        raise ValueError("proxy='auto' needs modality='images' or 'text'")
    real = "cifar10" if modality == "images" else "conll2003"
    where, looked = locate_proxy(real, root)
    if where is not None:
        return real, where, looked
    return ("synthetic-images" if modality == "images" else "synthetic-text"), None, looked


def load_proxy(
    proxy: str = "auto",
    *,
    modality: str | None = None,
    n_samples: int = 5000,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    backbone: Any | None = None,
    max_length: int = 32,
) -> ProxyData:
    """Load ``n_samples`` labelled proxy samples (seeded subset / seeded generation).

    ``backbone`` (a :class:`recraft.backbones.Backbone`) supplies the tokenizer and special ids for
    text; without a tokenizer, words/tokens get hashed / synthetic ids inside its vocabulary.
    """
    name, where, looked = resolve_proxy(proxy, modality, root)
    spec = getattr(backbone, "spec", None)
    tokenizer = getattr(backbone, "tokenizer", None)
    vocab = getattr(spec, "vocab_size", None) or 1000
    pad = getattr(spec, "pad_token_id", None)
    pad = 1 if pad is None else pad
    cls_id = getattr(spec, "cls_token_id", 0) if spec is not None else 0
    sep_id = getattr(spec, "sep_token_id", 2) if spec is not None else 2

    if name in _STAND_IN:
        label = f"{name} (stand-in for {_STAND_IN[name]})"
        if proxy == "auto":
            msg = (f"{_STAND_IN[name]} not found (looked in: {', '.join(looked) or 'no folder given'}); "
                   f"using the offline stand-in {label}. Results are not comparable with the paper's.")
            warnings.warn(msg, ProxyStandInWarning, stacklevel=2)
            log.warning(msg)
        if name == "synthetic-images":
            x, y = synthetic_images(n_samples, seed=seed)
            return ProxyData(name, label, "images", x, y, 10, None, True, f"generated (seed {seed})", CIFAR10_CLASSES)
        ids, mask, y = synthetic_text(n_samples, seed=seed, length=max_length, vocab_size=vocab, pad_id=pad,
                                      cls_id=cls_id, sep_id=sep_id)
        return ProxyData(name, label, "text", ids, y, len(NER_TAGS), mask, True, f"generated (seed {seed})", NER_TAGS)

    if name == "cifar10":
        x, y = load_cifar10_subset(where, n_samples, seed=seed)
        return ProxyData(name, "CIFAR-10", "images", x, y, 10, None, False, str(where), CIFAR10_CLASSES)
    ids, mask, y = load_conll_subset(where, n_samples, seed=seed, tokenizer=tokenizer, max_length=max_length,
                                     vocab_size=vocab, pad_id=pad, cls_id=cls_id, sep_id=sep_id)
    return ProxyData(name, "CoNLL-2003", "text", ids, y, len(NER_TAGS), mask, False, str(where), NER_TAGS)
