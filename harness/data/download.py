"""Download PDEBench files with md5 verification, resume and atomic placement.

Standard library only (``urllib``, ``hashlib``, ``os``). The behaviour follows
``docs/data.md`` §5:

* a file already in place with the published md5 is left alone;
* bytes arrive in ``<name>.part`` and only get the final name after the md5 matches
  (``os.replace`` after ``fsync``), so a partial or corrupt file never looks finished;
* a cut transfer is resumed with an HTTP ``Range`` request (206 appends, 200 restarts, 416 means
  the part may already be complete and is verified);
* an md5 mismatch keeps the bytes next to the target as ``<name>.bad-md5-<got>`` and raises
  :class:`ChecksumMismatch`, unless the caller explicitly accepts it (``--allow-md5-mismatch``);
* every target path is checked to stay inside the data root (:func:`safe_destination`).

Progress goes through a ``progress`` callable taking one string (``print`` on the command line,
``None`` for silence).
"""
from __future__ import annotations

import hashlib
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Iterable, Sequence

from . import catalog
from .errors import ChecksumMismatch, DownloadError, UnsafePath
from .transfer import (Progress, _fmt_bytes, _fsync_dir, _refuse_symlink, _Retryable, _say,
                       _size_or_zero, _transfer)

__all__ = [
    "Row",
    "md5sum",
    "safe_destination",
    "download_file",
    "catalog_rows",
    "download_tasks",
]

Row = tuple[str, str, str, str]
"""One download row: ``(name, url, rel_path, md5)``."""

_MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_OLD_VERSION_HINT = (
    "For Advection and Burgers a mismatch often means an old (pre-2023) data version: both were "
    "regenerated in 2023 after a flux fix, and the old files have different md5s "
    "(docs/data.md §1.1)."
)


# --------------------------------------------------------------------------------------------------
# checksums and paths


