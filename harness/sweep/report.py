"""What a sweep prints and publishes: the banner, the coverage/progress matrix, the dry run,
the leaderboard files and the closing summary."""
from __future__ import annotations

from pathlib import Path

from harness.sweep.planning import SweepPlan


def coverage_matrix(sp: SweepPlan, states: dict[str, dict] | None = None) -> str:
    """Task × method table of planned/skip (dry run) or live states with the best value so far."""
    methods = [m.name for m in sp.methods]
    width = max(14, *(len(m) + 2 for m in methods))
    lines = [f"{'task':<24}" + "".join(f"{m:>{width}}" for m in methods)]
    for t in sp.tasks:
        cells = []
        for m in methods:
            key = f"{t.name}/{m}"
            cov = sp.coverage[(t.name, m)]
            if states is None or cov.startswith("skip"):
                text = "planned" if cov == "planned" else "skip"
            else:
                st = states.get(key, {"state": "queued"})
                text = st.get("state", "queued")
                if st.get("best") is not None:
                    text += f" {t.metric.display(st['best'])}"
                text = text[:width - 1]
            cells.append(f"{text:>{width}}")
        lines.append(f"{t.name:<24}" + "".join(cells))
    if states is None:
        # the plan says why: each skipped cell with the method's own reason
        skips = [f"  {t}/{m}: {cov.removeprefix('skip: ')}"
                 for (t, m), cov in sp.coverage.items() if cov.startswith("skip")]
        if skips:
            lines += ["skipped (the method does not support the task):", *skips]
    return "\n".join(lines)


def banner(sp: SweepPlan, data_root: Path, tracking_uri: str) -> str:
    """Where results go, and for synthetic runs what their numbers are (and are not)."""
    from harness.tracking import ui_command
    from recraft.presets import describe_backbone

    from harness.data.facts import data_summary

    prof = sp.profile
    suite = sp.tasks[0].suite
    modalities = sorted({t.modality for t in sp.tasks})
    bodies = ", ".join(f"{m.upper()} {describe_backbone(prof.backbone(m))}" for m in modalities)
    facts = list(sp.data_facts.values())
    # what the files are, read from them: a quick profile may run on real-looking files too
    all_synthetic = all(f.source == "synthetic" for f in facts)
    first = (f"{prof.name.upper()} PROFILE: synthetic data in the suite's own format "
             f"({data_root}),") if all_synthetic else \
        f"{prof.name.upper()} PROFILE on {data_root}, data {data_summary(facts)},"
    lines = []
    if sp.synthetic:
        lines += ["=" * 78, first,
                  f"bodies: {bodies};",
                  f"{prof.finetune_epochs} epochs, {prof.num_samples} trials and {prof.seeds} seeds "
                  f"per cell, floors (reference predictors) beside the methods.",
                  ("Small synthetic problems and tiny bodies" if all_synthetic else
                   "Small budgets and tiny bodies") + ": not the paper's results.",
                  f"The real thing: python -m harness.data download --suite {suite} --root data/{suite}",
                  f"                python -m harness.sweep --suite {suite} --profile paper "
                  f"--data-root data/{suite}",
                  "=" * 78]
    if not sp.synthetic:
        lines += [f"bodies:     {bodies}",
                  f"data:       {data_summary(facts) or data_root}"]
    lines += [f"results:    {sp.results_dir}",
              f"MLflow:     {tracking_uri}  (experiment {sp.tasks[0].suite!r})",
              f"MLflow UI:  {ui_command(tracking_uri)}"]
    return "\n".join(lines)


def dry_run_text(sp: SweepPlan) -> str:
    """The plan: profile, data, each method's stages and space size, and the coverage matrix."""
    from harness.methods.space import searched, space_size

    prof = sp.profile
    lines = [f"sweep {sp.name!r}: suite {sp.tasks[0].suite}, profile {prof.name} "
             f"({prof.backbone_1d} / {prof.backbone_2d}), {prof.num_samples} trials and "
             f"{prof.seeds} seeds per cell, ASHA grace period {prof.grace_period} epochs",
             f"data: {sp.data_root or str(sp.synthetic_root) + ' (synthetic, generated on first use)'}",
             f"trial time limit: {_limit_text(sp)}",
             "", "methods:"]
    t0 = sp.tasks[0]
    for m in sp.methods:
        space = m.search_space(t0)
        size = space_size(space)
        lines.append(f"  {m.name:<18} v{m.version}  stages {' -> '.join(s.name for s in m.stages):<20} "
                     f"searched {len(searched(space))} ({'continuous' if size == float('inf') else int(size)})")
    for n, e in sp.broken.items():
        lines.append(f"  {n:<18} UNAVAILABLE: {(e.error or '').splitlines()[0]}")
    n_cells = sum(1 for v in sp.coverage.values() if v == "planned")
    # a method with nothing to search runs one search trial (CellPlan.of)
    trials = {m.name: (prof.num_samples if searched(m.search_space(t0)) else 1) + prof.seeds
              for m in sp.methods}
    n_runs = sum(trials[m] for (_, m), v in sp.coverage.items() if v == "planned")
    lines += ["", f"coverage ({n_cells} cells, {n_runs} trial runs):", coverage_matrix(sp),
              "", "dry run: nothing was run."]
    return "\n".join(lines)


