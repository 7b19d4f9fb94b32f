"""Step 4 of the model route: a state dict (and, for CLIP, its open_clip config) becomes a model.

CLIP: :func:`build_clip` is THE builder of open_clip models (segment, eval and compose's scoring);
the weights must fit the model exactly (a strict load that names missing, unexpected and reshaped
keys). SAM and SAM 2.1: built from their own model code, never with their own loaders (those are
not ``weights_only``), and loaded strictly the same way. SAM 3: transformers' ``Sam3Model`` from
the folder read found (:func:`build_sam3`; safetensors only, offline, without transformers'
progress bar).
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resegzoo.schema import MAX_IMAGE_SIDE
from resegzoo.weights.records import ModelRecord
from resegzoo.weights.zoo import LoadError

#: The width of SAM's image encoder, which tells the three checkpoints apart.
SAM_WIDTH_TO_TYPE = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}
#: sam2's own model configs (inside the sam2 package) for each SAM 2.1 model type
SAM2_CONFIGS: dict[str, str] = {
    "hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "hiera_s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "hiera_b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "hiera_l": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
#: Hiera blocks per model type (1+2+7+2, 1+2+11+2, 2+3+16+3, 2+6+36+4): tells checkpoints apart
SAM2_BLOCKS_TO_TYPE = {12: "hiera_t", 16: "hiera_s", 24: "hiera_b+", 48: "hiera_l"}


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
    #: the zoo record, for a registry name
    variant: ModelRecord | None = None


def build_clip(state_dict: dict[str, Any], model_config: dict, *, name: str, architecture: str | None = None,
               preprocess: dict | None = None, device: str = "cpu") -> LoadedClip:
    """THE builder of open_clip models from a config and weights: segment, eval and compose's
    scoring all come through here, so every model is built, loaded and tokenised the same way.

    ``architecture``: the open_clip name (or a label) behind ``model_config``; ``preprocess``: its
    ``mean``/``std`` (OpenAI's when absent).
    """
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    preprocess = preprocess or {}
    # The config is checked against the weights before anything is allocated: a 1 MB folder must
    # not make resegzoo build (and allocate) whatever model its config describes.
    check_model_config(model_config, name)
    _check_block_count(model_config, state_dict, name)
    state_dict = _fitted_state_dict(_expected_tensors(model_config, name), state_dict, name, architecture)
    model = _build_model(model_config)
    model.load_state_dict(state_dict, strict=True)
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


#: open_clip config sizes that must be positive whole numbers (or lists of them: a ResNet's layers,
#: an image_size pair); mlp_ratio: a positive number
_POSITIVE_SIZES = ("width", "layers", "heads", "head_width", "patch_size", "image_size", "context_length",
                   "vocab_size", "attn_pooler_queries", "attn_pooler_heads")


def check_model_config(model_cfg: Any, name: str) -> None:
    """Refuse an open_clip ``model_cfg`` of the wrong shape: not a mapping, towers that are not
    mappings, sizes that are not positive whole numbers (nothing is built yet)."""
    label = f"{name}: open_clip_config model_cfg"
    if not isinstance(model_cfg, dict):
        raise LoadError(f"{label} must be a mapping, not {type(model_cfg).__name__}")
    if not _is_positive_int(model_cfg.get("embed_dim")):
        raise LoadError(f"{label} embed_dim = {model_cfg.get('embed_dim')!r}: must be a positive whole number")
    for tower in ("vision_cfg", "text_cfg"):
        cfg = model_cfg.get(tower, {})
        if not isinstance(cfg, dict):
            raise LoadError(f"{label} {tower} must be a mapping, not {type(cfg).__name__}")
        for key in _POSITIVE_SIZES:
            value = cfg.get(key)
            items = value if isinstance(value, (list, tuple)) and key in ("layers", "image_size") else [value]
            if value is not None and not (items and all(_is_positive_int(v) for v in items)):
                raise LoadError(f"{label} {tower}.{key} = {value!r}: must be a positive whole number")
            if key == "image_size" and value is not None and max(items) > MAX_IMAGE_SIDE:  # it sizes every window
                raise LoadError(f"{label} {tower}.image_size = {value!r}: at most {MAX_IMAGE_SIDE:,} px")
        ratio = cfg.get("mlp_ratio")
        if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0):
            raise LoadError(f"{label} {tower}.mlp_ratio = {ratio!r}: must be a positive number")


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_block_count(model_cfg: dict, state_dict: dict, name: str) -> None:
    """Every block holds at least one tensor: a config with more blocks than the checkpoint has
    tensors cannot fit it, and building even its shapes would take as long as the blocks are many."""
    for tower in ("vision_cfg", "text_cfg"):
        layers = model_cfg.get(tower, {}).get("layers")
        total = sum(layers) if isinstance(layers, (list, tuple)) else layers
        if isinstance(total, int) and total > len(state_dict):
            raise LoadError(f"{name}: open_clip_config model_cfg {tower}.layers = {layers!r} blocks, but the "
                            f"checkpoint holds only {len(state_dict)} tensors: the config does not fit these weights")


def _expected_tensors(model_cfg: dict, name: str) -> dict[str, Any]:
    """The state dict the config's model would have, as shapes only (built on the meta device:
    nothing is allocated)."""
    import torch

    try:
        with torch.device("meta"):
            return _construct(model_cfg).state_dict()
    except (TypeError, ValueError, RuntimeError, AssertionError, KeyError, AttributeError, ZeroDivisionError) as exc:
        # open_clip's constructors check nothing themselves: these are what a bad config raises
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise LoadError(f"{name}: cannot build a model from its open_clip config ({type(exc).__name__}: "
                        f"{detail}); is model_cfg an open_clip model config?") from exc


def _build_model(model_cfg: dict) -> Any:
    return _construct(model_cfg)


def _construct(model_cfg: dict) -> Any:
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


def _fitted_state_dict(own: dict[str, Any], sd: dict, name: str, architecture: str | None) -> dict:
    """``sd`` in the layout of the model whose state dict is ``own`` (older CustomTextCLIP keys, a
    one-element logit_scale); every key and shape must match, else a LoadError naming them."""
    from open_clip.model import convert_to_custom_text_state_dict

    sd = dict(sd)
    if "positional_embedding" in sd and "positional_embedding" not in own:
        sd = convert_to_custom_text_state_dict(sd)  # older layout of CustomTextCLIP checkpoints
    sd.pop("text.transformer.embeddings.position_ids", None)
    if "logit_scale" in sd and "logit_scale" in own and sd["logit_scale"].ndim != own["logit_scale"].ndim:
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
    return sd


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


# -- SAM and SAM 2.1 ----------------------------------------------------------------------------


def _model_type(asked: str | None, found: str | None, origin: Path | str, family: str, looks_like: str) -> str:
    """The model type to build: the one asked for (which must agree with what the weights show), or
    the one the weights show."""
    if asked is None:
        if found is None:
            raise ValueError(f"{origin} does not look like {looks_like}")
        return found
    if found is not None and found != asked:
        raise ValueError(f"{origin} holds a {family} {found} checkpoint, but model: {asked} was asked for")
    return asked


def build_sam(state: dict[str, Any], model: str | None, device: str, origin: Path | str) -> tuple[Any, str]:
    """SAM (segment-anything) with ``state`` loaded strictly; ``model`` None: the type is read from
    the image encoder's width. Returns (sam, model type). ``origin`` names the file in messages."""
    from segment_anything import sam_model_registry

    patch = state.get("image_encoder.patch_embed.proj.weight")
    found = SAM_WIDTH_TO_TYPE.get(int(patch.shape[0])) if patch is not None else None
    model = _model_type(model, found, origin, "SAM", "a segment-anything checkpoint (no image encoder of a "
                        "known width); give model: vit_b, vit_l or vit_h if it is one")
    sam = sam_model_registry[model]()  # no checkpoint: segment-anything's own loader is not weights_only
    problems = state_differences(sam.state_dict(), state)
    if problems:
        raise ValueError(f"{origin} does not fit SAM {model}: {'; '.join(problems)}")
    sam.load_state_dict(state, strict=True)
    return sam.to(device).eval(), model


