"""One cell's Optuna study, driven through Optuna's public ask/tell API.

Ray's ``OptunaSearch`` wraps the same calls but has no public way to enqueue a partial trial
(which stage-1 groups need), so the engine talks to Optuna directly. The calls mirror
``OptunaSearch`` (in-memory study, no pruner, default points enqueued first, ``ask`` with the
fixed distributions, ``tell`` of the last reported value), so a seeded search proposes the same
configurations it did through Ray's wrapper.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

_log = logging.getLogger(__name__)


class CellStudy:
    """Ask/tell over one Optuna study, keyed by Tune trial id (picklable with its study)."""

    def __init__(self, space: Mapping[str, Any], mode: str, sampler,
                 first_points: list[dict[str, Any]] | None = None):
        import optuna

        self.space = dict(space)
        self.study = optuna.create_study(
            sampler=sampler, pruner=optuna.pruners.NopPruner(), study_name="optuna",
            direction="minimize" if mode == "min" else "maximize")
        for point in first_points or []:
            self.study.enqueue_trial(point)
        self.trials: dict[str, Any] = {}
        self.told: set[str] = set()
        self.reported: dict[str, set[int]] = {}

    def enqueue(self, params: Mapping[str, Any]) -> None:
        """Fix ``params`` in the next asked trial; the study samples the others."""
        self.study.enqueue_trial(dict(params))

    def ask(self, trial_id: str) -> dict[str, Any]:
        """The parameters of ``trial_id`` (asked once; the same answer when asked again)."""
        if trial_id not in self.trials:
            self.trials[trial_id] = self.study.ask(fixed_distributions=self.space)
        return dict(self.trials[trial_id].params)

    def report(self, trial_id: str, step: int, value: float) -> None:
        """Record ``value`` at ``step`` (an epoch) as the trial's intermediate value: what the
        scheduler saw, for the persisted study (the pruner is a no-op and TPE reads only the
        told values, so this changes no suggestion)."""
        if trial_id in self.told or trial_id not in self.trials:
            return
        # (a study checkpointed by an older harness has no ``reported``)
        seen = self.__dict__.setdefault("reported", {}).setdefault(trial_id, set())
        if step in seen:                    # a retried trial reports its epochs again
            return
        seen.add(step)
        self.trials[trial_id].report(float(value), int(step))

    def tell(self, trial_id: str, value: float | None, failed: bool = False) -> None:
        """Complete ``trial_id`` with ``value``; without one it failed (or, not failed, was pruned)."""
        from optuna.trial import TrialState

        if trial_id in self.told or trial_id not in self.trials:
            return
        state = TrialState.COMPLETE if value is not None else \
            TrialState.FAIL if failed else TrialState.PRUNED
        try:
            self.study.tell(self.trials[trial_id], value, state=state)
        except Exception as exc:  # noqa: BLE001 - as OptunaSearch: a bad value must not end the sweep
            _log.warning("optuna could not record trial %s: %s", trial_id, exc)
        self.told.add(trial_id)
