"""The sweep report (``python -m harness.report``) and the MLflow UI, checked on a real smoke sweep.

One module-scoped sweep (real local Ray, real MLflow sqlite store, tiny synthetic HDF5 files:
2 tasks × 2 methods × 3 search trials + 2 final seeds) feeds every test here. The browser test
starts a real ``mlflow server`` on 127.0.0.1 and drives Debian's headless Chromium through
Selenium; it skips, saying why, only where no browser or driver is installed.
"""
from __future__ import annotations

import json
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
                "wall_time.png", "embeddings.png")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    data = root / "data"
    for t in TASKS:
        synth.generate(t, data, size="tiny", seed=0)
    import contextlib
    import io

    from harness.sweep import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["--suite", "pdebench", "--tasks", ",".join(TASKS), "--methods",
                   ",".join(METHODS), "--profile", "smoke", "--num-samples", "3", "--seeds", "2",
                   "--data-root", str(data), "--runs-dir", str(root / "runs"), "--name", "rep"])
    print(out.getvalue())
    assert rc == 0
    sweep_dir = root / "runs" / "rep"
    return {"root": root, "dir": sweep_dir, "uri": f"sqlite:///{root / 'runs' / 'mlflow.db'}",
            "df": pd.read_parquet(sweep_dir / "results.parquet"), "stdout": out.getvalue()}


def test_the_sweep_prints_the_run_table_url_the_report_command_and_its_progress(sweep):
    import mlflow

    exp = mlflow.MlflowClient(sweep["uri"]).get_experiment_by_name("pdebench").experiment_id
    out = sweep["stdout"]
    assert (f"MLflow run table: http://127.0.0.1:5000/#/experiments/{exp}/runs"
            "?workflowType=machine_learning") in out
    assert f"python -m harness.report --sweep {sweep['dir']}" in out
    # not a terminal: plain progress lines, the last one counting every trial
    total = len(TASKS) * len(METHODS) * (3 + 2)
    assert f"{total}/{total} trials finished | about 0s left" in out
    assert "\x1b[" not in out


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
    # seconds per method stage: recraft runs report align and finetune, nft only finetune;
    # every run that reported an epoch has them, and no stage took longer than its run
    per_run = data.stages.groupby(["method", "run_id"]).stage.apply(frozenset)
    assert set(per_run.loc["recraft"]) == {frozenset({"align", "finetune"})}
    assert set(per_run.loc["nft"]) == {frozenset({"finetune"})}
    walls = df.drop_duplicates("mlflow_run_id").set_index("mlflow_run_id").wall_seconds
    totals = data.stages.groupby("run_id").seconds.sum()
    assert (totals <= walls.reindex(totals.index) + 1e-6).all()
    # Fig. 2 snapshots: one per cell, the same source cloud for every method of a task (the
    # seed-0 proxy features), the target features moved by recraft's stage 1 only
    assert set(data.snapshots) == {(t, m) for t in TASKS for m in METHODS}
    for t in TASKS:
        nft, rec = data.snapshots[(t, "nft")], data.snapshots[(t, "recraft")]
        assert np.array_equal(nft["source"], rec["source"])
        assert nft["target"].shape == rec["target"].shape
        assert nft["target"].shape[1] == nft["source"].shape[1]
        assert not nft["aligned"] and rec["aligned"]
        assert not np.allclose(nft["target"], rec["target"])


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


_FLOAT = re.compile(r"-?\d+\.\d+(?:e-?\d+)?")


def _numbers(text: str) -> list[float]:
    return [float(x) for x in _FLOAT.findall(text)]


