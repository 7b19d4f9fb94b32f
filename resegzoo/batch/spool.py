"""Finished blocks kept on disk until their raster is assembled, so an interrupted run resumes.

A raster of several blocks spools each block's result to ``OUT/.resegzoo-blocks/<key>/<index>.npz``
as soon as it is computed (by any engine); the spool is deleted once the raster's labels are
written. ``<key>`` hashes the raster's plan (path, blocks, stretch, grid) and the segmenter's
settings, so a rerun with other settings never mixes in these blocks. Spooled files are plain
``.npz`` arrays, read back through :mod:`resegzoo.outputs.reading` (regular files of bounded size,
no pickles).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from resegzoo.batch.job import BlockResult, RasterPlan
from resegzoo.outputs import atomic
from resegzoo.outputs.reading import load_npz

#: the spool folder under the output folder
SPOOL_DIR = ".resegzoo-blocks"


def raster_key(plan: RasterPlan, settings: dict[str, Any]) -> str:
    """Names a raster's spool: its plan and the segmenter settings, so blocks of other settings are
    never mixed in."""
    text = json.dumps({"plan": dataclasses.asdict(plan), "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def save_block(path: Path, result: BlockResult) -> None:
    arrays = {"core": np.asarray(result.core, dtype=np.int64), "labels": result.labels,
              "counts": result.counts, "nodata_pixels": np.int64(result.nodata_pixels),
              "windows_skipped": np.int64(result.windows_skipped)}
    if result.probs is not None:
        arrays["probs"] = result.probs
    if result.objects is not None:
        arrays.update(result.objects.to_arrays())
    # not compressed: the files are temporary, and deflating probabilities costs seconds a block
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def block_limit(plan: RasterPlan, block: Any) -> int:
    """The most bytes a spooled block of ``plan`` may hold: its labels, and its probabilities
    (float16 at most) per class, plus room for the small fields and the headers."""
    y0, x0, y1, x1 = block.core
    core = (y1 - y0) * (x1 - x0) * (1 + 2 * len(plan.class_names)) + (1 << 20)
    if not plan.objects:
        return core
    ry0, rx0, ry1, rx1 = block.read  # objects' masks, 8 px a byte, overlapping each other a little
    return core + 2 * (ry1 - ry0) * (rx1 - rx0)


def load_block(path: Path, plan: RasterPlan, block: Any) -> BlockResult:
    """A spooled block, read safely and checked against ``plan`` (see :func:`block_problem`):
    ValueError (naming the file and the problem) for one that is not this block's result."""
    # never a plain np.load: the spool is a folder others may write (a FIFO, a link, a bomb)
    data = load_npz(path, block_limit(plan, block))
    objects = None
    if "objects_boxes" in data:
        from resegzoo.objects.instances import Objects

        objects = Objects.from_arrays(data)
    result = BlockResult(index=block.index, core=tuple(int(v) for v in np.ravel(data["core"])),  # type: ignore[arg-type]
                         labels=data["labels"], counts=data["counts"], nodata_pixels=int(data["nodata_pixels"]),
                         probs=data.get("probs"), windows_skipped=int(data["windows_skipped"]), objects=objects)
    problem = block_problem(result, plan, block)
    if problem is not None:
        raise ValueError(f"{path}: not block {block.index}'s result: {problem}")
    return result


def block_problem(result: BlockResult, plan: RasterPlan, block: Any) -> str | None:
    """Why ``result`` cannot be block ``block`` of ``plan`` as this run computes it (None: it can):
    its core, its labels' shape and values (a class of the plan or nodata), its counts (what the
    sidecar's shares are summed from: they must be its labels' own), its probabilities."""
    from resegzoo.raster.reader import NODATA_LABEL

    y0, x0, y1, x1 = block.core
    shape = (y1 - y0, x1 - x0)
    classes = len(plan.class_names)
    labels = result.labels
    if tuple(result.core) != tuple(block.core):
        return f"its core is {tuple(result.core)}, the block's is {tuple(block.core)}"
    if labels.dtype != np.uint8 or labels.shape != shape:
        return f"labels of {labels.shape} {labels.dtype}, not {shape} uint8"
    valid = labels != NODATA_LABEL
    if valid.any() and int(labels[valid].max()) >= classes:
        return f"label {int(labels[valid].max())} where {classes} classes (and {NODATA_LABEL}, nodata) are possible"
    counts = np.bincount(labels[valid].ravel(), minlength=classes)
    if result.counts.shape != (classes,) or not np.array_equal(result.counts, counts):
        return "its class counts are not its labels' own"
    if result.nodata_pixels != int((~valid).sum()) or result.windows_skipped < 0:
        return "its nodata or skipped-window counts are not its labels' own"
    if plan.objects:
        if result.objects is None:
            return "no objects, but the plan asks for them"
        oy0, ox0, oy1, ox1 = block.read
        boxes = result.objects.boxes
        if len(boxes) and (boxes[:, 0].min() < oy0 or boxes[:, 1].min() < ox0 or boxes[:, 2].max() > oy1
                           or boxes[:, 3].max() > ox1 or result.objects.class_ids.max() >= max(1, plan.num_classes)
                           or result.objects.class_ids.min() < 0):
            return "objects outside its read box, or of classes the plan does not have"
    if plan.probs is not None:
        dtype = np.uint8 if plan.probs == "uint8" else np.float16
        want = (plan.num_classes, *shape)
        if result.probs is None or result.probs.shape != want or result.probs.dtype != dtype:
            got = "none" if result.probs is None else f"{result.probs.shape} {result.probs.dtype}"
            return f"probabilities {got}, not {want} {np.dtype(dtype)}"
    return None


def spooled_blocks(spool: Path, plan: Any, notes: list[str] | None = None,
                   load: Callable[[Path, Any], Any] | None = None) -> dict[int, Path]:
    """Finished blocks of an earlier, interrupted run. Unreadable leftovers, and blocks that are
    not this plan's (:func:`block_problem`), are removed and recomputed; a spool other users can
    write is not resumed from at all (``notes`` gets a line saying so). ``load(path, block)`` reads
    and checks one block (ValueError: not this plan's); default :func:`load_block` (another kind of
    plan with ``blocks``, e.g. a change pair's, brings its own)."""
    from resegzoo.outputs.reading import unsafe_folder

    problem = unsafe_folder(spool, up_to=spool.parent) if spool.is_dir() else None
    if problem is not None:
        if notes is not None:
            notes.append(f"finished blocks in {spool} are not used (computed again): {problem}")
        return {}
    found = {}
    for block in plan.blocks:
        path = spool / f"{block.index}.npz"
        try:
            # read again when its turn comes: memory stays one block
            load_block(path, plan, block) if load is None else load(path, block)
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError):  # UnsafeFileError is an OSError: not a block we wrote
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            continue
        found[block.index] = path
    return found
