"""A planted fault is caught: a real smoke sweep (real Ray, MLflow, HDF5 files) with a method that
cannot learn (fine-tuning at learning rate 0, on a model that predicts about 0) shows it flagged
below the mean-field floor and ranked last, with the floors in the results and on the board."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.data import synth

ROOT = Path(__file__).parents[1]

BROKEN = '''
from harness.methods.space import Fixed
from baselines.nft import NaiveFineTuning


class BrokenFineTuning(NaiveFineTuning):
    """NFT that never moves: lr 0, and no output standardisation (so it predicts about 0)."""
    name = "broken-nft"
    version = "1"

    def search_space(self, task):
        return {"finetune.lr": Fixed(0.0), "finetune.weight_decay": Fixed(0.0)}

    def defaults(self, task):
        return {"finetune.lr": 0.0, "finetune.weight_decay": 0.0}

    def _model(self, ctx, align):
        import dataclasses
        ctx.profile = dataclasses.replace(ctx.profile, standardize=False)
        return super()._model(ctx, align)
'''


def test_a_method_that_cannot_learn_is_flagged_below_the_floor_and_ranked_last(tmp_path, monkeypatch):
    data = tmp_path / "data"
    synth.generate("darcy", data, size="tiny", seed=0)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for name in ("nft.py", "floor_mean.py", "floor_ridge.py"):
        (plugins / name).write_text((ROOT / "baselines" / name).read_text())
    (plugins / "broken.py").write_text(BROKEN)
    from harness.methods import discovery

    monkeypatch.setattr(discovery, "BASELINES_DIR", plugins)
    from harness.sweep import main

    rc = main(["--suite", "pdebench", "--tasks", "darcy", "--methods", "nft,broken-nft,mean,ridge",
               "--profile", "smoke", "--data-root", str(data), "--runs-dir", str(tmp_path / "runs"),
               "--name", "planted"])
    assert rc == 0
    sweep = tmp_path / "runs" / "planted"
    df = pd.read_parquet(sweep / "results.parquet")
    test = df[(df.phase == "final") & (df.split == "test")]
    assert set(test[test.method.isin(["mean", "ridge"])].role) == {"floor"}
    assert test[test.method == "mean"].backbone.isna().all()       # a floor uses no body
    floor = test[test.method == "mean"].value.mean()
    broken = test[test.method == "broken-nft"].value.mean()
    assert broken > floor                                           # worse than the mean field

    from harness.leaderboard import build_leaderboard

    lb = build_leaderboard(df, "synthetic")
    assert lb.cell("broken-nft", "darcy").below_floor
    assert lb.method_keys[-1] == "broken-nft"                       # ranked last
    assert lb.method("broken-nft").n_below_floor == 1
    board = (sweep / "leaderboard" / "leaderboard.md").read_text()
    assert "Below the mean-field floor: broken-nft on 1 task." in board
    assert "| mean |" in board and "| ridge |" in board
