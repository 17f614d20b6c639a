"""The project stands alone: nothing points at documents outside it, and its own docs exist.

A user has the repository and nothing beside it, so README, docs, docstrings, error messages and
leaderboard captions must cite the project's ``docs/`` only.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: a folder beside the repository that only the developers' machines had (built so that this
#: file does not match itself)
OUTSIDE_DOCS = "shared" + "/docs"
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".yaml", ".yml", ".cfg", ".ini", ".sh", ".json",
                 ".html", ".tex", ".csv", ""}
DOC_LINK = re.compile(r"docs/([\w.-]+\.md)")


def project_files() -> list[Path]:
    """The repository's files: tracked and untracked-but-not-ignored (what a commit would hold);
    outside a git checkout (an exported tree), every file but hidden and generated ones."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        files = [ROOT / line for line in out.splitlines() if line]
    except (OSError, subprocess.CalledProcessError):
        skip = {"runs", "__pycache__", "build", "dist"}
        files = [f for f in ROOT.rglob("*")
                 if not any(part.startswith(".") or part in skip or part.endswith(".egg-info")
                            for part in f.relative_to(ROOT).parts)]
    return [f for f in files if f.is_file() and f.suffix in TEXT_SUFFIXES]


def test_no_file_refers_to_documents_outside_the_project():
    files = project_files()
    assert any(f.name == "README.md" for f in files) and len(files) > 50
    offenders = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE_DOCS in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not offenders, "references to documents outside the project:\n" + "\n".join(offenders)


def test_the_docs_the_project_cites_exist():
    cited: dict[str, set[str]] = {}
    for path in project_files():
        if path.suffix not in (".py", ".md", ".toml"):
            continue
        for name in DOC_LINK.findall(path.read_text(encoding="utf-8", errors="replace")):
            cited.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert {"data.md", "paper-tables.md", "divergences.md"} <= set(cited)
    missing = {name: sorted(where) for name, where in cited.items()
               if not (ROOT / "docs" / name).is_file()}
    assert not missing, f"cited docs that do not exist: {missing}"


def test_the_leaderboard_caption_cites_the_project_docs():
    from harness.leaderboard.reference import PAPER_PROVENANCE

    assert "docs/paper-tables.md" in PAPER_PROVENANCE and OUTSIDE_DOCS not in PAPER_PROVENANCE
    assert (ROOT / "docs" / "paper-tables.md").read_text(encoding="utf-8").count("0.0108") == 1
