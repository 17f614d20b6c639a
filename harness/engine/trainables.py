"""The function Tune runs for every trial of a sweep: the light path or a data-parallel trainer.

Both look the trial's cell up in ``cells`` (cell key -> (CellSpec, Method)), fetch the data its
phase may read from the registry, and run the trial body of :mod:`harness.trial.loop`.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from harness.engine.registry import cell_data
from harness.keys import CELL_KEY, PHASE_KEY, SEED_KEY, method_config


def _trial_inputs(config: Mapping[str, Any], cells: Mapping[str, tuple]):
    """(cell spec in the trial's phase, method, data, method config with the seed)."""
    key, phase = config[CELL_KEY], config[PHASE_KEY]
    cell, method = cells[key]
    data = cell_data(cell, key, phase)
    return replace(cell, phase=phase), method, data, \
        method_config(config) | {SEED_KEY: config[SEED_KEY]}


def sweep_trainable(config: dict, cells: Mapping[str, tuple] = None) -> None:
    """The light path: one worker, in the (reused) Tune trial actor."""
    from ray import tune

    from harness.engine.watchdog import enrol_trial
    from harness.trial.loop import tune_trainable   # sets the trial's torch threads

    enrol_trial(tune.get_context().get_trial_id())   # first: the data fetch below may hang too
    cell, method, data, trial_config = _trial_inputs(config, cells)
    tune_trainable(trial_config, cell=cell, method=method, data=data)


def sweep_train_loop(config: dict, cells: Mapping[str, tuple] = None) -> None:
    """The data-parallel path: every TorchTrainer worker runs the same loop."""
    import ray.train
    import torch

    from harness.engine.watchdog import enrol_trial
    from harness.trial.loop import trial_body
    from harness.trial.session import TrainSession

    enrol_trial(ray.train.get_context().get_trial_id())   # every rank: all are stopped together
    cell, method, data, trial_config = _trial_inputs(config, cells)
    torch.set_num_threads(max(1, int(cell.cpus_per_trial)))
    trial_body(TrainSession(), cell, method, data, trial_config)


def make_trainable(cells: Mapping[str, tuple], workers: int, cpus: float, gpus: float):
    """(trainable, nested): the light function trainable, or one TorchTrainer for DDP trials."""
    import functools

    from ray import tune

    if workers > 1:
        import ray.train
        from ray.train.torch import TorchTrainer

        per_worker = {"CPU": cpus}
        if gpus:
            per_worker["GPU"] = gpus / workers
        trainer = TorchTrainer(functools.partial(sweep_train_loop, cells=cells),
                               scaling_config=ray.train.ScalingConfig(
                                   num_workers=workers, use_gpu=gpus > 0,
                                   resources_per_worker=per_worker, trainer_resources={"CPU": 0}))
        return trainer, True

    def resources(config: Mapping[str, Any]) -> dict[str, float]:
        # per cell: the --cpus/--gpus-per-trial flags, or the method's resources hint
        cell = cells[config[CELL_KEY]][0]
        res = {"cpu": cell.cpus_per_trial}
        if cell.gpus_per_trial:
            res["gpu"] = cell.gpus_per_trial
        return res

    return tune.with_resources(tune.with_parameters(sweep_trainable, cells=cells), resources), False
