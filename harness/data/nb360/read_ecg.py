"""ECG (PhysioNet/CinC 2017) from ``challenge2017.pkl`` [ORCA load_ecg, slide_and_cut].

The pickle holds a dict: ``data`` an object array of 1-D records (300 Hz, varying length) and
``label`` a sequence of 'N', 'A', 'O', '~' (→ 0, 1, 2, 3). Construction as upstream:

* every record is z-scored on its own (``np.std``, ddof 0);
* test = ``train_test_split(records, test_size=0.1, random_state=0)``'s test part (scikit-learn,
  record level, as upstream); validation = a seeded 10 % of the remaining records (also at
  record level, so windows of one record never straddle splits);
* windows of 1,000 samples with class-dependent strides N 500, A 83, O 250, ~ 25 (which
  oversample the rare classes), ``range(0, len - 1000, stride)`` so a record needs more than
  1,000 samples; windows are shuffled with a fixed seed (upstream: unseeded).

Windows are cut on access, so the ~33 GB of float32 windows of the real set are never built.
"""
from __future__ import annotations

import numpy as np

from harness.data.errors import SchemaMismatch
from harness.data.nb360.formats import load_pickle, require_file
from harness.data.nb360.lazy import maybe_lazy
from harness.data.nb360.building import Built, Context, carve

LABELS = {"N": 0, "A": 1, "O": 2, "~": 3}


def _records(ctx: Context) -> tuple[list[np.ndarray], np.ndarray]:
    path = require_file(ctx.path("challenge2017.pkl"), "ECG pickle", ctx.task.name)
    d = load_pickle(path, encoding="latin1")
    if not isinstance(d, dict) or "data" not in d or "label" not in d:
        found = sorted(map(str, d)) if isinstance(d, dict) else type(d).__name__
        raise SchemaMismatch(f"{path}: expected a dict with keys 'data' and 'label', found {found}")
    data, raw_labels = d["data"], list(d["label"])
    if not isinstance(data, np.ndarray):
        raise SchemaMismatch(f"{path}: 'data' is a {type(data).__name__}, expected a numpy object "
                             f"array of 1-D records (upstream calls .shape on it)")
    if len(data) != len(raw_labels):
        raise SchemaMismatch(f"{path}: {len(data)} records but {len(raw_labels)} labels")
    labels = np.empty(len(raw_labels), dtype=np.int64)
    for i, lab in enumerate(raw_labels):
        key = lab.decode() if isinstance(lab, bytes) else str(lab)
        if key not in LABELS:
            raise SchemaMismatch(f"{path}: label {i} is {lab!r}, expected one of 'N', 'A', 'O', '~'")
        labels[i] = LABELS[key]
    records = []
    for i, rec in enumerate(data):
        r = np.asarray(rec, dtype=np.float64)
        if r.ndim != 1:
            raise SchemaMismatch(f"{path}: record {i} has shape {r.shape}, expected 1-D")
        sd = r.std()
        if not np.isfinite(sd) or sd == 0:
            raise SchemaMismatch(f"{path}: record {i} is constant or not finite (std {sd}); it "
                                 f"cannot be z-scored as upstream does")
        records.append(((r - r.mean()) / sd).astype(np.float32))
    return records, labels


def window_table(records: list[np.ndarray], labels: np.ndarray, which: np.ndarray,
                 window: int, strides: dict[int, int]) -> np.ndarray:
    """(record, start) of every window of the records ``which``, in upstream order."""
    rows = []
    for r in which:
        starts = np.arange(0, len(records[r]) - window, strides[int(labels[r])])
        rows.append(np.stack([np.full(len(starts), r), starts], axis=1))
    return np.concatenate(rows) if rows else np.zeros((0, 2), dtype=np.int64)


def build_ecg(ctx: Context) -> Built:
    from sklearn.model_selection import train_test_split

    p, sp = ctx.params, ctx.task.split
    records, labels = _records(ctx)
    rest, test = train_test_split(np.arange(len(records)), test_size=p["test_size"],
                                  random_state=p["split_random_state"])
    tr_pos, va_pos = carve(len(rest), sp.val_fraction, sp.val_seed)
    which = {"train": rest[tr_pos], "val": rest[va_pos], "test": np.asarray(test)}
    strides = {int(k): int(v) for k, v in p["strides"].items()}
    window = int(p["window"])
    out = Built()
    for s in ctx.splits:
        table = window_table(records, labels, which[s], window, strides)
        order = np.random.default_rng([sp.shuffle_seed, ("train", "val", "test").index(s)]
                                      ).permutation(len(table))
        table = table[order]

        def fetch(i, t=table):
            return np.stack([records[r][st:st + window] for r, st in t[i]])[:, None]

        out.x[s] = maybe_lazy(len(table), (1, window), np.float32, fetch, block=512)
        out.y[s] = labels[table[:, 0]] if len(table) else np.zeros(0, dtype=np.int64)
        out.indices[s] = table[:, 0]          # the record each window comes from
        out.aux[s] = {"record": table[:, 0], "start": table[:, 1]}
    return out
