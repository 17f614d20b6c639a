"""How a NAS-Bench-360 task is built from its files and split (the records a ``Task`` carries)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Nb360Construction:
    """``reader`` names the builder in :mod:`harness.data.nb360.load`; ``params`` are the numbers it
    uses (they enter the task version). ``train_augment`` describes on-the-fly augmentation the
    upstream training loop applies and the reader does not (a training concern)."""

    reader: str
    params: dict[str, Any] = field(default_factory=dict)
    train_augment: str = ""


@dataclass(frozen=True)
class Nb360Split:
    """Test is always the published test set. Validation is the published validation set
    (``val="file"``) where one exists, else a fixed seeded ``val_fraction`` of the training
    items (``"carve"``); ORCA and RECRAFT select on test, which this harness never does.
    ``shuffle_seed`` orders samples where upstream shuffles (ECG windows)."""

    val: Literal["file", "carve"] = "carve"
    val_fraction: float = 0.1
    val_seed: int = 0
    shuffle_seed: int = 0
