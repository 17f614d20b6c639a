"""Facts about the body presets that need no torch (banner, leaderboard caption)."""
from __future__ import annotations

#: whether each preset's weights are pretrained (what the sweep's banner and leaderboard say)
PRESET_PRETRAINED = {"roberta-tiny": False, "swin-tiny-random": False, "minilm": True,
                     "roberta-base": True, "swin-base": True}


def describe_backbone(name: str) -> str:
    """``"roberta-tiny (random init, not pretrained)"``, ``"minilm (pretrained)"``; a path:
    ``"<path> (local weights)"``."""
    if name in PRESET_PRETRAINED:
        return f"{name} ({'pretrained' if PRESET_PRETRAINED[name] else 'random init, not pretrained'})"
    return f"{name} (local weights)"
