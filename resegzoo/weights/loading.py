"""The public loading API: turn a model spec into an open_clip model, or into a state dict.

A *spec* is one of

* a registry name (``remoteclip-vit-l-14``; ``resegzoo list variants``),
* a checkpoint file: ``.pt``/``.pth``/``.bin``/``.ckpt`` (pickled state dict), ``.safetensors``,
  or a SkyCLIP-style ``.zip``; its architecture comes from ``architecture=`` (CLI ``--arch``), else
  from an ``open_clip_config.json`` beside it, else from the tensor shapes when they are unambiguous,
* a folder or ``local-dir:DIR`` holding ``open_clip_config.json`` + weights (open_clip's layout,
  what ``resegzoo compose`` writes),
* ``hf-hub:ORG/REPO`` (open_clip's Hub layout).
"""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resegzoo.weights.checkpoint_files import (
    WEIGHT_SUFFIXES,
    CheckpointError,
    infer_architectures,
    read_state_dict,
)
from resegzoo.weights.zoo import ClipVariant

LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"
#: preferred weight files in an open_clip folder, best first (open_clip's own order)
FOLDER_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                  "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth",
                  "model.safetensors", "pytorch_model.bin")


class LoadError(CheckpointError):
    """A spec that cannot be loaded; the message says what is wrong and what to do."""


@dataclass
class LoadedClip:
    """An open_clip model ready for inference, with what is needed to feed it."""

    model: Any  # open_clip.CLIP (or CustomTextCLIP), eval mode
    tokenizer: Callable[[list[str]], Any]  # list of strings -> LongTensor (N, context_length)
    name: str
    architecture: str
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    variant: ClipVariant | None = None


@dataclass
class _Source:
    """Where a spec's weights and config come from."""

    name: str
    variant: ClipVariant | None
    architecture: str | None  # open_clip model name, or a label for a config dict
    model_config: dict | None  # open_clip model cfg; None -> open_clip's config for architecture
    preprocess: dict = field(default_factory=dict)
    path: Path | None = None  # resolved lazily (may download)
    folder: str | None = None  # local folder or hf repo holding open_clip_config.json


def _is_path_like(spec: str) -> bool:
    return (spec.startswith((LOCAL_DIR, HF_HUB)) or "/" in spec or "\\" in spec
            or spec.lower().endswith(WEIGHT_SUFFIXES) or Path(spec).exists())


def resolve_variant(spec: str) -> ClipVariant | None:
    """The registry variant called ``spec``; None when ``spec`` is a path or a ``local-dir:``/``hf-hub:`` id.

    An unknown name raises :class:`resegzoo.plugins.registry.UnknownNameError` suggesting close names.
    """
    if _is_path_like(spec):
        return None
    from resegzoo.plugins.registry import get_registry

    return get_registry().variants.get(spec)


def checkpoint_path(spec: str) -> Path:
    """The local weight file behind ``spec``, downloaded (into the cache) if needed."""
    return _weights_path(_source(spec, None))


def load_state_dict(spec: str, *, architecture: str | None = None) -> tuple[dict[str, Any], str]:
    """``(state_dict, architecture)`` of ``spec``, unwrapped and ready to average or load."""
    src = _source(spec, architecture)
    sd = read_state_dict(_weights_path(src))
    arch = src.architecture or _infer_single_architecture(sd, spec)
    return sd, arch


def load_clip(spec: str, *, device: str = "cpu", architecture: str | None = None) -> LoadedClip:
    """Build the open_clip model of ``spec`` and load its weights strictly."""
    src = _source(spec, architecture)
    if src.variant is not None and src.variant.format == "custom":
        raise LoadError(
            f"variant {src.name!r} is built by its plugin (format 'custom'), not loaded as an open_clip "
            f"model; the segmenter builds it directly (ClipVariant.build)"
        )
    sd = read_state_dict(_weights_path(src))
    if src.architecture is None:
        src.architecture = _infer_single_architecture(sd, spec)
    loaded = build_clip(sd, _model_config(src), name=src.name, architecture=src.architecture,
                        preprocess=src.preprocess, device=device)
    loaded.variant = src.variant
    return loaded


