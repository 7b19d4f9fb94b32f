"""Step 1 of the model route: a spec (what the user typed) becomes a :class:`~resegzoo.weights.zoo.Source`.

Nothing is downloaded or read here: a registry name is looked up, a path is told apart from a
name, an architecture the user named is checked against open_clip's list. A CLIP spec is one of

* a registry name (``remoteclip-vit-l-14``; ``resegzoo list variants``),
* a checkpoint file: ``.pt``/``.pth``/``.bin``/``.ckpt`` (pickled state dict), ``.safetensors``,
  or a SkyCLIP-style ``.zip``; its architecture comes from ``architecture=`` (CLI ``--arch``), else
  from an ``open_clip_config.json`` beside it, else from the tensor shapes when they are unambiguous,
* a folder or ``local-dir:DIR`` holding ``open_clip_config.json`` + weights (open_clip's layout,
  what ``resegzoo compose`` writes),
* ``hf-hub:ORG/REPO`` (open_clip's Hub layout).

A SAM spec is a ``.pth`` file or a SAM record of the zoo (``sam-vit-b``, or a model type ``vit_b``).
"""
from __future__ import annotations

import os
from pathlib import Path

from resegzoo.weights.zoo import ClipVariant, FolderLayout, LoadError, Source

LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
WEIGHT_SUFFIXES = PICKLE_SUFFIXES + (".safetensors", ".zip")


def is_path_like(spec: str) -> bool:
    """Whether ``spec`` names a location (a path, ``local-dir:``, ``hf-hub:``) rather than a registry name."""
    return (spec.startswith((LOCAL_DIR, HF_HUB)) or "/" in spec or "\\" in spec
            or spec.lower().endswith(WEIGHT_SUFFIXES) or Path(spec).exists())


def resolve_variant(spec: str) -> ClipVariant | None:
    """The registry variant called ``spec``; None when ``spec`` is a path or a ``local-dir:``/``hf-hub:`` id.

    An unknown name raises :class:`resegzoo.plugins.registry.UnknownNameError` suggesting close names.
    """
    if is_path_like(spec):
        return None
    from resegzoo.plugins.registry import get_registry

    return get_registry().variants.get(spec)


def resolve_location(spec: str, *, layout: FolderLayout = "open_clip") -> Source | None:
    """``hf-hub:ORG/REPO``, ``local-dir:DIR``, an existing folder or an existing file as a Source;
    None when ``spec`` is none of these. ``layout``: which files of a folder or repo fetch takes."""
    if spec.startswith(HF_HUB):
        return Source(spec, "hf-hub", repo=spec[len(HF_HUB):], layout=layout)
    path = Path(spec[len(LOCAL_DIR):] if spec.startswith(LOCAL_DIR) else spec).expanduser()
    if spec.startswith(LOCAL_DIR) or path.is_dir():
        return Source(spec, "folder", path=path, layout=layout)
    if path.is_file():
        return Source(spec, "file", path=path)
    return None


def resolve_clip(spec: str, architecture: str | None = None) -> Source:
    """The Source of a CLIP spec; ``architecture`` (``--arch``) is checked here, before any download."""
    variant = resolve_variant(spec)
    if variant is not None:
        return Source(variant.name, "record", record=variant, architecture=architecture)
    source = resolve_location(spec)
    if source is None:
        raise LoadError(f"{spec}: no such file, folder or registry name (names have no '/' or file "
                        f"extension; see `resegzoo list variants`)")
    check_architecture_name(architecture)
    return Source(source.name, source.kind, path=source.path, repo=source.repo, architecture=architecture)


def check_architecture_name(architecture: str | None) -> None:
    """Refuse an architecture open_clip does not know, suggesting close names."""
    import difflib

    import open_clip

    if architecture is not None and open_clip.get_model_config(architecture) is None:
        close = difflib.get_close_matches(architecture, open_clip.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see open_clip.list_models())"
        raise LoadError(f"unknown open_clip architecture {architecture!r}{hint}")


def resolve_sam(checkpoint: str | None, model: str | None, default: str = "vit_b",
                family: tuple[str, ...] = ("vit_b", "vit_l", "vit_h")) -> Source:
    """The Source of a SAM checkpoint: a path, or a zoo record (by name, by ``model``, else ``default``).
    ``family``: the model types the caller runs (a zoo record of another type is an error)."""
    if checkpoint is not None and (os.sep in checkpoint or checkpoint.endswith((".pth", ".pt"))
                                   or Path(checkpoint).exists()):
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"SAM checkpoint {path} does not exist; give a .pth file or a zoo name "
                                    "such as sam-vit-b")
        return Source(checkpoint, "file", path=path)
    from resegzoo.weights.zoo import get_sam_checkpoint

    record = get_sam_checkpoint(checkpoint or model or default)
    if record.model_type not in family:
        raise ValueError(f"checkpoint {record.name!r} is a {record.model_type} model; this mask generator runs "
                         f"{', '.join(family)} (SAM 2.1 hiera_* checkpoints go with --masks sam2, vit_* with sam)")
    if model is not None and record.model_type != model:
        raise ValueError(f"SAM checkpoint {record.name!r} is a {record.model_type} model, but model: {model} "
                         "was asked for; drop one of the two settings")
    return Source(record.name, "record", record=record)


def random_weights_note(spec: str) -> str | None:
    """A warning for a registry variant whose weights are random by design (``random_weights``)."""
    try:
        variant = resolve_variant(spec)
    except LookupError:
        return None
    if variant is None or not variant.random_weights:
        return None
    return (f"model {spec!r} has RANDOM weights by design (a demo/test model): its labels are not a "
            "segmentation result; use a real model (`resegzoo list variants`)")
