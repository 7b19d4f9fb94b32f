"""Fingerprints of what decides an evaluation's numbers besides its settings: the model's and SAM's
weights (by content), the method (and the plugin behind it), resegzoo's version and the dataset's
file list.

They go into the run key (:func:`resegzoo.eval.runner.run_settings`), so re-composing ``soup/``
with other weights, replacing a checkpoint file in place or adding images to the dataset gives a
new run folder instead of reusing stale results. File contents are hashed once per (path, size,
mtime) by :func:`resegzoo.weights.cache.cached_sha256`; a rerun does not re-read gigabytes. The
model's fingerprint is the one its spec was resolved with once
(:attr:`resegzoo.weights.zoo.ResolvedModel.fingerprint`), which also keys the cached text embeddings
(:mod:`resegzoo.methods.clip.text`) and goes into sidecars.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from resegzoo.weights.cache import cached_sha256
from resegzoo.methods.base import ModelLoadError


def method_fingerprints(recipe: Any, model: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the method's, the model's) fingerprints: which method ran and, for a plugin's method, the
    plugin and its version; the model's weights by content (``model``: the run's
    ``ResolvedModel``, its fingerprint computed once; None for a method without a model)."""
    from resegzoo.methods.base import MethodError, method_spec
    from resegzoo.plugins.manager import BUILTIN_PLUGINS
    from resegzoo.plugins.registry import get_registry

    name = recipe.method.name
    try:
        spec = method_spec(name)
    except MethodError as exc:
        raise ModelLoadError(str(exc)) from exc  # the chain keeps the error's kind (the exit status)
    method: dict[str, Any] = {"name": name}
    registry = get_registry()
    owner = registry.methods.owners.get(name, "")
    if owner not in BUILTIN_PLUGINS:  # a plugin's method: another version may score differently
        method.update(plugin=owner, plugin_version=registry.pm.report.distributions.get(owner, ("", ""))[1])
    if spec.model is None or model is None:
        return method, None
    return method, model.fingerprint


def sam_fingerprint(recipe: Any, masks: str) -> str | None:
    """sha256 of the SAM checkpoint a ``sam`` run uses (None for other generators)."""
    if masks != "sam":
        return None
    from resegzoo.masks.sam_factory import parse_sam_settings
    from resegzoo.weights.loading import sam_checkpoint
    from resegzoo.weights.zoo import FetchError
    from resegzoo.schema import SchemaError

    settings = dict(recipe.masks.settings) if recipe.masks.generator == "sam" else {}
    try:
        parsed = parse_sam_settings(settings)
        path, sha256 = sam_checkpoint(parsed.checkpoint, parsed.model)
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
