"""Plugin discovery: broken files are reported, not fatal; names are unique; helpers are skipped.

Every test builds its own plugin folder under ``tmp_path`` and discovers that folder alone,
unless the shipped ``baselines/`` (RECRAFT included) are the point of the test.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.methods.discovery import (BASELINES_DIR, DuplicateMethodName, UnknownMethod, discover,
                                       get_method)

GOOD = '''
from harness.methods.contract import Method, Stage
from harness.methods.space import Fixed, LogFloat


class {cls}(Method):
    name = "{name}"
    version = "{version}"
    summary = "a test plugin"
    stages = (Stage("prepare", ()), Stage("finetune", ("finetune.lr", "finetune.weight_decay")))

    def search_space(self, task):
        return {{"finetune.lr": LogFloat(1e-5, 1e-3), "finetune.weight_decay": Fixed(0.0)}}

    def defaults(self, task):
        return {{"finetune.lr": 1e-4, "finetune.weight_decay": 0.0}}

    def stage_prepare(self, ctx, config, upstream):
        return {{}}

    def stage_finetune(self, ctx, config, upstream):
        return {{"metrics": {{ctx.metric_key: 1.0}}}}
'''


def write_plugin(folder: Path, filename: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(textwrap.dedent(text))
    return path


def good(name: str, version: str = "1", cls: str = "Plugin") -> str:
    return GOOD.format(name=name, version=version, cls=cls)


@pytest.fixture
def plugins(tmp_path) -> Path:
    """Two good files, a syntax error, an import error, a helper, a file with no Method and a
    class whose stage has no code."""
    d = tmp_path / "plugins"
    write_plugin(d, "alpha.py", good("tmp-alpha", version="3", cls="Alpha"))
    write_plugin(d, "beta.py", good("tmp-beta", version="7", cls="Beta"))
    write_plugin(d, "broken_syntax.py", "from harness.methods.contract import Method\n\n"
                                         "class Oops(Method:\n    name = 'oops'\n")
    write_plugin(d, "broken_import.py", "import harness_no_such_dependency_xyz  # noqa: F401\n")
    write_plugin(d, "_helper.py", "raise RuntimeError('helpers must never be imported')\n")
    write_plugin(d, "no_method.py", "VALUE = 1\n")
    write_plugin(d, "no_code.py", '''
        from harness.methods.contract import Method, Stage


        class NoCode(Method):
            name = "tmp-no-code"
            version = "1"
            stages = (Stage("finetune", ("finetune.lr",)),)
        ''')
    return d


# ----------------------------------------------------------------------------- broken files
def test_broken_files_become_unavailable_entries(plugins):
    entries = discover([plugins])
    # the good plugins still load, with their class attributes
    for name, version in (("tmp-alpha", "3"), ("tmp-beta", "7")):
        assert entries[name].available, entries[name].error
        assert entries[name].method.version == version
        assert entries[name].origin == str(plugins / f"{name.split('-')[1]}.py")
    syntax = entries["broken_syntax"]
    assert not syntax.available and syntax.method is None
    assert syntax.origin == str(plugins / "broken_syntax.py")
    assert syntax.error.startswith("SyntaxError")
    imp = entries["broken_import"]
    assert not imp.available
    assert imp.error.startswith("ModuleNotFoundError")
    assert "harness_no_such_dependency_xyz" in imp.error.splitlines()[0]
    assert "no Method subclass" in entries["no_method"].error
    assert not entries["tmp-no-code"].available
    assert "stage 'finetune' has no method stage_finetune" in entries["tmp-no-code"].error


def test_underscore_helpers_are_skipped(plugins):
    entries = discover([plugins])   # _helper.py raises if imported
    assert "_helper" not in entries
    assert all(Path(e.origin).name != "_helper.py" for e in entries.values())


def test_unavailable_method_names_its_error(plugins):
    entries = discover([plugins])
    with pytest.raises(UnknownMethod, match="unavailable: ModuleNotFoundError"):
        get_method("broken_import", entries)


def test_a_plugin_with_a_runtime_error_is_reported(tmp_path):
    d = tmp_path / "p"
    write_plugin(d, "ok.py", good("tmp-ok"))
    write_plugin(d, "boom.py", "raise RuntimeError('weights not downloaded: run setup first')\n")
    entries = discover([d])
    assert entries["tmp-ok"].available
    assert entries["boom"].error.startswith("RuntimeError: weights not downloaded")


# ----------------------------------------------------------------------------- names
def test_duplicate_name_in_two_files_names_both(tmp_path):
    d = tmp_path / "dups"
    first = write_plugin(d, "first.py", good("tmp-twin", cls="First"))
    second = write_plugin(d, "second.py", good("tmp-twin", cls="Second"))
    with pytest.raises(DuplicateMethodName) as info:
        discover([d])
    msg = str(info.value)
    assert str(first) in msg and str(second) in msg
    assert "tmp-twin" in msg


def test_duplicate_of_a_shipped_method_is_refused(tmp_path):
    d = tmp_path / "shadow"
    path = write_plugin(d, "my_recraft.py", good("recraft", cls="MyRecraft"))
    with pytest.raises(DuplicateMethodName) as info:
        discover([BASELINES_DIR, d])                    # recraft is baselines/recraft.py
    assert str(BASELINES_DIR / "recraft.py") in str(info.value) and str(path) in str(info.value)


def test_recraft_is_discovered_like_any_baseline(tmp_path):
    """No built-in special case: RECRAFT and recraft-ref are files of baselines/, and a folder
    given instead of baselines/ lists only its own methods."""
    shipped = discover()
    for name, stem in (("recraft", "recraft"), ("recraft-ref", "recraft_ref")):
        assert shipped[name].available and shipped[name].origin == str(BASELINES_DIR / f"{stem}.py")
    d = tmp_path / "alone"
    write_plugin(d, "alpha.py", good("tmp-alpha"))
    assert set(discover([d])) == {"tmp-alpha"}



def test_a_method_whose_search_space_module_is_missing_is_reported(tmp_path):
    """Spaces are imported by the method's file: a missing one makes that file unavailable (with
    the import error) and leaves the other methods usable."""
    d = tmp_path / "spaces"
    write_plugin(d, "alpha.py", good("tmp-alpha"))
    write_plugin(d, "lost.py", """
        from recraft.family import FineTuningMethod
        from search_spaces import no_such_space_xyz as lost_space


        class Lost(FineTuningMethod):
            name = "tmp-lost"
            version = "1"
            space_module = lost_space
    """)
    entries = discover([d])
    assert entries["tmp-alpha"].available
    assert not entries["lost"].available
    assert "no_such_space_xyz" in entries["lost"].error

def test_unknown_name_suggests_the_closest():
    with pytest.raises(UnknownMethod) as info:
        get_method("recraf")
    assert "did you mean 'recraft'" in str(info.value)
    assert "available:" in str(info.value) and "nft" in str(info.value)
    assert isinstance(info.value, KeyError)              # callers may catch KeyError


def test_discovery_is_repeatable(plugins):
    a = discover([plugins])
    b = discover([plugins])
    assert set(a) == set(b)
    assert {n for n, e in a.items() if e.available} == {"tmp-alpha", "tmp-beta"}


# ----------------------------------------------------------------------------- harness.list
def test_list_shows_unavailable_and_good_methods(plugins, capsys):
    from harness.list import main

    assert main(["methods", "--baselines-dir", str(plugins)]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {line.split()[0]: line for line in lines[1:] if line.strip()}
    assert lines[0].split()[:3] == ["method", "version", "stages"]

    syntax = by_name["broken_syntax"]
    assert "UNAVAILABLE" in syntax and str(plugins / "broken_syntax.py") in syntax
    assert "SyntaxError" in syntax
    imp = by_name["broken_import"]
    assert "UNAVAILABLE" in imp
    assert "ModuleNotFoundError: No module named 'harness_no_such_dependency_xyz'" in imp
    assert "UNAVAILABLE" in by_name["tmp-no-code"] and "contract:" in by_name["tmp-no-code"]

    for name, version in (("tmp-alpha", "3"), ("tmp-beta", "7")):
        cols = by_name[name].split()
        assert cols[1] == version
        assert "prepare -> finetune" in by_name[name]
        assert by_name[name].rstrip().endswith(f"ok ({plugins / (name.split('-')[1] + '.py')})")
        assert cols[cols.index("finetune") + 1:cols.index("finetune") + 3] == ["1", "inf"]  # searched, size
    # the folder replaces baselines/: the shipped methods (RECRAFT included) are not listed
    assert "recraft" not in by_name and "nft" not in by_name
    assert "_helper" not in by_name


def test_list_shows_the_shipped_baselines_folder_with_recraft(plugins, capsys):
    from harness.list import main

    assert main(["methods", "--baselines-dir", str(BASELINES_DIR),
                 "--baselines-dir", str(plugins)]) == 0
    by_name = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]
               if line.strip()}
    recraft = discover()["recraft"].method
    assert by_name["recraft"].split()[1] == recraft.version
    assert by_name["recraft"].rstrip().endswith(f"ok ({BASELINES_DIR / 'recraft.py'})")
    assert "tmp-alpha" in by_name
