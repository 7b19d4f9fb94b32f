"""A change pair block by block: planned once, each block read at both dates and scored anywhere
(this process or a Ray actor), its result spooled until the pair is whole.

The first date's :class:`~resegzoo.batch.job.RasterPlan` is the pair's (blocks with a halo, the one
resize factor, the outputs' grid); the second date is read onto that grid
(:func:`resegzoo.raster.warp.onto_grid`). A block's result holds, for its core, each date's class
map, the pixel rule's energy per class and each date's best score: everything the whole-raster
steps (Otsu over every block, components followed across blocks: :mod:`.assemble`) need, so no
block is scored twice.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from resegzoo.batch.job import RasterOptions, RasterPlan, plan_raster
from resegzoo.change.rule import ChangeSettings, class_energy, class_map
from resegzoo.raster.blocks import Block, Box
from resegzoo.raster.opening import NODATA_LABEL, Raster, open_raster
from resegzoo.runtime import timing


@dataclass(frozen=True)
class PairPlan:
    """Everything decided once for one pair of dates; plain, picklable data."""

    #: the first date's plan: its blocks, scale and windows, and the outputs' grid and georeferencing
    before: RasterPlan
    #: the second date, read on the first's grid
    after: Raster
    settings: ChangeSettings
    #: the vocabulary classes the pixel rule runs over (not background)
    classes: tuple[int, ...]
    #: how the second date was read (None: on the first's grid already)
    note: str | None = None

    @property
    def blocks(self) -> tuple[Block, ...]:
        return self.before.blocks

    @property
    def height(self) -> int:
        return self.before.raster.height

    @property
    def width(self) -> int:
        return self.before.raster.width


def plan_pair(before: str | Path | Raster, after: str | Path | Raster, segmenter: Any, vocab: Any,
              settings: ChangeSettings, options: RasterOptions | None = None,
              resampling: str = "bilinear") -> PairPlan:
    """Open both dates (paths or opened rasters), read the second onto the first's grid and plan the
    blocks (ImageError in one line for a pair that cannot be compared)."""
    from resegzoo.raster.warp import onto_grid

    options = options or RasterOptions()
    first = before if isinstance(before, Raster) else open_raster(before, options.bands, options.nodata)
    second = after if isinstance(after, Raster) else open_raster(after, options.bands, options.nodata)
    second, note = onto_grid(second, first, resampling)
    plan = plan_raster(first, segmenter, dataclasses.replace(options, probs=None), vocab)
    return PairPlan(plan, second, settings, tuple(settings.foreground_classes(vocab)), note)


@dataclass
class ChangeBlockResult:
    """One block of a pair, its core only; picklable."""

    index: int
    core: Box
    #: (h, w) uint8 class maps (``len(vocab)``: background below the threshold; 255: nodata at either date)
    labels_a: np.ndarray
    labels_b: np.ndarray
    #: (K', h, w) float32 E per pixel-rule class (0 where nodata)
    energy: np.ndarray
    #: (h, w) float32 best class score at each date (0 where nodata)
    top_a: np.ndarray
    top_b: np.ndarray
    windows_skipped: int = 0
    #: seconds per stage spent on this block in a worker process (see ``batch.job.BlockResult``)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def valid(self) -> np.ndarray:
        return self.labels_a != NODATA_LABEL


def read_pair_block(segmenter: Any, pair: PairPlan, block: Block) -> tuple[Any, np.ndarray, Any, np.ndarray]:
    """Both dates' pixels of ``block`` (with its halo) and valid masks, made ready for the encoder
    (thread-safe: the next block is read while this one is scored)."""
    out = []
    for raster in (pair.before.raster, pair.after):
        with timing.stage("read"):
            rgb, valid = raster.read_rgb(block.read)
        ready = segmenter.prepare(rgb, scale=pair.before.scale, valid=valid) if valid.any() else rgb
        out.extend([ready, valid])
    return out[0], out[1], out[2], out[3]


def change_block(segmenter: Any, vocab: Any, pair: PairPlan, block: Block,
                 read: tuple[Any, np.ndarray, Any, np.ndarray] | None = None,
                 before: dict[str, float] | None = None) -> ChangeBlockResult:
    """Score ``block`` at both dates (one pass each: scores and features) and keep its core's
    class maps, energies and best scores. ``read``: what :func:`read_pair_block` gave (None: read
    now); ``before``: in a worker process, its meter's snapshot from before that read."""
    import torch

    from resegzoo.change.pair import score_pair
    from resegzoo.methods.base import names_to_classes

    meter = timing.current()
    if meter.batch:
        before = None  # the run's own process: its meter saw the work as it happened
    elif before is None:
        before = meter.snapshot()
    ry0, rx0, _, _ = block.read
    cy0, cx0, cy1, cx1 = block.core
    crop = (slice(cy0 - ry0, cy1 - ry0), slice(cx0 - rx0, cx1 - rx0))
    image_a, valid_a, image_b, valid_b = read if read is not None else read_pair_block(segmenter, pair, block)
    valid = (valid_a & valid_b)[crop]
    shape = (cy1 - cy0, cx1 - cx0)
    k = len(pair.classes)
    if not (valid_a & valid_b).any():  # nothing to compare: no model pass at all
        nodata = np.full(shape, NODATA_LABEL, np.uint8)
        zeros = np.zeros(shape, np.float32)
        return ChangeBlockResult(block.index, block.core, nodata, nodata.copy(), np.zeros((k, *shape), np.float32),
                                 zeros, zeros.copy(), stage_seconds=_since(before, meter))
    scored = score_pair(segmenter, vocab, image_a, image_b, valid_a, valid_b, scale=pair.before.scale)
    threshold = pair.settings.background_threshold
    scores_a, scores_b = scored.scores_a[(slice(None), *crop)], scored.scores_b[(slice(None), *crop)]
    labels_a = class_map(scores_a, vocab, threshold, valid)
    labels_b = class_map(scores_b, vocab, threshold, valid)
    energy = class_energy(scores_a, scores_b, scored.distance[crop], vocab, pair.classes)
    energy[:, ~valid] = 0.0
    tops = []
    for scores in (scores_a, scores_b):
        top = names_to_classes(torch.as_tensor(scores).float(), vocab.class_of_names, len(vocab), dim=0).amax(dim=0)
        tops.append(np.where(valid, top.cpu().numpy(), 0.0).astype(np.float32))
    skipped = int(scored.info.get("windows_skipped_nodata", 0) or 0)
    return ChangeBlockResult(block.index, block.core, labels_a, labels_b, energy.astype(np.float32), tops[0], tops[1],
                             windows_skipped=skipped, stage_seconds=_since(before, meter))