def build_clip(state_dict: dict[str, Any], model_config: dict, *, name: str, architecture: str | None = None,
               preprocess: dict | None = None, device: str = "cpu") -> LoadedClip:
    """THE builder of open_clip models from a config and weights: segment, eval and compose's
    scoring all come through here, so every model is built, loaded and tokenised the same way.

    ``architecture``: the open_clip name (or a label) behind ``model_config``; ``preprocess``: its
    ``mean``/``std`` (OpenAI's when absent).
    """
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    preprocess = preprocess or {}
    model = _build_model(model_config)
    _load_strict(model, state_dict, name, architecture)
    model = model.to(device).eval()
    image_size = model.visual.image_size
    image_size = image_size[0] if isinstance(image_size, (tuple, list)) else image_size
    return LoadedClip(
        model=model,
        tokenizer=_tokenizer(architecture, model_config),
        name=name,
        architecture=architecture or "custom open_clip config",
        image_size=int(image_size),
        mean=tuple(preprocess.get("mean", OPENAI_DATASET_MEAN)),
        std=tuple(preprocess.get("std", OPENAI_DATASET_STD)),
    )


# -- resolving a spec ---------------------------------------------------------------------------


def _source(spec: str, architecture: str | None) -> _Source:
    variant = resolve_variant(spec)
    if variant is not None:
        preprocess = {}
        if variant.format == "openclip-pretrained":
            from open_clip.pretrained import get_pretrained_cfg

            cfg = get_pretrained_cfg(variant.architecture, variant.pretrained_tag or "")
            preprocess = {k: cfg[k] for k in ("mean", "std") if k in cfg}
        return _Source(variant.name, variant, architecture or variant.architecture, variant.model_config, preprocess)
    if spec.startswith(HF_HUB):
        repo = spec[len(HF_HUB):]
        config = json.loads(_hf_file(repo, "open_clip_config.json").read_text(encoding="utf-8"))
        return _from_config(spec, config, architecture, folder=repo)
    path = Path(spec[len(LOCAL_DIR):] if spec.startswith(LOCAL_DIR) else spec).expanduser()
    if spec.startswith(LOCAL_DIR) or path.is_dir():
        config_file = path / "open_clip_config.json"
        if not config_file.is_file():
            raise LoadError(f"{path}: expected an open_clip model folder with open_clip_config.json "
                            f"and weights; {'the folder does not exist' if not path.is_dir() else 'no config there'}")
        config = json.loads(config_file.read_text(encoding="utf-8"))
        return _from_config(spec, config, architecture, folder=str(path))
    if not path.is_file():
        raise LoadError(f"{spec}: no such file, folder or registry name (names have no '/' or file "
                        f"extension; see `resegzoo list variants`)")
    beside = path.parent / "open_clip_config.json"
    if architecture is None and beside.is_file():
        src = _from_config(spec, json.loads(beside.read_text(encoding="utf-8")), None, folder=None)
        src.path = path
        return src
    _check_architecture_name(architecture)
    return _Source(path.name, None, architecture, None, path=path)


def _from_config(spec: str, config: dict, architecture: str | None, folder: str | None) -> _Source:
    if "model_cfg" not in config:
        raise LoadError(f"{spec}: open_clip_config.json has no 'model_cfg' entry (not an open_clip model folder)")
    if architecture is not None:  # an explicit architecture wins over the folder's config
        _check_architecture_name(architecture)
        return _Source(spec, None, architecture, None, config.get("preprocess_cfg", {}), folder=folder)
    label = config.get("architecture") or Path(folder or spec).name
    return _Source(spec, None, label, config["model_cfg"], config.get("preprocess_cfg", {}), folder=folder)


def _check_architecture_name(architecture: str | None) -> None:
    import difflib

    import open_clip

    if architecture is not None and open_clip.get_model_config(architecture) is None:
        close = difflib.get_close_matches(architecture, open_clip.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see open_clip.list_models())"
        raise LoadError(f"unknown open_clip architecture {architecture!r}{hint}")


def _weights_path(src: _Source) -> Path:
    if src.path is not None:
        return src.path
    if src.variant is not None:
        from resegzoo.weights.hub import fetch

        src.path = fetch(src.variant)
    elif src.folder is not None and Path(src.folder).is_dir():
        found = [Path(src.folder) / f for f in FOLDER_WEIGHTS if (Path(src.folder) / f).is_file()]
        if not found:
            raise LoadError(f"{src.folder}: no weights found (expected one of {', '.join(FOLDER_WEIGHTS)})")
        src.path = found[0]
    elif src.folder is not None:
        src.path = _hf_weights(src.folder)
    else:
        raise LoadError(f"{src.name}: no weights to load")
    return src.path


