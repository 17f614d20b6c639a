"""The sweep's progress view: elapsed time, remaining-time estimate, in-place status line."""
from __future__ import annotations

import io

import pytest

from harness.progress import ProgressView, eta_seconds, finished_trials, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_eta_from_finished_trials():
    assert eta_seconds(100.0, 0, 10) is None
    assert eta_seconds(100.0, 4, 10) == pytest.approx(150.0)   # 25 s per trial, 6 left
    assert eta_seconds(100.0, 10, 10) == 0.0
    assert finished_trials({"a/x": {"finished_trials": 3}, "b/x": {"state": "queued"}}) == 3


def test_format_duration():
    assert [format_duration(s) for s in (0, 42.4, 185, 7620)] == ["0s", "42s", "3m05s", "2h07m"]


def test_plain_output_prints_the_matrix_once_and_a_status_line_per_update():
    clock, out = FakeClock(), io.StringIO()
    view = ProgressView(total_trials=8, stream=out, clock=clock)
    assert view.tty is False
    view.show("M1", 0)
    clock.t += 60
    view.show("M1", 2)                   # same matrix: only a new status line
    clock.t += 30
    view.show("M2", 3)
    view.close()
    lines = out.getvalue().splitlines()
    assert lines.count("M1") == 1 and lines.count("M2") == 1
    status = [ln for ln in lines if ln.startswith("elapsed")]
    assert status == [
        "elapsed 0s | 0/8 trials finished | remaining time unknown until a trial finishes",
        "elapsed 1m00s | 2/8 trials finished | about 3m00s left",
        "elapsed 1m30s | 3/8 trials finished | about 2m30s left"]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_terminal_output_rewrites_the_last_line_in_place():
    clock, out = FakeClock(), FakeTerminal()
    view = ProgressView(total_trials=4, stream=out, clock=clock)
    assert view.tty is True
    view.show("M1", 0)
    clock.t += 10
    view.show("M1", 1)
    text = out.getvalue()
    # the matrix once, then status lines each erasing the previous one, no newline after them
    assert text.count("M1") == 1
    assert text.endswith("\r\x1b[2Kelapsed 10s | 1/4 trials finished | about 30s left")
    assert text.count("\r\x1b[2K") == 2
    view.show("M2", 2)                    # a changed matrix first erases the status line
    assert out.getvalue()[len(text):].startswith("\r\x1b[2K\nM2\n")
    view.close()
    assert out.getvalue().endswith("left\n")


def test_the_view_pickles_while_stdout_is_a_captured_stream(capsys):
    """Tune pickles the sweep's callback, which holds the view: it must not hold sys.stdout."""
    import pickle

    view = ProgressView(total_trials=2)
    view.show("M", 1)
    again = pickle.loads(pickle.dumps(view))
    assert again.status(1).startswith("elapsed") and "1/2 trials finished" in capsys.readouterr().out
