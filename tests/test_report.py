"""The sweep report (``python -m harness.report``) and the MLflow UI, checked on a real smoke sweep.

One module-scoped sweep (real local Ray, real MLflow sqlite store, tiny synthetic HDF5 files:
2 tasks × 2 methods × 3 search trials + 2 final seeds) feeds every test here. The browser test
starts a real ``mlflow server`` on 127.0.0.1 and drives Debian's headless Chromium through
Selenium; it skips, saying why, only where no browser or driver is installed.
"""
from __future__ import annotations

import math
import re

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from harness.data import synth

TASKS = ("advection", "darcy")
METHODS = ("nft", "recraft")
FIGURE_FILES = ("learning_curves.png", "epsilon_sensitivity.png", "semantic_gap.png",
                "wall_time.png")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    data = root / "data"
    for t in TASKS:
        synth.generate(t, data, size="tiny", seed=0)
    from harness.sweep import main

    rc = main(["--suite", "pdebench", "--tasks", ",".join(TASKS), "--methods", ",".join(METHODS),
               "--profile", "smoke", "--num-samples", "3", "--seeds", "2",
               "--data-root", str(data), "--runs-dir", str(root / "runs"), "--name", "rep"])
    assert rc == 0
    sweep_dir = root / "runs" / "rep"
    return {"root": root, "dir": sweep_dir, "uri": f"sqlite:///{root / 'runs' / 'mlflow.db'}",
            "df": pd.read_parquet(sweep_dir / "results.parquet")}


@pytest.fixture(scope="module")
def report(sweep):
    from harness.report.__main__ import main

    assert main(["--sweep", str(sweep["dir"])]) == 0
    return sweep["dir"] / "report"


def test_report_has_every_figure_and_the_page_shows_each(report):
    page = (report / "report.html").read_text("utf-8")
    srcs = re.findall(r'<img src="([^"]+)"', page)
    pngs = sorted(p.name for p in report.glob("*.png"))
    for name in FIGURE_FILES:
        assert name in pngs, name
        img = mpimg.imread(report / name)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert img[..., :3].std() > 0.01, f"{name} is blank"
    # the page links every PNG written, and every image it shows exists
    assert set(pngs) <= set(srcs), set(pngs) - set(srcs)
    for src in srcs:
        assert src.startswith("data:image/png") or (report / src).is_file(), src
    # the leaderboard table (reused from harness.leaderboard) is on the page
    assert "Avg. Rank" in page and all(f">{m}<" in page for m in METHODS)
    assert "harness.task" in page and "workflowType=machine_learning" in page


def test_report_figures_are_artifacts_of_the_sweep_run(sweep, report):
    import mlflow

    client = mlflow.MlflowClient(sweep["uri"])
    exp = client.get_experiment_by_name("pdebench")
    run = client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'sweep'")[0]
    logged = {a.path.split("/")[-1] for a in client.list_artifacts(run.info.run_id, "report")}
    assert set(FIGURE_FILES) | {"report.html"} <= logged


def test_collected_curves_and_probes_agree_with_the_results_table(sweep):
    from harness.report.collect import collect

    data = collect(sweep["dir"])
    df = sweep["df"]
    finals = df[(df.phase == "final") & (df.split == "val") & (df.status == "ok")]
    assert len(finals) == len(TASKS) * len(METHODS) * 2
    for r in finals.itertuples():
        curve = data.curves[data.curves.run_id == r.mlflow_run_id]
        assert len(curve) >= 1 and set(curve.metric) == {"val_nrmse"}
        # the table's final val value is the best epoch's: the minimum of the logged curve
        assert curve.value.min() == pytest.approx(r.value, rel=1e-6)
    # stage-1 probes: recraft runs have them (start and end), nft has no stage 1
    assert set(data.probes.method) == {"recraft"}
    recraft_runs = df[(df.method == "recraft") & (df.status.isin(["ok", "stopped"]))]
    assert data.probes.run_id.nunique() == recraft_runs.mlflow_run_id.nunique()
    assert set(data.probes.when) == {"probe_start", "probe_end"}
    assert np.allclose(data.probes.gap, data.probes.fa + data.probes.fld)
    # ε: exactly the recraft search trials that scored
    scored = df[(df.phase == "search") & (df.method == "recraft") & df.status.isin(["ok", "stopped"])]
    assert len(data.epsilon) == len(scored)
    # wall time: one row per search trial and per final seed
    assert len(data.wall) == (df.phase == "search").sum() + len(finals)


def test_figures_with_too_little_data_say_so_on_the_figure():
    from harness.report import figures

    empty = pd.DataFrame(columns=["task", "method", "epsilon", "value", "metric"])
    fig = figures.epsilon_sensitivity(empty, ["darcy"], ["recraft"])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(figures.TOO_LITTLE in t for t in texts), texts
    fig, rs = figures.semantic_gap(pd.DataFrame(columns=["task", "method", "run_id", "when",
                                                         "gap", "target_loss"]), ["darcy"], [])
    assert math.isnan(rs["darcy"])
    assert any(figures.TOO_LITTLE in t.get_text() for ax in fig.axes for t in ax.texts)


def test_pearson_r():
    from harness.report.figures import pearson

    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)
    assert math.isnan(pearson(x, np.ones(4)))      # no spread: undefined, not 0
    assert math.isnan(pearson(x[:2], x[:2]))


def test_report_of_a_folder_without_results_is_a_clear_error(tmp_path, capsys):
    from harness.report.__main__ import main

    assert main(["--sweep", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert "no results in" in err and "runs/<name>" in err
