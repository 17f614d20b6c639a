"""2D bodies: Swin Transformers from ``timm``, by preset, weights file or timm folder."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .bundle import Backbone, BackboneSpec, Body2D
from .locate import (_SWIN_BASE_ARCH, _WEIGHT_FILES, BackboneNotFound, _how_swin_base, _not_found,
                     _seeded, _weights_in, find_swin_base_weights)

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
