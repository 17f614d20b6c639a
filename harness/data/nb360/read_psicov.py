"""PSICOV: DeepCov proteins for training, PSICOV150 for test [ORCA load_psicov, PDNet helpers].

Under ``protein/``: ``deepcov.lst`` and ``psicov.lst`` (first whitespace token of a line is the
id), features ``{deepcov,psicov,cameo}/features/<id>.pkl`` (a dict: ``seq`` str of length L,
``ss`` (3, L), ``pssm`` (L, 22), ``sa`` (L,), ``entropy`` (L,), ``ccmpred``/``freecon``/
``potential`` (L, L); every value strictly inside (−100, 100)) and distances
``.../distance/<id>-cb.npy`` (a pickled 3-item object array ``(L, seq, cb_map (L, L))`` in Å).

Construction as upstream: 57 input channels (row and column copies of ss, pssm, sa, entropy;
then ccmpred, freecon, potential), zero padding of 5 on each side, placed top-left in a
``crop`` × ``crop`` window (512) or, for longer proteins, a random window (seeded here, fixed per protein; upstream draws a new one per epoch);
distances below 1 Å are raised to 1, the diagonal is filled from its neighbours, and the target
is padded with 100. Training targets are clipped at 16 Å (``label_engineering='16.0'``);
validation (a seeded 10 % of DeepCov) and test targets are raw. NaN becomes 0 in both.

Inputs are (N, 57, crop, crop), targets (N, 1, crop, crop); ``aux`` carries each protein's
``length`` and window ``offset`` for the MAE8 metric. A real training split is ~200 GB of
float32, so splits above the eager limit are built per sample on access. Synthetic stand-ins use
short proteins and declare a smaller window in their marker.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data.errors import SchemaMismatch
from harness.data.nb360.formats import load_npy, load_pickle, require_file
from harness.data.nb360.lazy import eager_limit, maybe_lazy
from harness.data.nb360.building import Built, Context, carve

SETS = ("deepcov", "psicov", "cameo")
CHANNELS = 57


def read_list(path: Path) -> list[str]:
    """Protein ids of a ``.lst`` file: the first token of every non-empty line."""
    ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise SchemaMismatch(f"{path}: no protein ids; expected one id per line")
    return ids


def _find(ctx: Context, pid: str, sub: str, suffix: str) -> tuple[Path, str]:
    for s in SETS:   # upstream searches all three folders (the last hit wins; ids are unique)
        p = ctx.path(f"protein/{s}/{sub}/{pid}{suffix}")
        if p.is_file():
            return p, s
    raise SchemaMismatch(f"protein {pid!r}: no {sub} file {pid}{suffix} under "
                         f"{ctx.path('protein')}/{{{','.join(SETS)}}}/{sub}/")


def features(ctx: Context, pid: str) -> np.ndarray:
    """The (L, L, 57) input of protein ``pid`` (upstream ``get_feature``)."""
    path, _ = _find(ctx, pid, "features", ".pkl")
    f = load_pickle(path, encoding="latin1")
    need = ("seq", "ss", "pssm", "sa", "entropy", "ccmpred", "freecon", "potential")
    if not isinstance(f, dict) or any(k not in f for k in need):
        found = sorted(map(str, f)) if isinstance(f, dict) else type(f).__name__
        raise SchemaMismatch(f"{path}: expected a dict with keys {list(need)}, found {found}")
    n = len(f["seq"])
    shapes = {"ss": (3, n), "pssm": (n, 22), "sa": (n,), "entropy": (n,), "ccmpred": (n, n),
              "freecon": (n, n), "potential": (n, n)}
    arrs = {}
    for k, shape in shapes.items():
        arrs[k] = np.asarray(f[k], dtype=np.float64)
        if arrs[k].shape != shape:
            raise SchemaMismatch(f"{path}: {k!r} has shape {arrs[k].shape}, expected {shape} "
                                 f"(L = len(seq) = {n})")
    x = np.zeros((n, n, CHANNELS))
    c = 0
    for row in [*arrs["ss"], *arrs["pssm"].T, arrs["sa"], arrs["entropy"]]:
        a = np.broadcast_to(row[None, :], (n, n))
        x[:, :, c], x[:, :, c + 1] = a, a.T
        c += 2
    for k in ("ccmpred", "freecon", "potential"):
        x[:, :, c] = arrs[k]
        c += 1
    if not (x.max() < 100.0 and x.min() > -100.0):
        raise SchemaMismatch(f"{path}: feature values span {x.min():g}..{x.max():g}; upstream "
                             f"asserts they lie strictly inside (-100, 100)")
    return x


def distances(ctx: Context, pid: str, length: int | None) -> np.ndarray:
    """The (L, L) Cβ distance map of ``pid`` after upstream's clean-up (``get_map``)."""
    path, where = _find(ctx, pid, "distance", "-cb.npy")
    obj = load_npy(path, encoding="latin1")
    if not (isinstance(obj, np.ndarray) and obj.shape == (3,)):
        raise SchemaMismatch(f"{path}: expected a 3-item object array (L, seq, cb_map), found "
                             f"{type(obj).__name__} of shape {getattr(obj, 'shape', '?')}")
    ly, y = int(obj[0]), np.array(obj[2], dtype=np.float64)
    if where != "cameo" and length is not None:
        if ly != length or y.shape != (length, length):
            raise SchemaMismatch(f"{path}: L = {ly}, map {y.shape}; the features give L = "
                                 f"{length}, expected ({length}, {length})")
        if np.isnan(y).any():
            raise SchemaMismatch(f"{path}: NaN distances (only CAMEO maps may have them)")
    if y.shape != (ly, ly):
        raise SchemaMismatch(f"{path}: map {y.shape}, expected ({ly}, {ly})")
    y[y < 1.0] = 1.0
    if ly > 1:
        y[0, 0], y[ly - 1, ly - 1] = y[0, 1], y[ly - 1, ly - 2]
    for q in range(1, ly - 1):
        if np.isnan(y[q, q]):
            continue
        lo, hi = y[q, q - 1], y[q, q + 1]
        y[q, q] = (1.0 if np.isnan(lo) and np.isnan(hi) else hi if np.isnan(lo)
                   else lo if np.isnan(hi) else (lo + hi) / 2.0)
    if np.nanmax(y) > 500.0:
        raise SchemaMismatch(f"{path}: distances up to {np.nanmax(y):g} Å; upstream asserts ≤ 500")
    return y


