"""What identifies the weights behind a model spec, by content.

Results computed from a model (evaluation runs, cached text embeddings) are keyed by this, so
re-composing ``soup/`` with other weights or replacing a checkpoint file in place gives new results
instead of stale ones. File contents are hashed once per (path, size, mtime) by
:func:`resegzoo.weights.hub.cached_sha256`; a rerun does not re-read gigabytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from resegzoo.weights.hub import cached_sha256


def _folder(path: Path) -> dict[str, str]:
    """sha256 of every visible file of a model folder (config, weights, recipe): any change counts."""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ValueError(f"{path}: the model folder is empty")
    return {p.name: cached_sha256(p) for p in files}


def weights_fingerprint(spec: str) -> dict[str, Any]:
    """What identifies the weights behind a model spec (see :mod:`resegzoo.weights.resolve`).

    Raises what resolving and fetching raise (LookupError, OSError, ValueError, FetchError)."""
    from resegzoo.plugins.registry import get_registry
    from resegzoo.weights.loading import checkpoint_path
    from resegzoo.weights.resolve import LOCAL_DIR, resolve_variant

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
