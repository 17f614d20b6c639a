"""One HTTP transfer into a ``.part`` file: resumed with ``Range`` requests, retried on transient
failures, with progress lines and a fix hint for each HTTP error (used by
:mod:`harness.data.download`)."""
from __future__ import annotations

import http.client
import os
import re
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from typing import Callable, Optional

from .errors import DownloadError, UnsafePath

#: where progress lines go: ``print`` on the command line, None for silence
Progress = Optional[Callable[[str], object]]

_USER_AGENT = "recraft-bench-downloader/1"
_CONTENT_RANGE_RE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_PROGRESS_EVERY_S = 2.0


class _Retryable(Exception):
    """A transient failure (cut connection, 5xx, timeout): resume and try again."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _say(progress: Progress, message: str) -> None:
    if progress is not None:
        progress(message)


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _refuse_symlink(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(
            f"{str(path)!r} is a symlink; expected a regular file or nothing there. The downloader "
            "never writes through symlinks. Remove the symlink and rerun."
        )


def _fsync_dir(directory: Path) -> None:
    """Best effort: make a rename durable (not possible on every platform)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _open_part(part: Path, append: bool):
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    flags |= os.O_APPEND if append else os.O_TRUNC
    fd = os.open(part, flags, 0o644)
    return os.fdopen(fd, "ab" if append else "wb")


def _transfer(url: str, part: Path, *, chunk: int, timeout: float, progress: Progress) -> str:
    """One HTTP request that extends (or restarts) ``part``.

    Returns ``"done"`` when the body arrived in full and ``"range-not-satisfiable"`` on a 416 for
    a non-empty part. Raises :class:`_Retryable` for transient failures and
    :class:`DownloadError` for permanent ones.
    """
    offset = _size_or_zero(part)
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        code = exc.code
        exc.close()
        if code == 416 and offset:
            return "range-not-satisfiable"
        if 500 <= code < 600 or code in (408, 429):
            raise _Retryable(f"HTTP {code} {exc.reason}", status=code) from exc
        raise DownloadError(
            f"download of {url} failed with HTTP {code} {exc.reason} (destination {str(part)!r}). "
            + _http_fix_hint(code, part, offset)
        ) from exc
    except urllib.error.URLError as exc:
        raise _Retryable(f"cannot reach the server: {exc.reason}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise _Retryable(f"connection failed: {exc!r}") from exc

    with response:
        status = response.status
        length_header = response.headers.get("Content-Length")
        try:
            expected = int(length_header) if length_header is not None else None
        except ValueError:
            expected = None
        if status == 206:
            match = _CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != offset:
                # A range we did not ask for: throw the part away and start over.
                _open_part(part, append=False).close()
                raise _Retryable(
                    f"server answered Range bytes={offset}- with Content-Range "
                    f"{response.headers.get('Content-Range')!r}; restarting from zero")
            append = True
            total = None if match.group(3) == "*" else int(match.group(3))
        elif status == 200:
            if offset:
                _say(progress, f"  server ignored the Range request; restarting {part.name} "
                               "from zero")
            offset = 0
            append = False
            total = expected
        else:
            raise DownloadError(
                f"download of {url} got unexpected HTTP {status} (destination {str(part)!r}); "
                "expected 200 or 206. Check the URL or mirror.")

        received = 0
        last_report = time.monotonic()
        with _open_part(part, append=append) as f:
            try:
                while True:
                    try:
                        buf = response.read(chunk)
                    except (http.client.HTTPException, OSError) as exc:
                        # IncompleteRead, connection reset, timeout: resume from what we have.
                        raise _Retryable(f"transfer cut after {received} bytes of this request: "
                                         f"{exc!r}") from exc
                    if not buf:
                        break
                    try:
                        f.write(buf)
                    except OSError as exc:
                        raise DownloadError(
                            f"writing {str(part)!r} for {url} failed: {exc}. Expected to be able "
                            "to write the partial download; free disk space or fix permissions, "
                            "then rerun to resume.") from exc
                    received += len(buf)
                    now = time.monotonic()
                    if progress is not None and now - last_report >= _PROGRESS_EVERY_S:
                        last_report = now
                        done = offset + received
                        pct = f" ({100.0 * done / total:.1f}%)" if total else ""
                        _say(progress, f"  {part.name}: {_fmt_bytes(done)} of "
                                       f"{_fmt_bytes(total)}{pct}")
            finally:
                f.flush()
                os.fsync(f.fileno())
        if expected is not None and received < expected:
            raise _Retryable(
                f"short body: got {received} of {expected} bytes (Content-Length) in this request")
    return "done"


def _http_fix_hint(code: int, part: Path, offset: int) -> str:
    kept = (f"The partial download ({offset} bytes) is kept in {str(part)!r} for resume. "
            if offset else "")
    if code == 404:
        return (kept + "Expected the file at this URL; the server does not have it. DaRUS file ids "
                "change when files are replaced (docs/data.md §1.1, §5): check the "
                "URL or point --base-url at a mirror that has the file.")
    if code in (401, 403):
        return kept + "The server refused access; check the URL, mirror or proxy settings."
    return kept + "Check the URL or mirror and rerun; a rerun resumes the partial download."
