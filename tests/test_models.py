"""Backbones, embedders, heads and the target model on the tiny random presets (CPU, seconds)."""
from __future__ import annotations

import socket

import pytest
import torch

from recraft.backbones import BackboneNotFound, load_backbone, save_backbone
from recraft.embedders import Embedder1D, stride_for, token_count
from recraft.heads import DenseDecoder2D, DensePooler1D
from recraft.model import TargetModel, build_target_model

torch.set_num_threads(1)


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection attempt fails the test: loaders must stay offline."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Point every cache location at empty folders."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("RECRAFT_BACKBONE_DIR", str(tmp_path / "backbones"))
    return tmp_path


# ---------------------------------------------------------------- stride rule (spec §1.2 table)


@pytest.mark.parametrize(
    "length,target,stride,tokens",
    [
        (256, 512, 1, 256),  # Advection
        (256, 128, 2, 128),  # Burgers as configured (L_cfg = 256)
        (1024, 128, 8, 128),  # Burgers, our resolution: stride from the fed length
        (1024, 256, 4, 256),  # Diffusion-Reaction 1D
        (1024, 32, 32, 32),  # Diffusion-Sorption
        (3072, 128, 24, 128),  # 1D CFD
    ],
)
def test_stride_rule_reproduces_token_table(length, target, stride, tokens):
    assert stride_for(length, target) == stride
    assert token_count(length, target) == tokens


def test_reference_burgers_mismatch_gives_512_tokens():
    # the reference computes s from L_cfg = 256 but feeds 1024 samples: 512 tokens
    s = stride_for(256, 128)
    assert 1024 // s == 512
    m = build_target_model("roberta-tiny", (1, 1024), (1, 1024), stride=s)
    assert m.num_tokens == 512
    assert m(torch.randn(1, 1, 1024)).shape == (1, 1, 1024)


