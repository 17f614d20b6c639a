"""Write the analysis report of a sweep: an HTML page plus one PNG per figure.

The report lives in ``<sweep>/report/`` (``report.html`` and the PNGs it links by file name);
every PNG and the page are also logged as artifacts of the sweep's MLflow run under ``report/``.
"""
from __future__ import annotations

import html
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from harness.report import figures
from harness.report.collect import ReportData, collect
from harness.report.links import (compare_runs_url, metric_view_url, runs_table_url,
                                  task_finals_filter, ui_base_url)

# (file name, heading, what it shows) in page order; the leaderboard's CD diagram comes first
FIGURES = {
    "learning_curves.png": ("Learning curves",
                            "Validation metric per epoch of every final run (thin: one seed, "
                            "thick: the mean over seeds), read from MLflow's metric history."),
    "epsilon_sensitivity.png": ("ε sensitivity",
                                "Validation value of every search trial against its align.epsilon "
                                "(line: the best trial per ε), from the results table's config_json."),
    "semantic_gap.png": ("Semantic gap against error",
                         "FA + FLD against the target loss at the stage-1 probes (open: before "
                         "stage 1, filled: after; a line joins one run's two probes), with Pearson r "
                         "per task over RECRAFT's probe points (the paper's gap is RECRAFT's FA + "
                         "FLD; the other methods' gaps hold other terms and are drawn, not pooled "
                         "into r; all points only when no RECRAFT run logged probes). Only the "
                         "start and end probes are logged per run, not every stage-1 iteration."),
    "wall_time.png": ("Training cost",
                      "Left: wall seconds per method summed over tasks, split into the sweep's "
                      "search trials and final runs. Right: the median run's seconds in each of "
                      "the method's own stages, e.g. align and finetune, from the runs' "
                      "seconds.<stage> metrics (a stage-1 cache hit counts only its load time; "
                      "the median leaves out the one-time imports and body construction that the "
                      "first trial of each worker process pays)."),
    "embeddings.png": ("Source and target features",
                       "The paper's Fig. 2: the token-mean embedder features of up to 256 "
                       "training inputs (colour) against up to 1000 source features of the proxy "
                       "(grey), saved by each method's seed-0 final run just before fine-tuning: "
                       "after stage 1 for the aligning methods (red), at initialisation for NFT "
                       "(blue). Per task, the axes are the source features' first two principal "
                       "components, shared by every method."),
}


@dataclass
class Report:
    """What :func:`build_report` wrote."""

    html: Path
    images: list[Path]
    pearson: dict[str, float]
    logged_to: str | None


def _leaderboard_section(data: ReportData, out: Path) -> tuple[str, str, list[Path]]:
    """(CSS, HTML, PNGs) of the leaderboard(s), reusing harness.leaderboard's page."""
    from harness.leaderboard.build import build_leaderboards, data_sources
    from harness.leaderboard.files import file_suffix

    df = data.results
    try:
        boards = build_leaderboards(df)
    except Exception as exc:  # e.g. no final test rows yet
        return "", f"<p class=\"note\">No leaderboard: {html.escape(str(exc))}</p>", []
    if not boards:
        return "", "<p class=\"note\">No leaderboard: no final test results yet.</p>", []
    css, parts, pngs = "", [], []
    sources = data_sources(df)
    for lb in boards:
        png = out / f"cd_diagram{file_suffix(lb.data_source, sources)}.png"
        made = lb.plot_cd(png)
        if made is not None:
            pngs.append(png)
        page = lb.to_html(png=png if made is not None else None, embed=False)
        css = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
        parts.append(re.search(r"<body>(.*)</body>", page, re.S).group(1))
    return css, "\n".join(parts), pngs


def _links_section(data: ReportData) -> str:
    if not data.experiment_id:
        return ""
    e = html.escape
    df = data.results
    finals = df[(df.phase == "final") & (df.split == "test") & df.mlflow_run_id.notna()]
    base = ui_base_url(data.tracking_uri or "")
    exp = data.experiment_id
    items = []
    for task, sub in finals.groupby("task", sort=True):
        ids = list(sub.mlflow_run_id.unique())
        metric = f"val_{sub.metric.iloc[0]}"
        items.append(
            f"<li>{e(task)}: <a href=\"{e(runs_table_url(exp, base, task_finals_filter(task)))}\">"
            f"its final runs</a>, <a href=\"{e(compare_runs_url(exp, ids, base))}\">compared</a>, "
            f"<a href=\"{e(metric_view_url(exp, ids, metric, base))}\">{e(metric)} curves</a></li>")
    table = runs_table_url(exp, base)
    return (f"<h2>In MLflow</h2><p>Start the UI with the command the sweep printed, then open the "
            f'model-training run table <a href="{e(table)}">{e(table)}</a> (opened at its root, '
            "MLflow 3.17 shows its GenAI pages).</p><ul>" + "".join(items) + "</ul>")


def build_report(sweep_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                 tracking_uri: str | None = None, log_to_mlflow: bool = True) -> Report:
    """Build ``report.html`` and its PNGs for the sweep in ``sweep_dir`` (no training)."""
    import matplotlib.pyplot as plt

    sweep_dir = Path(sweep_dir)
    data = collect(sweep_dir, tracking_uri)
    out = Path(out_dir) if out_dir else sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    df = data.results
    tasks = sorted(df.task.dropna().unique())
    methods = sorted(df.method.dropna().unique())

    css, board_html, images = _leaderboard_section(data, out)
    gap_fig, rs = figures.semantic_gap(data.probes, tasks, methods)
    drawn = {
        "learning_curves.png": figures.learning_curves(data.curves, tasks, methods),
        "epsilon_sensitivity.png": figures.epsilon_sensitivity(data.epsilon, tasks, methods),
        "semantic_gap.png": gap_fig,
        "wall_time.png": figures.wall_time(data.wall, methods, data.stages),
        "embeddings.png": figures.embeddings(data.snapshots, tasks),
    }
    e = html.escape
    sections = []
    for name, fig in drawn.items():
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        images.append(out / name)
        heading, text = FIGURES[name]
        extra = ""
        if name == "semantic_gap.png":
            extra = "<p>Pearson r: " + ", ".join(
                f"{e(t)} {r:.2f}" if math.isfinite(r) else f"{e(t)} n/a" for t, r in rs.items()) + "</p>"
        sections.append(f'<h2>{e(heading)}</h2><p>{e(text)}</p>{extra}'
                        f'<img src="{e(name)}" alt="{e(heading)}">')
    notes = "".join(f'<p class="note">{e(n)}</p>' for n in data.notes)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Sweep report: {e(sweep_dir.name)}</title><style>{css}\n"
            "img { max-width: 100%; } .note { color: #a00; }</style></head><body>\n"
            f"<h1>Sweep report: {e(sweep_dir.name)}</h1>{notes}\n{board_html}\n"
            + "\n".join(sections) + "\n" + _links_section(data) + "\n</body></html>\n")
    page_path = out / "report.html"
    tmp = page_path.with_name(".report.html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(page_path)
    logged = None
    if log_to_mlflow and data.tracking_uri and data.sweep_run_id:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=data.tracking_uri)
        for p in [*images, page_path]:
            client.log_artifact(data.sweep_run_id, str(p), "report")
        logged = data.sweep_run_id
    return Report(html=page_path, images=images, pearson=rs, logged_to=logged)
