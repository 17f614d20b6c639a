"""The quick profile's CPU recipe, piece by piece: standardisation, the linear 1D head, the
embedder bias, the sinusoidal positions of the random 1D preset, and the profile's lr mapping."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.profiles import PROFILES
from recraft.backbones import load_backbone, sinusoidal_table
from recraft.heads import LinearHead1D
from recraft.model import build_target_model, standardization_stats


def _data(shape_in=(1, 32), shape_out=(1, 32), n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, size=(n,) + shape_in).astype(np.float32)
    y = (rng.normal(0.0, 0.1, size=(n,) + shape_out) + 1.03).astype(np.float32)
    return x, y


def test_a_standardised_model_with_a_zero_head_predicts_the_train_mean_field():
    x, y = _data()
    model = build_target_model("roberta-tiny", x.shape[1:], y.shape[1:], target_seq_len=8,
                               dense_head_1d="linear").set_standardization(standardization_stats(x, y))
    with torch.no_grad():
        pred = model(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(pred, np.broadcast_to(y.mean(0), y.shape), rtol=1e-6, atol=1e-6)
    # without standardisation the same model predicts exactly 0
    plain = build_target_model("roberta-tiny", x.shape[1:], y.shape[1:], target_seq_len=8,
                               dense_head_1d="linear")
    with torch.no_grad():
        assert float(plain(torch.as_tensor(x)).abs().max()) == 0.0


def test_every_stage_sees_the_standardised_input():
    x, y = _data()
    stats = standardization_stats(x, y)
    model = build_target_model("roberta-tiny", x.shape[1:], y.shape[1:], target_seq_len=8)
    model.set_standardization(stats)
    xt = torch.as_tensor(x)
    expect = model.embedder((xt - stats["x_shift"]) / stats["x_scale"])
    assert torch.allclose(model.embed(xt), expect)
    assert torch.allclose(model.pooled_embedding(xt), expect.mean(dim=1))
    assert float(stats["x_scale"]) == pytest.approx(float((x - x.mean(0)).std()), rel=1e-5)
    # the buffers travel with the state dict (checkpoints and resumes)
    assert {"x_shift", "x_scale", "y_shift", "y_scale"} <= set(model.state_dict())


def test_embedder_bias_keeps_amplitudes_that_the_layernorm_would_erase():
    x = torch.ones(1, 1, 16)
    for bias, same in ((0.0, True), (1.0, False)):
        torch.manual_seed(0)
        model = build_target_model("roberta-tiny", (1, 16), (1, 16), target_seq_len=16,
                                   embedder_bias=bias)
        a, b = model.embed(x), model.embed(2 * x)
        assert torch.allclose(a, b, atol=1e-5) is same, f"bias {bias}"


def test_linear_head_lays_out_each_tokens_values_in_order():
    head = LinearHead1D(hidden_dim=2, num_tokens=3, out_channels=1, out_length=6)
    with torch.no_grad():
        assert float(head.linear.weight.abs().sum()) == 0.0      # zero-initialised
        head.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    assert head(h).tolist() == [[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]]


def test_the_random_1d_preset_has_unit_scale_sinusoidal_positions():
    bb = load_backbone("roberta-tiny")
    table = bb.input_embedding.position_embeddings.weight.detach()
    assert torch.allclose(table, sinusoidal_table(*table.shape))
    assert float(table.abs().max()) == pytest.approx(1.0, abs=1e-6)
    assert "sinusoidal" in bb.spec.source and not bb.spec.pretrained


def test_quick_profile_maps_paper_learning_rates_onto_its_own():
    quick, paper = PROFILES["quick"], PROFILES["paper"]
    assert quick.lr_factor(1e-4) * 1e-4 == pytest.approx(quick.finetune_lr)
    assert quick.lr_factor(1e-5) * 1e-6 == pytest.approx(quick.finetune_lr / 10)  # keeps ratios
    assert paper.lr_factor(1e-4) == 1.0 and paper.finetune_optimizer is None
    assert quick.target_seq_len(512) == 64 and quick.target_seq_len(32) == 32
    assert paper.target_seq_len(512) == 512
    assert not paper.standardize and paper.dense_head_1d == "pooler"