def _limit_text(sp: SweepPlan) -> str:
    """The per-trial wall-clock limit of the plan (harness.engine.watchdog)."""
    from harness.progress import format_duration

    if sp.trial_timeout_given:
        return (f"{format_duration(sp.trial_timeout)} per trial (--trial-timeout)"
                if sp.trial_timeout else "none (--trial-timeout 0)")
    limits = sorted({sp.profile.trial_timeout(sp.profile.epochs(t.defaults.epochs))
                     for t in sp.tasks})
    span = format_duration(limits[0]) + (f" to {format_duration(limits[-1])}"
                                         if len(limits) > 1 else "")
    return f"{span} per trial (the {sp.profile.name} profile's, by epochs; --trial-timeout to change)"


def unavailable_warnings(sp: SweepPlan) -> list[str]:
    """One line per method plugin that could not be loaded."""
    return [f"warning: method plugin {n!r} ({e.origin}) is unavailable: "
            f"{(e.error or '').splitlines()[0]}" for n, e in sp.broken.items()]


def finish_leaderboard(df, sweep_dir: Path, tracker, sweep_run: str, reference: bool) -> str:
    """Write the leaderboard files, attach them to the sweep run, return the Markdown (the
    leaderboards are built once, for the files and the Markdown)."""
    from harness.leaderboard import build_leaderboards, leaderboard_markdown, write_leaderboard

    final = df[(df["phase"] == "final") & (df["split"] == "test")]
    if final.empty:
        return "(no final results: nothing to rank)"
    boards = build_leaderboards(df, reference=reference)
    links = None
    if tracker is not None and getattr(tracker, "experiment_id", None):
        from harness.report.board_links import mlflow_board_links, tracker_parent_of

        parent_of = tracker_parent_of(tracker)
        links = {lb.data_source: mlflow_board_links(lb, tracker.experiment_id,
                                                    tracker.tracking_uri, parent_of)
                 for lb in boards}
    files = write_leaderboard(df, sweep_dir / "leaderboard", reference=reference, boards=boards,
                              links=links)
    if tracker is not None:
        for path in files.values():
            tracker.log_file(sweep_run, path, artifact_path="leaderboard")
        tracker.log_file(sweep_run, sweep_dir / "results.parquet", artifact_path="results")
    return leaderboard_markdown(df, reference=reference, boards=boards)


def failed_cells(df) -> list[str]:
    """``task/method`` of every cell with a final run that did not end ok."""
    bad = df[(df.phase == "final") & (df.status != "ok")]
    return sorted(set(bad["task"] + "/" + bad["method"]))


def progress_printer(sp: SweepPlan, done_before: set[str], total_trials: int):
    """The engine's progress callback: the live matrix (cells finished earlier shown as such),
    elapsed time and a remaining-time estimate (:mod:`harness.progress`); ``.close()`` ends it."""
    from harness.progress import ProgressView, finished_trials

    view = ProgressView(total_trials=total_trials)

    def show(states: dict[str, dict]) -> None:
        full = {k: {"state": "done (earlier)"} for k in done_before}
        full.update(states)
        view.show(coverage_matrix(sp, full), finished_trials(states))

    show.close = view.close
    show.warn = view.warn            # stalled and timed-out trials (harness.engine.watchdog)
    return show


def run_table_hint(experiment_id: str, tracking_uri: str, sweep_dir) -> str:
    """Where to look once the UI runs: its run table (not the GenAI home), the report command and
    the searches' dashboard."""
    from harness.report.links import runs_table_url, ui_base_url
    from harness.studies import dashboard_command

    return (f"MLflow run table: {runs_table_url(experiment_id, ui_base_url(tracking_uri))}\n"
            f"Report:     python -m harness.report --sweep {sweep_dir}\n"
            f"Searches:   {dashboard_command(sweep_dir)}")
