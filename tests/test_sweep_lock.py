"""One sweep per ``runs/<name>`` at a time (issue 13, item 2): the lock refuses a second holder
while the first runs, takes over a lock whose holder was killed, and never guesses about a holder
on another host. Real processes hold the lock here; ``test_sweep_leftovers.py`` runs real sweeps."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from harness.sweep.lock import LOCK_FILE, SweepLocked, acquire

HOLDER = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from harness.sweep.lock import acquire

    lock = acquire(Path(sys.argv[1]), "holder-command --name locked")
    print("locked", flush=True)
    time.sleep(120)
''')


def _start_holder(sweep_dir):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(sweep_dir)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_live_holder_refuses_and_a_killed_ones_lock_is_taken_over(tmp_path):
    sweep_dir = tmp_path / "runs" / "locked"
    holder = _start_holder(sweep_dir)
    try:
        with pytest.raises(SweepLocked) as refused:
            acquire(sweep_dir, "second")
        msg = str(refused.value)
        assert "already running" in msg and f"pid {holder.pid} on host {socket.gethostname()}" in msg
        assert "holder-command --name locked" in msg and str(sweep_dir / LOCK_FILE) in msg
        assert json.loads((sweep_dir / LOCK_FILE).read_text())["pid"] == holder.pid   # untouched
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    notes = []
    lock = acquire(sweep_dir, "third", log=notes.append)
    try:
        assert len(notes) == 1 and "taking over the lock" in notes[0]
        assert f"pid {holder.pid}" in notes[0] and "no longer runs" in notes[0]
        assert json.loads((sweep_dir / LOCK_FILE).read_text())["pid"] == os.getpid()
    finally:
        lock.release()
    assert not (sweep_dir / LOCK_FILE).exists()
    with acquire(sweep_dir, "fourth", log=notes.append):      # a released lock: no notice
        pass
    assert len(notes) == 1


def test_a_reused_pid_does_not_keep_a_stale_lock(tmp_path):
    """The holder's pid now belongs to another process (this one, started at another time)."""
    sweep_dir = tmp_path / "s"
    sweep_dir.mkdir()
    (sweep_dir / LOCK_FILE).write_text(json.dumps({
        "host": socket.gethostname(), "pid": os.getpid(), "pid_started": 1.0,
        "started": "2026-01-01 00:00:00 UTC", "command": "old"}))
    notes = []
    with acquire(sweep_dir, "new", log=notes.append):
        assert "taking over" in notes[0]


def test_a_holder_on_another_host_needs_break_lock(tmp_path):
    sweep_dir = tmp_path / "s"
    sweep_dir.mkdir()
    theirs = {"host": "other-node-7", "pid": 4242, "pid_started": 1.0,
              "started": "2026-12-06 10:00:00 UTC", "command": "python -m harness.sweep --name s"}
    (sweep_dir / LOCK_FILE).write_text(json.dumps(theirs))
    with pytest.raises(SweepLocked) as refused:
        acquire(sweep_dir, "here")
    msg = str(refused.value)
    assert "pid 4242 on host other-node-7" in msg and "--break-lock" in msg
    assert "ps -p 4242" in msg
    assert json.loads((sweep_dir / LOCK_FILE).read_text()) == theirs
    notes = []
    with acquire(sweep_dir, "here", break_lock=True, log=notes.append):
        assert "breaking the lock" in notes[0] and "other-node-7" in notes[0]
        assert json.loads((sweep_dir / LOCK_FILE).read_text())["host"] == socket.gethostname()


def test_break_lock_never_overrides_a_live_holder(tmp_path):
    sweep_dir = tmp_path / "s"
    holder = _start_holder(sweep_dir)
    try:
        with pytest.raises(SweepLocked, match="already running"):
            acquire(sweep_dir, "second", break_lock=True)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_an_empty_lock_file_left_by_a_crash_is_taken_over(tmp_path):
    sweep_dir = tmp_path / "s"
    sweep_dir.mkdir()
    (sweep_dir / LOCK_FILE).write_text("")
    old = time.time() - 60
    os.utime(sweep_dir / LOCK_FILE, (old, old))
    notes = []
    with acquire(sweep_dir, "new", log=notes.append):
        assert "no holder details" in notes[0]


def test_the_sweep_command_refuses_a_locked_name_before_writing_anything(tmp_path, capsys):
    """Exit 2 with the holder's details; no plan.json, no MLflow store, no Tune folder."""
    from harness.sweep import main

    runs = tmp_path / "runs"
    holder = _start_holder(runs / "busy")
    try:
        rc = main(["--suite", "pdebench", "--tasks", "advection", "--methods", "nft",
                   "--profile", "smoke", "--runs-dir", str(runs), "--name", "busy"])
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: sweep 'busy'") and f"pid {holder.pid}" in err
    assert sorted(p.name for p in runs.iterdir()) == ["busy"]            # no mlflow.db, no data
    assert [p.name for p in (runs / "busy").iterdir()] == [LOCK_FILE]   # no plan.json, no tune


FORKING_HOLDER = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    from harness.sweep.lock import acquire

    lock = acquire(Path(sys.argv[1]), "forking-holder")
    child = os.fork()
    if child == 0:          # inherits the locked file description, outlives its parent
        time.sleep(120)
        os._exit(0)
    print(child, flush=True)
    os._exit(0)
''')


def test_a_lock_inherited_by_a_forked_process_is_not_taken_over(tmp_path):
    sweep_dir = tmp_path / "s"
    holder = subprocess.Popen([sys.executable, "-c", FORKING_HOLDER, str(sweep_dir)],
                              stdout=subprocess.PIPE, text=True)
    child = int(holder.stdout.readline())
    holder.wait()
    try:
        with pytest.raises(SweepLocked) as refused:
            acquire(sweep_dir, "second")
        assert f"pid {holder.pid}" in str(refused.value) and "fuser -v" in str(refused.value)
    finally:
        os.kill(child, signal.SIGKILL)
    for _ in range(100):                    # the killed child drops the lock as it exits
        try:
            acquire(sweep_dir, "third", log=lambda _line: None).release()
            break
        except SweepLocked:
            time.sleep(0.1)
    else:
        raise AssertionError("the lock was not freed when its last holder died")
