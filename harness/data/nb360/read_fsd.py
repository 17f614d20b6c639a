"""FSD50K as RECRAFT/ORCA read it [SpectrogramDataset, FSD50kEvalDataset, load_fsd].

Under ``fsd/``: ``chunks/{tr,val,eval}.csv`` (columns ``files, labels, ext``: one row per 1-s
chunk, ``labels`` a comma-separated list of names, ``ext`` the clip id), ``chunks/lbl_map.json``
(name → 0..199) and ``noise_22050/*.wav`` (background noise). A chunk's audio is at
``fsd/`` + ``files[4:]`` (upstream drops the first four characters and prepends its own root).
WAVs must be mono at 22,050 Hz; chunks shorter than 1 s are tiled.

* Training set (tr.csv): one item per clip, built once: a random chunk of the clip, its
  features (``audio.features``), the training transform, and with probability 0.75 (ORCA; RECRAFT
  0.82) a mix ``(1 − α)·x + α·noise`` with α ~ U(0, 0.5) and a random noise file's transformed
  features; then one zero frame on the right → (1, 96, 102). Randomness comes from a generator
  seeded by (``shuffle_seed``, clip), so the set is the same on every read.
* Validation (val.csv, which upstream never uses) and test (eval.csv): every chunk of every
  clip, padded to 101 frames, one zero frame → (1, 96, 102); ``y`` is the clip's label vector on
  each chunk and ``aux["clip"]`` the clip index, so the metric can average the logits of a clip's
  chunks first, as upstream does.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.data.errors import SchemaMismatch
from harness.data.nb360 import audio
from harness.data.nb360.formats import read_wav, require_file
from harness.data.nb360.lazy import maybe_lazy
from harness.data.nb360.building import Built, Context

CSV = {"train": "tr.csv", "val": "val.csv", "test": "eval.csv"}


def _manifest(path: Path, label_map: dict[str, int]):
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise SchemaMismatch(f"{path}: not a readable CSV ({exc})") from exc
    missing = [c for c in ("files", "labels", "ext") if c not in df.columns]
    if missing:
        raise SchemaMismatch(f"{path}: column(s) {missing} missing (found {list(df.columns)}); "
                             f"expected files, labels, ext")
    if len(df) == 0:
        raise SchemaMismatch(f"{path}: no rows; expected one row per audio chunk")
    y = np.zeros((len(df), len(label_map)), dtype=np.float32)
    for i, lbls in enumerate(df["labels"].astype(str)):
        for name in lbls.split(","):
            if name not in label_map:
                raise SchemaMismatch(f"{path}: row {i} has label {name!r}, which lbl_map.json "
                                     f"does not list")
            y[i, label_map[name]] = 1.0
    return df["files"].astype(str).to_numpy(), y, df["ext"].to_numpy()


def _chunk(root: Path, files: str, csv: Path, row: int) -> np.ndarray:
    path = root / "fsd" / files[4:].lstrip("/")
    if not path.is_file():
        raise SchemaMismatch(f"{csv}: row {row} names {files!r}, expected the audio at {path} "
                             f"(upstream drops the first 4 characters and reads it under fsd/)")
    x, rate = read_wav(path)
    if rate != audio.SAMPLE_RATE:
        raise SchemaMismatch(f"{path}: sample rate {rate} Hz, expected {audio.SAMPLE_RATE}")
    if x.size == 0:
        raise SchemaMismatch(f"{path}: empty audio")
    return audio.tile_to(x)


def _noise(ctx: Context) -> list[np.ndarray]:
    folder = ctx.path("fsd/noise_22050")
    wavs = sorted(folder.glob("*.wav"))
    if not wavs:
        raise SchemaMismatch(f"{folder}: no .wav files; the training mixer needs background noise")
    clips = []
    for w in wavs:
        x, rate = read_wav(w)
        if rate != audio.SAMPLE_RATE:
            raise SchemaMismatch(f"{w}: sample rate {rate} Hz, expected {audio.SAMPLE_RATE}")
        clips.append(audio.tile_to(x))
    return audio.features_many(clips)


def build_fsd(ctx: Context) -> Built:
    p, sp = ctx.params, ctx.task.split
    map_path = require_file(ctx.path("fsd/chunks/lbl_map.json"), "FSD50K label map", ctx.task.name)
    try:
        label_map = {str(k): int(v) for k, v in json.loads(map_path.read_text()).items()}
    except (ValueError, AttributeError) as exc:
        raise SchemaMismatch(f"{map_path}: expected a JSON object name → index ({exc})") from exc
    k = ctx.task.head.num_classes
    if sorted(label_map.values()) != list(range(k)):
        raise SchemaMismatch(f"{map_path}: {len(label_map)} labels with indices "
                             f"{min(label_map.values(), default=0)}..{max(label_map.values(), default=0)}"
                             f"; expected {k} labels indexed 0..{k - 1}")
    out = Built()
    for s in ctx.splits:
        csv = require_file(ctx.path(f"fsd/chunks/{CSV[s]}"), f"FSD50K {CSV[s]}", ctx.task.name)
        files, y, exts = _manifest(csv, label_map)
        clips, first_row, clip_of_row = np.unique(exts, return_index=True, return_inverse=True)
        clip_of_row = clip_of_row.ravel()
        order = np.argsort(clip_of_row, kind="stable")   # chunks grouped by clip, file order
        if s == "train":
            noise = _noise(ctx)
            rows_of = np.split(order, np.cumsum(np.bincount(clip_of_row))[:-1])

            def fetch(idx, files=files, rows_of=rows_of, noise=noise, csv=csv):
                rngs = [np.random.default_rng([sp.shuffle_seed, int(c)]) for c in idx]
                rows = [int(rng.choice(rows_of[c])) for rng, c in zip(rngs, idx)]
                specs = audio.features_many([_chunk(ctx.root, files[r], csv, r) for r in rows])
                items = []
                for rng, spec in zip(rngs, specs):
                    spec = audio.train_transform(spec, rng, p["spec_prob"], p["wrap_pad_prob"])
                    if rng.random() < p["mix_prob"]:
                        bg = audio.train_transform(noise[int(rng.integers(0, len(noise)))], rng,
                                                   p["spec_prob"], p["wrap_pad_prob"])
                        alpha = rng.uniform(0.0, p["mix_alpha_max"])
                        spec = (1 - alpha) * spec + alpha * bg
                    items.append(audio.pad_right(spec)[None])
                return np.stack(items)

            out.x[s] = maybe_lazy(len(clips), (1, audio.N_MELS, audio.FRAMES + 1), np.float32,
                                  fetch, block=256)
            out.y[s] = y[first_row]
            out.indices[s] = np.arange(len(clips))
        else:
            def fetch(idx, files=files, order=order, csv=csv):
                rows = [int(order[i]) for i in idx]
                specs = audio.features_many([_chunk(ctx.root, files[r], csv, r) for r in rows])
                items = []
                for row, spec in zip(rows, specs):
                    spec = audio.pad_to(spec)
                    if spec.shape[1] != audio.FRAMES:
                        raise SchemaMismatch(f"{csv}: row {row} ({files[row]}) gives "
                                             f"{spec.shape[1]} frames, expected a chunk of at "
                                             f"most 1 s ({audio.FRAMES} frames)")
                    items.append(audio.pad_right(spec)[None])
                return np.stack(items)

            out.x[s] = maybe_lazy(len(order), (1, audio.N_MELS, audio.FRAMES + 1), np.float32,
                                  fetch, block=256)
            out.y[s] = y[first_row][clip_of_row[order]]   # the clip's label (its first chunk's)
            out.indices[s] = order
            out.aux[s] = {"clip": clip_of_row[order]}
    return out
