"""The README's Quick start and the CI script must run the same test command."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick, flags=re.S)
    assert len(blocks) == 2, "Quick start must give exactly two commands"
    assert blocks[0].strip() == 'pip install -e ".[test]" && python -m harness.sweep --suite pdebench'
    test_cmd = blocks[1].strip()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in [line.strip() for line in ci], f"{test_cmd!r} not run by .ci/run"
