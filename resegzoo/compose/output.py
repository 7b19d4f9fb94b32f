"""The output folder of a composition, written atomically, and its safetensors metadata.

Layout (open_clip loads it with ``create_model_and_transforms("local-dir:OUT")``):
``open_clip_config.json`` (model_cfg + preprocess_cfg), ``open_clip_model.safetensors`` (whose
header metadata, str -> str, holds JSON strings: the recipe, the inputs with their sha256, the
weights, the scores, the distances and resegzoo's version), ``recipe.yaml`` and ``README.md``.

Everything is written into a temporary folder beside the output and renamed into place at the
end: a crash or Ctrl-C leaves no partial output, and an existing output is replaced only with
``force`` (and only once the new one is complete).
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from resegzoo.outputs.atomic import fsync_dir, is_stale, reporting_full_disk, temporaries, temporary_dir
from resegzoo.compose.inputs import CompositionError

WEIGHTS_FILE = "open_clip_model.safetensors"
CONFIG_FILE = "open_clip_config.json"
RECIPE_FILE = "recipe.yaml"
CARD_FILE = "README.md"
OUTPUT_FILES = (CONFIG_FILE, WEIGHTS_FILE, RECIPE_FILE, CARD_FILE)
#: metadata keys whose values are JSON (all but "format", which safetensors tools expect as "pt")
JSON_KEYS = ("resegzoo_version", "recipe", "architecture", "inputs", "weighting", "weights", "scores")


def metadata_strings(summary: dict[str, Any]) -> dict[str, str]:
    """The str -> str header metadata for a composition summary."""
    meta = {"format": "pt"}
    for key in JSON_KEYS:
        meta[key] = json.dumps(summary[key], sort_keys=True)
    return meta


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Parse the composition metadata back from an output folder or its safetensors file."""
    from resegzoo.weights.st_io import SafetensorsFile

    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    with SafetensorsFile(path) as fh:
        meta = fh.metadata
    missing = [k for k in JSON_KEYS if k not in meta]
    if missing:
        raise CompositionError(f"{path}: not a resegzoo composition (metadata lacks {', '.join(missing)})")
    try:
        return {k: json.loads(meta[k]) for k in JSON_KEYS}
    except json.JSONDecodeError as exc:
        raise CompositionError(f"{path}: composition metadata is not valid JSON ({exc})") from exc


def restore_interrupted_replace(out: Path) -> bool:
    """Put back a model a killed ``--force`` run had moved aside but not yet replaced.

    Replacing ``out`` takes two renames (``out`` into ``.OUT.old-*``, the new folder onto ``out``);
    a run killed between them leaves ``out`` missing. Its ``.old-`` folder is a stale temporary that
    the next write would remove, so the old model is moved back first. Returns whether it was.
    """
    if out.exists() or not out.parent.is_dir():
        return False
    for old in temporaries(out.parent, recursive=False):
        if old.name.startswith(f".{out.name}.old-") and is_stale(old) and (old / out.name).is_dir():
            os.replace(old / out.name, out)
            shutil.rmtree(old)  # what else it held was the killed run's, never the user's
            return True
    return False


def check_writable(out: Path, force: bool) -> None:
    """Fail early, before any work, if the output cannot be written."""
    restore_interrupted_replace(out)
    if out.exists() and not force:
        raise CompositionError(f"{out} already exists; choose another --out or pass --force to replace it")
    if out.exists() and not out.is_dir():
        raise CompositionError(f"{out} exists and is not a folder; remove it or choose another --out")
    parent = out.parent
    if not parent.is_dir():
        raise CompositionError(f"cannot write {out}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CompositionError(f"cannot write {out}: no write permission in {parent}")


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def write_output_folder(
    out: Path,
    force: bool,
    write_weights: Callable[[Path], None],
    config: dict[str, Any],
    recipe: dict[str, Any],
    make_card: Callable[[], Any],
) -> None:
    """Build the folder in a temporary sibling, then move it into place."""
    check_writable(out, force)
    with reporting_full_disk(out.parent, out.name):
        _write_folder(out, force, write_weights, config, recipe, make_card)


def _write_folder(out: Path, force: bool, write_weights: Callable[[Path], None], config: dict[str, Any],
                  recipe: dict[str, Any], make_card: Callable[[], Any]) -> None:
    tmp = temporary_dir(out, "partial")  # named so that a later run removes it if this one is killed
    try:
        write_weights(tmp / WEIGHTS_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (tmp / RECIPE_FILE).write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
        # ModelCard.save writes the template's text as is, without a final newline
        (tmp / CARD_FILE).write_text(str(make_card()).rstrip("\n") + "\n", encoding="utf-8")
        for name in (CONFIG_FILE, RECIPE_FILE, CARD_FILE):  # the weights file fsyncs itself
            _fsync_file(tmp / name)
        fsync_dir(tmp)
        if out.exists() and not force:
            # another writer that does not take resegzoo's claim (another host on a shared folder,
            # another program) made it while this run composed: never replace it without --force
            raise CompositionError(f"{out} appeared while composing; choose another --out or pass --force "
                                   "to replace it")
        if out.exists():
            old = temporary_dir(out, "old")
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
        fsync_dir(out.parent)  # a checkpoint: the new name must survive a power cut too
    except BaseException:  # also Ctrl-C: never leave a partial folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
