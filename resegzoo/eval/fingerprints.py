"""Fingerprints of what decides an evaluation's numbers besides its settings: the model's and SAM's
weights (by content), resegzoo's version and the dataset's file list.

They go into the run key (:func:`resegzoo.eval.runner.run_settings`), so re-composing ``soup/``
with other weights, replacing a checkpoint file in place or adding images to the dataset gives a
new run folder instead of reusing stale results. File contents are hashed once per (path, size,
mtime) by :func:`resegzoo.weights.hub.cached_sha256`; a rerun does not re-read gigabytes.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from resegzoo.weights.hub import cached_sha256
from resegzoo.segmenter.core import ModelLoadError


def _folder(path: Path) -> dict[str, str]:
    """sha256 of every visible file of a model folder (config, weights, recipe): any change counts."""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ModelLoadError(f"{path}: the model folder is empty")
    return {p.name: cached_sha256(p) for p in files}


def model_fingerprint(spec: str) -> dict[str, Any]:
    """What identifies the weights behind a model spec (see :mod:`resegzoo.weights.loading`)."""
    from resegzoo.weights.hub import FetchError
    from resegzoo.weights.loading import LOCAL_DIR, checkpoint_path, resolve_variant
    from resegzoo.plugins.registry import get_registry

    try:
        variant = resolve_variant(spec)
        if variant is not None and variant.build is not None:  # a plugin's own encoder, e.g. the oracle
            registry = get_registry()
            owner = registry.variants.owners.get(variant.name, "")
            version = registry.pm.report.distributions.get(owner, ("", ""))[1]
            return {"custom": variant.name, "plugin": owner, "plugin_version": version}
        if variant is not None and variant.sha256:  # the download is checked against it
            return {"sha256": variant.sha256}
        local = Path(spec[len(LOCAL_DIR):] if spec.startswith(LOCAL_DIR) else spec).expanduser()
        if variant is None and local.is_dir():
            return {"files": _folder(local)}
        path = checkpoint_path(spec)  # a file, a registry download or an hf-hub: file (cached)
        found = {"sha256": cached_sha256(path)}
        beside = path.parent / "open_clip_config.json"
        if variant is None and beside.is_file():  # the config beside a bare file decides the architecture
            found["config_sha256"] = cached_sha256(beside)
        return found
    except (LookupError, OSError, ValueError, FetchError) as exc:
        raise ModelLoadError(f"cannot load model {spec!r}: {exc}") from exc


def sam_fingerprint(recipe: Any, masks: str) -> str | None:
    """sha256 of the SAM checkpoint a ``sam`` run uses (None for other generators)."""
    if masks != "sam":
        return None
    from resegzoo.weights.hub import FetchError
    from resegzoo.masks.sam_factory import parse_sam_settings, resolve_checkpoint
    from resegzoo.schema import SchemaError

    settings = dict(recipe.masks.settings) if recipe.masks.generator == "sam" else {}
    try:
        parsed = parse_sam_settings(settings)
        path, sha256 = resolve_checkpoint(parsed.checkpoint, parsed.model)
    except (LookupError, OSError, ValueError, FetchError, SchemaError) as exc:
        raise ModelLoadError(f"cannot set up SAM: {exc}") from exc
    return sha256 or cached_sha256(path)


def dataset_fingerprint(dataset: Any) -> str:
    """sha256 of the split's file list: sample ids, image and label paths (below the root) and sizes."""
    root = dataset.root.resolve()

    def entry(path: Path) -> list[Any]:
        resolved = path.resolve()
        name = str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(resolved)
        return [name, resolved.stat().st_size]

    listing = [[s.id, *entry(s.image), *entry(s.label)] for s in dataset]
    return hashlib.sha256(json.dumps(listing).encode("utf-8")).hexdigest()
