"""One sweep per ``runs/<name>`` at a time: an exclusive lock file holding the holder's details.

``runs/<name>/sweep.lock`` is created with ``O_CREAT | O_EXCL`` (atomic on local filesystems and on
NFSv3+, so it works when the runs folder is shared by several nodes) and holds the holder's host,
pid, process start time, start time and command. The holder also keeps an ``flock`` on it, which
the kernel drops when the process dies, however it dies (on NFS the server drops it with the
client's lease).

A second sweep finds the file and:

* cannot take the ``flock``: the holder runs; refused (:class:`SweepLocked`) with its details;
* takes the ``flock`` and the holder is on this host but its pid is gone (or now belongs to
  another process): a stale lock left by a killed sweep, taken over with a notice;
* takes the ``flock`` but the holder is on another host: this machine cannot tell whether it
  still runs; refused, unless ``--break-lock`` says the user checked that it does not.
"""
from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

import psutil

LOCK_FILE = "sweep.lock"


class SweepLocked(ValueError):
    """Another sweep holds ``runs/<name>`` (or may, on another host); the message says who."""


def _process_start(pid: int) -> float | None:
    """The start time of process ``pid`` (seconds since the epoch), None when it does not exist."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.Error:  # AccessDenied: it exists
        return -1.0


def holder_alive(holder: dict[str, Any]) -> bool:
    """Whether the process a lock (or a record) names still runs on this host: same pid and the
    same start time, so a reused pid does not count."""
    start = _process_start(int(holder.get("pid", -1)))
    if start is None:
        return False
    recorded = holder.get("pid_started")
    return start == -1.0 or recorded is None or abs(start - float(recorded)) < 0.01


def describe(holder: dict[str, Any]) -> str:
    """``pid 123 on host h, started 2026-12-06 13:55:02 UTC: python -m harness.sweep ...``."""
    if not holder:
        return "a holder that left no details (the lock file is empty or unreadable)"
    return (f"pid {holder.get('pid')} on host {holder.get('host')}, started "
            f"{holder.get('started', '?')}: {holder.get('command', '?')}")


def _read(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
    try:
        data = json.loads(raw.decode() or "{}")
        return data if isinstance(data, dict) else {}
    except (ValueError, UnicodeDecodeError):
        return {}


def _flock(fd: int) -> bool | None:
    """Take the exclusive flock without waiting: True, False (another process holds it), or None
    when the filesystem does not support locks (then the host/pid check decides alone)."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        return None


class SweepLock:
    """A held lock on a sweep folder; :meth:`release` (or the ``with`` block's end) frees it."""

    def __init__(self, path: Path, fd: int, holder: dict[str, Any]):
        self.path, self.fd, self.holder = path, fd, holder

    def release(self) -> None:
        """Remove the lock file (only if it is still this lock's) and drop the flock."""
        if self.fd < 0:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> "SweepLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire(sweep_dir: Path, command: str, *, break_lock: bool = False,
            log: Callable[[str], None] = print) -> SweepLock:
    """Lock ``sweep_dir`` (created if needed) for this process, or raise :class:`SweepLocked`.

    ``break_lock``: take over a lock whose holder is on another host (the user checked that it no
    longer runs there); a holder seen running is never overridden."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / LOCK_FILE
    me = {"host": socket.gethostname(), "pid": os.getpid(),
          "pid_started": psutil.Process().create_time(),
          "started": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
          "command": command}
    for _ in range(50):
        try:
            fd, created = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            try:
                fd, created = os.open(path, os.O_RDWR), False
            except FileNotFoundError:       # released in between: try to create it again
                continue
        got = _flock(fd)
        holder = {} if created else _read(fd)
        if got is False:
            if not holder:                  # its holder may be writing its details just now
                time.sleep(0.3)
                holder = _read(fd)
            os.close(fd)
            raise SweepLocked(_running_message(sweep_dir, path, holder))
        try:
            same_file = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same_file = False
        if not same_file:                   # removed by its holder after we opened it
            os.close(fd)
            continue
        if not created:
            if not holder and time.time() - os.fstat(fd).st_mtime < 5:
                os.close(fd)                # just created by another sweep, details not written yet
                time.sleep(0.2)
                continue
            try:
                _may_take_over(sweep_dir, path, holder, got, break_lock, me["host"], log)
            except SweepLocked:
                os.close(fd)
                raise
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(me, indent=1).encode())
        os.fsync(fd)
        return SweepLock(path, fd, me)
    raise SweepLocked(f"could not lock {sweep_dir}: {path} keeps changing (several sweeps "
                      f"starting at once?); try again.")


def _running_message(sweep_dir: Path, path: Path, holder: dict[str, Any]) -> str:
    if holder and holder.get("host") == socket.gethostname() and not holder_alive(holder):
        # the holder is gone but its lock is not: a process it forked inherited the lock
        return (f"sweep {sweep_dir.name!r} in {sweep_dir.parent}: the lock {path} of "
                f"{describe(holder)} is still held, by a process that sweep started (it no longer "
                f"runs itself); find it with `fuser -v {path}`, end it, and rerun.")
    return (f"sweep {sweep_dir.name!r} in {sweep_dir.parent} is already running: {describe(holder)} "
            f"(lock file {path}). Wait for it to finish or stop it; to run another sweep at the "
            f"same time, give it another --name.")


def _may_take_over(sweep_dir: Path, path: Path, holder: dict[str, Any], flocked: bool | None,
                   break_lock: bool, host: str, log: Callable[[str], None]) -> None:
    """Return when this process may take over ``holder``'s lock (saying so), else raise."""
    if holder and holder.get("host") == host:
        if holder_alive(holder):
            # alive but without its flock: a filesystem without locks; the pid decides
            raise SweepLocked(_running_message(sweep_dir, path, holder))
        log(f"note: taking over the lock of sweep {sweep_dir.name!r} left by {describe(holder)}; "
            f"that process no longer runs (killed?).")
        return
    if holder and not break_lock:
        raise SweepLocked(
            f"sweep {sweep_dir.name!r} in {sweep_dir.parent} is locked by {describe(holder)} "
            f"(lock file {path}); this host ({host}) cannot tell whether it still runs. If it does "
            f"not (on {holder.get('host')}: `ps -p {holder.get('pid')}`), rerun with --break-lock "
            f"to take the lock over.")
    log(f"note: breaking the lock of sweep {sweep_dir.name!r} held by {describe(holder)} "
        f"({'--break-lock' if holder else 'no holder details'}).")
