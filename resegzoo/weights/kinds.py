"""What each model kind looks like on disk, so that a spec of the wrong kind is told apart before
anything is loaded (a CLIP folder given where SAM 3 is needed, and back).

* ``clip``: a weights file (``.pt``/``.pth``/``.bin``/``.ckpt``, ``.safetensors``, a SkyCLIP
  ``.zip``) or open_clip's folder layout (``open_clip_config.json`` + weights);
* ``sam``, ``sam2``: a ``.pth``/``.pt`` file;
* ``sam3``: transformers' folder layout (``config.json`` whose ``model_type`` is ``sam3``, weights
  in safetensors), a whole folder;
* a plugin's kind: a file, or a whole folder.

Used by the route's steps (resolve for local specs, fetch once a Hub repository's config is on
disk); imports nothing of them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from resegzoo.weights.records import CLIP, SAM, SAM2, SAM3, kind_name
from resegzoo.weights.zoo import WrongKindError

OPEN_CLIP_CONFIG = "open_clip_config.json"
TRANSFORMERS_CONFIG = "config.json"
#: transformers model types of a SAM 3 folder (a SAM 3 video checkpoint holds the image model)
SAM3_MODEL_TYPES = ("sam3", "sam3_video")

#: how a kind's folder (or whole Hub repository) is read: ``open_clip`` (its config and one weights
#: file), ``snapshot`` (every file); None: the kind comes in single files only
FOLDER_LAYOUTS: dict[str, Literal["open_clip", "snapshot"] | None] = {CLIP: "open_clip", SAM: None, SAM2: None,
                                                                      SAM3: "snapshot"}
#: kinds whose weights are whole folders, never single files
FOLDER_ONLY = (SAM3,)


def folder_layout(kind: str) -> Literal["open_clip", "snapshot"] | None:
    """How a folder of ``kind`` is read (a plugin's kind: whole, as a snapshot)."""
    return FOLDER_LAYOUTS.get(kind, "snapshot")


def config_kind(config: Path) -> str | None:
    """The kind a transformers ``config.json`` describes: ``sam3``, ``transformers <type>`` for
    another model type, None when it cannot be read as one."""
    from resegzoo.schema import SchemaError, load_json

    try:
        data = load_json(config, "a model config")  # bounded: a 3 GB config.json is not read whole
    except (OSError, SchemaError):
        return None
    model_type = data.get("model_type") if isinstance(data, dict) else None
    if not isinstance(model_type, str):
        return None
    return SAM3 if model_type in SAM3_MODEL_TYPES else f"transformers {model_type}"


def folder_kind(folder: Path) -> str | None:
    """The kind of model a local folder holds, from its config files (None: it does not say)."""
    if (folder / OPEN_CLIP_CONFIG).is_file():
        return CLIP
    if (folder / TRANSFORMERS_CONFIG).is_file():
        return config_kind(folder / TRANSFORMERS_CONFIG)
    return None


def _described(found: str) -> str:
    if found == CLIP:
        return f"a CLIP model ({OPEN_CLIP_CONFIG})"
    if found == SAM3:
        return "a SAM 3 model (config.json, model_type sam3)"
    return f"a {found} model"


def check_folder_kind(folder: Path, kind: str, name: str) -> None:
    """Refuse a folder that holds another kind of model than ``kind`` (one line naming both); a
    folder whose kind cannot be told is left to the step that reads it."""
    found = folder_kind(folder)
    if found is None or found == kind or kind not in FOLDER_LAYOUTS:
        return
    raise WrongKindError(f"{name} is {_described(found)}, not a {kind_name(kind)} model")


def check_file_kind(path: Path, kind: str, name: str) -> None:
    """Refuse a single file for a kind that only comes in folders."""
    if kind in FOLDER_ONLY:
        raise WrongKindError(f"{name} is a single file; a {kind_name(kind)} model is a folder (config.json and "
                             "safetensors weights, as Sam3Model.save_pretrained writes): give local-dir:DIR, "
                             "hf-hub:ORG/REPO or a zoo name")


def check_no_folder(kind: str, name: str) -> None:
    """Refuse a folder for a kind that only comes in single files."""
    if folder_layout(kind) is None:
        raise WrongKindError(f"{name} is a folder; a {kind_name(kind)} checkpoint is a single .pth file "
                             "(or a zoo name: `resegzoo list models --kind " + kind + "`)")
