"""``--name`` is a name, not a path; ``--runs-dir`` and ``--data-root`` must be folders (issue 13,
item 3). Everything here is refused before anything is written or Ray starts."""
from __future__ import annotations

import pytest

from harness.data import synth
from harness.data.errors import MissingDataFile

BASE = ["--suite", "pdebench", "--tasks", "advection", "--methods", "nft", "--profile", "smoke",
        "--num-samples", "1", "--seeds", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("names-data")
    synth.generate("advection", root, size="tiny", seed=0)
    return root


@pytest.mark.parametrize("name", ["../../escape", "/tmp/abs-sweep", "a/b", "..", ".hidden",
                                  "two words", "x;rm -rf", "tab\tname", "a" * 101])
def test_a_name_that_is_a_path_or_unsafe_is_refused(name, data, tmp_path, capsys):
    from harness.sweep import main

    runs = tmp_path / "deep" / "runs"
    rc = main([*BASE, "--data-root", str(data), "--runs-dir", str(runs), "--name", name, "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"--name {name!r} is not a sweep name" in err
    assert "letters, digits, '.', '_' and '-'" in err
    assert not (tmp_path / "deep").exists()              # nothing written, not even the runs folder


def test_an_escaping_name_writes_nothing_outside_the_runs_folder(data, tmp_path, capsys):
    from harness.sweep import main

    runs = tmp_path / "a" / "b" / "runs"
    rc = main([*BASE, "--data-root", str(data), "--runs-dir", str(runs), "--name", "../../escape"])
    assert rc == 2
    assert "is not a sweep name (it is a path)" in capsys.readouterr().err
    assert not (tmp_path / "a" / "escape").exists()
    assert not (tmp_path / "a").exists()                # not even the runs folder was created


def test_good_names_pass(data, tmp_path, capsys):
    from harness.sweep import main

    for name in ("pdebench-quick", "run_2.b", "X1"):
        rc = main([*BASE, "--data-root", str(data), "--runs-dir", str(tmp_path / "r"),
                   "--name", name, "--dry-run"])
        assert rc == 0, capsys.readouterr().err
        assert f"sweep {name!r}" in capsys.readouterr().out


def test_a_data_root_that_is_a_file_says_so(tmp_path, capsys):
    from harness.sweep import main

    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0::/root:/bin/sh\n")
    runs = tmp_path / "runs"
    rc = main([*BASE, "--data-root", str(a_file), "--runs-dir", str(runs), "--name", "f"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"--data-root {str(a_file)!r} is a file, not a directory" in err
    assert not runs.exists()
    rc = main([*BASE, "--data-root", str(tmp_path / "nowhere"), "--runs-dir", str(runs),
               "--name", "f"])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_data_layer_says_a_root_that_is_a_file_is_not_a_folder(tmp_path):
    from harness.data.readers import find_file
    from harness.suites import get_suite

    a_file = tmp_path / "passwd"
    a_file.write_text("x")
    task = get_suite("pdebench")["advection"]
    with pytest.raises(MissingDataFile, match="is a file, not a directory"):
        find_file(task.file, a_file, "advection")


@pytest.mark.parametrize("kind", ["file", "below-a-file"])
def test_a_runs_dir_that_is_or_is_below_a_file_is_refused(kind, data, tmp_path, capsys):
    from harness.sweep import main

    a_file = tmp_path / "plain"
    a_file.write_text("x")
    runs = a_file if kind == "file" else a_file / "runs"
    rc = main([*BASE, "--data-root", str(data), "--runs-dir", str(runs), "--name", "r"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"--runs-dir {str(runs)!r}" in err
    assert (f"{str(a_file)!r} is a file, not a directory" in err if kind == "below-a-file"
            else "is a file, not a directory" in err)
    assert a_file.read_text() == "x"
