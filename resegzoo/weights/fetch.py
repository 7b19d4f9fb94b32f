"""Step 2 of the model route: a :class:`~resegzoo.weights.zoo.Source` becomes
:class:`~resegzoo.weights.zoo.Files` on disk.

A zoo record is fetched from its source (:func:`fetch_record`: a Hugging Face file or whole
repository, an https URL or an archive member there, open_clip's pretrained tag, a local path, a
plugin's fetcher); a folder gives its config and weights file (open_clip's layout) or itself whole
(``snapshot``: SAM 3, a plugin's kind); a Hub repo gives the same from the Hugging Face cache; an
archive's one checkpoint member is extracted into the cache. Each job has its module:
:mod:`~resegzoo.weights.hf` (the Hugging Face cache), :mod:`~resegzoo.weights.download` (https
downloads), :mod:`~resegzoo.weights.archive` (members), :mod:`~resegzoo.weights.cache` (the cache
folder, sha256 checks). Nothing is parsed here: that is :mod:`resegzoo.weights.read`.
"""
from __future__ import annotations

from pathlib import Path

from resegzoo.weights import archive, download, hf
from resegzoo.weights.cache import is_offline, verified
from resegzoo.weights.kinds import (OPEN_CLIP_CONFIG, TRANSFORMERS_CONFIG, check_folder_kind, config_kind,
                                   folder_layout)
from resegzoo.weights.records import CLIP, HF_MODEL_FILES, SAM3, ModelRecord, as_record
from resegzoo.weights.zoo import FetchError, Files, LoadError, Source, WrongKindError

#: preferred weight files in an open_clip folder, best first (open_clip's own order)
FOLDER_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                  "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth",
                  "model.safetensors", "pytorch_model.bin")
#: what an archive passed as a checkpoint may hold (exactly one of them)
ARCHIVE_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")


def fetch(source: Source, *, progress: bool = True) -> Files:
    """The files of ``source`` on disk, downloaded or extracted first if needed."""
    if source.form == "record":
        assert source.record is not None  # resolve sets it for every record source
        return _record_files(source, source.record, progress)
    if source.form == "hf-hub":
        assert source.repo is not None
        if source.layout == "snapshot":
            return Files(source, folder=_hf_snapshot(source, source.repo))
        return _hf_open_clip(source, source.repo)
    assert source.path is not None  # a file or a folder
    if source.form == "folder":
        return _folder(source, source.path)
    return _file(source, source.path)


# -- zoo records ----------------------------------------------------------------------------------


def fetch_record(record: ModelRecord, *, progress: bool = True) -> Path:
    """The local file of a zoo record (a whole-folder record: its folder), downloaded first if needed.
    An earlier release's ClipVariant is taken as its record."""
    record = as_record(record)
    files = _record_files(Source(record.name, "record", record.kind, record=record), record, progress)
    path = files.folder or files.origin
    assert path is not None
    return path


def _record_files(source: Source, record: ModelRecord, progress: bool) -> Files:
    src = record.source
    if record.build is not None:
        raise FetchError(f"{record.name!r} is built by its plugin; it has no weights to fetch")
    if src.fetcher is not None:
        return _local(source, verified(Path(src.fetcher()), record.sha256, record.name))
    if src.path is not None:
        path = Path(src.path).expanduser()
        if not path.exists():
            raise FetchError(f"{record.name}: its weights should be at {path}, which does not exist")
        return _local(source, verified(path, record.sha256, record.name) if path.is_file() else path)
    if src.open_clip_tag is not None:
        path = hf.fetch_openclip_pretrained(record.name, record.details.architecture, src.open_clip_tag)
        return Files(source, weights=path, origin=path)
    if src.hf_repo is not None and src.hf_file is not None:
        path = verified(hf.fetch_hf_file(src.hf_repo, src.hf_file, record.name, record=record), record.sha256,
                        record.name)
        return Files(source, weights=path, origin=path)
    if src.hf_repo is not None:
        if folder_layout(record.kind) == "open_clip":
            return _hf_open_clip(source, src.hf_repo)
        return Files(source, folder=_hf_snapshot(source, src.hf_repo))
    assert src.url is not None  # a record has a source (ModelRecord checks)
    if src.member is not None:
        extracted = archive.member_target(download.cached_download(src.url), src.member)
        if not extracted.is_file():  # the archive is only needed until its member is out
            extracted = archive.extract_member(download.fetch_url(src.url, record.name, progress), src.member)
        path = verified(extracted, record.sha256, record.name)
        return Files(source, weights=path, origin=path)
    path = verified(download.fetch_url(src.url, record.name, progress), record.sha256, record.name)
    return Files(source, weights=path, origin=path)


def _local(source: Source, path: Path) -> Files:
    """A record's local file or folder (a plugin's fetcher, a ``path`` source)."""
    if not path.is_dir():
        return _file(source, path)
    if folder_layout(source.kind) == "open_clip":
        return _open_clip_folder(source, path)
    return Files(source, folder=path)


