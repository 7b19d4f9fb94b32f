"""Step 1 of the model route: a spec (what the user typed) and the kind of model wanted become a
:class:`~resegzoo.weights.zoo.Source`.

Nothing is downloaded or read here but the registry and a local folder's config file: a registry
name is looked up (of the kind wanted: a SAM 3 record where CLIP is needed is a one-line error), a
path is told apart from a name, an architecture the user named is checked against open_clip's list.
A spec is one of

* a registry name (``remoteclip-vit-l-14``, ``sam3``, ``sam-vit-b``; ``resegzoo list models``),
* ``hf-hub:ORG/REPO`` (a CLIP: open_clip's Hub layout; SAM 3: transformers' layout),
* a folder or ``local-dir:DIR`` (a CLIP: ``open_clip_config.json`` + weights, what ``resegzoo
  compose`` writes; SAM 3: what ``Sam3Model.save_pretrained`` writes),
* a single file where the kind has them: a CLIP checkpoint ``.pt``/``.pth``/``.bin``/``.ckpt``
  (pickled state dict), ``.safetensors`` or SkyCLIP-style ``.zip`` (its architecture from
  ``architecture=`` / ``--arch``, else an ``open_clip_config.json`` beside it, else the tensor
  shapes when they are unambiguous); a SAM or SAM 2.1 ``.pth``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from resegzoo.weights.kinds import check_file_kind, check_folder_kind, check_no_folder, folder_layout
from resegzoo.weights.records import CLIP, SAM, SAM2, ModelRecord, kind_name
from resegzoo.weights.zoo import SpecError, Source, WrongKindError, get_model

LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
WEIGHT_SUFFIXES = PICKLE_SUFFIXES + (".safetensors", ".zip")


def is_path_like(spec: str) -> bool:
    """Whether ``spec`` names a location (a path, ``local-dir:``, ``hf-hub:``) rather than a registry name."""
    return (spec.startswith((LOCAL_DIR, HF_HUB)) or "/" in spec or "\\" in spec
            or spec.lower().endswith(WEIGHT_SUFFIXES) or Path(spec).exists())


def resolve(spec: str, kind: str = CLIP, *, architecture: str | None = None) -> Source:
    """The Source of a model spec of ``kind``; ``architecture`` (``--arch``, CLIP only) is checked
    here, before any download. A registry name of another kind, or a local folder or file that is
    another kind's, is a :class:`~resegzoo.weights.zoo.WrongKindError`."""
    if architecture is not None:
        if kind != CLIP:
            raise SpecError(f"--arch / architecture= names an open_clip architecture; a {kind_name(kind)} model "
                            "takes none")
        check_architecture_name(architecture)
    if not spec or not spec.strip():
        raise SpecError(f"an empty model spec; give a {kind_name(kind)} model (`resegzoo list models --kind {kind}`)")
    if not is_path_like(spec):
        record = get_model(spec, kind)
        return Source(record.name, "record", kind, record=record, architecture=architecture)
    source = resolve_location(spec, kind)
    if source is None:
        raise SpecError(f"{spec}: no such file, folder or {kind_name(kind)} model name (names have no '/' or file "
                        f"extension; see `resegzoo list models --kind {kind}`)")
    return Source(source.name, source.form, kind, path=source.path, repo=source.repo, layout=source.layout,
                  architecture=architecture)


def resolve_location(spec: str, kind: str = CLIP) -> Source | None:
    """``hf-hub:ORG/REPO``, ``local-dir:DIR``, an existing folder or an existing file as a Source
    of ``kind``; None when ``spec`` is none of these."""
    layout = folder_layout(kind) or "open_clip"
    if spec.startswith(HF_HUB):
        repo = spec[len(HF_HUB):]
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise SpecError(f"{spec!r}: write hf-hub:ORG/REPO")
        if folder_layout(kind) is None:
            check_no_folder(kind, spec)
        return Source(spec, "hf-hub", kind, repo=repo, layout=layout)
    path = Path(spec[len(LOCAL_DIR):] if spec.startswith(LOCAL_DIR) else spec).expanduser()
    if spec.startswith(LOCAL_DIR) or path.is_dir():
        check_no_folder(kind, spec)
        if not path.is_dir():
            raise SpecError(f"{spec}: no such folder" + (" (it is a file)" if path.exists() else ""))
        check_folder_kind(path, kind, spec)
        return Source(spec, "folder", kind, path=path, layout=layout)
    if path.is_file():
        check_file_kind(path, kind, spec)
        return Source(spec, "file", kind, path=path)
    return None


def resolve_clip(spec: str, architecture: str | None = None) -> Source:
    """The Source of a CLIP spec (:func:`resolve` of kind ``clip``)."""
    return resolve(spec, CLIP, architecture=architecture)


def resolve_variant(spec: str) -> ModelRecord | None:
    """The clip record called ``spec``; None when ``spec`` is a path or a ``local-dir:``/``hf-hub:`` id.

    An unknown name raises :class:`resegzoo.plugins.registry.UnknownNameError` suggesting close names.
    """
    return None if is_path_like(spec) else get_model(spec, CLIP)


def check_architecture_name(architecture: str | None) -> None:
    """Refuse an architecture open_clip does not know, suggesting close names."""
    import difflib

    import open_clip

    if architecture is not None and open_clip.get_model_config(architecture) is None:
        close = difflib.get_close_matches(architecture, open_clip.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see open_clip.list_models())"
        raise SpecError(f"unknown open_clip architecture {architecture!r}{hint}")


def resolve_sam(checkpoint: str | None, model: str | None, default: str = "vit_b",
                family: tuple[str, ...] = ("vit_b", "vit_l", "vit_h")) -> Source:
    """The Source of a SAM checkpoint: a path, or a zoo record (by name, by ``model``, else ``default``).
    ``family``: the model types the caller runs (a zoo record of another type is an error)."""
    kind = SAM2 if family[0].startswith("hiera") else SAM
    if checkpoint is not None and (os.sep in checkpoint or checkpoint.endswith((".pth", ".pt"))
                                   or Path(checkpoint).exists()):
        path = Path(checkpoint).expanduser()
        if path.is_dir():
            check_no_folder(kind, checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"SAM checkpoint {path} does not exist; give a .pth file or a zoo name "
                                    "such as sam-vit-b")
        return Source(checkpoint, "file", kind, path=path)
    from resegzoo.weights.zoo import get_sam_checkpoint

    record = get_sam_checkpoint(checkpoint or model or default)
    model_type = record.details.model_type
    if model_type not in family:
        raise WrongKindError(f"checkpoint {record.name!r} is a {model_type} model; this mask generator runs "
                             f"{', '.join(family)} (SAM 2.1 hiera_* checkpoints go with --masks sam2, vit_* with sam)")
    if model is not None and model_type != model:
        raise ValueError(f"SAM checkpoint {record.name!r} is a {model_type} model, but model: {model} "
                         "was asked for; drop one of the two settings")
    return Source(record.name, "record", kind, record=record)


def random_weights_note(model: Any) -> str | None:
    """A warning for a model whose record says its weights are random by design (``random_weights``);
    ``model``: a ``ResolvedModel``, or (a caller outside the API) a spec looked up in the registry."""
    if isinstance(model, str):
        try:
            record = None if not model or is_path_like(model) else get_model(model)
        except LookupError:
            return None
        random, spec = bool(record is not None and record.random_weights), model
    else:
        random, spec = model.random_weights, model.spec
    if not random:
        return None
    return (f"model {spec!r} has RANDOM weights by design (a demo/test model): its labels are not a "
            "segmentation result; use a real model (`resegzoo list models`)")
