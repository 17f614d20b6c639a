"""Naive fine-tuning (NFT): no alignment stage; the embedder starts from its NFT init."""
from __future__ import annotations

from harness.methods.contract import Stage
from recraft.family import FINETUNE_KEYS, FineTuningMethod
from search_spaces import nft as nft_space


class NaiveFineTuning(FineTuningMethod):
    name = "nft"
    version = "1"
    summary = "Naive fine-tuning of embedder + body with the task loss"
    space_module = nft_space
    stages = (Stage("finetune", FINETUNE_KEYS),)
