"""Reading CLIP checkpoint files safely, and guessing their open_clip architecture.

Layouts handled: pickled state dicts (``.pt``/``.pth``/``.bin``, RemoteCLIP/GeoRSCLIP style,
optionally wrapped in ``{"state_dict": ...}`` with ``module.`` prefixes as SkyCLIP's), safetensors,
and SkyCLIP-style ``.zip`` archives holding one such pickle. Pickles are only ever read with
``torch.load(..., weights_only=True)``: a checkpoint cannot run code on the user's machine.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from resegzoo.errors import ResegzooError

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
WEIGHT_SUFFIXES = PICKLE_SUFFIXES + (".safetensors", ".zip")


class CheckpointError(ResegzooError, ValueError):
    """A checkpoint that cannot be read or does not fit its architecture; the message says why."""


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict stored in ``path`` (unwrapped, ``module.`` stripped), on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix == ".zip":
        from resegzoo.weights.hub import extract_member

        path = extract_member(path, _only_checkpoint_member(path))
    if path.suffix == ".safetensors":
        obj: Any = _read_safetensors(path)
    else:
        obj = _read_pickle(path)
    return unwrap_state_dict(obj, str(path))


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({exc}); a truncated download? Delete it and fetch again"
        ) from exc


def _read_pickle(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to unpickle: it holds Python objects other than tensors and plain "
            f"containers, and resegzoo only loads checkpoints with weights_only=True so that a file "
            f"cannot run code. Save just the state dict (torch.save(model.state_dict(), ...)) or "
            f"convert it to safetensors. Details: {str(exc).splitlines()[0]}"
        ) from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{path}: could not be read as a PyTorch checkpoint ({exc}); the file is probably "
            f"truncated or corrupt: delete it and download it again"
        ) from exc


def _only_checkpoint_member(archive: Path) -> str:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [n for n in zf.namelist() if n.endswith(PICKLE_SUFFIXES + (".safetensors",))]
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{archive}: not a readable zip archive ({exc}); truncated?") from exc
    if len(members) != 1:
        found = ", ".join(members) or "none"
        raise CheckpointError(
            f"{archive}: expected exactly one checkpoint inside the zip, found {found}; "
            f"extract the one you want and pass its path"
        )
    return members[0]


def unwrap_state_dict(obj: Any, origin: str) -> dict[str, torch.Tensor]:
    """Accept ``{name: tensor}`` or a training checkpoint holding one under ``state_dict``."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{origin}: holds a {type(obj).__name__}, not a state dict (name -> tensor)")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        shown = ", ".join(map(repr, not_tensors[:5]))
        raise CheckpointError(
            f"{origin}: not a state dict: entries {shown} are not tensors (a training checkpoint "
            f"without a 'state_dict' entry?)"
        )
    if all(k.startswith("module.") for k in obj):  # saved from DistributedDataParallel
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


# -- architecture inference ---------------------------------------------------------------------


def _shape_signature(sd: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    """The numbers that pin down a standard open_clip CLIP, read off tensor shapes."""
    text_keys = ("text_projection", "token_embedding.weight", "positional_embedding", "ln_final.weight")
    if not all(k in sd for k in text_keys):
        return None
    sig: dict[str, Any] = {
        "embed_dim": sd["text_projection"].shape[1],
        "text.width": sd["ln_final.weight"].shape[0],
        "text.layers": len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")}),
        "text.context_length": sd["positional_embedding"].shape[0],
        "text.vocab_size": sd["token_embedding.weight"].shape[0],
    }
    if "visual.conv1.weight" in sd and "visual.positional_embedding" in sd:  # ViT
        patch = sd["visual.conv1.weight"].shape[-1]
        grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        sig.update({
            "vision.width": sd["visual.conv1.weight"].shape[0],
            "vision.layers": len({k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")}),
            "vision.patch_size": patch,
            "vision.image_size": patch * grid,
        })
    elif "visual.attnpool.positional_embedding" in sd:  # ModifiedResNet
        layers = tuple(len({k.split(".")[2] for k in sd if k.startswith(f"visual.layer{i}.")}) for i in range(1, 5))
        grid = round((sd["visual.attnpool.positional_embedding"].shape[0] - 1) ** 0.5)
        sig.update({"vision.width": sd["visual.layer1.0.conv1.weight"].shape[0], "vision.layers": layers,
                    "vision.image_size": grid * 32})
    else:
        return None
    return sig


def _config_signature(cfg: dict[str, Any]) -> dict[str, Any] | None:
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    if cfg.get("custom_text") or "timm_model_name" in cfg.get("vision_cfg", {}) \
            or "hf_model_name" in cfg.get("text_cfg", {}):
        return None
    try:
        vision = CLIPVisionCfg(**cfg["vision_cfg"])
        text = CLIPTextCfg(**cfg["text_cfg"])
    except TypeError:  # a config with options this open_clip does not know
        return None
    sig: dict[str, Any] = {
        "embed_dim": cfg["embed_dim"], "text.width": text.width, "text.layers": text.layers,
        "text.context_length": text.context_length, "text.vocab_size": text.vocab_size,
        "vision.width": vision.width, "vision.image_size": vision.image_size,
    }
    if isinstance(vision.layers, (tuple, list)):
        sig["vision.layers"] = tuple(vision.layers)
    else:
        sig["vision.layers"] = vision.layers
        sig["vision.patch_size"] = vision.patch_size
    return sig


def infer_architectures(sd: dict[str, torch.Tensor]) -> list[str]:
    """open_clip model names whose tensor shapes match ``sd`` (both GELU and QuickGELU configs).

    Shapes cannot tell GELU from QuickGELU, so a ``X`` / ``X-quickgelu`` pair is the usual answer.
    """
    import open_clip

    sig = _shape_signature(sd)
    if sig is None:
        return []
    matches = []
    for name in open_clip.list_models():
        cfg = open_clip.get_model_config(name)
        if cfg is not None and _config_signature(cfg) == sig:
            matches.append(name)
    return matches