def _since(before: Any, meter: Any) -> dict[str, float]:
    return {} if before is None else timing.since(before, meter.snapshot())


class ChangeBlockWork:
    """Change's work on every engine (:mod:`resegzoo.engines.task`): an item is a block of the
    pair; ``prepare`` reads both dates (:func:`read_pair_block`; the local engine runs it for the
    next block while this one is scored), ``run`` scores them (:func:`change_block`)."""

    def __init__(self, segmenter: Any, vocab: Any, pair: PairPlan) -> None:
        self.segmenter, self.vocab, self.pair = segmenter, vocab, pair

    def prepare(self, block: Block) -> tuple[dict[str, float], tuple[Any, np.ndarray, Any, np.ndarray]]:
        before = timing.current().snapshot()  # a worker's split of the block starts with its read
        return before, read_pair_block(self.segmenter, self.pair, block)

    def run(self, block: Block, prepared: tuple[dict[str, float], Any]) -> ChangeBlockResult:
        before, read = prepared
        return change_block(self.segmenter, self.vocab, self.pair, block, read, before)


def change_task(segmenter: Any, vocab: Any, pair: PairPlan, spec: Any = None) -> Any:
    """The engines' :class:`~resegzoo.engines.task.Task` that scores ``pair``'s blocks (``spec``:
    the SegmenterSpec Ray actors build their segmenter from)."""
    from resegzoo.engines.task import Task

    depth = getattr(getattr(getattr(segmenter, "recipe", None), "inference", None), "prefetch", 0) or 0
    return Task(ChangeBlockWork, {"vocab": vocab, "pair": pair}, segmenter=spec, prefetch=depth, unit="block")


