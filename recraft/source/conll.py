"""CoNLL-2003 (English NER) from its standard column files, turned into 1D source inputs.

File format: one token per line, ``word POS chunk NER`` separated by spaces; a blank line ends a
sentence; ``-DOCSTART-`` lines separate documents and are skipped. Files are looked up as
``train.txt``/``valid.txt``/``test.txt`` (the common distribution) or ``eng.train``/``eng.testa``/
``eng.testb`` (the original one).

Sentence label (the source task has 9 classes, as the reference's 9-way text head): the **most
frequent non-``O`` tag** of the sentence among the 9 BIO tags ``O, B-PER, I-PER, B-ORG, I-ORG, B-LOC,
I-LOC, B-MISC, I-MISC`` (B- and I- tags counted separately), ties broken by that order; a sentence
with no entity gets ``O``. IOB1 files (``I-`` at entity starts) are read as they are.

Token ids: with the body's tokenizer, ``tokenizer(" ".join(words), max_length=L, truncation=True,
padding="max_length")`` (so ``[CLS] ... [SEP] [PAD]...``). Without one (random-init bodies), each
lower-cased word maps to a stable hashed id in ``[first_free, vocab_size)`` framed by the spec's
cls/sep ids and padded with the pad id. An attention mask marks the real tokens.
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["NER_TAGS", "Sentence", "find_conll", "read_conll", "sentence_label", "encode_sentences",
           "load_conll_subset"]

NER_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
_SPLIT_FILES = {
    "train": ("train.txt", "eng.train", "train"),
    "valid": ("valid.txt", "dev.txt", "eng.testa", "valid"),
    "test": ("test.txt", "eng.testb", "test"),
}


@dataclass
class Sentence:
    words: list[str]
    ner: list[str]


def find_conll(root: str | os.PathLike | None, split: str = "train") -> Path | None:
    """The split's file under ``root`` (or ``root/conll2003``), or None."""
    if root is None:
        return None
    root = Path(root).expanduser()
    if root.is_file():
        return root
    for d in (root, root / "conll2003"):
        for name in _SPLIT_FILES.get(split, ()):
            if (d / name).is_file():
                return d / name
    return None


def read_conll(path: str | os.PathLike) -> list[Sentence]:
    """Parse a CoNLL-2003 column file into sentences (document separators skipped)."""
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if words:
            sentences.append(Sentence(list(words), list(tags)))
        words.clear()
        tags.clear()

    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                flush()
                continue
            cols = line.split()
            if cols[0] == "-DOCSTART-":
                flush()
                continue
            if len(cols) < 2:
                raise ValueError(f"{path}:{lineno}: expected 'word POS chunk NER', got {line!r}")
            tag = cols[-1]
            if tag not in NER_TAGS:
                raise ValueError(f"{path}:{lineno}: unknown NER tag {tag!r} (expected one of {NER_TAGS})")
            words.append(cols[0])
            tags.append(tag)
    flush()
    return sentences


def sentence_label(tags: Sequence[str]) -> int:
    """Index into ``NER_TAGS`` of the most frequent non-O tag (ties: ``NER_TAGS`` order); 0 if none."""
    counts = Counter(t for t in tags if t != "O")
    if not counts:
        return 0
    best = max(counts.values())
    return min(NER_TAGS.index(t) for t, c in counts.items() if c == best)


def _hashed_id(word: str, lo: int, hi: int) -> int:
    h = int.from_bytes(hashlib.blake2b(word.lower().encode("utf-8"), digest_size=8).digest(), "little")
    return lo + h % (hi - lo)


def encode_sentences(
    sentences: Sequence[Sentence] | Sequence[Sequence[str]],
    *,
    tokenizer: Any | None = None,
    max_length: int = 32,
    vocab_size: int | None = None,
    pad_id: int = 1,
    cls_id: int | None = 0,
    sep_id: int | None = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids ``(N, max_length)`` and attention mask ``(N, max_length)`` for the sentences."""
    word_lists = [s.words if isinstance(s, Sentence) else list(s) for s in sentences]
    if tokenizer is not None:
        enc = tokenizer([" ".join(w) for w in word_lists], max_length=max_length, truncation=True,
                        padding="max_length", return_tensors="pt")
        return enc["input_ids"].long(), enc["attention_mask"].long()
    if vocab_size is None:
        raise ValueError("without a tokenizer, vocab_size is needed for hashed token ids")
    specials = [i for i in (pad_id, cls_id, sep_id) if i is not None]
    lo = max(specials + [-1]) + 1
    if lo >= vocab_size:
        raise ValueError(f"vocab_size {vocab_size} leaves no room for word ids above the special ids")
    ids = torch.full((len(word_lists), max_length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(word_lists), max_length), dtype=torch.long)
    room = max_length - (cls_id is not None) - (sep_id is not None)
    for i, words in enumerate(word_lists):
        seq = [_hashed_id(w, lo, vocab_size) for w in words[:room]]
        if cls_id is not None:
            seq = [cls_id] + seq
        if sep_id is not None:
            seq = seq + [sep_id]
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[i, : len(seq)] = 1
    return ids, mask


def load_conll_subset(root: str | os.PathLike, n: int, seed: int = 0, split: str = "train", **encode_kw: Any
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded random subset of ``n`` sentences: ``(ids, attention_mask, labels)``."""
    path = find_conll(root, split)
    if path is None:
        raise FileNotFoundError(f"no CoNLL-2003 {split} file ({', '.join(_SPLIT_FILES[split])}) in {root}")
    sents = read_conll(path)
    if n > len(sents):
        raise ValueError(f"asked for {n} CoNLL sentences, {path} has {len(sents)}")
    idx = np.random.default_rng(seed).permutation(len(sents))[:n]
    chosen = [sents[i] for i in idx]
    ids, mask = encode_sentences(chosen, **encode_kw)
    labels = torch.tensor([sentence_label(s.ner) for s in chosen], dtype=torch.long)
    return ids, mask, labels
