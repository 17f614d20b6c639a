"""Run cells: every cell's search and final runs in one Tune experiment (new or restored)."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from harness.engine.callback import SweepCallback, active_callback, forget_active_callback
from harness.engine.plan import CellPlan
from harness.engine.registry import data_key, register
from harness.engine.scheduler import CellScheduler
from harness.engine.searcher import CellSearcher
from harness.engine.trainables import make_trainable
from harness.engine.watchdog import TrialLimits, TrialWatchdog, install_watchdog, trial_watch
from harness.keys import SEARCH


def run_cells(cells: Mapping[str, tuple], plans: list[CellPlan], search_data: Mapping[str, Any],
              *, name: str, storage_path: str, results_dir: str, meta: Mapping[str, dict],
              final_loader: Callable[[str], None] | None = None, max_concurrent: int = 1,
              max_failures: int = 0, workers: int = 1, cpus: float = 1.0, gpus: float = 0.0,
              tracker=None, sweep_run_id: str | None = None,
              progress: Callable[[dict], None] | None = None,
              restore_path: str | None = None, study_storage: str | None = None,
              limits: TrialLimits | None = None) -> SweepCallback:
    """Run every cell's search and final runs in one Tune experiment; returns the callback, which
    holds every trial's record (rows are written as cells finish).

    ``cells``: cell key -> (CellSpec, Method), for every cell the experiment has (a restored
    experiment re-adds its finished trials); ``search_data``: task -> its search TaskData;
    ``study_storage``: the URL each cell's Optuna study is copied to (:mod:`harness.studies`);
    ``limits``: each cell's per-trial wall-clock limit and stall warning (None: neither).
    """
    from ray import tune

    for task_name, data in search_data.items():
        register(data_key("", task_name, SEARCH), data)
    trial_watch()     # created (and so owned) by the driver, never by a trial that may be killed
    trainable, nested = make_trainable(cells, workers, cpus, gpus)
    searcher = CellSearcher(plans, nested=nested, on_search_done=final_loader,
                            study_storage=study_storage)
    callback = SweepCallback(plans, meta, results_dir, tracker=tracker, sweep_run_id=sweep_run_id,
                             progress=progress)
    callback.searcher = searcher
    if restore_path is not None:
        # a resumed experiment: Tune restores the searcher (every cell's study), the scheduler,
        # finished trials and the callback as they were checkpointed; unfinished trials rerun
        tuner = tune.Tuner.restore(restore_path, trainable=trainable, resume_unfinished=True,
                                   resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable, param_space={},
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=CellScheduler(plans),
                                        num_samples=-1, max_concurrent_trials=max(1, max_concurrent),
                                        reuse_actors=not nested),
            run_config=tune.RunConfig(name=name, storage_path=storage_path, verbose=0,
                                      callbacks=[callback],
                                      failure_config=tune.FailureConfig(max_failures=max_failures),
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    forget_active_callback()
    # this run's limits, also for a restored experiment (whose callback Tune unpickles)
    install_watchdog(TrialWatchdog(limits, warn=getattr(progress, "warn", None))
                     if limits is not None else None)
    try:
        tuner.fit()
        # the callback Tune ran: ours, or after a restore the one it unpickled
        return active_callback() or callback
    finally:
        forget_active_callback()
        install_watchdog(None)
