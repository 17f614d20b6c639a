"""``check``: does each task's file exist, and does it match the schema the readers rely on?

For each task it reports found/missing, real/synthetic, schema differences (keys, dtypes, ranks,
axis sizes that disagree between keys, parameter attributes), sample counts per split and value
ranges of the constructed inputs and targets. Sizes that differ from the published file are
*notes* for synthetic files (they are small on purpose) and *notes* for real files too (a partial
copy), never silent.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from harness.data.catalog import PdebenchFile
from harness.data.errors import DataError
from harness.data.readers import data_source, find_file, open_h5, task_splits
from harness.data.report import TaskReport  # noqa: F401 (re-exported)


def _node_datasets(f: h5py.File, spec: PdebenchFile) -> tuple[h5py.Group | h5py.File, str, int]:
    """The group holding the datasets (the file, or the first seed group) and the sample count."""
    if spec.layout == "single":
        return f, "", -1
    groups = sorted(k for k in f.keys() if isinstance(f[k], h5py.Group))
    if not groups:
        raise DataError(f"no seed groups found (top-level keys {sorted(f.keys())})")
    return f[groups[0]], f"{groups[0]}/", len(groups)


def schema_problems(f: h5py.File, spec: PdebenchFile, path: Path) -> tuple[list[str], list[str]]:
    """(problems, notes) of an open file against ``spec``."""
    problems: list[str] = []
    notes: list[str] = []
    try:
        node, prefix, n_groups = _node_datasets(f, spec)
    except DataError as exc:
        return [f"{path}: {exc}"], notes
    sizes: dict[str, int] = {}
    if n_groups >= 0:
        sizes["N"] = n_groups
    for ks in spec.keys:
        ds = node.get(ks.key)
        if not isinstance(ds, h5py.Dataset):
            problems.append(f"key {prefix}{ks.key!r} missing (found {sorted(node.keys())})")
            continue
        if ds.dtype != np.float32:
            problems.append(f"key {prefix}{ks.key!r}: dtype {ds.dtype}, expected float32")
        if ds.ndim != len(ks.axes):
            problems.append(f"key {prefix}{ks.key!r}: shape {ds.shape} has rank {ds.ndim}, "
                            f"expected axes {ks.axes}")
            continue
        for ax, n in zip(ks.axes, ds.shape):
            sym, extra = (ax[:-2], 1) if ax.endswith("+1") else (ax, 0)
            if sym.isdigit():
                if n != int(sym):
                    problems.append(f"key {prefix}{ks.key!r}: axis of size {n}, expected {sym}")
                continue
            n_sym = n - extra
            if sym in sizes and sizes[sym] != n_sym:
                problems.append(f"key {prefix}{ks.key!r}: axis {ax} = {n} disagrees with "
                                f"{sym} = {sizes[sym]} from another key")
            sizes.setdefault(sym, n_sym)
    for sym, real in spec.real_sizes.items():
        if sym in sizes and sizes[sym] != real:
            notes.append(f"{sym} = {sizes[sym]} (published file: {real})")
    for name, value in spec.attrs.items():
        if name in f.attrs:
            got = float(np.asarray(f.attrs[name]).item())
            if not np.isclose(got, value):
                problems.append(f"attribute {name!r} = {got:g}, expected {value:g} for this file")
        else:
            notes.append(f"attribute {name!r} absent (expected {value:g}); parameters taken from the file name")
    return problems, notes


def _data_version_hints(f: h5py.File, task: str) -> list[str]:
    """Known PDEBench data-version tells (``docs/data.md`` §1.1)."""
    hints = []
    if task == "burgers" and "x-coordinate" in f:
        x = f["x-coordinate"][...]
        if x.min() < -0.5:
            hints.append("x-coordinate spans [-1, 1]: an original (pre-Oct-2023) Burgers file")
    return hints


def check_task(task, root: Path, verify: bool = False) -> TaskReport:
    """Check one task's file under ``root``; never raises for bad data, reports it instead.

    NAS-Bench-360 tasks are checked by ``harness.data.nb360.check`` (``verify``: md5s too)."""
    if not isinstance(task.file, PdebenchFile):
        from harness.data.nb360.check import check_task as check_nb360

        return check_nb360(task, root, verify=verify)
    rep = TaskReport(task=task.name)
    try:
        rep.path = find_file(task.file, root, task.name)
    except DataError as exc:
        rep.problems.append(str(exc).splitlines()[0])
        return rep
    try:
        with open_h5(rep.path) as f:
            rep.source = data_source(f)
            if rep.source == "synthetic":
                rep.notes.append(f"generator {f.attrs.get('generator_version', '?')}, "
                                 f"seed {f.attrs.get('seed', '?')}, size {f.attrs.get('size', '?')}")
            problems, notes = schema_problems(f, task.file, rep.path)
            rep.problems += problems
            rep.notes += notes + _data_version_hints(f, task.name)
    except DataError as exc:
        rep.problems.append(str(exc))
        return rep
    if rep.problems:
        return rep
    try:
        data = task.load(root)
    except DataError as exc:
        rep.problems.append(str(exc))
        return rep
    for s in data.x:
        x, y = data.split(s)
        rep.counts[s] = x.shape[0]
        rep.ranges[f"{s}.x"] = (float(x.min()), float(x.max())) if x.size else (np.nan, np.nan)
        rep.ranges[f"{s}.y"] = (float(y.min()), float(y.max())) if y.size else (np.nan, np.nan)
    rep.shapes = {"x": data.input_shape, "y": data.output_shape}
    n = sum(rep.counts.values())
    expected = task_splits(task, n)
    for s, c in rep.counts.items():
        if c != expected.get(s).size or c == 0:
            rep.problems.append(f"split {s!r} has {c} samples, expected {expected.get(s).size} (>0)")
    return rep


def format_report(rep: TaskReport) -> str:
    """A few human-readable lines for one task."""
    status = "OK" if rep.ok else ("MISSING" if rep.path is None else "MISMATCH")
    lines = [f"[{status}] {rep.task}: {rep.path or '-'}" + (f" ({rep.source})" if rep.source else "")]
    if rep.counts:
        lines.append("    samples: " + ", ".join(f"{k}={v}" for k, v in rep.counts.items())
                     + f"; x{rep.shapes['x']} -> y{rep.shapes['y']}")
        lines.append("    ranges: " + ", ".join(f"{k}[{lo:.3g}, {hi:.3g}]"
                                                for k, (lo, hi) in rep.ranges.items()
                                                if k.startswith("train")))
    lines += [f"    note: {n}" for n in rep.notes]
    lines += [f"    problem: {p}" for p in rep.problems]
    return "\n".join(lines)