def test_mlflow_ui_and_report_in_a_real_browser(sweep, report, tmp_path):
    """Run table -> one task's final runs -> compare view -> metric pages, then the report."""
    from browser import artifacts_dir, chromium, missing_browser, mlflow_server, wait_for_text

    why = missing_browser()
    if why:
        pytest.skip(f"no browser for the MLflow UI test: {why}")
    import shutil

    import mlflow

    from harness.report.links import (compare_runs_url, metric_view_url, runs_table_url,
                                      task_finals_filter)

    exp = mlflow.MlflowClient(sweep["uri"]).get_experiment_by_name("pdebench").experiment_id
    df = sweep["df"]
    task = TASKS[1]
    finals = df[(df.task == task) & (df.phase == "final") & (df.status == "ok")]
    test_rows = finals[finals.split == "test"].sort_values(["method", "seed"])
    val_rows = finals[finals.split == "val"]
    ids = list(test_rows.mlflow_run_id)
    shots = []

    def shot(driver, name):
        path = tmp_path / name
        driver.save_screenshot(str(path))
        shots.append(path)

    try:
        with mlflow_server(sweep["uri"], tmp_path / "mlflow-server.log") as base, \
                chromium(tmp_path / "chromium-profile") as driver:
            # 1. the run table, model-training view, filtered to the task's final runs: the
            # filter keeps the final runs and shows them under their cell runs
            driver.get(runs_table_url(exp, base, task_finals_filter(task)))
            text = wait_for_text(driver, [f"{task}/{m}" for m in METHODS] + ["matching runs"])
            assert "Model registry" in text and "Observability" not in text  # not the GenAI nav
            assert f"{len(ids) + len(METHODS)} matching runs" in text
            shot(driver, "mlflow-run-table.png")

            # 2. the compare view of those runs: one column per run, their methods in the tags
            driver.get(compare_runs_url(exp, ids, base))
            text = wait_for_text(driver, [f"Comparing {len(ids)} Runs", "harness.method"])
            row = next(line for line in text.splitlines() if line.startswith("harness.method "))
            assert row.split()[1:] == list(test_rows.method), row
            shot(driver, "mlflow-compare.png")

            # 3. each method's test_nrmse of every seed, at full precision
            # (one point per run: no "Completed Runs" header, but the latest/min/max table)
            driver.get(metric_view_url(exp, ids, "test_nrmse", base))
            text = wait_for_text(driver, ["Latest", "Max", "(step="])
            shown = _numbers(text)
            for r in test_rows.itertuples():
                assert any(math.isclose(v, r.value, rel_tol=1e-6) for v in shown), \
                    (r.method, r.seed, r.value)

            # 4. the val_nrmse curves: one plotted trace per run, their minima = the table's
            # final validation values (the best epoch)
            driver.get(metric_view_url(exp, ids, "val_nrmse", base))
            text = wait_for_text(driver, ["Completed Runs", f"{len(ids)}/{len(ids)}"])
            traces = driver.execute_script(
                "return document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length")
            assert traces >= len(ids)
            shown = _numbers(text)
            for r in val_rows.itertuples():
                assert any(math.isclose(v, r.value, rel_tol=1e-6) for v in shown), \
                    (r.method, r.seed, r.value)
            shot(driver, "mlflow-val-curves.png")

            # 5. the report: it loads and every image renders
            driver.get((report / "report.html").as_uri())
            wait_for_text(driver, ["Sweep report", "Learning curves"])
            imgs = driver.execute_script(
                "return Array.from(document.images).map(i => [i.getAttribute('src').slice(0, 40),"
                " i.complete, i.naturalWidth]);")
            assert len(imgs) >= len(FIGURE_FILES)
            assert all(complete and width > 0 for _, complete, width in imgs), imgs
            shot(driver, "report.png")
    finally:
        keep = artifacts_dir() / "browser"
        keep.mkdir(exist_ok=True)
        for p in shots:
            shutil.copy(p, keep / p.name)
    assert len(shots) == 4


