"""Shared test settings: keep torch to one thread and Ray/HF offline and quiet."""
from __future__ import annotations

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:  # torch is a dependency, but the data tests do not need it
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
