"""The harness: suites, data, methods, trials, search, results, tracking, leaderboard."""
import os as _os

# Data-parallel trials use Ray Train's Tune integration (a TorchTrainer handed to the Tuner). Ray
# 2.60 defaults to Train "V2", where that integration is gone and the replacement hangs after an
# early stop; the flag must be set before anything imports ray.train (docs/ray-notes.md).
_os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "0")
_os.environ.setdefault("RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS", "0")
