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
from typing import Any

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
    # not compressed: the files are temporary, and deflating probabilities costs seconds a block
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def block_limit(plan: RasterPlan, block: Any) -> int:
    """The most bytes a spooled block of ``plan`` may hold: its labels, and its probabilities
    (float16 at most) per class, plus room for the small fields and the headers."""
    y0, x0, y1, x1 = block.core
    return (y1 - y0) * (x1 - x0) * (1 + 2 * len(plan.class_names)) + (1 << 20)


def load_block(path: Path, plan: RasterPlan, block: Any) -> BlockResult:
    # never a plain np.load: the spool is a folder others may write (a FIFO, a link, a bomb)
    data = load_npz(path, block_limit(plan, block))
    return BlockResult(index=block.index, core=tuple(int(v) for v in data["core"]), labels=data["labels"],  # type: ignore[arg-type]
                       counts=data["counts"], nodata_pixels=int(data["nodata_pixels"]),
                       probs=data.get("probs"), windows_skipped=int(data["windows_skipped"]))


def spooled_blocks(spool: Path, plan: RasterPlan) -> dict[int, Path]:
    """Finished blocks of an earlier, interrupted run (unreadable leftovers are recomputed)."""
    found = {}
    for block in plan.blocks:
        path = spool / f"{block.index}.npz"
        try:
            load_block(path, plan, block)  # read again when its turn comes: memory stays one block
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