def build_sam2(state: dict[str, Any], model: str | None, device: str, origin: Path | str) -> tuple[Any, str]:
    """SAM 2.1 from sam2's own config with ``state`` loaded strictly; ``model`` None: the type is read
    from the number of Hiera blocks. Returns (model, model type)."""
    from sam2.build_sam import build_sam2 as sam2_builder

    blocks = {k.split(".")[3] for k in state if k.startswith("image_encoder.trunk.blocks.")}
    found = SAM2_BLOCKS_TO_TYPE.get(len(blocks))
    model = _model_type(model, found, origin, "SAM 2.1", "a SAM 2.1 checkpoint (no Hiera trunk of a known "
                        "depth); give model: hiera_t, hiera_s, hiera_b+ or hiera_l if it is one")
    net = sam2_builder(SAM2_CONFIGS[model], None, device="cpu")  # no checkpoint: loaded here, weights_only
    problems = state_differences(net.state_dict(), state)
    if problems:
        raise ValueError(f"{origin} does not fit SAM 2.1 {model}: {'; '.join(problems)}")
    net.load_state_dict(state, strict=True)
    return net.to(device).eval(), model


def state_differences(expected: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """Missing keys, unexpected keys and shape mismatches, each list cut to a readable length."""
    def shown(keys: list[str]) -> str:
        return ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")

    missing = sorted(k for k in expected if k not in given)
    unexpected = sorted(k for k in given if k not in expected)
    reshaped = sorted(f"{k} {tuple(given[k].shape)} (expected {tuple(v.shape)})"
                      for k, v in expected.items() if k in given and given[k].shape != v.shape)
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", reshaped)):
        if keys:
            problems.append(f"{label}: {shown(keys)}")
    return problems


# -- SAM 3 ----------------------------------------------------------------------------------------

SAM3_INSTALL_HINT = 'SAM 3 needs transformers with Sam3Model: pip install "resegzoo[sam3]"'


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' own progress bars ("Loading weights") off while a model loads: resegzoo's
    output is its own lines and bars."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def build_sam3(checkpoint: Any, device: str = "cpu") -> Any:
    """transformers' ``Sam3Model`` from the folder of ``checkpoint`` (a
    :class:`resegzoo.weights.read.Sam3Checkpoint`), offline, in eval mode on ``device``, once its
    weights are found to be exactly the config's (:func:`check_sam3_weights`): transformers would
    fill missing tensors with random values and say nothing."""
    try:
        from transformers import Sam3Model
    except ImportError:
        raise LoadError(SAM3_INSTALL_HINT) from None
    check_sam3_weights(checkpoint, Sam3Model)
    try:
        with quiet_transformers():
            model = Sam3Model.from_pretrained(str(checkpoint.folder), local_files_only=True, use_safetensors=True)
    except Exception as exc:  # transformers and safetensors raise many kinds; the checks above caught what we know
        raise LoadError(f"{_sam3_where(checkpoint)}: cannot read SAM 3: {_first_line(exc)}") from None
    return model.to(device).eval()


def _sam3_where(checkpoint: Any) -> str:
    """A SAM 3 folder as messages name it: its path (with the spec first when that was a name)."""
    folder = str(checkpoint.folder)
    return folder if checkpoint.name == folder else f"{checkpoint.name}: {folder}"


def _first_line(exc: BaseException) -> str:
    """An exception as one line of a message (never advice to load pickles unsafely)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "weights_only" in text:
        return f"{type(exc).__name__}: a pickled checkpoint, which resegzoo does not load for SAM 3"
    return text[:300]


def check_sam3_weights(checkpoint: Any, model_class: Any) -> None:
    """The tensors of ``checkpoint`` (names and shapes from the safetensors headers) against the
    model its config builds, built on the meta device (shapes only: nothing is allocated). Missing,
    unexpected or reshaped tensors are one LoadError naming the folder and a few of each, before
    anything is allocated or read. Keys are matched as transformers does for this model: the
    checkpoint's ``base_model_prefix`` (a SAM 3 video checkpoint's ``detector_model.``) is taken
    off, and the keys the model ignores on load (the video tracker's) are left out."""
    import re

    import torch
    from transformers import Sam3Config

    where = _sam3_where(checkpoint)
    try:
        config = Sam3Config.from_dict(checkpoint.config)
        with torch.device("meta"), quiet_transformers():
            expected = {k: tuple(v.shape) for k, v in model_class(config).state_dict().items()}
    except Exception as exc:  # a config that passed the size checks but does not go together
        raise LoadError(f"{where}/config.json: cannot build SAM 3 from it ({type(exc).__name__}: "
                        f"{_first_line(exc)})") from None
    prefix = f"{model_class.base_model_prefix}."
    ignored = [re.compile(p) for p in getattr(model_class, "_keys_to_ignore_on_load_unexpected", None) or []]
    found: dict[str, tuple[int, ...]] = {}
    for key, info in checkpoint.tensors.items():
        if any(p.search(key) for p in ignored):
            continue
        found[key[len(prefix):] if key.startswith(prefix) and key[len(prefix):] in expected else key] = tuple(info.shape)
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("of the wrong shape", reshaped)):
        if keys:
            shown = ", ".join(f"{k} {found[k]} (config: {expected[k]})" if label == "of the wrong shape" else k
                              for k in keys[:3])
            problems.append(f"{len(keys)} tensor(s) {label} ({shown}{', ...' if len(keys) > 3 else ''})")
    if problems:
        raise LoadError(f"{where}: the weights do not fit config.json: {'; '.join(problems)}; a SAM 3 folder is "
                        "written whole by Sam3Model.save_pretrained")
