"""The report's figures (matplotlib, Agg), one function each, drawn from :mod:`harness.report.collect`.

Every figure is drawn even with too little data: the empty panel says what is missing, so a
reader never mistakes a left-out figure for a method that did fine.
"""
from __future__ import annotations

import math
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

TOO_LITTLE = "too little data"


def _say(ax, text: str) -> None:
    """Write a 'too little data' message on a panel (and hide its empty axes' ticks)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9, color="#a00",
            transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _grid(tasks: list[str], title: str, panel: float = 3.4) -> tuple[Figure, list]:
    n = max(1, len(tasks))
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel * cols, panel * 0.85 * rows + 0.6),
                             squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.axis("off")
    fig.suptitle(title)
    return fig, flat[:n]


def _colors(methods: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {m: cmap(i % 10) for i, m in enumerate(sorted(methods))}


def _finish(fig: Figure, axes: list, handles: dict) -> Figure:
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center",
                   ncol=min(6, len(handles)), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    else:
        fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def _per_task(frame: pd.DataFrame, tasks: list[str], methods: list[str], title: str,
              draw: Callable[[object, str, pd.DataFrame, dict, dict], None]) -> Figure:
    """One panel per task, titled with the task: ``draw(ax, task, rows, colors, handles)`` fills
    it from the task's rows of ``frame`` and records legend handles per method."""
    fig, axes = _grid(tasks, title)
    colors, handles = _colors(methods), {}
    for ax, task in zip(axes, tasks):
        sub = frame[frame.task == task] if not frame.empty else frame
        ax.set_title(task, fontsize=10)
        draw(ax, task, sub, colors, handles)
    return _finish(fig, axes, handles)


def learning_curves(curves: pd.DataFrame, tasks: list[str], methods: list[str]) -> Figure:
    """Per task: each method's final runs' validation metric per epoch (thin: seeds, thick: mean)."""
    def draw(ax, task, sub, colors, handles):
        if sub.empty or sub.groupby("run_id").size().max() < 2:
            _say(ax, f"{TOO_LITTLE}:\nno final run logged\n2+ epochs to MLflow")
            return
        for method, m in sub.groupby("method"):
            for _, run in m.groupby("run_id"):
                run = run.sort_values("epoch")
                ax.plot(run.epoch, run.value, color=colors[method], alpha=0.3, lw=0.8)
            mean = m.groupby("epoch").value.mean()
            handles[method], = ax.plot(mean.index, mean.values, color=colors[method], lw=2)
        ax.set_xlabel("epoch")
        ax.set_ylabel(str(sub.metric.iloc[0]))

    return _per_task(curves, tasks, methods,
                     "Learning curves of the final runs (validation metric per epoch)", draw)


def epsilon_sensitivity(eps: pd.DataFrame, tasks: list[str], methods: list[str]) -> Figure:
    """Per task: each search trial's validation value against its ``align.epsilon`` (paper Fig. 5)."""
    def draw(ax, task, sub, colors, handles):
        if len(sub) < 2 or sub.epsilon.nunique() < 2:
            _say(ax, f"{TOO_LITTLE}:\n{len(sub)} search trial(s) with align.epsilon,\n"
                     f"{0 if sub.empty else sub.epsilon.nunique()} distinct ε (need 2+)")
            return
        for method, m in sub.groupby("method"):
            handles[method] = ax.scatter(m.epsilon, m.value, color=colors[method], s=18)
            best = m.groupby("epsilon").value.min().sort_index()
            ax.plot(best.index, best.values, color=colors[method], lw=0.8, alpha=0.6)
        if (sub.epsilon > 0).all() and sub.epsilon.max() / sub.epsilon.min() >= 10:
            ax.set_xscale("log")
        ax.set_xlabel("align.epsilon")
        ax.set_ylabel(f"val {sub.metric.iloc[0]}")

    return _per_task(eps, tasks, methods,
                     "ε sensitivity: search trials' validation value against align.epsilon", draw)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r, NaN when either side has fewer than 3 points or no spread."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    from scipy.stats import pearsonr

    return float(pearsonr(x, y)[0])


#: the method whose probe points the semantic-gap figure's Pearson r is computed over
R_METHOD = "recraft"


