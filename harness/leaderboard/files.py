"""The leaderboard file set of a results table: one set per data source, written atomically.

See :mod:`harness.leaderboard.writers` for the layout.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from harness.leaderboard.build import Leaderboard, build_leaderboards, data_sources
from harness.leaderboard.common import SOURCE_ORDER, UNKNOWN_SOURCE

EXTENSIONS = ("md", "csv", "html", "tex")


def file_suffix(source: str, sources: list[str]) -> str:
    """"" for the first data source of the results (real when present), "-<source>" otherwise."""
    return "" if not sources or source == sources[0] else f"-{source}"


def layout_names(suffix: str) -> list[str]:
    """The files of one data source's set: ``leaderboard<suffix>.*`` and its diagram."""
    return [f"leaderboard{suffix}.{ext}" for ext in EXTENSIONS] + [f"cd_diagram{suffix}.png"]


def _atomic_text(path: Path, text: str) -> Path:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_leaderboard(df: pd.DataFrame, out_dir: str | Path, reference: bool | str = False, *,
                      data_source: str | None = None, metrics=None,
                      boards: list[Leaderboard] | None = None,
                      links: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write one file set per data source under ``out_dir``; returns {file name: path}.

    File names depend on the data sources in ``df``, not on the ``data_source`` filter: the
    first source (real when present) has no suffix, any other ``-<source>``. ``data_source``
    writes only that source's set and leaves the other sets alone; without it, sets of sources
    that are no longer in ``df`` are removed. ``boards`` reuses leaderboards built from ``df``;
    ``links``: data source -> :class:`harness.leaderboard.links.BoardLinks` for its HTML.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if boards is None:
        boards = build_leaderboards(df, data_source=data_source, reference=reference,
                                    metrics=metrics)
    sources = data_sources(df)
    written: dict[str, Path] = {}
    for lb in boards:
        suffix = file_suffix(lb.data_source, sources)
        png = out_dir / f"cd_diagram{suffix}.png"
        tmp_png = png.with_name("." + png.name + ".tmp")
        png_path = lb.plot_cd(tmp_png)
        if png_path is not None:
            png_path = Path(tmp_png).replace(png)
            written[png.name] = png
        elif png.exists():
            png.unlink()  # stale: no test this time
        texts = {
            "md": lb.to_markdown(png_name=png.name if png_path else None),
            "csv": lb.to_frame().to_csv(index=False),
            "html": lb.to_html(png=png_path, links=(links or {}).get(lb.data_source)),
            "tex": lb.to_latex(),
        }
        for ext, text in texts.items():
            path = _atomic_text(out_dir / f"leaderboard{suffix}.{ext}", text)
            written[path.name] = path
    if data_source is None and boards:
        # sets of data sources this results table no longer has
        present = {file_suffix(s, sources) for s in sources}
        gone = {""} | {f"-{s}" for s in set(SOURCE_ORDER) | {UNKNOWN_SOURCE}}
        for suffix in gone - present:
            for name in layout_names(suffix):
                if (out_dir / name).is_file():
                    (out_dir / name).unlink()
    return dict(sorted(written.items()))


def leaderboard_markdown(df: pd.DataFrame, reference: bool | str = False,
                         data_source: str | None = None, *,
                         boards: list[Leaderboard] | None = None) -> str:
    """Markdown of every data source's leaderboard (what a sweep prints at its end); ``boards``
    reuses leaderboards already built from ``df``."""
    if boards is None:
        boards = build_leaderboards(df, data_source=data_source, reference=reference)
    if not boards:
        return "No final test results yet: no leaderboard."
    return "\n\n".join(lb.to_markdown() for lb in boards)
