"""What a cell's result rows say about epochs and bodies, the same way in search and final rows.

``epochs`` is the epochs a trial ran; ``best_epoch`` the epoch its value was taken at (the method's
selection when its last report names it, else the epoch of the best reported validation value).
A method that declares ``uses_body = False`` records no backbone.
"""
from __future__ import annotations

import math

import pandas as pd

from harness.engine.plan import CellPlan
from harness.engine.rows import TrialRecord, cell_rows, row_meta, selected_epoch
from harness.methods.contract import Method, Stage, recorded_backbone
from harness.methods.space import Fixed, LogFloat
from harness.profiles import PROFILES
from harness.results import COLUMNS, normalise
from harness.suites import get_suite
from harness.trial.context import CellSpec

TASK = get_suite("pdebench")["darcy"]


class Specialist(Method):
    name = "specialist"
    version = "1"
    uses_body = False
    stages = (Stage("finetune", ("finetune.lr", "finetune.weight_decay")),)

    def search_space(self, task):
        return {"finetune.lr": LogFloat(1e-4, 1e-2), "finetune.weight_decay": Fixed(1e-4)}

    def defaults(self, task):
        return {"finetune.lr": 1e-3, "finetune.weight_decay": 1e-4}


class WithBody(Specialist):
    name = "with-body"
    uses_body = True


def _plan() -> CellPlan:
    return CellPlan.of(TASK, Specialist(), num_samples=2, seeds=2, max_t=5, grace_period=1)


def _rows(search, finals) -> pd.DataFrame:
    return normalise(cell_rows({"task": "darcy", "method": "specialist"}, _plan(), search, finals,
                               True, "2026-01-01T00:00:00"))


def test_epochs_is_epochs_run_and_best_epoch_the_selected_one_in_search_and_final_rows():
    assert list(COLUMNS).index("best_epoch") == list(COLUMNS).index("epochs") + 1
    cfg = {"finetune.lr": 1e-3, "finetune.weight_decay": 1e-4}
    search = [TrialRecord("a", "darcy/specialist", "search", 0, cfg, status="ok", best=0.3,
                          epochs=5, best_epoch=2, last={"val_nrmse": 0.4, "epoch": 5}),
              TrialRecord("b", "darcy/specialist", "search", 0, cfg, status="stopped", best=0.5,
                          epochs=1, best_epoch=1, last={"val_nrmse": 0.5, "epoch": 1})]
    # a final run whose fit names its selected epoch in the last report (as ctx.fit does)
    final = TrialRecord("f", "darcy/specialist", "final", 1, cfg, status="ok", best=0.2, epochs=5,
                        best_epoch=3, last={"test_nrmse": 0.25, "best_epoch": 3, "epoch": 5})
    rows = _rows(search, [final])
    by = {(r.phase, r.trial_id, r.split): r for r in rows.itertuples()}
    assert (by["search", "a", "val"].epochs, by["search", "a", "val"].best_epoch) == (5, 2)
    assert (by["search", "b", "val"].epochs, by["search", "b", "val"].best_epoch) == (1, 1)
    for split in ("test", "val"):
        row = by["final", "seed-1", split]
        assert (row.epochs, row.best_epoch) == (5, 3)      # not best_epoch under "epochs"
    assert by["final", "seed-1", "test"].value == 0.25


def test_best_epoch_falls_back_to_the_best_reported_validation_epoch():
    # a method with its own loop that never reports best_epoch
    r = TrialRecord("f", "c", "final", 1, {}, status="ok", best=0.2, epochs=4, best_epoch=2,
                    last={"test_nrmse": 0.3})
    assert selected_epoch(r) == 2
    r.last["best_epoch"] = 4
    assert selected_epoch(r) == 4
    assert selected_epoch(TrialRecord("g", "c", "search", 0, {})) is None
    rows = _rows([TrialRecord("n", "darcy/specialist", "search", 0, {}, status="failed",
                              error="boom")], [])
    assert rows.iloc[0].epochs == 0 and pd.isna(rows.iloc[0].best_epoch)
    assert math.isnan(rows.iloc[0].value)


def test_a_method_without_a_body_records_no_backbone():
    prof = PROFILES["quick"]
    assert recorded_backbone(prof, Specialist(), TASK) is None
    assert recorded_backbone(prof, WithBody(), TASK) == prof.backbone("2d")
    for method, expected in ((Specialist(), None), (WithBody(), prof.backbone("2d"))):
        cell = CellSpec(sweep="s", suite="pdebench", task="darcy", method=method.name, profile=prof)
        meta = row_meta(cell, method, TASK, "synthetic", "s")
        assert meta["row"]["backbone"] == expected
        assert meta["tags"]["harness.backbone"] == (expected or "none")


def test_the_preflight_checks_no_body_for_a_method_without_one():
    from harness.sweep.preflight import planned_bodies

    class Plan:
        profile = PROFILES["quick"]

        def planned(self):
            return [(TASK, Specialist()), (TASK, WithBody())]

    assert planned_bodies(Plan()) == {PROFILES["quick"].backbone("2d"): ["darcy/with-body"]}