def test_stride_is_smallest_divisor():
    for length in (7, 12, 100, 3072):
        for target in (1, 3, 10, 64):
            s = stride_for(length, target)
            assert length % s == 0 and length // s <= target
            assert all(length % d or length // d > target for d in range(1, s))


# ---------------------------------------------------------------- target model shapes


@pytest.mark.parametrize(
    "backbone,in_shape,out_shape,target",
    [
        ("roberta-tiny", (1, 256), (1, 256), 512),
        ("roberta-tiny", (1, 3072), (1, 3072), 128),
        ("roberta-tiny", (1, 1024), (1, 1024), 32),
        ("roberta-tiny", (2, 1024), (3, 512), 256),
        ("swin-tiny-random", (1, 64, 64), (1, 64, 64), None),
        ("swin-tiny-random", (1, 128, 128), (1, 128, 128), None),
        ("swin-tiny-random", (2, 128, 128), (4, 32, 48), None),
    ],
)
def test_dense_forward_shapes(no_network, backbone, in_shape, out_shape, target):
    m = build_target_model(backbone, in_shape, out_shape, target_seq_len=target).eval()
    b = 4 if len(in_shape) == 2 else 2
    x = torch.randn(b, *in_shape)
    y = m(x)
    assert y.shape == (b, *out_shape)
    assert torch.isfinite(y).all()
    spec = m.spec
    tokens = m.embed(x)
    assert tokens.shape == (b, m.num_tokens, spec.embed_dim)
    assert m.pooled_embedding(x).shape == (b, spec.embed_dim)
    assert torch.allclose(m.pooled_embedding(x), m.embedder.pooled(x), atol=1e-6)
    assert m.body_features(x).shape == (b, spec.hidden_dim)
    assert m.token_features(x).shape[0] == b and m.token_features(x).shape[2] == spec.hidden_dim
    # gradients reach embedder and body
    y.sum().backward()
    assert m.embedder.conv.weight.grad is not None
    assert any(p.grad is not None for p in m.body.parameters())


def test_1d_dense_head_has_no_parameters():
    m = build_target_model("roberta-tiny", (1, 1024), (1, 1024), target_seq_len=256)
    assert isinstance(m.head, DensePooler1D)
    assert sum(p.numel() for p in m.head.parameters()) == 0


def test_dense_pooler_layout():
    # token t's s bins of channel c land at positions t*s .. t*s+s-1: hidden units [0..3] [4..7] of each token
    h = torch.arange(2 * 8, dtype=torch.float32).reshape(1, 2, 8)
    out = DensePooler1D(num_tokens=2, out_channels=1, out_length=4)(h)
    assert out.shape == (1, 1, 4)
    assert out.flatten().tolist() == [1.5, 5.5, 9.5, 13.5]


def test_2d_decoder_sized_for_final_grid():
    m = build_target_model("swin-tiny-random", (1, 64, 64), (1, 64, 64))
    assert isinstance(m.head, DenseDecoder2D)
    gh, _ = m.spec.final_grid
    assert m.head.upscale == m.spec.image_size // gh
    assert m.head.conv.out_channels == m.head.upscale**2 * 3


def test_point_heads():
    m1 = build_target_model("roberta-tiny", (1, 256), 9).eval()
    assert m1(torch.randn(3, 1, 256)).shape == (3, 9)
    m2 = build_target_model("swin-tiny-random", (3, 32, 32), (10,)).eval()
    assert m2(torch.randn(3, 3, 32, 32)).shape == (3, 10)


def test_input_kind_mismatch_is_an_error():
    with pytest.raises(ValueError, match="1D"):
        build_target_model("swin-tiny-random", (1, 256), (1, 256))
    with pytest.raises(ValueError, match="2D"):
        build_target_model("roberta-tiny", (1, 64, 64), (1, 64, 64))


# ---------------------------------------------------------------- embedder initialisation


def test_1d_init_copies_norm_and_positions_and_nft_resets_norm():
    bb = load_backbone("roberta-tiny")
    with torch.no_grad():  # make the body's LN distinguishable from 1/0
        bb.input_embedding.LayerNorm.weight.mul_(1.5).add_(0.1)
        bb.input_embedding.LayerNorm.bias.add_(0.2)
    ref_ln_w = bb.input_embedding.LayerNorm.weight.clone()
    ref_pos = bb.input_embedding.position_embeddings.weight.clone()
    m = build_target_model(bb, (1, 256), (1, 256), target_seq_len=128, align=True)
    emb = m.embedder
    assert isinstance(emb, Embedder1D)
    assert torch.equal(emb.norm.weight, ref_ln_w)
    assert torch.equal(emb.position_embeddings.weight, ref_pos)
    assert emb.position_ids[0].item() == 2  # RoBERTa: padding_idx 1 -> positions from 2
    assert float(emb.conv.bias.detach().abs().max()) == 0.0

    bb2 = load_backbone("roberta-tiny")
    with torch.no_grad():
        bb2.input_embedding.LayerNorm.weight.mul_(1.5)
    nft = build_target_model(bb2, (1, 256), (1, 256), target_seq_len=128, align=False).embedder
    assert torch.equal(nft.norm.weight, torch.ones_like(nft.norm.weight))
    assert torch.equal(nft.norm.bias, torch.zeros_like(nft.norm.bias))
    assert torch.equal(nft.position_embeddings.weight, bb2.input_embedding.position_embeddings.weight)


def test_2d_init_recraft_vs_orca():
    bb = load_backbone("swin-tiny-random")
    w = bb.input_embedding.proj.weight.clone()  # (D, 3, p, p)
    b = bb.input_embedding.proj.bias.clone()
    orca = build_target_model(bb, (5, 64, 64), (1, 64, 64), embedder_init="orca").embedder
    tiled = torch.cat([w, w], dim=1)[:, :5]
    assert torch.equal(orca.conv.weight, tiled)
    assert torch.equal(orca.conv.bias, b)
    assert torch.equal(orca.norm.weight, bb.input_embedding.norm.weight)

    rec = build_target_model("swin-tiny-random", (5, 64, 64), (1, 64, 64), embedder_init="recraft").embedder
    assert not torch.equal(rec.conv.weight[:, :3], w)
    assert float(rec.conv.bias.detach().abs().max()) == 0.0
    nft = build_target_model("swin-tiny-random", (1, 64, 64), (1, 64, 64), align=False).embedder
    assert torch.equal(nft.norm.weight, torch.ones_like(nft.norm.weight))


def test_random_presets_are_deterministic():
    a = load_backbone("swin-tiny-random").body.state_dict()
    torch.manual_seed(123)
    b = load_backbone("swin-tiny-random").body.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    r1 = load_backbone("roberta-tiny").body.state_dict()
    r2 = load_backbone("roberta-tiny").body.state_dict()
    assert all(torch.equal(r1[k], r2[k]) for k in r1)


# ---------------------------------------------------------------- loading by path, missing weights


def test_backbone_roundtrip_through_a_local_path(tmp_path, no_network):
    for name in ("swin-tiny-random", "roberta-tiny"):
        bb = load_backbone(name)
        d = save_backbone(bb, tmp_path / name)
        again = load_backbone(str(d))
        assert again.spec.kind == bb.spec.kind and again.spec.hidden_dim == bb.spec.hidden_dim
        assert again.spec.pretrained
        s1, s2 = bb.body.state_dict(), again.body.state_dict()
        assert set(s1) == set(s2) and all(torch.equal(s1[k], s2[k]) for k in s1)
        in_shape = (1, 64, 64) if bb.spec.kind == "2d" else (1, 128)
        m = build_target_model(str(d), in_shape, in_shape).eval()
        assert m(torch.randn(2, *in_shape)).shape == (2, *in_shape)


def test_missing_roberta_base_names_every_place(empty_caches, no_network):
    with pytest.raises(BackboneNotFound) as err:
        load_backbone("roberta-base", path=empty_caches / "nowhere")
    msg = str(err.value)
    assert str(empty_caches / "nowhere") in msg
    assert str(empty_caches / "backbones" / "roberta-base") in msg
    assert str(empty_caches / "hf" / "hub" / "models--FacebookAI--roberta-base") in msg
    assert "models--roberta-base" in msg
    assert "RECRAFT_BACKBONE_DIR" in msg and "path=" in msg and "HF_HOME" in msg and "network" in msg


def test_missing_swin_base_names_every_place(empty_caches, no_network):
    with pytest.raises(BackboneNotFound) as err:
        load_backbone("swin-base", path=empty_caches / "swin.safetensors")
    msg = str(err.value)
    assert str(empty_caches / "swin.safetensors") in msg
    assert "models--timm--swin_base_patch4_window7_224.ms_in22k" in msg
    assert str(empty_caches / "hf" / "hub") in msg
    assert "swin_base_patch4_window7_224_22k.pth" in msg
    assert "RECRAFT_BACKBONE_DIR" in msg and "path=" in msg and "HF_HOME" in msg


def test_missing_local_path_and_unknown_repo(empty_caches, no_network):
    with pytest.raises(BackboneNotFound, match="does not exist"):
        load_backbone(str(empty_caches / "no_such_dir" / "model"))
    with pytest.raises(BackboneNotFound, match="models--someone--tiny-bert"):
        load_backbone("someone/tiny-bert")


def test_swin_base_found_in_hf_cache_layout(empty_caches):
    from recraft.backbones import find_swin_base_weights

    snap = empty_caches / "hf" / "hub" / "models--timm--swin_base_patch4_window7_224.ms_in22k" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").write_bytes(b"not really weights")
    found, looked = find_swin_base_weights()
    assert found == snap / "model.safetensors"
    # a corrupt file is reported, not silently used
    with pytest.raises(BackboneNotFound, match="could not read Swin weights"):
        load_backbone("swin-base")


def test_target_model_is_a_module_with_parameter_groups():
    m = build_target_model("roberta-tiny", (1, 256), (1, 256))
    assert isinstance(m, TargetModel)
    n_all = sum(p.numel() for p in m.parameters())
    n_parts = sum(p.numel() for g in (m.embedder_parameters(), m.body_parameters(), m.head_parameters()) for p in g)
    assert n_all == n_parts
    # the body's own word embeddings are not part of the target model
    assert not any("word_embeddings" in n for n, _ in m.named_parameters())


def test_roberta_base_found_in_hf_cache_layout(empty_caches, no_network):
    # a (tiny) checkpoint laid out like the Hugging Face cache stands in for roberta-base
    repo = empty_caches / "hf" / "hub" / "models--FacebookAI--roberta-base"
    snap = repo / "snapshots" / "0123abcd"
    save_backbone(load_backbone("roberta-tiny"), snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    bb = load_backbone("roberta-base")
    assert bb.spec.pretrained and bb.spec.hidden_dim == 64 and bb.spec.position_offset == 2
    assert "HF cache FacebookAI/roberta-base" in bb.spec.source
    m = build_target_model(bb, (1, 256), (1, 256), target_seq_len=512).eval()
    assert m(torch.randn(2, 1, 256)).shape == (2, 1, 256)
