"""The model route, top-down: each function here calls resolve, then fetch, then read, then build;
none of those steps calls another (see :mod:`resegzoo.weights.zoo` for the records passed down).

* :func:`resolve_model`: a spec of a kind (``clip``, ``sam``, ``sam2``, ``sam3``, a plugin's) resolved
  ONCE and fetched: a :class:`~resegzoo.weights.zoo.ResolvedModel` (source, files on disk, content
  fingerprint, the record) that the API hands on; :func:`on_this_machine` fetches its files again
  where they are not (a Ray worker on another node).
* :func:`load_clip`: a CLIP (resolved, or a spec) to an open_clip model ready for inference;
  :func:`load_sam3`: a SAM 3 to transformers' ``Sam3Model``.
* :func:`load_state_dict`, :func:`clip_files`, :func:`checkpoint_path`: the CLIP route stopped
  after read / fetch (composition).
* :func:`sam_checkpoint` then :func:`load_sam` / :func:`load_sam2`: the SAM route, split where the
  mask generators fingerprint the file.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from resegzoo.weights.build import LoadedClip, build_clip, build_sam, build_sam2, build_sam3
from resegzoo.weights.fetch import fetch
from resegzoo.weights.fingerprint import built_fingerprint, files_fingerprint
from resegzoo.weights.read import read_clip, read_sam3, read_sam_state_dict
from resegzoo.weights.records import CLIP, SAM3
from resegzoo.weights.resolve import resolve, resolve_clip, resolve_sam
from resegzoo.weights.zoo import Files, LoadError, ResolvedModel


def resolve_model(spec: str, kind: str = CLIP, *, architecture: str | None = None,
                  progress: bool = True) -> ResolvedModel:
    """``spec`` resolved as a model of ``kind`` and its files fetched (downloaded if needed), with
    their content fingerprint: what the API computes once per spec and hands on. A spec of the
    wrong kind is a :class:`~resegzoo.weights.zoo.WrongKindError` before anything is downloaded
    where the spec tells (a record, a local folder), else before anything is loaded."""
    source = resolve(spec, kind, architecture=architecture)
    record = source.record
    if record is not None and record.build is not None:  # its plugin builds it: nothing to fetch
        return ResolvedModel(spec, kind, source, None, built_fingerprint(record))
    files = fetch(source, progress=progress)
    return ResolvedModel(spec, kind, source, files, files_fingerprint(files))


def weights_fingerprint(spec: str, kind: str = CLIP) -> dict[str, Any]:
    """The content fingerprint of a spec (:func:`resolve_model`'s), for callers holding a string."""
    return resolve_model(spec, kind).fingerprint


def on_this_machine(model: ResolvedModel) -> ResolvedModel:
    """``model`` with its files on this machine: as it is where they are (this process, a shared
    disk), else fetched again from the same source (a Ray worker on another node), which must give
    the same weights."""
    if model.files is None or model.source is None or all(p.exists() for p in model.files.paths()):
        return model
    files = fetch(model.source)
    found = files_fingerprint(files)
    if found != model.fingerprint:
        raise LoadError(f"model {model.spec!r}: the weights fetched on this machine differ from the ones the run "
                        "was set up with; make the same files reachable from every machine (a shared disk)")
    return dataclasses.replace(model, files=files)


def _resolved(model: ResolvedModel | str | Path, kind: str, architecture: str | None = None) -> ResolvedModel:
    if isinstance(model, ResolvedModel):
        if model.kind != kind:
            raise LoadError(f"model {model.spec!r} is a {model.kind} model, not a {kind} model")
        return on_this_machine(model)
    return resolve_model(str(model), kind, architecture=architecture)


def load_clip(model: ResolvedModel | str, *, device: str = "cpu", architecture: str | None = None) -> LoadedClip:
    """Build the open_clip model of ``model`` (resolved, or a spec) and load its weights strictly."""
    resolved = _resolved(model, CLIP, architecture)
    record = resolved.record
    if record is not None and record.build is not None:
        raise LoadError(
            f"{record.name!r} is built by its plugin, not loaded as an open_clip model; the segmenter builds it "
            "directly (ModelRecord.build)"
        )
    assert resolved.files is not None  # every CLIP source but a plugin's build has files
    checkpoint = read_clip(resolved.files)
    loaded = build_clip(checkpoint.state_dict, checkpoint.model_config, name=checkpoint.name,
                        architecture=checkpoint.architecture, preprocess=checkpoint.preprocess, device=device)
    loaded.variant = checkpoint.variant
    return loaded


def load_sam3(model: ResolvedModel | str | Path, device: str = "cpu") -> Any:
    """transformers' ``Sam3Model`` of ``model`` (resolved, a spec, or a folder), in eval mode."""
    resolved = _resolved(model, SAM3)
    assert resolved.files is not None and resolved.files.folder is not None  # SAM 3 is a folder
    return build_sam3(read_sam3(resolved.files), device)


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
