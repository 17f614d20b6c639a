"""Synthetic, schema-faithful stand-ins for the 8 PDEBench files (``docs/data.md`` §3).

Each PDE has its own solver module, written from the equations and vectorised over samples; this
module picks sizes, seeds the generators and writes files with the upstream names, keys and
layout under ``root / FILES[task].rel_path``.

    generate("advection", Path("data/synthetic"))            # one file, "small" preset
    generate_suite(Path("data/synthetic"), size="tiny")      # all eight
"""
from __future__ import annotations

import time
import zlib
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Iterable, Mapping

import numpy as np

from ..catalog import FILES, TASK_NAMES
from ..errors import DataError
from . import (advection, burgers, darcy, diffusion_sorption, fitzhugh_nagumo, navier_stokes_1d,
               reaction_diffusion_1d, shallow_water)
from .writer import read_root_attrs, write

__all__ = ["SIZES", "GENERATORS", "REQUIRED_TIMES", "generate", "generate_suite",
           "NotSyntheticFile", "UnknownName"]

GENERATORS = MappingProxyType({
    "advection": advection,
    "burgers": burgers,
    "diffusion-reaction-1d": reaction_diffusion_1d,
    "diffusion-sorption": diffusion_sorption,
    "navier-stokes-1d": navier_stokes_1d,
    "darcy": darcy,
    "shallow-water": shallow_water,
    "diffusion-reaction-2d": fitzhugh_nagumo,
})
"""Task name → solver module (each has ``VERSION`` and ``generate(rng, n, nx[, nt]) -> Plan``)."""

# Times each task reads (ORCA: input at t = 0, target at the listed time); every preset's time
# grid must contain them exactly (checked by the tests).
REQUIRED_TIMES = MappingProxyType({
    "advection": (0.0, 2.0), "burgers": (0.0, 2.0), "diffusion-reaction-1d": (0.0, 0.29),
    "diffusion-sorption": (0.0, 500.0), "navier-stokes-1d": (0.0, 1.0),
    "shallow-water": (0.0, 1.0), "diffusion-reaction-2d": (0.0, 5.0),
})

# Per preset and task: n samples (multiples of 10, so 10 % test / 10 % val splits are whole), nx
# cells per axis (2D grids are nx × nx), nt saved frames evenly spaced from t = 0 to the real end
# time, so every time in REQUIRED_TIMES is a frame (1D RD keeps 0.01 spacing: frame 29 = t 0.29).
# Cell-centred grids on the real domains. Real files: N = 10000 (SW, 2D RD: 1000), 1024 cells
# (2D: 128²), 101 frames (Advection, Burgers: 201).
def _preset(tasks: dict[str, dict[str, int]]) -> Mapping[str, Mapping[str, int]]:
    return MappingProxyType({k: MappingProxyType(v) for k, v in tasks.items()})


SIZES: Mapping[str, Mapping[str, Mapping[str, int]]] = MappingProxyType({
    # For tests: all eight in about a second.
    "tiny": _preset({
        "advection": {"n": 10, "nx": 64, "nt": 11},
        "burgers": {"n": 10, "nx": 64, "nt": 11},
        "diffusion-reaction-1d": {"n": 10, "nx": 64, "nt": 101},
        "diffusion-sorption": {"n": 10, "nx": 64, "nt": 11},
        "navier-stokes-1d": {"n": 10, "nx": 32, "nt": 11},
        "darcy": {"n": 10, "nx": 16},
        "shallow-water": {"n": 10, "nx": 16, "nt": 11},
        "diffusion-reaction-2d": {"n": 10, "nx": 16, "nt": 11},
    }),
    # The default: ~15 s of CPU for all eight (CPU seconds measured per task in brackets).
    "small": _preset({
        # real 1024-cell grid (the reader strides to ORCA's 256); ORCA's 41 frames [0.6 s]
        "advection": {"n": 200, "nx": 1024, "nt": 41},
        # ORCA's 1024 cells and 41 frames; the spectral solver is cheap at ν = 1 [0.6 s]
        "burgers": {"n": 200, "nx": 1024, "nt": 41},
        # ORCA's 1024 cells; 101 frames keep the 0.01 spacing ORCA indexes into [0.6 s]
        "diffusion-reaction-1d": {"n": 200, "nx": 1024, "nt": 101},
        # ORCA's 1024 cells; 21 frames (Δt = 25 s) hold t = 0 and 500 [2.2 s]
        "diffusion-sorption": {"n": 200, "nx": 1024, "nt": 21},
        # 64 cells, ORCA's 21 frames: the MUSCL-HLLC step count grows with nx (CFL), so the
        # cost grows like nx²; 64 is what fits the budget (medium: 128, large: 256) [3.4 s]
        "navier-stokes-1d": {"n": 200, "nx": 64, "nt": 21},
        # ORCA's 64² (it strides the real 128² by 2); one sparse LU per sample [1.2 s]
        "darcy": {"n": 200, "nx": 64},
        # 64² (real 128²); 21 frames (Δt = 0.05) hold t = 0 and 1 [3.5 s]
        "shallow-water": {"n": 100, "nx": 64, "nt": 21},
        # 64² (real 128²); 21 frames (Δt = 0.25) hold t = 0 and 5 [3.5 s]
        "diffusion-reaction-2d": {"n": 100, "nx": 64, "nt": 21},
    }),
    # ORCA's effective grids everywhere (1D 1024, CFD 128, 2D 128²); a few minutes of CPU.
    "medium": _preset({
        "advection": {"n": 1000, "nx": 1024, "nt": 41},
        "burgers": {"n": 1000, "nx": 1024, "nt": 41},
        "diffusion-reaction-1d": {"n": 1000, "nx": 1024, "nt": 101},
        "diffusion-sorption": {"n": 1000, "nx": 1024, "nt": 101},
        "navier-stokes-1d": {"n": 1000, "nx": 128, "nt": 21},
        "darcy": {"n": 1000, "nx": 128},
        "shallow-water": {"n": 200, "nx": 128, "nt": 21},
        "diffusion-reaction-2d": {"n": 200, "nx": 128, "nt": 21},
    }),
    # The published shapes, except 1D CFD (2000 samples on 256 cells; 1024 cells would take
    # days in numpy). About half an hour of CPU and ~45 GB of disk.
    "large": _preset({
        "advection": {"n": 10000, "nx": 1024, "nt": 201},
        "burgers": {"n": 10000, "nx": 1024, "nt": 201},
        "diffusion-reaction-1d": {"n": 10000, "nx": 1024, "nt": 101},
        "diffusion-sorption": {"n": 10000, "nx": 1024, "nt": 101},
        "navier-stokes-1d": {"n": 2000, "nx": 256, "nt": 101},
        "darcy": {"n": 10000, "nx": 128},
        "shallow-water": {"n": 1000, "nx": 128, "nt": 101},
        "diffusion-reaction-2d": {"n": 1000, "nx": 128, "nt": 101},
    }),
})