def md5sum(path: os.PathLike | str, chunk: int = 1 << 20) -> str:
    """Hex md5 of the file at ``path``, read in ``chunk``-byte pieces."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while True:
            buf = f.read(chunk)
            if not buf:
                break
            h.update(buf)
    return h.hexdigest()


def safe_destination(root: os.PathLike | str, rel_path: str) -> Path:
    """Resolve ``root / rel_path`` and return it, refusing anything that lands outside ``root``.

    Refused (:class:`UnsafePath`): non-strings, empty names, absolute paths, drive letters,
    backslashes, NUL bytes, empty / ``.`` / ``..`` components, and paths that leave ``root`` once
    symlinks already on disk are resolved. ``root`` need not exist yet.
    """
    root_resolved = Path(root).resolve()

    def refuse(why: str) -> UnsafePath:
        return UnsafePath(
            f"unsafe file name {rel_path!r} for data root {str(root_resolved)!r}: {why}. "
            "Expected a relative path with '/'-separated, non-empty components and no '..', "
            "staying inside the data root. Fix the download table entry (or remove the offending "
            "symlink under the data root)."
        )

    if not isinstance(rel_path, str):
        raise refuse(f"expected a string, found {type(rel_path).__name__}")
    if rel_path == "" or rel_path.strip() == "":
        raise refuse("the name is empty")
    if "\x00" in rel_path:
        raise refuse("it contains a NUL byte")
    if "\\" in rel_path:
        raise refuse("it contains a backslash")
    if rel_path.startswith("/"):
        raise refuse("it is an absolute path")
    if _DRIVE_RE.match(rel_path):
        raise refuse("it starts with a drive letter")
    parts = rel_path.split("/")
    for part in parts:
        if part == "":
            raise refuse("it has an empty path component (leading, trailing or doubled '/')")
        if part in (".", ".."):
            raise refuse(f"it has a {part!r} component")
    candidate = root_resolved.joinpath(*parts)
    # strict=False: resolves every symlink that exists, keeps the rest lexically.
    resolved = candidate.resolve()
    if resolved == root_resolved or root_resolved not in resolved.parents:
        raise refuse(f"it resolves to {str(resolved)!r}, which is outside the data root "
                     "(a symlink under the root points elsewhere)")
    return resolved


# --------------------------------------------------------------------------------------------------
# one file




















def download_file(
    url: str,
    dest: os.PathLike | str,
    md5: str | None,
    *,
    chunk: int = 1 << 20,
    timeout: float = 60,
    retries: int = 3,
    progress: Progress = None,
    allow_md5_mismatch: bool = False,
    backoff: float = 1.0,
) -> Path:
    """Download ``url`` to ``dest`` and verify its md5; return ``dest``.

    * If ``dest`` already exists with the expected md5 it is left untouched. If it exists with a
      different md5 it is moved aside to ``<name>.bad-md5-<got>`` (never deleted) and downloaded
      again, unless ``allow_md5_mismatch`` accepts it as it is.
    * Bytes go to ``<name>.part``; an existing part is resumed with ``Range``. Transient failures
      (cut connection, short body, timeouts, HTTP 5xx/408/429) are retried up to ``retries``
      times, resuming each time, sleeping ``backoff * attempt`` seconds in between.
    * On md5 match the part is fsynced and atomically renamed to ``dest``. On mismatch the part is
      renamed to ``<name>.bad-md5-<got>`` and :class:`ChecksumMismatch` is raised, unless
      ``allow_md5_mismatch`` is true, in which case it becomes ``dest`` with a warning.
    * HTTP errors raise :class:`DownloadError`; the part is kept for a later resume.
    * ``md5=None`` (no checksum published): a complete transfer (the full ``Content-Length``) is
      placed without an md5 check and an existing file is kept; the caller verifies it otherwise
      (``harness.data.nb360.download`` pins the md5 of the first such download).
    """
    dest = Path(dest)
    if md5 is not None and (not isinstance(md5, str) or not _MD5_RE.match(md5)):
        raise ValueError(f"expected md5 for {str(dest)!r} as 32 hex digits, found {md5!r}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, found {retries}")
    md5 = md5.lower() if md5 is not None else None
    part = dest.with_name(dest.name + ".part")
    _refuse_symlink(dest)
    _refuse_symlink(part)

    if dest.exists():
        if not dest.is_file():
            raise DownloadError(
                f"{str(dest)!r} exists but is not a regular file; expected the downloaded file "
                f"from {url} there. Move it away and rerun.")
        if md5 is None:
            _say(progress, f"{dest.name}: already present (no md5 to check)")
            return dest
        got = md5sum(dest, chunk)
        if got == md5:
            _say(progress, f"{dest.name}: already present, md5 ok")
            return dest
        if allow_md5_mismatch:
            _warn_accepted(progress, url, dest, md5, got, "existing file")
            return dest
        aside = _bad_name(dest, got)
        os.replace(dest, aside)
        message = (f"{str(dest)!r} exists with md5 {got}, expected {md5}; moved it aside to "
                   f"{str(aside)!r} and downloading again from {url}. " + _OLD_VERSION_HINT)
        warnings.warn(message, stacklevel=2)
        _say(progress, "warning: " + message)

    dest.parent.mkdir(parents=True, exist_ok=True)
    start = _size_or_zero(part)
    _say(progress, f"downloading {url} -> {dest}" + (f" (resuming at {_fmt_bytes(start)})"
                                                      if start else ""))
    attempt = 0
    while True:
        try:
            outcome = _transfer(url, part, chunk=chunk, timeout=timeout, progress=progress)
            break
        except _Retryable as exc:
            attempt += 1
            kept = _size_or_zero(part)
            if attempt > retries:
                status = f"HTTP {exc.status}" if exc.status is not None else "no HTTP status"
                raise DownloadError(
                    f"download of {url} failed after {attempt} attempt(s) ({status}): {exc} "
                    f"(destination {str(dest)!r}). Expected the complete file with md5 {md5}; "
                    f"{kept} bytes are kept in {str(part)!r}. Rerun the same command to resume, "
                    "or check the network / URL / mirror."
                ) from exc
            _say(progress, f"  {dest.name}: {exc}; retry {attempt}/{retries} "
                           f"(resuming at {_fmt_bytes(kept)})")
            if backoff > 0:
                time.sleep(backoff * attempt)

    if not part.exists():
        # Only reachable if the server sent 416 for a part that vanished meanwhile.
        raise DownloadError(f"download of {url} produced no data for {str(dest)!r}; rerun.")
    if md5 is None:
        os.replace(part, dest)
        _fsync_dir(dest.parent)
        _say(progress, f"{dest.name}: done, no md5 published ({_fmt_bytes(dest.stat().st_size)})")
        return dest
    got = md5sum(part, chunk)
    if got == md5:
        os.replace(part, dest)
        _fsync_dir(dest.parent)
        _say(progress, f"{dest.name}: done, md5 ok ({_fmt_bytes(dest.stat().st_size)})")
        return dest

    if allow_md5_mismatch:
        os.replace(part, dest)
        _fsync_dir(dest.parent)
        _warn_accepted(progress, url, dest, md5, got, "download")
        return dest

    aside = _bad_name(dest, got)
    os.replace(part, aside)
    _fsync_dir(dest.parent)
    note = (" The server answered 416 (range not satisfiable) to the resume request, so the "
            "partial file was taken as complete." if outcome == "range-not-satisfiable" else "")
    raise ChecksumMismatch(
        f"md5 mismatch for {str(dest)!r} downloaded from {url}: expected {md5}, got {got}. "
        f"The downloaded bytes were kept as {str(aside)!r} (not under the final name).{note} "
        f"{_OLD_VERSION_HINT} To accept this file anyway, rerun with --allow-md5-mismatch "
        f"(or rename {aside.name!r} to {dest.name!r} yourself); otherwise delete it and rerun."
    )


def _bad_name(dest: Path, got: str) -> Path:
    return dest.with_name(f"{dest.name}.bad-md5-{got}")


def _warn_accepted(progress: Progress, url: str, dest: Path, expected: str, got: str,
                   what: str) -> None:
    message = (f"accepting {what} {str(dest)!r} from {url} despite md5 mismatch "
               f"(expected {expected}, got {got}) because --allow-md5-mismatch was given. "
               + _OLD_VERSION_HINT + " Results on it may not be comparable.")
    warnings.warn(message, stacklevel=3)
    _say(progress, "warning: " + message)


# --------------------------------------------------------------------------------------------------
# tasks


def catalog_rows() -> list[Row]:
    """The supported files as ``(task, url, rel_path, md5)`` rows, from :mod:`catalog`."""
    return [(task, f.url, f.rel_path, f.md5) for task, f in catalog.FILES.items()]


def _mirror_url(base_url: str, rel_path: str) -> str:
    filename = rel_path.rsplit("/", 1)[-1]
    return base_url.rstrip("/") + "/" + urllib.parse.quote(filename, safe="")


def download_tasks(
    root: os.PathLike | str,
    tasks: Sequence[str] | None = None,
    *,
    base_url: str | None = None,
    progress: Progress = print,
    allow_md5_mismatch: bool = False,
    table: Iterable[Row] | None = None,
    timeout: float = 60,
    retries: int = 3,
    backoff: float = 1.0,
) -> dict[str, Path]:
    """Download the files of ``tasks`` (default: all) under ``root``; return ``{task: path}``.

    Each file lands at ``root / rel_path`` (the upstream layout). ``table`` replaces the catalog
    with explicit ``(name, url, rel_path, md5)`` rows. ``base_url`` replaces every URL with
    ``base_url/<filename>`` (the last component of ``rel_path``, percent-encoded), for mirrors
    and tests. All destinations are checked with :func:`safe_destination` before anything is
    downloaded, so one hostile row stops the whole run without writing anything.
    """
    rows = catalog_rows() if table is None else [tuple(r) for r in table]
    by_name: dict[str, Row] = {}
    for row in rows:
        if len(row) != 4:
            raise ValueError(f"download table rows must be (name, url, rel_path, md5); found {row!r}")
        if row[0] in by_name:
            raise ValueError(f"download table has task {row[0]!r} twice; expected unique names")
        by_name[row[0]] = row  # type: ignore[assignment]

    if tasks is None:
        selected = list(by_name)
    else:
        if isinstance(tasks, str):
            tasks = [tasks]
        unknown = [t for t in tasks if t not in by_name]
        if unknown:
            raise ValueError(
                f"unknown task(s) {', '.join(map(repr, unknown))}; expected one of: "
                + ", ".join(by_name))
        selected = list(dict.fromkeys(tasks))

    root = Path(root)
    plan: list[tuple[str, str, Path, str]] = []
    for name in selected:
        _, url, rel_path, md5 = by_name[name]
        dest = safe_destination(root, rel_path)
        safe_destination(root, rel_path + ".part")
        if base_url is not None:
            url = _mirror_url(base_url, rel_path)
        plan.append((name, url, dest, md5))

    results: dict[str, Path] = {}
    for index, (name, url, dest, md5) in enumerate(plan, 1):
        _say(progress, f"[{index}/{len(plan)}] {name}")
        results[name] = download_file(
            url, dest, md5, timeout=timeout, retries=retries, progress=progress,
            allow_md5_mismatch=allow_md5_mismatch, backoff=backoff)
    return results
