"""Download NAS-Bench-360's published files, verify them, unpack archives, pin checksums.

The transfer itself (resume, retries, atomic placement, md5 check) is
``harness.data.download.download_file``. On top of it:

* **checksums**: CIFAR-100's md5 is published (torchvision); no other file has one, so the
  first complete download whose size is plausible (within 25 % of the published size) has its
  md5 computed and pinned in ``<root>/.nasbench360-md5.json``; later downloads and
  ``check --verify`` compare against the pin, and the catalog says which files are pinned;
* **archives** (CIFAR-100 tar.gz, FSD50K and PSICOV zips, Cosmic tars) are unpacked with path
  checks (tar's ``data`` filter; every zip member through ``safe_destination``), once;
* **Cosmic**: upstream's ``preprocess_cosmic.py`` step, which lists the F435W galaxy-field images
  into ``cosmic/{train,test}_dirs.npy``, is done here (sorted, so the lists are deterministic).

A root holding synthetic data for a task is refused, so real and synthetic files never mix.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import tarfile
import urllib.parse
import zipfile
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from harness.data.download import download_file, md5sum, safe_destination
from harness.data.errors import ChecksumMismatch, DataError, DownloadError
from harness.data.nb360.catalog import DATASETS, Nb360Dataset, RemoteFile

Progress = Optional[Callable[[str], object]]
PINS = ".nasbench360-md5.json"
SIZE_TOLERANCE = 0.25

# F435W fields tagged 'GAL' in upstream's preprocess_cosmic.py (proposal_visit)
GAL_FIELDS = frozenset("""10760_2 10760_4 13737_2 13737_3 9490_a3 12513_2 12513_3 10182_pb 10182_pd
10584_13 10342_3 14343_1 13057_1 10260_7 10260_5 10407_3 13364_95 10190_28 10190_13 9490_a2
13691_11 12058_12 12058_16 12058_1 12058_6 14704_1 13804_6""".split())


def read_pins(root: Path) -> dict[str, dict]:
    path = Path(root) / PINS
    if not path.is_file():
        return {}
    try:
        pins = json.loads(path.read_text())
    except ValueError as exc:
        raise DataError(f"{path}: unreadable checksum pins ({exc}); fix or delete the file") from exc
    return pins if isinstance(pins, dict) else {}


def _write_pins(root: Path, pins: dict) -> None:
    path = Path(root) / PINS
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def expected_md5(rf: RemoteFile, root: Path) -> tuple[str | None, str]:
    """(md5, where it comes from): the published one, a pin, or (None, 'none')."""
    if rf.md5:
        return rf.md5, rf.md5_source
    pin = read_pins(root).get(rf.rel_path)
    return (pin["md5"], "pinned") if pin and pin.get("md5") else (None, "none")


def _plausible(rf: RemoteFile, size: int) -> bool:
    if rf.approx_mb is None:
        return size > 0
    return abs(size / 1e6 - rf.approx_mb) <= SIZE_TOLERANCE * rf.approx_mb


def _unpack(archive: Path, rf: RemoteFile, root: Path, progress: Progress) -> None:
    target = safe_destination(root, rf.unpack_to) if rf.unpack_to else Path(root).resolve()
    stamp = archive.with_name(archive.name + ".unpacked")
    digest = md5sum(archive)
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return
    if progress:
        progress(f"unpacking {archive.name} into {target}")
    target.mkdir(parents=True, exist_ok=True)
    if rf.unpack == "tar":
        with tarfile.open(archive) as tf:
            tf.extractall(target, filter="data")
    else:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                dest = safe_destination(target, member.filename.rstrip("/"))
                if member.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(dest, "wb") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
    stamp.write_text(digest + "\n")


def cosmic_lists(root: Path) -> dict[str, int]:
    """Write ``cosmic/{train,test}_dirs.npy`` from the unpacked deepCR folders (upstream's
    ``preprocess_cosmic.py``: F435W, galaxy fields, every ``.npy`` but ``sky.npy``)."""
    counts = {}
    for split in ("train", "test"):
        base = Path(root) / "cosmic" / f"npy_{split}" / "f435w"
        if not base.is_dir():
            found = sorted(p.name for p in (Path(root) / "cosmic").glob("*"))
            raise DataError(f"{base} not found after unpacking the Cosmic archives (cosmic/ holds "
                            f"{found}); expected deepCR's npy_{split}/f435w/<proposal>/<visit>/ "
                            f"layout")
        paths = sorted(
            f"./cosmic/npy_{split}/f435w/{f.parent.parent.name}/{f.parent.name}/{f.name}"
            for f in base.glob("*/*/*.npy")
            if f.name != "sky.npy" and f"{f.parent.parent.name}_{f.parent.name}" in GAL_FIELDS)
        np.save(Path(root) / "cosmic" / f"{split}_dirs.npy", np.array(paths))
        counts[split] = len(paths)
    return counts


def _one(rf: RemoteFile, root: Path, base_url: str | None, progress: Progress,
         allow_md5_mismatch: bool, **kw) -> Path:
    dest = safe_destination(root, rf.rel_path)
    md5, source = expected_md5(rf, root)
    url = rf.url if base_url is None else (
        base_url.rstrip("/") + "/" + urllib.parse.quote(rf.filename, safe=""))
    path = download_file(url, dest, md5, progress=progress,
                         allow_md5_mismatch=allow_md5_mismatch, **kw)
    if md5 is None:
        size = path.stat().st_size
        if not _plausible(rf, size):
            aside = path.with_name(path.name + f".bad-size-{size}")
            os.replace(path, aside)
            raise DownloadError(
                f"{rf.url}: got {size} bytes, expected about {rf.approx_mb} MB (no checksum is "
                f"published, so the size is the only check); kept as {aside}. Check the URL or "
                f"mirror and rerun.")
        digest = md5sum(path)
        pins = read_pins(root)
        pins[rf.rel_path] = {"md5": digest, "bytes": size, "url": url,
                             "pinned": _dt.date.today().isoformat()}
        _write_pins(root, pins)
        if progress:
            progress(f"{rf.filename}: no published md5; pinned {digest} ({size} bytes) in "
                     f"{Path(root) / PINS}")
    if rf.unpack:
        _unpack(path, rf, root, progress)
    return path


def download_tasks(root: os.PathLike | str, tasks: Sequence[str] | None = None, *,
                   base_url: str | None = None, progress: Progress = print,
                   allow_md5_mismatch: bool = False, **kw) -> dict[str, Path]:
    """Download, verify and unpack the data of ``tasks`` (default: all ten); task → first path.

    ``base_url`` serves every file by its name (a mirror, or the files fetched by hand from the
    Google Drive folder NAS-Bench-360 now points to); ``kw`` goes to ``download_file``."""
    from harness.data.nb360.load import find_dataset

    root = Path(root)
    names = list(DATASETS if tasks is None else tasks)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise ValueError(f"unknown nasbench360 task(s) {unknown}; expected: {', '.join(DATASETS)}")
    for name in names:
        spec = DATASETS[name]
        if (root / spec.marker).exists():
            raise DataError(f"{root} holds synthetic data for {name!r} ({root / spec.marker}); "
                            f"download the real files into another root, or delete the "
                            f"synthetic ones first")
        for rf in spec.downloads:
            safe_destination(root, rf.rel_path)
    out = {}
    for i, name in enumerate(names, 1):
        if progress:
            progress(f"[{i}/{len(names)}] {name}")
        spec = DATASETS[name]
        for rf in spec.downloads:
            _one(rf, root, base_url, progress, allow_md5_mismatch, **kw)
        if name == "cosmic":
            counts = cosmic_lists(root)
            if progress:
                progress(f"cosmic: listed {counts['train']} training and {counts['test']} test images")
        out[name] = find_dataset(spec, root, name)
    return out


def verify_files(spec: Nb360Dataset, root: Path) -> list[str]:
    """Problems found comparing present downloads with published or pinned md5s."""
    problems = []
    for rf in spec.downloads:
        path = Path(root) / rf.rel_path
        md5, source = expected_md5(rf, root)
        if md5 is None or not path.is_file():
            continue
        got = md5sum(path)
        if got != md5:
            problems.append(f"{path}: md5 {got}, expected {md5} ({source})")
    return problems


__all__ = ["download_tasks", "verify_files", "read_pins", "expected_md5", "cosmic_lists",
           "ChecksumMismatch"]