class NotSyntheticFile(DataError, FileExistsError):
    """The target path holds a file this package did not write (e.g. a real download)."""


class UnknownName(DataError, ValueError):
    """An unknown task or size name (a ValueError; a DataError so the CLI reports it cleanly)."""


def _check(task: str, size: str) -> None:
    if task not in GENERATORS:
        raise UnknownName(f"unknown task {task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    if size not in SIZES:
        raise UnknownName(f"unknown size {size!r}; valid sizes: {', '.join(SIZES)}")


def _rng(task: str, seed: int) -> np.random.Generator:
    # one independent stream per task, stable under reordering of the task table
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(task.encode())]))


def root_attrs(task: str, size: str, seed: int) -> dict:
    """Root attributes of a synthetic file: provenance plus the upstream parameter attributes."""
    return {"synthetic": True, "generator_version": GENERATORS[task].VERSION, "seed": int(seed),
            "size": size, **dict(FILES[task].attrs)}


def generate(task_name: str, root: Path, size: str = "small", seed: int = 0,
             overwrite: bool = False) -> Path:
    """Write the synthetic file of ``task_name`` under ``root`` (upstream relative path).

    Deterministic for (task, size, seed). An existing synthetic file with the same generator
    version, seed and size is kept (returned as is) unless ``overwrite``; a stale synthetic file is
    replaced; a file this package did not write raises :class:`NotSyntheticFile` unless
    ``overwrite``.
    """
    return _generate(task_name, root, size, seed, overwrite)[0]


def _generate(task_name: str, root: Path, size: str, seed: int, overwrite: bool
              ) -> tuple[Path, bool]:
    """:func:`generate`, also saying whether a file was written (False: an up-to-date one kept)."""
    _check(task_name, size)
    spec = FILES[task_name]
    path = Path(root) / spec.rel_path
    attrs = root_attrs(task_name, size, seed)
    if path.exists() and not overwrite:
        found = read_root_attrs(path)
        if not found or not found.get("synthetic"):
            raise NotSyntheticFile(
                f"{path} exists and is not a synthetic file written by harness.data.synth; "
                "not replacing it (pass overwrite=True, or use another root)")
        if all(found.get(k) == attrs[k] for k in ("generator_version", "seed", "size")):
            return path, False
    plan = GENERATORS[task_name].generate(_rng(task_name, seed), **SIZES[size][task_name])
    return write(path, spec, plan, attrs), True


def generate_suite(root: Path, size: str = "small", seed: int = 0,
                   tasks: Iterable[str] | None = None,
                   progress: Callable[[str], object] | None = print,
                   overwrite: bool = False) -> dict[str, Path]:
    """Generate several tasks' files (all eight by default); returns task → path.

    ``progress`` gets one line per task (None: silent); ``overwrite`` as in :func:`generate`.
    NAS-Bench-360 task names (``harness.data.nb360.catalog.TASK_NAMES``) are handed to
    ``harness.data.nb360.synth``, so a caller holding a mix of suites' tasks needs one call."""
    from harness.data.nb360 import catalog as nb360_catalog

    if tasks is not None:
        tasks = list(tasks)
        nb_names = [t for t in tasks if t in nb360_catalog.TASK_NAMES and t not in GENERATORS]
        if nb_names:
            from harness.data.nb360 import synth as nb360_synth

            out = nb360_synth.generate_suite(root, size=size, seed=seed, tasks=nb_names,
                                             progress=progress, overwrite=overwrite)
            rest = [t for t in tasks if t not in nb_names]
            if rest:
                out.update(generate_suite(root, size, seed, rest, progress, overwrite))
            return out
    names = list(TASK_NAMES if tasks is None else tasks)
    for name in names:  # validate everything before spending time on any of it
        _check(name, size)
    out = {}
    for name in names:
        start = time.perf_counter()
        out[name], written = _generate(name, root, size, seed, overwrite)
        if progress is not None:
            how = f"{time.perf_counter() - start:.1f} s" if written else "up to date, kept"
            progress(f"[synth] {name}: {out[name]} ({how})")
    return out
