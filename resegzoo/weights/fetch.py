"""Step 2 of the model route: a :class:`~resegzoo.weights.zoo.Source` becomes
:class:`~resegzoo.weights.zoo.Files` on disk.

Zoo records are downloaded (or found in the cache) by :mod:`resegzoo.weights.hub`; a folder gives
its config and weights file (open_clip's layout) or itself whole (``snapshot``); a Hub repo gives the
same from the Hugging Face cache; an archive's one checkpoint member is extracted into the cache.
Nothing is parsed here: that is :mod:`resegzoo.weights.read`.
"""
from __future__ import annotations

from pathlib import Path

from resegzoo.weights import hub
from resegzoo.weights.zoo import FetchError, Files, LoadError, Source

#: preferred weight files in an open_clip folder, best first (open_clip's own order)
FOLDER_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                  "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth",
                  "model.safetensors", "pytorch_model.bin")
OPEN_CLIP_CONFIG = "open_clip_config.json"
#: what an archive passed as a checkpoint may hold (exactly one of them)
ARCHIVE_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")


def fetch(source: Source, *, progress: bool = True) -> Files:
    """The files of ``source`` on disk, downloaded or extracted first if needed."""
    if source.kind == "record":
        assert source.record is not None  # resolve sets it for every record source
        path = hub.fetch_record(source.record, progress=progress)
        return Files(source, weights=path, origin=path)
    if source.layout == "snapshot":
        return Files(source, folder=_snapshot(source))
    if source.kind == "hf-hub":
        assert source.repo is not None
        config = _hf_file(source.repo, OPEN_CLIP_CONFIG)
        weights = _hf_weights(source.repo)
        return Files(source, weights=weights, origin=weights, config=config)
    assert source.path is not None  # a file or a folder
    if source.kind == "folder":
        return _open_clip_folder(source, source.path)
    return _file(source, source.path)


def _file(source: Source, path: Path) -> Files:
    beside = path.parent / OPEN_CLIP_CONFIG
    # a named architecture wins over the config beside the file
    config = beside if source.architecture is None and beside.is_file() else None
    weights = path
    if path.suffix == ".zip":
        weights = hub.extract_member(path, hub.only_checkpoint_member(path, ARCHIVE_CHECKPOINT_SUFFIXES))
    return Files(source, weights=weights, origin=path, config=config)


def _open_clip_folder(source: Source, folder: Path) -> Files:
    config = folder / OPEN_CLIP_CONFIG
    if not config.is_file():
        raise LoadError(f"{folder}: expected an open_clip model folder with {OPEN_CLIP_CONFIG} "
                        f"and weights; {'the folder does not exist' if not folder.is_dir() else 'no config there'}")
    found = [folder / f for f in FOLDER_WEIGHTS if (folder / f).is_file()]
    if not found:
        raise LoadError(f"{folder}: no weights found (expected one of {', '.join(FOLDER_WEIGHTS)})")
    return Files(source, weights=found[0], origin=found[0], config=config)


def _snapshot(source: Source) -> Path:
    if source.kind == "hf-hub":
        assert source.repo is not None
        return hub.fetch_hf_snapshot(source.repo, source.name)
    if source.kind != "folder" or source.path is None:
        raise LoadError(f"{source.name}: expected a model folder (local-dir:DIR) or a Hub repo (hf-hub:ORG/REPO)")
    if not source.path.is_dir():
        raise LoadError(f"{source.path}: the model folder does not exist")
    return source.path


def _hf_file(repo: str, filename: str) -> Path:
    try:
        return hub.fetch_hf_file(repo, filename, f"hf-hub:{repo}")
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