def is_cached(record: ModelRecord) -> bool:
    """Whether :func:`fetch_record` would succeed offline (no network call)."""
    record = as_record(record)
    src = record.source
    if record.build is not None or src.fetcher is not None:
        return True
    if src.path is not None:
        return Path(src.path).expanduser().exists()
    if src.open_clip_tag is not None:
        return hf.openclip_pretrained_cached(record.details.architecture, src.open_clip_tag) is not None
    if src.hf_repo is not None:
        first = src.hf_file or (OPEN_CLIP_CONFIG if folder_layout(record.kind) == "open_clip" else TRANSFORMERS_CONFIG)
        return hf.hf_cached(src.hf_repo, first) is not None
    assert src.url is not None
    cached = download.cached_download(src.url)
    if src.member is not None:
        return archive.member_target(cached, src.member).is_file() or cached.is_file()
    return cached.is_file()


# -- Hugging Face repositories --------------------------------------------------------------------


def _record_of_repo(repo: str) -> ModelRecord | None:
    """The zoo record of Hub repository ``repo`` (``hf-hub:facebook/sam3`` is ``sam3``), so that
    messages about it say what the record says (gated, `resegzoo fetch NAME`)."""
    from resegzoo.weights.zoo import model_records

    found = [r for r in model_records().values() if r.source.hf_repo == repo]
    return found[0] if found else None


def _hf_snapshot(source: Source, repo: str) -> Path:
    """A whole repository (the files a transformers model folder needs, or the record's patterns);
    its config.json is fetched first, so a repository of another kind is refused before gigabytes."""
    record = source.record or _record_of_repo(repo)
    patterns = (source.record.source.hf_patterns if source.record is not None else None) or HF_MODEL_FILES
    if source.kind == SAM3:
        config = hf.hf_cached(repo, TRANSFORMERS_CONFIG)
        if config is None and not is_offline():  # a few kB first; offline, the snapshot below says what is missing
            config = hf.fetch_hf_file(repo, TRANSFORMERS_CONFIG, source.name, record=record)
        found = config_kind(config) if config is not None else None
        if found is not None and found != SAM3:
            raise WrongKindError(f"{source.name} is a {found} model (config.json), not a SAM 3 model")
    folder = hf.fetch_hf_snapshot(repo, source.name, patterns, record=record)
    check_folder_kind(folder, source.kind, source.name)
    return folder


def _hf_open_clip(source: Source, repo: str) -> Files:
    record = source.record or _record_of_repo(repo)
    try:
        config = hf.fetch_hf_file(repo, OPEN_CLIP_CONFIG, source.name, record=record)
    except FetchError as exc:
        other = hf.hf_cached(repo, TRANSFORMERS_CONFIG)
        found = config_kind(other) if other is not None else None
        if found is not None:
            raise WrongKindError(f"{source.name} is a {found} model (config.json), not a CLIP model") from None
        raise LoadError(str(exc)) from exc
    errors = []
    for filename in FOLDER_WEIGHTS[:4]:
        try:
            weights = hf.fetch_hf_file(repo, filename, source.name, record=record)
        except FetchError as exc:
            errors.append(str(exc))
            continue
        return Files(source, weights=weights, origin=weights, config=config)
    raise LoadError(f"{source.name}: no open_clip weights found ({'; '.join(errors[:1])})")


# -- local files and folders ----------------------------------------------------------------------


def _file(source: Source, path: Path) -> Files:
    beside = path.parent / OPEN_CLIP_CONFIG
    # a named architecture wins over the config beside the file; only a CLIP reads one
    config = beside if source.kind == CLIP and source.architecture is None and beside.is_file() else None
    weights = path
    if path.suffix == ".zip":
        weights = archive.extract_member(path, archive.only_checkpoint_member(path, ARCHIVE_CHECKPOINT_SUFFIXES))
    return Files(source, weights=weights, origin=path, config=config)


def _folder(source: Source, folder: Path) -> Files:
    if source.layout == "open_clip":
        return _open_clip_folder(source, folder)
    if not folder.is_dir():
        raise LoadError(f"{folder}: the model folder does not exist")
    return Files(source, folder=folder)


def _open_clip_folder(source: Source, folder: Path) -> Files:
    config = folder / OPEN_CLIP_CONFIG
    if not config.is_file():
        raise LoadError(f"{folder}: expected an open_clip model folder with {OPEN_CLIP_CONFIG} "
                        f"and weights; {'the folder does not exist' if not folder.is_dir() else 'no config there'}")
    found = [folder / f for f in FOLDER_WEIGHTS if (folder / f).is_file()]
    if not found:
        raise LoadError(f"{folder}: no weights found (expected one of {', '.join(FOLDER_WEIGHTS)})")
    return Files(source, weights=found[0], origin=found[0], config=config)
