"""The model route, top-down: each function here calls resolve, then fetch, then read, then build;
none of those steps calls another (see :mod:`resegzoo.weights.zoo` for the records passed down).

* :func:`load_clip`: a CLIP spec (registry name, file, folder, ``local-dir:``, ``hf-hub:``; see
  :mod:`resegzoo.weights.resolve`) to an open_clip model ready for inference.
* :func:`load_state_dict`, :func:`clip_files`, :func:`checkpoint_path`: the same route stopped
  after read / fetch (composition, fingerprints).
* :func:`sam_checkpoint` then :func:`load_sam` / :func:`load_sam2`: the SAM route, split where the
  mask generators fingerprint the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from resegzoo.weights.build import LoadedClip, build_clip, build_sam, build_sam2
from resegzoo.weights.fetch import fetch
from resegzoo.weights.read import read_clip, read_sam_state_dict
from resegzoo.weights.resolve import resolve_clip, resolve_sam
from resegzoo.weights.zoo import Files, LoadError


def load_clip(spec: str, *, device: str = "cpu", architecture: str | None = None) -> LoadedClip:
    """Build the open_clip model of ``spec`` and load its weights strictly."""
    source = resolve_clip(spec, architecture)
    record = source.record
    if record is not None and getattr(record, "format", None) == "custom":
        raise LoadError(
            f"variant {record.name!r} is built by its plugin (format 'custom'), not loaded as an open_clip "
            f"model; the segmenter builds it directly (ClipVariant.build)"
        )
    checkpoint = read_clip(fetch(source))
    loaded = build_clip(checkpoint.state_dict, checkpoint.model_config, name=checkpoint.name,
                        architecture=checkpoint.architecture, preprocess=checkpoint.preprocess, device=device)
    loaded.variant = checkpoint.variant
    return loaded


def load_state_dict(spec: str, *, architecture: str | None = None) -> tuple[dict[str, Any], str]:
    """``(state_dict, architecture)`` of ``spec``, unwrapped and ready to average or load."""
    checkpoint = read_clip(fetch(resolve_clip(spec, architecture)))
    return checkpoint.state_dict, checkpoint.architecture


def clip_files(spec: str) -> Files:
    """The files of a CLIP spec on disk (config and weights), downloaded or extracted if needed."""
    return fetch(resolve_clip(spec))


def checkpoint_path(spec: str) -> Path:
    """The weights file behind ``spec`` as given (an archive, not its member), downloaded if needed."""
    origin = clip_files(spec).origin
    assert origin is not None  # every CLIP source has a weights file
    return origin


def sam_checkpoint(checkpoint: str | None, model: str | None, default: str = "vit_b",
                   family: tuple[str, ...] = ("vit_b", "vit_l", "vit_h")) -> tuple[Path, str | None]:
    """The local .pth file of a SAM checkpoint (a path or a zoo name; see
    :func:`resegzoo.weights.resolve.resolve_sam`) and its known sha256, if any."""
    files = fetch(resolve_sam(checkpoint, model, default, family))
    assert files.weights is not None
    record = files.source.record
    return files.weights, record.sha256 if record is not None else None


def load_sam(path: str | Path, model: str | None = None, device: str = "cpu") -> tuple[Any, str]:
    """SAM from a checkpoint file, read with ``weights_only=True``; ``model`` None: read from the
    checkpoint. Returns (sam, model type); a checkpoint that does not fit names the keys."""
    state = read_sam_state_dict(Path(path), "SAM", "; is it a complete segment-anything .pth file?")
    return build_sam(state, model, device, path)


def load_sam2(path: str | Path, model: str | None = None, device: str = "cpu") -> tuple[Any, str]:
    """SAM 2.1 from a checkpoint file, as :func:`load_sam`."""
    state = read_sam_state_dict(Path(path), "SAM 2")
    return build_sam2(state, model, device, path)
