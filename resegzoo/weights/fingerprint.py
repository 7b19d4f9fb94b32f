"""What identifies a model's weights, by content.

Results computed from a model (evaluation runs, cached text embeddings, sidecars) are keyed by
this, so re-composing ``soup/`` with other weights or replacing a checkpoint file in place gives
new results instead of stale ones. Computed once per resolved spec
(:func:`resegzoo.weights.loading.resolve_model` puts it in the
:class:`~resegzoo.weights.zoo.ResolvedModel`); file contents are hashed once per (path, size,
mtime) by :func:`resegzoo.weights.cache.cached_sha256`, so a rerun does not re-read gigabytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from resegzoo.weights.cache import cached_sha256
from resegzoo.weights.records import ModelRecord
from resegzoo.weights.zoo import Files


def folder_fingerprint(path: Path) -> dict[str, str]:
    """sha256 of every visible file of a model folder (config, weights, recipe): any change counts."""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ValueError(f"{path}: the model folder is empty")
    return {p.name: cached_sha256(p) for p in files}


def built_fingerprint(record: ModelRecord) -> dict[str, Any]:
    """A model its plugin builds (``record.build``): the record, its plugin and the plugin's version."""
    from resegzoo.plugins.registry import get_registry

    registry = get_registry()
    owner = registry.models.owners.get(record.name, "")
    version = registry.pm.report.distributions.get(owner, ("", ""))[1]
    return {"custom": record.name, "plugin": owner, "plugin_version": version}


def files_fingerprint(files: Files) -> dict[str, Any]:
    """What identifies the weights fetch put on disk: a record's known sha256 (the download is
    checked against it), every file of a folder, else the weights file's sha256 (and the config
    beside it, which decides the architecture)."""
    source = files.source
    record = source.record
    if record is not None and record.sha256:
        return {"sha256": record.sha256}
    if files.folder is not None:
        return {"files": folder_fingerprint(files.folder)}
    if source.form == "folder" and source.path is not None:  # open_clip's layout: the whole folder counts
        return {"files": folder_fingerprint(source.path)}
    assert files.origin is not None  # a file, a record's download, an hf-hub: file (cached)
    found = {"sha256": cached_sha256(files.origin)}
    if record is None and files.config is not None:
        found["config_sha256"] = cached_sha256(files.config)
    return found


def __getattr__(name: str) -> Any:
    """Names that moved away from here still work, with a DeprecationWarning (resegzoo.moved.LEFT)."""
    from resegzoo.moved import left_module_attribute

    return left_module_attribute(__name__, name)
