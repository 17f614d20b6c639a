"""What a method asks of the source side, as data: the arguments of :func:`build_source_side`.

A method resolves a :class:`SourcePlan` from the task, the profile, its configuration and the
seed; the plan is compared between a method and its ablations (an ablation of the penalty must
train the head the same way) and built, through the source cache, by :meth:`SourcePlan.build`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from ..cache import ArtifactCache
    from .side import SourceSide

__all__ = ["SourcePlan"]


@dataclass(frozen=True)
class SourcePlan:
    """Proxy, head training (CE epochs, then penalty epochs, one cosine schedule over both),
    recalibration mode and level, and how the source features pool tokens."""

    proxy: str
    n_samples: int
    seed: int
    mode: str                   # paper | reference | none (see recraft.source.side)
    epsilon: float | None
    head_epochs: int            # plain CE epochs
    recal_epochs: int           # epochs of the penalty (mode "none": the same epochs without it)
    batch_size: int
    feature_pooling: str        # real_tokens | all_positions (1D)
    lr: float = 1e-4
    weight_decay: float = 0.05
    rho: float = 100.0

    def without_penalty(self) -> "SourcePlan":
        """The same head training with the recalibration penalty left out."""
        return replace(self, mode="none", epsilon=None)

    def features_only(self) -> "SourcePlan":
        """Only the source features are used (no FLD): no head is trained."""
        return replace(self, mode="none", epsilon=None, head_epochs=0, recal_epochs=0)

    def build(self, backbone: str, cache: "ArtifactCache | None", device: "torch.device | str"
              ) -> "SourceSide":
        from .side import build_source_side

        return build_source_side(backbone, cache=cache, device=device, **asdict(self))