# -- the spool ----------------------------------------------------------------------------------
def pair_key(pair: PairPlan, settings: dict[str, Any]) -> str:
    """Names a pair's spool: its plan (both dates, blocks, grid) and the segmenter and rule settings,
    so blocks of other settings are never mixed in."""
    text = json.dumps({"pair": dataclasses.asdict(pair), "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def save_block(path: Path, result: ChangeBlockResult) -> None:
    from resegzoo.outputs import atomic

    arrays = {"core": np.asarray(result.core, dtype=np.int64), "labels_a": result.labels_a,
              "labels_b": result.labels_b, "energy": result.energy, "top_a": result.top_a, "top_b": result.top_b,
              "windows_skipped": np.int64(result.windows_skipped)}
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def block_limit(pair: PairPlan, block: Block) -> int:
    y0, x0, y1, x1 = block.core
    return (y1 - y0) * (x1 - x0) * (2 + 4 * (len(pair.classes) + 2)) + (1 << 20)


def load_block(path: Path, pair: PairPlan, block: Block, classes: int) -> ChangeBlockResult:
    """A spooled block, read safely (no pickles, bounded size) and checked against ``pair``:
    ValueError naming the file and the problem for one that is not this block's result
    (``classes``: the vocabulary's size, so labels run 0..classes)."""
    from resegzoo.outputs.reading import load_npz

    data = load_npz(path, block_limit(pair, block))
    result = ChangeBlockResult(block.index, tuple(int(v) for v in np.ravel(data["core"])),  # type: ignore[arg-type]
                               data["labels_a"], data["labels_b"], data["energy"], data["top_a"], data["top_b"],
                               int(data["windows_skipped"]))
    problem = block_problem(result, pair, block, classes)
    if problem is not None:
        raise ValueError(f"{path}: not block {block.index}'s result: {problem}")
    return result


def block_problem(result: ChangeBlockResult, pair: PairPlan, block: Block, classes: int) -> str | None:
    """Why ``result`` cannot be ``block`` of ``pair`` (None: it can)."""
    y0, x0, y1, x1 = block.core
    shape = (y1 - y0, x1 - x0)
    if tuple(result.core) != tuple(block.core):
        return f"its core is {tuple(result.core)}, the block's is {tuple(block.core)}"
    for name in ("labels_a", "labels_b"):
        labels = getattr(result, name)
        if labels.dtype != np.uint8 or labels.shape != shape:
            return f"{name} of {labels.shape} {labels.dtype}, not {shape} uint8"
        valid = labels != NODATA_LABEL
        if valid.any() and int(labels[valid].max()) > classes:
            return f"{name} holds label {int(labels[valid].max())}, above {classes}"
    if not np.array_equal(result.labels_a == NODATA_LABEL, result.labels_b == NODATA_LABEL):
        return "its two dates' nodata differ"
    want = (len(pair.classes), *shape)
    if result.energy.dtype != np.float32 or result.energy.shape != want or not np.isfinite(result.energy).all():
        return f"energy of {result.energy.shape} {result.energy.dtype}, not finite {want} float32"
    for name in ("top_a", "top_b"):
        top = getattr(result, name)
        if top.dtype != np.float32 or top.shape != shape:
            return f"{name} of {top.shape} {top.dtype}, not {shape} float32"
    return None


def spooled_blocks(spool: Path, pair: PairPlan, classes: int, notes: list[str] | None = None) -> dict[int, Path]:
    """Finished blocks of an earlier, interrupted run (the batch's rules: unreadable or foreign ones
    are removed and computed again; a spool others can write is not used, ``notes`` says so)."""
    from resegzoo.batch.spool import spooled_blocks as batch_spooled_blocks

    return batch_spooled_blocks(spool, pair, notes, load=lambda path, block: load_block(path, pair, block, classes))