def semantic_gap(probes: pd.DataFrame, tasks: list[str], methods: list[str]) -> tuple[Figure, dict]:
    """Per task: semantic gap (FA + FLD) against the target loss at the stage-1 probes (paper Fig.
    3), start → end of stage 1 joined per run, with Pearson r. Returns the figure and r per task."""
    rs: dict[str, float] = {}

    def draw(ax, task, sub, colors, handles):
        # r over RECRAFT's points: the paper's gap is its FA + FLD; the other methods' "gap" holds
        # other terms (FA only, FLD only, ORCA's), and pooling them would correlate unlike things
        basis = sub[sub.method == R_METHOD] if (sub.method == R_METHOD).any() else sub
        r = pearson(basis.gap, basis.target_loss) if len(basis) else math.nan
        rs[task] = r
        if len(sub) < 3:
            _say(ax, f"{TOO_LITTLE}:\n{len(sub)} stage-1 probe(s), need 3+\n"
                     "(only methods with a stage 1\nlog align.probe_*)")
            return
        who = R_METHOD if basis is not sub else "all"
        ax.set_title(f"{task}  r ({who}) = {r:.2f}" if math.isfinite(r)
                     else f"{task}  r undefined (no spread)", fontsize=10)
        for method, m in sub.groupby("method"):
            for _, run in m.groupby("run_id"):
                run = run.set_index("when").reindex(["probe_start", "probe_end"]).dropna(subset=["gap"])
                ax.plot(run.gap, run.target_loss, color=colors[method], lw=0.6, alpha=0.4)
            start, end = m[m.when == "probe_start"], m[m.when == "probe_end"]
            ax.scatter(start.gap, start.target_loss, color=colors[method], s=14, marker="o",
                       facecolors="none")
            handles[method] = ax.scatter(end.gap, end.target_loss, color=colors[method], s=14)
        ax.set_xlabel("FA + FLD (open: start, filled: end)")
        ax.set_ylabel("target loss")

    fig = _per_task(probes, tasks, methods,
                    "Semantic gap (FA + FLD) against target loss at stage-1 probes", draw)
    return fig, rs


def wall_time(wall: pd.DataFrame, methods: list[str],
              stages: pd.DataFrame | None = None) -> Figure:
    """Per method (paper Fig. 7): wall seconds summed over tasks by sweep stage (search trials,
    final runs) on the left; the median run's seconds by method stage (e.g. align, finetune)
    on the right."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(9.0, 1.6 * len(methods) + 3), 3.8))
    fig.suptitle("Training cost per method")
    order = sorted(methods)
    left.set_title("wall seconds summed over tasks, by sweep stage", fontsize=9)
    if wall.empty:
        _say(left, f"{TOO_LITTLE}: no run recorded wall_seconds")
    else:
        _stacked(left, wall.pivot_table(index="method", columns="phase", values="wall_seconds",
                                        aggfunc="sum", fill_value=0.0),
                 order, ["search", "final"])
    right.set_title("median seconds per run, by method stage", fontsize=9)
    if stages is None or stages.empty:
        _say(right, f"{TOO_LITTLE}: no run reported seconds per stage")
    else:
        # the median, not the sum: the first trial in each worker process also pays the imports
        # and body construction (about 15 s on a 2-core CPU), in whichever stage comes first
        table = stages.pivot_table(index="method", columns="stage", values="seconds",
                                   aggfunc="median", fill_value=0.0)
        _stacked(right, table, order, sorted(table.columns))
    fig.tight_layout()
    return fig


def _stacked(ax, table: pd.DataFrame, methods: list[str], parts: list[str]) -> None:
    table = table.reindex(methods, fill_value=0.0)
    colors = plt.get_cmap("tab10")
    bottom = np.zeros(len(table))
    for i, part in enumerate(parts):
        if part in table:
            ax.bar(table.index, table[part].values, bottom=bottom, color=colors(i), label=part)
            bottom += table[part].values
    ax.set_ylabel("wall seconds")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8)


#: Fig. 2's methods first, in its order; any other method with a snapshot follows
EMBEDDING_ORDER = ("nft", "fa-only", "recraft")


def embeddings(snapshots: dict[tuple[str, str], dict], tasks: list[str]) -> Figure:
    """Source and target features before stage 2, in 2D (paper Fig. 2): per task, a PCA fitted
    on the source features (so every method of a task shares the axes), targets projected."""
    from sklearn.decomposition import PCA

    present = sorted({m for _, m in snapshots},
                     key=lambda m: (EMBEDDING_ORDER.index(m) if m in EMBEDDING_ORDER else 99, m))
    if not snapshots:
        fig, ax = plt.subplots(figsize=(6, 2.5))
        ax.set_title("Source and target features (PCA)")
        _say(ax, f"{TOO_LITTLE}: the sweep saved no feature snapshots (features/<task>/<method>.npz)")
        return fig
    rows = [t for t in tasks if any((t, m) in snapshots for m in present)]
    fig, axes = plt.subplots(len(rows), len(present), squeeze=False,
                             figsize=(3.0 * len(present), 2.8 * len(rows) + 0.6))
    fig.suptitle("Source (grey) and target (colour) features\nbefore fine-tuning, "
                 "on the source's PCA axes", fontsize=10)
    for i, task in enumerate(rows):
        sources = [snapshots[(task, m)]["source"] for m in present if (task, m) in snapshots]
        pca = PCA(n_components=2).fit(sources[0])
        for j, method in enumerate(present):
            ax = axes[i][j]
            ax.set_title(f"{task} · {method}", fontsize=9)
            snap = snapshots.get((task, method))
            if snap is None:
                _say(ax, f"{TOO_LITTLE}: no snapshot")
                continue
            s, t = pca.transform(snap["source"]), pca.transform(snap["target"])
            ax.scatter(s[:, 0], s[:, 1], s=4, c="#bbbbbb", label="source")
            ax.scatter(t[:, 0], t[:, 1], s=6, c="#c44e52" if snap["aligned"] else "#4c72b0",
                       label="target")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig
