"""Step 3 of the model route: :class:`~resegzoo.weights.zoo.Files` on disk become a state dict (and,
for CLIP, the open_clip config and architecture that go with it), or for SAM 3 its config and the
names, dtypes and shapes of its tensors (:func:`read_sam3`: what the folder holds, before anything
is built).

Layouts handled: pickled state dicts (``.pt``/``.pth``/``.bin``, RemoteCLIP/GeoRSCLIP style,
optionally wrapped in ``{"state_dict": ...}`` with ``module.`` prefixes as SkyCLIP's; SAM's under
``model``), and safetensors (an archive's member was extracted by fetch). Pickles are only ever read
with ``torch.load(..., weights_only=True)``: a checkpoint cannot run code on the user's machine.
"""
from __future__ import annotations

import copy
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from resegzoo.weights.kinds import SAM3_MODEL_TYPES, TRANSFORMERS_CONFIG
from resegzoo.weights.records import ModelRecord
from resegzoo.weights.zoo import CheckpointError, Files, LoadError


@dataclass
class ClipCheckpoint:
    """What read found for a CLIP: the weights and the open_clip config they are built with."""

    name: str
    state_dict: dict[str, torch.Tensor]
    #: open_clip model name, or a label for a config dict
    architecture: str
    #: open_clip model cfg (``model_cfg`` of open_clip_config.json)
    model_config: dict
    #: ``mean``/``std`` (OpenAI's when absent)
    preprocess: dict = field(default_factory=dict)
    #: the zoo record, for a registry name
    variant: ModelRecord | None = None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict stored in ``path`` (unwrapped, ``module.`` stripped), on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        obj: Any = _read_safetensors(path)
    else:
        obj = _read_pickle(path)
    return unwrap_state_dict(obj, str(path))


def read_clip(files: Files) -> ClipCheckpoint:
    """The state dict of a CLIP's files with its config: an architecture the user named, the zoo
    record's (its config, else its folder's), the folder's (or the one beside the file), else
    open_clip's for the inferred architecture."""
    source = files.source
    assert files.weights is not None  # fetch gives a weights file for every CLIP source
    preprocess: dict = {}
    config: dict | None = None
    record = source.record
    found = _open_clip_config(files) if files.config is not None else None
    if record is not None:
        name, architecture, config = record.name, source.architecture or record.details.architecture, \
            record.details.model_config
        if record.source.open_clip_tag is not None:
            from open_clip.pretrained import get_pretrained_cfg

            cfg = get_pretrained_cfg(record.details.architecture, record.source.open_clip_tag)
            preprocess = {k: cfg[k] for k in ("mean", "std") if k in cfg}
        elif config is None and found is not None and source.architecture is None:  # a folder-shaped record
            config, preprocess = found["model_cfg"], found.get("preprocess_cfg", {})
    elif found is not None:
        name, preprocess = source.name, found.get("preprocess_cfg", {})
        architecture = source.architecture  # a named architecture wins over the folder's config
        if architecture is None:
            label = Path(source.repo) if source.repo is not None else Path(source.path or source.name)
            architecture, config = found.get("architecture") or label.name, found["model_cfg"]
    else:
        name, architecture = (source.path or Path(source.name)).name, source.architecture
    state_dict = read_state_dict(files.weights)
    if architecture is None:
        architecture = _infer_single_architecture(state_dict, source.name)
    return ClipCheckpoint(name, state_dict, architecture, _model_config(name, architecture, config),
                          preprocess, record)


def _open_clip_config(files: Files) -> dict:
    from resegzoo.schema import SchemaError, load_json

    assert files.config is not None
    try:
        found = load_json(files.config, "an open_clip config")  # bounded: a 3 GB config is one line
    except SchemaError as exc:
        raise LoadError(f"{files.source.name}: {exc}") from None
    if not isinstance(found, dict) or "model_cfg" not in found:
        raise LoadError(f"{files.source.name}: {files.config.name} has no 'model_cfg' entry (not an open_clip "
                        "model folder)")
    return found


def _model_config(name: str, architecture: str, config: dict | None) -> dict:
    import open_clip

    if config is not None:
        return copy.deepcopy(config)
    cfg = open_clip.get_model_config(architecture)
    if cfg is None:
        raise LoadError(f"{name}: open_clip has no architecture {architecture!r}")
    return cfg


def read_sam_state_dict(path: Path, what: str = "SAM", hint: str = "") -> dict[str, torch.Tensor]:
    """A SAM (or SAM 2) state dict, read with ``weights_only=True`` and unwrapped from ``model``.

    ``what`` names the model in messages; ``hint`` follows the unreadable-file message."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types; all mean "not a usable file"
        raise ValueError(f"{path} could not be read as a {what} checkpoint ({type(exc).__name__}: {exc}){hint}") from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a {what} state dict (a mapping of parameter names to tensors)")
    return state


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


# -- SAM 3 ----------------------------------------------------------------------------------------

#: transformers' weights files: one file, or an index naming the shards
SAFETENSORS_WEIGHTS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"


@dataclass
class Sam3Checkpoint:
    """What read found in a SAM 3 folder: its config and its tensors' names, dtypes and shapes (from
    the safetensors headers; no tensor is read here)."""

    name: str
    folder: Path
    #: config.json
    config: dict[str, Any]
    #: every tensor of the weights files: name -> TensorInfo (dtype, shape)
    tensors: dict[str, Any]
    #: the safetensors files the tensors are in
    weights: list[Path] = field(default_factory=list)


def read_sam3(files: Files) -> Sam3Checkpoint:
    """The config and the safetensors headers of a SAM 3 folder (``Sam3Model.save_pretrained``'s
    layout: config.json, model.safetensors or an index and its shards). A folder that is not one
    is a LoadError naming what is missing or wrong."""
    from resegzoo.weights.st_io import SafetensorsError, SafetensorsFile

    name = files.source.name
    folder = files.folder
    assert folder is not None  # fetch gives a folder for every SAM 3 source
    config = _json_file(folder / TRANSFORMERS_CONFIG, name, "a SAM 3 folder is written by Sam3Model.save_pretrained")
    model_type = config.get("model_type")
    if model_type not in SAM3_MODEL_TYPES:
        raise LoadError(f"{name}: {folder / TRANSFORMERS_CONFIG} is a {model_type!r} model, not SAM 3 (model_type sam3)")
    weights = _sam3_weight_files(folder, name)
    tensors: dict[str, Any] = {}
    for path in weights:
        try:
            with SafetensorsFile(path) as st:
                tensors.update(st.tensors)
        except (SafetensorsError, OSError) as exc:
            raise LoadError(f"{name}: {exc}") from None
    config_path = folder / TRANSFORMERS_CONFIG
    check_config_sizes(config, str(config_path) if name == str(folder) else f"{name}: {config_path}", len(tensors))
    return Sam3Checkpoint(name, folder, config, tensors, weights)


#: a transformers config's keys that size the model: whole numbers of at least 1, each at most
#: :data:`MAX_CONFIG_SIZE` (the shapes they give are then checked against the weights, on the
#: meta device), an image side at most the largest window, and a count of blocks at most the
#: number of tensors in the weights (every block holds some: a config of 3000 blocks cannot fit a
#: checkpoint of 300 tensors) and at most :data:`MAX_BLOCKS` (even the shapes of 3000 blocks take
#: a minute to build, and a header can list that many empty tensors at no cost)
SIZE_KEY = re.compile(r"^(num_\w+|\w*_sizes?|\w*_dim|\w*_embeddings)$")
IMAGE_SIZE_KEYS = ("image_size", "pretrain_image_size")
BLOCK_COUNT_KEY = re.compile(r"^num_(\w*_)?layers$|^num_\w+_stages$")
#: keys named like sizes that are not (0 is a legitimate value)
NOT_SIZES = ("chunk_size_feed_forward",)
MAX_CONFIG_SIZE = 1 << 20
#: the most blocks of one stack (SAM 3 has 32 in its vision encoder, 24 in its text encoder)
MAX_BLOCKS = 256


def check_config_sizes(config: Any, where: str, tensors: int) -> None:
    """LoadError naming ``where`` (the config file) and the key for a size in a transformers config
    that is not a whole number from 1 to its limit (see :data:`SIZE_KEY`): before any model is
    built from it (``image_size: 0`` divided by zero, ``"1008"`` failed deep inside, 100,000 sized
    every window). Nested configs are walked; lists of sizes (``backbone_feature_sizes``) too."""
    from resegzoo.schema import MAX_IMAGE_SIDE

    def sizes(value: Any) -> list[Any]:
        return [v for item in value for v in sizes(item)] if isinstance(value, (list, tuple)) else [value]

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            dotted = f"{path}{key}"
            if isinstance(value, dict):
                walk(value, dotted + ".")
                continue
            if not isinstance(key, str) or not SIZE_KEY.match(key) or key in NOT_SIZES or value is None:
                continue
            blocks = BLOCK_COUNT_KEY.match(key)
            most = MAX_IMAGE_SIDE if key in IMAGE_SIZE_KEYS else MAX_BLOCKS if blocks else MAX_CONFIG_SIZE
            for v in sizes(value) or [value]:
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise LoadError(f"{where}: {dotted} = {value!r}: must be a whole number from 1 to {most:,}")
                if blocks and v > tensors:
                    raise LoadError(f"{where}: {dotted} = {value!r} blocks, but the weights hold only {tensors:,} "
                                    "tensors: the weights do not fit config.json")
                if v > most:
                    raise LoadError(f"{where}: {dotted} = {value!r}: must be a whole number from 1 to {most:,}")

    walk(config, "")


def _json_file(path: Path, name: str, hint: str) -> dict[str, Any]:
    from resegzoo.schema import SchemaError, load_json

    if not path.exists():  # followed through links: the Hugging Face cache's snapshots are links
        raise LoadError(f"{name}: {path.parent} has no {path.name}{'; ' + hint if hint else ''}")
    try:
        data = load_json(path, "a model config")  # bounded, without blocking (a 3 GB config, a FIFO: one line)
    except SchemaError as exc:
        raise LoadError(f"{name}: {exc}") from None
    if not isinstance(data, dict):
        raise LoadError(f"{name}: {path} holds a JSON {type(data).__name__}, not an object")
    return data


def _sam3_weight_files(folder: Path, name: str) -> list[Path]:
    # exists(), not is_file(): a FIFO or a folder in a weights file's place is refused by the
    # reader in one line naming it (not "has no model.safetensors"), and never read from
    if (folder / SAFETENSORS_WEIGHTS).exists():
        return [folder / SAFETENSORS_WEIGHTS]
    if not (folder / SAFETENSORS_INDEX).exists():
        raise LoadError(f"{name}: {folder} has no {SAFETENSORS_WEIGHTS} (nor {SAFETENSORS_INDEX}); SAM 3 is read "
                        "from safetensors weights only, as Sam3Model.save_pretrained writes them")
    index = _json_file(folder / SAFETENSORS_INDEX, name, "")
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise LoadError(f"{name}: {folder / SAFETENSORS_INDEX} has no weight_map")
    shards = []
    for shard in sorted(set(map(str, weight_map.values()))):
        # a shard is a file of this folder: no path of its own, so an index cannot point elsewhere
        if Path(shard).name != shard or shard in ("", ".", "..") or not shard.endswith(".safetensors"):
            raise LoadError(f"{name}: {SAFETENSORS_INDEX} names shard {shard!r}, not a .safetensors file of the folder")
        if not (folder / shard).exists():
            raise LoadError(f"{name}: shard {shard} named by {SAFETENSORS_INDEX} is missing from {folder}")
        shards.append(folder / shard)
    return shards
