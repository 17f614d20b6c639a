"""Darcy flow and Cosmic stand-ins (2-D fields).

* Darcy: FNO-style piecewise-constant permeability — a smoothed Gaussian random field
  thresholded at 0 to 12 and 3 (smooth2: a longer correlation length) — and the solution of
  −∇·(a ∇u) = 1 with u = 0 on the boundary, from the PDEBench Darcy solver
  (``harness.data.synth.darcy``), written as MAT v5 ``coeff``/``sol`` (N, r, r).
* Cosmic: sky plus Poisson noise with stars and galaxies as Gaussian profiles (σ 1.2–3 px);
  cosmic rays are unconvolved 1–3 px hits and short streaks at high amplitude, which form the
  mask; saturated star cores form the ignore mask. Files are (3, H, H) float32 in deepCR's
  folder layout (``npy_{train,test}/f435w/<proposal>/<visit>/<k>_<name>.npy`` with ``sky.npy``)
  plus the two path lists upstream's preprocessing writes.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from harness.data.synth import darcy as pde_darcy

from .files import FileSet

VERSION = "nb360-fields-1"


def permeability(rng: np.random.Generator, n: int, size: int, smooth: float) -> np.ndarray:
    field = gaussian_filter(rng.normal(0, 1, (n, size, size)), sigma=(0, smooth, smooth), mode="wrap")
    return np.where(field > 0, 12.0, 3.0)


def darcy_flow(rng: np.random.Generator, fs: FileSet, n_train: int, n_test: int,
               resolution: int) -> dict:
    for name, n, smooth in (("smooth1", n_train, resolution / 12), ("smooth2", n_test, resolution / 8)):
        a = permeability(rng, n, resolution, smooth)
        u = pde_darcy.solve(a, beta=1.0)
        fs.mat(f"piececonst_r421_N1024_{name}.mat", {"coeff": a, "sol": u})
    return {"resolution": resolution}


# F435W galaxy fields (proposal, visit) that upstream's preprocessing keeps ("GAL")
GAL_FIELDS = (("10760", "2"), ("12513", "2"), ("13737", "3"))


def _gauss(yy, xx, cy, cx, sigma):
    return np.exp(-0.5 * ((yy - cy) ** 2 + (xx - cx) ** 2) / sigma ** 2)


def cosmic_image(rng: np.random.Generator, size: int, sky: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    flux = np.full((size, size), sky)
    ignore = np.zeros((size, size))
    for _ in range(int(rng.integers(2, 6))):          # stars and galaxies
        cy, cx = rng.uniform(0, size, 2)
        peak, sigma = rng.uniform(50, 600), rng.uniform(1.2, 3.0)
        flux += peak * _gauss(yy, xx, cy, cx, sigma)
        if peak > 450:                                  # saturated core
            ignore[_gauss(yy, xx, cy, cx, sigma) > 0.8] = 1.0
    image = rng.poisson(np.maximum(flux, 0)).astype(float) - sky
    mask = np.zeros((size, size))
    for _ in range(int(rng.integers(2, 3 + size // 16))):   # cosmic rays, not PSF-convolved
        y, x = rng.integers(1, size - 1, 2)
        if rng.random() < 0.5:
            h, w = rng.integers(1, 3, 2)
            mask[y:y + h, x:x + w] = 1.0
        else:
            length, angle = int(rng.integers(3, 8)), rng.uniform(0, np.pi)
            for s in range(length):
                py, px = int(y + s * np.sin(angle)), int(x + s * np.cos(angle))
                if 0 <= py < size and 0 <= px < size:
                    mask[py, px] = 1.0
    image = image + mask * rng.uniform(300, 1500, (size, size))
    return np.stack([image, mask, ignore]).astype(np.float32)


def cosmic(rng: np.random.Generator, fs: FileSet, n_train: int, n_test: int, size: int) -> dict:
    for split, n in (("train", n_train), ("test", n_test)):
        paths = []
        per_field = -(-n // len(GAL_FIELDS))
        for prop, visit in GAL_FIELDS:
            folder = f"cosmic/npy_{split}/f435w/{prop}/{visit}"
            skies = rng.uniform(20, 80, 4)
            fs.npy(f"{folder}/sky.npy", skies.astype(np.float32))
            for k in range(per_field):
                if len(paths) == n:
                    break
                sky_idx = int(rng.integers(1, len(skies) + 1))
                rel = f"{folder}/{sky_idx}_synthetic_{k:04d}.npy"
                fs.npy(rel, cosmic_image(rng, size, float(skies[sky_idx - 1])))
                paths.append("./" + rel)
        fs.npy(f"cosmic/{split}_dirs.npy", np.array(paths))
    return {}