def test_each_cells_study_is_persisted_for_optuna_dashboard(sweep):
    """The sweep's optuna.db holds one study per cell, matching the results table: every search
    trial, its state, and one intermediate value per epoch it ran (what ASHA saw)."""
    import optuna

    from harness.studies import dashboard_command, storage_url

    assert f"Searches:   {dashboard_command(sweep['dir'])}" in sweep["stdout"]
    storage = optuna.storages.RDBStorage(storage_url(sweep["dir"]))
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert names == {f"{t}/{m}" for t in TASKS for m in METHODS}
    df = sweep["df"]
    for (task, method), cell in df[df.phase == "search"].groupby(["task", "method"]):
        study = optuna.load_study(study_name=f"{task}/{method}", storage=storage)
        assert study.user_attrs["cell"] == f"{task}/{method}"
        trials = study.get_trials(deepcopy=False)
        assert len(trials) == len(cell) == 3
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        scored = cell[cell.status.isin(["ok", "stopped"])]
        assert len(done) == len(scored)
        # the table's value is a trial's best epoch; the study holds every epoch's value
        assert sorted(min(t.intermediate_values.values()) for t in done) == \
            pytest.approx(sorted(scored.value), rel=1e-6)
        assert sorted(len(t.intermediate_values) for t in done) == sorted(scored.epochs.astype(int))
        # each trial's parameters are the searched ones of its row's configuration
        configs = sorted(json.dumps({k: json.loads(c)[k] for k in done[0].params}, sort_keys=True)
                         for c in scored.config_json)
        assert sorted(json.dumps(t.params, sort_keys=True) for t in done) == configs


def test_optuna_dashboard_serves_the_sweeps_studies(sweep):
    """optuna-dashboard's own app (the one the printed command starts) lists each cell's study and
    serves its trials, intermediate values and parameter importances."""
    from wsgiref.util import setup_testing_defaults

    import optuna
    import optuna_dashboard

    from harness.studies import storage_url

    app = optuna_dashboard.wsgi(optuna.storages.RDBStorage(storage_url(sweep["dir"])))

    def get(path: str) -> dict:
        env: dict = {}
        setup_testing_defaults(env)
        env.update(PATH_INFO=path, REQUEST_METHOD="GET")
        status: list = []
        body = b"".join(app(env, lambda s, h, exc=None: status.append(s)))
        assert status[0].startswith("200"), (path, status, body[:500])
        return json.loads(body)

    summaries = get("/api/studies")["study_summaries"]
    assert {s["study_name"] for s in summaries} == {f"{t}/{m}" for t in TASKS for m in METHODS}
    for s in summaries:
        detail = get(f"/api/studies/{s['study_id']}")
        assert len(detail["trials"]) == 3 and detail["has_intermediate_values"]
        importances = get(f"/api/studies/{s['study_id']}/param_importances")["param_importances"]
        assert importances and importances[0], s["study_name"]


def test_the_leaderboard_html_links_cells_and_tasks_to_mlflow(sweep):
    """Each ranked cell's value opens its MLflow cell run; each task's header opens the compare
    view of that task's final test runs."""
    from urllib.parse import unquote

    import mlflow

    from harness.report.links import run_url

    client = mlflow.MlflowClient(sweep["uri"])
    exp = client.get_experiment_by_name("pdebench").experiment_id
    page = (sweep["dir"] / "leaderboard" / "leaderboard.html").read_text()
    hrefs = [h.replace("&amp;", "&") for h in re.findall(r'<a href="([^"]+)"', page)]
    df = sweep["df"]
    final = df[(df.phase == "final") & (df.split == "test") & (df.status == "ok")]
    cell_links = [h for h in hrefs if "/runs/" in h and "compare-runs" not in h]
    assert len(cell_links) == len(TASKS) * len(METHODS)
    for (task, method), rows in final.groupby(["task", "method"]):
        parent = client.get_run(rows.mlflow_run_id.iloc[0]).data.tags["mlflow.parentRunId"]
        assert run_url(exp, parent) in cell_links
        tags = client.get_run(parent).data.tags
        assert (tags["harness.task"], tags["harness.method"]) == (task, method)
    for task, rows in final.groupby("task"):
        ids = [i for m in sorted(set(rows.method)) for i in rows[rows.method == m].mlflow_run_id]
        compare = [h for h in hrefs if "compare-runs" in h and all(i in h for i in ids)]
        assert len(compare) == 1, task
        listed = unquote(compare[0].split("runs=")[1].split("&")[0])
        assert sorted(ids) == sorted(json.loads(listed))
