"""Hand-made NAS-Bench-360 files in the upstream formats, small and with known values.

Written with pickle / numpy / scipy directly (not through ``harness.data.nb360.synth``), so the
reader tests check the readers against the formats, not against our own writer.
"""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np


def cifar(root: Path, n_train: int = 20, n_test: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Train/test pickles whose pixel (image i, channel c, row r, col k) is (i + c + r + k) % 256."""
    d = root / "cifar-100-python"
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for name, n in (("train", n_train), ("test", n_test)):
        i, c, r, k = np.meshgrid(np.arange(n), np.arange(3), np.arange(32), np.arange(32), indexing="ij")
        data = ((i + c + r + k) % 256).astype(np.uint8).reshape(n, 3072)
        labels = [int(v) for v in np.arange(n) % 100]
        with open(d / name, "wb") as f:
            pickle.dump({"data": data, "fine_labels": labels, "coarse_labels": [0] * n}, f)
        out.append(data)
    return out[0], out[1]


def spherical(root: Path, n: int = 20, size: int = 8) -> dict:
    rng = np.random.default_rng(0)
    d = {s: {"images": rng.integers(0, 256, (n, 3, size, size)).astype(np.uint8),
             "labels": np.arange(n) % 100} for s in ("train", "test")}
    with gzip.open(root / "s2_cifar100.gz", "wb") as f:
        pickle.dump(d, f)
    return d


def ninapro(root: Path, n: int = 12) -> dict:
    d = root / "ninaPro"
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for s in ("train", "val", "test"):
        x = np.arange(n * 52 * 16, dtype=np.float64).reshape(n, 52, 16)
        y = np.arange(n) % 18
        np.save(d / f"ninapro_{s}.npy", x)
        np.save(d / f"label_{s}.npy", y)
        out[s] = (x, y)
    return out


def satellite(root: Path, n_train: int = 30, n_test: int = 10) -> None:
    for name, n in (("train", n_train), ("test", n_test)):
        x = np.arange(n * 46, dtype=np.float32).reshape(n, 46)
        np.save(root / f"satellite_{name}.npy", {"data": x, "label": np.arange(n) % 24 + 1})


def deepsea(root: Path, n: int = 8, length: int = 20, compressed: bool = False) -> dict:
    rng = np.random.default_rng(1)
    arrays = {}
    for s in ("train", "val", "test"):
        arrays[f"x_{s}"] = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (n, length))]
        arrays[f"y_{s}"] = (rng.random((n, 36)) < 0.3).astype(np.uint8)
    (np.savez_compressed if compressed else np.savez)(root / "deepsea_filtered.npz", **arrays)
    return arrays


def ecg(root: Path, lengths=(1600, 1300, 2200, 1001, 1500, 3000, 1200, 2500, 1800, 2100),
        labels="NAO~NAO~NN") -> dict:
    rng = np.random.default_rng(2)
    data = np.empty(len(lengths), dtype=object)
    for i, n in enumerate(lengths):
        data[i] = rng.normal(3.0, 2.0, n)
    d = {"data": data, "label": list(labels)}
    with open(root / "challenge2017.pkl", "wb") as f:
        pickle.dump(d, f)
    return d


def darcy(root: Path, n1: int = 10, n2: int = 5, size: int = 9, v73: bool = False) -> dict:
    """``coeff[s, i, j] = s + i/10 + j/100``, ``sol = 2 · coeff``."""
    out = {}
    for name, n in (("smooth1", n1), ("smooth2", n2)):
        s, i, j = np.meshgrid(np.arange(n), np.arange(size), np.arange(size), indexing="ij")
        a = s + i / 10 + j / 100
        path = root / f"piececonst_r421_N1024_{name}.mat"
        if v73:
            import h5py

            with h5py.File(path, "w") as f:   # MAT v7.3 stores MATLAB's transpose
                f["coeff"] = a.T
                f["sol"] = (2 * a).T
        else:
            import scipy.io

            scipy.io.savemat(path, {"coeff": a, "sol": 2 * a})
        out[name] = a
    return out


def protein_files(root: Path, group: str, pid: str, length: int, dist: np.ndarray | None = None) -> dict:
    rng = np.random.default_rng(abs(hash(pid)) % 2**32)
    n = length
    feats = {"seq": "A" * n, "ss": rng.uniform(0, 1, (3, n)), "pssm": rng.uniform(0, 1, (n, 22)),
             "sa": rng.uniform(0, 1, n), "entropy": rng.uniform(0, 1, n),
             "ccmpred": rng.uniform(0, 1, (n, n)), "freecon": rng.uniform(0, 1, (n, n)),
             "potential": rng.uniform(0, 1, (n, n))}
    (root / "protein" / group / "features").mkdir(parents=True, exist_ok=True)
    (root / "protein" / group / "distance").mkdir(parents=True, exist_ok=True)
    with open(root / "protein" / group / "features" / f"{pid}.pkl", "wb") as f:
        pickle.dump(feats, f)
    if dist is None:
        dist = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) * 1.5
    triple = np.empty(3, dtype=object)
    triple[0], triple[1], triple[2] = n, feats["seq"], dist
    np.save(root / "protein" / group / "distance" / f"{pid}-cb.npy", triple)
    return feats


def psicov(root: Path, train=(("p1", 20), ("p2", 30), ("p3", 25), ("p4", 22), ("p5", 21),
                              ("p6", 26), ("p7", 24), ("p8", 23), ("p9", 28), ("p10", 20)),
           test=(("t1", 30), ("t2", 27))) -> None:
    for group, items in (("deepcov", train), ("psicov", test)):
        for pid, n in items:
            protein_files(root, group, pid, n)
        (root / "protein" / f"{group}.lst").write_text("".join(f"{p} {n}\n" for p, n in items))


def cosmic(root: Path, n_train: int = 10, n_test: int = 4, size: int = 256, sky=None) -> None:
    rng = np.random.default_rng(3)
    for split, n in (("train", n_train), ("test", n_test)):
        folder = root / "cosmic" / f"npy_{split}" / "f435w" / "10760" / "2"
        folder.mkdir(parents=True, exist_ok=True)
        if sky is not None:
            np.save(folder / "sky.npy", np.asarray(sky, dtype=np.float32))
        paths = []
        for k in range(n):
            img = np.stack([np.full((size, size), float(k)), (rng.random((size, size)) < 0.1),
                            (rng.random((size, size)) < 0.05)]).astype(np.float32)
            name = f"{k % 2 + 1}_img{k}.npy"
            np.save(folder / name, img)
            paths.append(f"./cosmic/npy_{split}/f435w/10760/2/{name}")
        np.save(root / "cosmic" / f"{split}_dirs.npy", np.array(paths))


def fsd(root: Path, rate: int = 22050) -> dict:
    """Three labels, train 3 clips, val 1 clip, eval 2 clips (one with two chunks)."""
    import scipy.io.wavfile

    names = [f"tag{j}" for j in range(200)]
    (root / "fsd" / "chunks").mkdir(parents=True, exist_ok=True)
    (root / "fsd" / "noise_22050").mkdir(parents=True, exist_ok=True)
    (root / "fsd" / "wav").mkdir(parents=True, exist_ok=True)
    import json

    (root / "fsd" / "chunks" / "lbl_map.json").write_text(json.dumps({n: j for j, n in enumerate(names)}))
    t = np.arange(rate) / rate
    rows = {"tr.csv": [("a0", "tag0", 1), ("a1", "tag1,tag2", 2), ("a2", "tag2", 3)],
            "val.csv": [("b0", "tag0", 4)],
            "eval.csv": [("c0", "tag1", 5), ("c1", "tag0,tag2", 6), ("c2", "tag0,tag2", 6)]}
    for csv, items in rows.items():
        lines = ["files,labels,ext"]
        for k, (name, tags, ext) in enumerate(items):
            audio = 0.3 * np.sin(2 * np.pi * (300 + 100 * k) * t)
            n = rate // 2 if name == "a2" else rate          # a short chunk is tiled
            scipy.io.wavfile.write(root / "fsd" / "wav" / f"{name}.wav", rate,
                                   (audio[:n] * 32767).astype(np.int16))
            lines.append(f'data/wav/{name}.wav,"{tags}",{ext}')
        (root / "fsd" / "chunks" / csv).write_text("\n".join(lines) + "\n")
    scipy.io.wavfile.write(root / "fsd" / "noise_22050" / "n.wav", rate,
                           (np.random.default_rng(4).normal(0, 0.1, 2 * rate) * 32767).astype(np.int16))
    return rows