def sample(ctx: Context, pid: str, crop: int, pad: int, clip: float | None,
           rng: np.random.Generator, diagonal: bool) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(x (57, crop, crop), y (1, crop, crop), L, offset) for one protein.

    A protein longer than the window gets a random window: independent row/column offsets for
    training (upstream), one offset on both axes (a diagonal block) for evaluation."""
    x = features(ctx, pid)
    n = x.shape[0]
    y0 = distances(ctx, pid, n)
    h = pad // 2
    xp = np.zeros((n + pad, n + pad, CHANNELS), dtype=np.float32)
    xp[h:n + h, h:n + h] = x
    yp = np.full((n + pad, n + pad), 100.0, dtype=np.float32)
    yp[h:n + h, h:n + h] = np.nan
    yp[h:h + y0.shape[0], h:h + y0.shape[0]] = y0
    xx = np.zeros((crop, crop, CHANNELS), dtype=np.float32)
    yy = np.full((crop, crop), 100.0, dtype=np.float32)
    m, off = n + pad, 0
    if m <= crop:
        xx[:m, :m], yy[:m, :m] = xp, yp
    else:
        rx = int(rng.integers(0, m - crop + 1))
        ry = rx if diagonal else int(rng.integers(0, m - crop + 1))
        xx, yy, off = xp[rx:rx + crop, ry:ry + crop], yp[rx:rx + crop, ry:ry + crop], rx
    if clip is not None:
        yy = np.minimum(yy, clip)
    return (np.nan_to_num(xx.transpose(2, 0, 1), nan=0.0), np.nan_to_num(yy, nan=0.0)[None],
            n, off)


def build_psicov(ctx: Context) -> Built:
    p, sp = ctx.params, ctx.task.split
    crop = int(ctx.marker.get("crop", p["crop"]))
    pad = int(p["pad"])
    lists: dict[str, list[str]] = {}
    idx: dict[str, np.ndarray] = {}
    if {"train", "val"} & set(ctx.splits):
        path = require_file(ctx.path("protein/deepcov.lst"), "DeepCov list", ctx.task.name)
        ids = read_list(path)
        tr, va = carve(len(ids), sp.val_fraction, sp.val_seed)
        lists["train"], lists["val"] = [ids[i] for i in tr], [ids[i] for i in va]
        idx = {"train": tr, "val": va}
    if "test" in ctx.splits:
        path = require_file(ctx.path("protein/psicov.lst"), "PSICOV list", ctx.task.name)
        lists["test"] = read_list(path)
        idx["test"] = np.arange(len(lists["test"]))
    out = Built(attrs={"crop": crop, "pad": pad})
    for s in ctx.splits:
        ids, train = lists[s], s == "train"
        clip = float(p["train_clip"]) if train else None
        lengths = np.zeros(len(ids), dtype=np.int64)
        offsets = np.zeros(len(ids), dtype=np.int64)

        def one(i, ids=ids, clip=clip, train=train, s=s):
            rng = np.random.default_rng([sp.shuffle_seed, ("train", "val", "test").index(s), int(i)])
            return sample(ctx, ids[i], crop, pad, clip, rng, diagonal=not train)

        def fetch_x(idx_, one=one):
            return np.stack([one(i)[0] for i in idx_])

        def fetch_y(idx_, one=one):
            return np.stack([one(i)[1] for i in idx_])

        nbytes = len(ids) * CHANNELS * crop * crop * 4
        if nbytes <= eager_limit():   # one pass builds x, y and the metric's extras together
            built = [one(i) for i in range(len(ids))]
            out.x[s] = np.stack([b[0] for b in built]) if built else np.zeros((0, CHANNELS, crop, crop), np.float32)
            out.y[s] = np.stack([b[1] for b in built]) if built else np.zeros((0, 1, crop, crop), np.float32)
            lengths[:] = [b[2] for b in built]
            offsets[:] = [b[3] for b in built]
        else:
            out.x[s] = maybe_lazy(len(ids), (CHANNELS, crop, crop), np.float32, fetch_x, block=4)
            out.y[s] = maybe_lazy(len(ids), (1, crop, crop), np.float32, fetch_y, block=16)
            for i, pid in enumerate(ids):   # cheap: distance files only
                lengths[i] = int(load_npy(_find(ctx, pid, "distance", "-cb.npy")[0],
                                          encoding="latin1")[0])
            pos = (lengths + pad) > crop
            for i in np.flatnonzero(pos):   # window offsets only matter for long proteins
                offsets[i] = one(i)[3]
        out.indices[s] = idx[s]
        out.aux[s] = {"length": lengths, "offset": offsets}
    return out
