"""Ray processes a sweep started, recorded so that the next sweep (or ``--cleanup``) can end them.

A local ``ray.init`` starts the GCS, the raylet and its agents as children of the driver. When the
driver is killed (``kill -9``, OOM killer, a closed terminal) most of them follow, but Ray's
``DashboardAgent`` and ``RuntimeEnvAgent`` were seen running on under PID 1. The sweep records the
pid and start time of every process below its driver in ``runs/<name>/ray_processes.json``
(refreshed while it runs); the next sweep of that folder, or ``python -m harness.sweep --cleanup``,
ends the recorded processes that still run: matched by pid *and* start time, never by name, so a
reused pid or someone else's Ray is never touched.
"""
from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any, Callable

import psutil

RECORD_FILE = "ray_processes.json"
REFRESH_SECONDS = 5.0


def _entry(p: psutil.Process) -> dict[str, Any] | None:
    try:
        return {"pid": p.pid, "pid_started": p.create_time(), "name": p.name()}
    except psutil.Error:
        return None


def _children() -> set[int]:
    """pids of this process's direct children."""
    return {p.pid for p in psutil.Process().children()}


def _write(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)


class RayProcessRecord:
    """Keeps ``runs/<name>/ray_processes.json`` up to date while the sweep's own Ray runs."""

    def __init__(self, sweep_dir: Path):
        """Create it *before* ``ray.init``: the children the driver has then are not Ray's."""
        self.path = sweep_dir / RECORD_FILE
        me = psutil.Process()
        self.head = {"host": socket.gethostname(), "driver_pid": me.pid,
                     "driver_started": me.create_time()}
        self._before = _children()
        self._roots: list[psutil.Process] = []
        self._seen: dict[int, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        """Record Ray's processes now: those ray.init started below the driver, their
        descendants, and any recorded earlier that still run (orphaned agents); the file is
        written only when the set changed."""
        now = {pid: e for pid, e in self._seen.items() if _still_running(e) is not None}
        for root in self._roots:
            try:
                tree = [root] + root.children(recursive=True)
            except psutil.Error:
                continue
            for p in tree:
                if p.pid not in now and (e := _entry(p)) is not None:
                    now[p.pid] = e
        if now.keys() != self._seen.keys():
            self._seen = now
            _write(self.path, dict(self.head, processes=sorted(now.values(), key=lambda e: e["pid"])))

    def start(self) -> "RayProcessRecord":
        """Call right after ``ray.init``: record now, then every few seconds (the raylet starts
        its agents and workers after ray.init returned)."""
        self._roots = [p for p in psutil.Process().children() if p.pid not in self._before]
        self.refresh()

        def loop() -> None:
            while not self._stop.wait(REFRESH_SECONDS):
                try:
                    self.refresh()
                except Exception:  # noqa: BLE001 - a missed refresh only loses a late pid
                    pass

        self._thread = threading.Thread(target=loop, name="ray-process-record", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, ended_cleanly: bool) -> list[dict[str, Any]]:
        """Stop refreshing. After ``ray.shutdown()`` (``ended_cleanly``), end whatever recorded
        process Ray left running, then remove the record; returns those processes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not ended_cleanly:
            return []
        left = end_recorded(self.path.parent, log=lambda _line: None, grace=5.0)
        self.path.unlink(missing_ok=True)
        return left


def _still_running(entry: dict[str, Any]) -> psutil.Process | None:
    """The recorded process when the same pid runs with the same start time, else None."""
    try:
        p = psutil.Process(int(entry["pid"]))
        if abs(p.create_time() - float(entry["pid_started"])) < 0.01 and \
                p.status() != psutil.STATUS_ZOMBIE:
            return p
    except (psutil.Error, KeyError, ValueError, TypeError):
        pass
    return None


def end_recorded(sweep_dir: Path, log: Callable[[str], None] = print,
                 grace: float = 5.0) -> list[dict[str, Any]]:
    """End the processes an earlier sweep of ``sweep_dir`` recorded that still run on this host.

    SIGTERM, then SIGKILL for those still running after ``grace`` s (Ray's agents ignore
    SIGTERM for a while). Skipped, with a note, when the recording driver still runs (a live
    sweep's Ray) or the record is from another host. Returns the processes that were ended; the
    record is removed once nothing it names runs."""
    path = sweep_dir / RECORD_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except ValueError:
        log(f"note: {path} is unreadable; ignored (delete it).")
        return []
    if record.get("host") != socket.gethostname():
        log(f"note: {path} lists Ray processes of a sweep on host {record.get('host')}; run "
            f"`python -m harness.sweep --cleanup --name {sweep_dir.name}` there to end any it left.")
        return []
    driver = _still_running({"pid": record.get("driver_pid"),
                             "pid_started": record.get("driver_started")})
    if driver is not None and driver.pid != os.getpid():
        log(f"note: the sweep that recorded {path} still runs (pid {driver.pid}); its Ray "
            f"processes are left alone.")
        return []
    alive = {e["pid"]: (e, p) for e in record.get("processes", [])
             if (p := _still_running(e)) is not None}
    if alive:
        for _, p in alive.values():
            try:
                p.terminate()
            except psutil.Error:
                pass
        _, still = psutil.wait_procs([p for _, p in alive.values()], timeout=grace)
        for p in still:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(still, timeout=5)
        names = ", ".join(f"{e['name']} (pid {pid})" for pid, (e, _) in sorted(alive.items()))
        log(f"ended {len(alive)} Ray process(es) left running by an earlier run of sweep "
            f"{sweep_dir.name!r} (driver pid {record.get('driver_pid')}): {names}")
    path.unlink(missing_ok=True)
    return [e for e, _ in alive.values()]