def _hf_file(repo: str, filename: str) -> Path:
    from resegzoo.weights.hub import FetchError, fetch_hf_file

    try:
        return fetch_hf_file(repo, filename, f"hf-hub:{repo}")
    except FetchError as exc:
        raise LoadError(str(exc)) from exc


def _hf_weights(repo: str) -> Path:
    errors = []
    for filename in FOLDER_WEIGHTS[:4]:
        try:
            return _hf_file(repo, filename)
        except LoadError as exc:
            errors.append(str(exc))
    raise LoadError(f"hf-hub:{repo}: no open_clip weights found ({'; '.join(errors[:1])})")


def _infer_single_architecture(sd: dict, spec: str) -> str:
    candidates = infer_architectures(sd)
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise LoadError(
            f"{spec}: the tensor shapes fit several open_clip architectures ({', '.join(candidates)}); "
            f"pass one with --arch / architecture= (OpenAI-derived weights need the -quickgelu one)"
        )
    raise LoadError(
        f"{spec}: cannot tell its architecture: pass an open_clip model name with --arch / "
        f"architecture=, or put an open_clip_config.json beside the weights"
    )


# -- building and loading -----------------------------------------------------------------------


def _model_config(src: _Source) -> dict:
    import open_clip

    if src.model_config is not None:
        return copy.deepcopy(src.model_config)
    cfg = open_clip.get_model_config(src.architecture or "")
    if cfg is None:
        raise LoadError(f"{src.name}: open_clip has no architecture {src.architecture!r}")
    return cfg


def _build_model(model_cfg: dict) -> Any:
    from open_clip.coca_model import CoCa
    from open_clip.model import CLIP, CustomTextCLIP

    cfg = copy.deepcopy(model_cfg)
    # Never let a tower fetch its own pretrained weights: the checkpoint provides all of them.
    if "timm_model_name" in cfg.get("vision_cfg", {}):
        cfg["vision_cfg"]["timm_model_pretrained"] = False
    if "hf_model_name" in cfg.get("text_cfg", {}):
        cfg["text_cfg"]["hf_model_pretrained"] = False
    custom_text = cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {})
    model_class = (CoCa if "multimodal_cfg" in cfg else CustomTextCLIP) if custom_text else CLIP
    return model_class(**cfg)


def _load_strict(model: Any, sd: dict, name: str, architecture: str | None) -> None:
    from open_clip.model import convert_to_custom_text_state_dict

    sd = dict(sd)
    if "positional_embedding" in sd and not hasattr(model, "positional_embedding"):
        sd = convert_to_custom_text_state_dict(sd)  # older layout of CustomTextCLIP checkpoints
    sd.pop("text.transformer.embeddings.position_ids", None)
    own = model.state_dict()
    if "logit_scale" in sd and sd["logit_scale"].ndim != own["logit_scale"].ndim:
        sd["logit_scale"] = sd["logit_scale"].reshape(own["logit_scale"].shape)
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    mismatched = [f"{k} (checkpoint {tuple(sd[k].shape)}, model {tuple(own[k].shape)})"
                  for k in sorted(set(sd) & set(own)) if sd[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        def show(items: list[str]) -> str:
            return ", ".join(items[:8]) + (f" ... ({len(items)} in all)" if len(items) > 8 else "") or "none"

        raise LoadError(
            f"{name}: the checkpoint does not fit architecture {architecture!r}. "
            f"Missing keys: {show(missing)}. Unexpected keys: {show(unexpected)}. "
            f"Shape mismatches: {show(mismatched)}. Is it a checkpoint of another architecture? "
            f"Pass the right one with --arch / architecture="
        )
    model.load_state_dict(sd, strict=True)


def _tokenizer(architecture: str | None, model_cfg: dict) -> Callable[[list[str]], Any]:
    import open_clip
    from open_clip.tokenizer import HFTokenizer, SimpleTokenizer

    # open_clip's own tokenizer for a named architecture, unless the config was changed from it
    if architecture and open_clip.get_model_config(architecture) == model_cfg:
        return open_clip.get_tokenizer(architecture)
    text_cfg = model_cfg.get("text_cfg", {})
    context_length = text_cfg.get("context_length", 77)
    if text_cfg.get("hf_tokenizer_name"):
        return HFTokenizer(text_cfg["hf_tokenizer_name"], context_length=context_length)
    return SimpleTokenizer(context_length=context_length)
