"""The sweep's trial scheduler: each cell's search trials under its own ASHA; finals always run."""
from __future__ import annotations

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from harness.engine.plan import CellPlan
from harness.keys import CELL_KEY, PHASE_KEY, SEARCH, unwrap


class CellScheduler(FIFOScheduler):
    """One ASHA per cell for search trials; final runs always continue."""

    def __init__(self, plans: list[CellPlan]):
        super().__init__()
        self.asha = {p.key: ASHAScheduler(time_attr="training_iteration", metric=p.metric,
                                          mode=p.mode, max_t=max(p.max_t, p.grace_period),
                                          grace_period=p.grace_period, reduction_factor=2)
                     for p in plans}
        # trials each ASHA was given (on_trial_add) and not yet told the end of: ASHA raises on
        # the end of a trial it never saw (e.g. one added before a restore); kept here rather
        # than read from ASHA's private bookkeeping
        self.added: dict[str, set[str]] = {k: set() for k in self.asha}

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True

    @staticmethod
    def _cell(trial) -> tuple[str | None, str | None]:
        cfg = unwrap(trial.config or {})
        return cfg.get(CELL_KEY), cfg.get(PHASE_KEY)

    def _asha(self, trial) -> tuple[str | None, ASHAScheduler | None]:
        key, phase = self._cell(trial)
        if phase != SEARCH or key not in self.asha:
            return None, None
        return key, self.asha[key]

    def on_trial_add(self, tune_controller, trial):
        key, asha = self._asha(trial)
        if asha is not None:
            asha.on_trial_add(tune_controller, trial)
            self.added[key].add(trial.trial_id)

    def on_trial_result(self, tune_controller, trial, result):
        _, asha = self._asha(trial)
        if asha is None or result.get("diverged"):
            return TrialScheduler.CONTINUE
        return asha.on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result):
        key, asha = self._asha(trial)
        if asha is not None and trial.trial_id in self.added[key]:
            self.added[key].discard(trial.trial_id)
            asha.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial):
        key, asha = self._asha(trial)
        if asha is not None and trial.trial_id in self.added[key]:
            self.added[key].discard(trial.trial_id)
            asha.on_trial_remove(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial):
        self.on_trial_remove(tune_controller, trial)
