"""Segmenting one raster block by block: plan once, segment blocks (in any order, anywhere), write.

The three pieces are separate so that an engine can distribute them (issue 11's Ray engine):

- :func:`plan_raster` decides everything once per raster (bands, nodata, stretch, the one resize
  factor, the blocks, the output grid and georeferencing, class names and colours) into a
  picklable :class:`RasterPlan`;
- :func:`segment_block` reads its OWN pixels from ``plan.raster.path`` and returns a picklable
  :class:`BlockResult` (core labels, optional probabilities, per-class and nodata counts);
- :class:`RasterWriter` writes results in any order; the output appears (atomically) only when
  every block was written and the context exits cleanly.

:func:`segment_raster` runs them for one raster in this process (the local engine: plan, the
blocks, write); :class:`BlockWork` is what every engine runs per block.
"""
from __future__ import annotations

import contextlib
import errno
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from resegzoo.raster.blocks import Block, Box, plan_blocks
from resegzoo.outputs.atomic import nearly_full
from resegzoo.outputs.gdal_failures import raising_gdal_failures
from resegzoo.outputs.gis.cog import write_label_names
from resegzoo.raster.errors import ImageError
from resegzoo.raster.georef import quiet_georef
from resegzoo.raster.opening import NODATA_LABEL, Raster, open_raster
from resegzoo.runtime import timing

ProbsFormat = Literal["uint8", "float16"]


@dataclass(frozen=True)
class RasterOptions:
    """How to read and cut a raster; None = the recipe's / the file's."""

    bands: tuple[int, ...] | None = None
    #: overrides the file's nodata (nan allowed); None = the file's masks (nodata, mask, alpha, NaN)
    nodata: float | None = None
    #: core side of a block in source px (default: recipe ``inference.tile_size``)
    block: int | None = None
    #: context around a block in source px (default: recipe ``inference.tile_overlap``, at least
    #: one window in the resized frame so blocks see what a whole-image run sees)
    halo: int | None = None
    #: also write per-class probabilities: "uint8" (0..255 = 0..1) or "float16"
    probs: ProbsFormat | None = None
    progress: bool = False
    #: also find the method's objects (instances), whole across windows and blocks
    objects: bool = False


@dataclass(frozen=True)
class RasterPlan:
    """Everything decided once for one raster; plain, picklable data."""

    raster: Raster
    scale: float  # resized / source size: one factor for the whole raster
    window: int
    stride: int
    block: int
    halo: int
    blocks: tuple[Block, ...]
    class_names: tuple[str, ...]  # the vocabulary's, then "background" when the recipe has one
    num_classes: int  # vocabulary classes (= probability planes)
    palette: tuple[tuple[int, int, int], ...]
    probs: ProbsFormat | None = None
    #: "GTiff" for georeferenced or TIFF inputs, "PNG" for plain pictures
    label_driver: str = "GTiff"
    #: blocks also give the method's objects (``segment --objects``)
    objects: bool = False

    @property
    def path(self) -> str:
        return self.raster.path

    @property
    def tiled(self) -> bool:
        return len(self.blocks) > 1


@dataclass
class BlockResult:
    """One block's output, for its core only; picklable."""

    index: int
    core: Box
    labels: np.ndarray  # (h, w) uint8, NODATA_LABEL where no valid data
    counts: np.ndarray  # (len(class_names),) int64 valid pixels per class
    nodata_pixels: int
    probs: np.ndarray | None = None  # (K, h, w) uint8 or float16
    windows_skipped: int = 0
    #: seconds per stage (resegzoo.runtime.timing) spent on this block in a worker process; empty
    #: where the batch's own process computed it (its meter saw the work already)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: with ``plan.objects``: the objects that reach into the core, whole as far as the block's read
    #: box sees them (:class:`resegzoo.objects.instances.Objects` in raster pixels)
    objects: Any = None


@dataclass
class BlockOutcome:
    """One block as an engine hands it back (in any order): its result, or why there is none."""

    job: int  # the raster's number in the batch
    block: Block
    result: BlockResult | None = None
    #: an exception raised in this process, or the message of a remote worker's failure
    error: BaseException | str | None = None
    seconds: float = 0.0  # time spent computing it


def _segmenter_window(segmenter_or_recipe: Any) -> tuple[Any, int, int]:
    recipe = getattr(segmenter_or_recipe, "recipe", segmenter_or_recipe)
    window = getattr(segmenter_or_recipe, "window", None) or recipe.inference.window
    if not window:
        raise ValueError("plan_raster needs a Segmenter, or a recipe that sets inference.window")
    stride = getattr(segmenter_or_recipe, "stride", None) or recipe.inference.stride or max(1, window // 2)
    return recipe, int(window), int(stride)


def check_label_count(classes: int, background: bool) -> None:
    """The classes (and the background class, when the recipe has one) fit an 8-bit label map
    beside :data:`NODATA_LABEL`: labels 0..254; ImageError otherwise."""
    labels = classes + (1 if background else 0)
    if labels > NODATA_LABEL:
        extra = " and background" if background else ""
        raise ImageError(f"{classes} classes{extra}: at most {NODATA_LABEL} labels fit an 8-bit label map "
                         f"({NODATA_LABEL} is nodata)")


def raster_scale(height: int, width: int, short_side: int | None) -> float:
    """The one resize factor of a raster: ``short_side`` / its short side, or 1."""
    return 1.0 if short_side is None else short_side / min(height, width)


def _check_block_sizes(path: str, blocks: Sequence[Block], scale: float, window: int, inference: Any,
                       block: int) -> None:
    """ImageError before any work when a block, read or resized, would be larger than
    :data:`~resegzoo.segmenter.windows.MAX_WORK_PIXELS` (a resize that blows every block up, or one
    so small that a window needs the whole raster), naming the settings that size it."""
    from resegzoo.segmenter.core import resize_setting
    from resegzoo.segmenter.windows import MAX_WORK_PIXELS, check_work_size

    y0, x0, y1, x1 = max((b.read for b in blocks), key=lambda r: (r[2] - r[0]) * (r[3] - r[1]))
    h, w = y1 - y0, x1 - x0
    why = f"{path}: {resize_setting(inference)} with inference.tile_size = {block}"
    fix = "change the resize or lower inference.tile_size"
    if h * w > MAX_WORK_PIXELS:
        raise ImageError(f"{why} makes blocks of {h:,} x {w:,} px to read at once, above the limit "
                         f"of {MAX_WORK_PIXELS:,} px; {fix}")
    try:
        check_work_size(max(2, round(h * scale)), max(2, round(w * scale)), window, why, fix)
    except ValueError as exc:
        raise ImageError(str(exc)) from None


def plan_raster(path: str | Path | Raster, segmenter_or_recipe: Any, options: RasterOptions | None = None,
                vocab: Any = None) -> RasterPlan:
    """Open ``path`` (or take an opened :class:`Raster`) and decide how it is segmented (see
    :class:`RasterPlan`). ``vocab`` gives the class names and colours of the outputs."""
    from resegzoo.outputs.imageio import make_palette

    options = options or RasterOptions()
    recipe, window, stride = _segmenter_window(segmenter_or_recipe)
    raster = path if isinstance(path, Raster) else open_raster(path, options.bands, options.nodata)
    from resegzoo.segmenter.core import work_scale

    # the recipe's resize rule (short side or mmcv's fit) gives the one factor of the whole raster
    scale = work_scale(raster.height, raster.width, recipe.inference) or 1.0
    block = options.block or recipe.inference.tile_size
    halo = options.halo if options.halo is not None else max(recipe.inference.tile_overlap, math.ceil(window / scale))
    blocks = plan_blocks(raster.height, raster.width, block=block, halo=halo, scale=scale, window=window, stride=stride)
    _check_block_sizes(raster.path, blocks, scale, window, recipe.inference, block)
    background = recipe.inference.background_threshold is not None
    names: list[str] = [] if vocab is None else list(vocab.class_names) + (["background"] if background else [])
    if vocab is not None:
        check_label_count(len(vocab), background)
    palette = make_palette(names)
    tiff = raster.driver == "GTiff" or raster.is_georeferenced
    return RasterPlan(raster=raster, scale=scale, window=window, stride=stride, block=block, halo=halo,
                      blocks=tuple(blocks), class_names=tuple(names),
                      num_classes=0 if vocab is None else len(vocab), palette=tuple(tuple(c) for c in palette),
                      probs=options.probs, label_driver="GTiff" if tiff else "PNG", objects=options.objects)


def block_windows(plan: RasterPlan, block: Block, placement: str = "pad") -> int:
    """How many sliding windows the encoder runs over ``block`` (its read box, halo included,
    resized by the raster's one factor), for telling the user up front what will be done."""
    from resegzoo.segmenter.windows import WindowPlan

    y0, x0, y1, x1 = block.read
    h, w = max(2, round((y1 - y0) * plan.scale)), max(2, round((x1 - x0) * plan.scale))
    # the segmenter's own planning (every placement: "image" is one window over the whole block)
    return len(WindowPlan.make(h, w, plan.window, plan.stride, placement).windows)


def read_block(segmenter: Any, plan: RasterPlan, block: Block) -> tuple[Any, np.ndarray]:
    """``block``'s pixels (with their halo) and valid mask, made ready for the encoder when the
    segmenter can (``prepare``: resized, nodata filled, first segments made); thread-safe, so
    the next block is read while this one is encoded."""
    with timing.stage("read"):
        rgb, valid = plan.raster.read_rgb(block.read)
    if valid.any() and hasattr(segmenter, "prepare"):
        return segmenter.prepare(rgb, scale=plan.scale, valid=valid), valid
    return rgb, valid


def segment_block(segmenter: Any, vocab: Any, plan: RasterPlan, block: Block,
                  read: tuple[Any, np.ndarray] | None = None, before: dict[str, float] | None = None) -> BlockResult:
    """Read ``block``'s pixels (with their halo) from the raster, segment them, keep the core.
    ``read``: what :func:`read_block` returned for it (None: read it now); ``before``: in a worker
    process, its meter's snapshot from before that read (its time counts as the block's)."""
    meter = timing.current()
    if meter.batch:
        before = None  # the batch's own process: its meter saw the work as it happened
    elif before is None:
        before = meter.snapshot()  # a worker process: its block's own split
    ry0, rx0, _, _ = block.read
    cy0, cx0, cy1, cx1 = block.core
    pixels, valid = read if read is not None else read_block(segmenter, plan, block)
    asked = {"objects": True} if plan.objects else {}
    if isinstance(pixels, np.ndarray):
        result = segmenter.segment(pixels, vocab, scale=plan.scale, valid=valid, **asked)
    else:  # prepared with its scale and valid mask
        result = segmenter.segment(pixels, vocab, **asked)
    crop = (slice(cy0 - ry0, cy1 - ry0), slice(cx0 - rx0, cx1 - rx0))
    labels = result.labels[crop].astype(np.uint8)
    core_valid = valid[crop]
    labels[~core_valid] = NODATA_LABEL
    counts = np.bincount(labels[core_valid].ravel(), minlength=len(plan.class_names)).astype(np.int64)
    probs = None
    if plan.probs is not None:
        p = result.probs[(slice(None), *crop)]
        if plan.probs == "uint8":
            probs = np.clip(np.round(p * 255.0), 0, 255).astype(np.uint8)
        else:
            probs = np.where(core_valid[None], p, np.nan).astype(np.float16)
    objects = None if not plan.objects else _core_objects(result.objects, block)
    return BlockResult(index=block.index, core=block.core, labels=labels, counts=counts,
                       nodata_pixels=int((~core_valid).sum()), probs=probs,
                       windows_skipped=int(result.info.get("windows_skipped_nodata", 0) or 0),
                       stage_seconds={} if before is None else timing.since(before, meter.snapshot()),
                       objects=objects)


def _core_objects(objects: Any, block: Block) -> Any:
    """A block's objects (its read box's pixels) that reach into its core, in raster pixels: an
    object only in the halo is its neighbour's to report (the cores tile the raster)."""
    from resegzoo.objects.instances import Objects

    if objects is None or not len(objects):
        return Objects.empty()
    ry0, rx0 = block.read[0], block.read[1]
    cy0, cx0, cy1, cx1 = (v - o for v, o in zip(block.core, (ry0, rx0, ry0, rx0)))
    keep = []
    for k, ((y0, x0, y1, x1), mask) in enumerate(zip(objects.boxes, objects.masks)):
        iy0, ix0, iy1, ix1 = max(y0, cy0), max(x0, cx0), min(y1, cy1), min(x1, cx1)
        if iy0 < iy1 and ix0 < ix1 and mask[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0].any():
            keep.append(k)
    return objects.take(np.array(keep, np.int64)).shifted(ry0, rx0).with_views(block.read)


class BlockWork:
    """Segment's work on every engine (:mod:`resegzoo.engines.task`): an item is ``(raster
    number, block)``; ``prepare`` reads the block (:func:`read_block`), ``run`` segments it
    (:func:`segment_block`) into a :class:`BlockResult`."""

    def __init__(self, segmenter: Any, vocab: Any, plans: Sequence[RasterPlan]) -> None:
        self.segmenter, self.vocab, self.plans = segmenter, vocab, list(plans)

    def prepare(self, item: tuple[int, Block]) -> tuple[dict[str, float], tuple[Any, np.ndarray]]:
        number, block = item
        before = timing.current().snapshot()  # a worker's split of the block starts with its read
        return before, read_block(self.segmenter, self.plans[number], block)

    def run(self, item: tuple[int, Block], prepared: tuple[dict[str, float], tuple[Any, np.ndarray]]) -> BlockResult:
        number, block = item
        before, read = prepared
        return segment_block(self.segmenter, self.vocab, self.plans[number], block, read, before)


def block_task(segmenter: Any, vocab: Any, plans: Sequence[RasterPlan], spec: Any = None) -> Any:
    """The engines' :class:`~resegzoo.engines.task.Task` that segments blocks of ``plans``
    (``spec``: the SegmenterSpec Ray actors build their segmenter from)."""
    from resegzoo.engines.task import Task

    recipe = getattr(segmenter, "recipe", None)
    depth = getattr(getattr(recipe, "inference", None), "prefetch", 0) or 0
    return Task(BlockWork, {"vocab": vocab, "plans": list(plans)}, segmenter=spec, prefetch=depth, unit="block")


def _label_profile(plan: RasterPlan) -> dict[str, Any]:
    raster = plan.raster
    return {"driver": "GTiff", "height": raster.height, "width": raster.width, "count": 1, "dtype": "uint8",
            "nodata": NODATA_LABEL, "compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256,
            "BIGTIFF": "IF_SAFER",  # label maps of huge rasters may pass 4 GB
            **raster.georef.profile()}


def _probs_profile(plan: RasterPlan) -> dict[str, Any]:
    profile = {**_label_profile(plan), "count": max(1, plan.num_classes), "interleave": "band"}
    if plan.probs == "float16":
        # GDAL stores Float32 with NBITS=16 as IEEE half floats on disk
        profile.update(dtype="float32", nodata=float("nan"), NBITS=16)
    else:
        profile.pop("nodata")  # 0..255 are all probabilities: nodata goes into the internal mask
    return profile


class RasterWriter:
    """Writes :class:`BlockResult` s of one plan into the label raster (and the probability raster)
    in any order; the files appear only when every block was written and the context exits cleanly.

        with RasterWriter(plan, "out.labels.tif") as writer:
            for block in plan.blocks:
                writer.write(block, segment_block(seg, vocab, plan, block))
    """

    def __init__(self, plan: RasterPlan, destination: str | Path, probs_destination: str | Path | None = None,
                 object_areas: tuple[float, float | None] = (0.0, None)) -> None:
        """``object_areas``: with ``plan.objects``, the (min, max) area of the objects kept (m² where
        the raster is georeferenced, else px; max None: no limit)."""
        if plan.probs is not None and probs_destination is None:
            raise ValueError("the plan asks for probabilities: give probs_destination")
        self.plan = plan
        self.destination = Path(destination)
        self.probs_destination = None if probs_destination is None else Path(probs_destination)
        self.written: set[int] = set()
        self.counts = np.zeros(len(plan.class_names), dtype=np.int64)
        self.nodata_pixels = 0
        self.windows_skipped = 0
        self._stack: contextlib.ExitStack | None = None
        self._labels: Any = None
        self._probs: Any = None
        self._label_tmp: Path | None = None
        #: with ``plan.objects``: the raster's finished objects (:class:`resegzoo.objects.store.ObjectStore`),
        #: complete once the writer exits cleanly
        self.objects: Any = None
        self._assembler: Any = None
        if plan.objects:
            from resegzoo.objects.merge import ObjectAssembler
            from resegzoo.objects.store import ObjectStore, area_function

            georef = plan.raster.georef
            area, unit = area_function(georef.transform, georef.crs_wkt)
            names = plan.class_names[:plan.num_classes] if plan.num_classes else plan.class_names
            self.objects = ObjectStore(names, area, unit, *object_areas)
            self._assembler = ObjectAssembler([b.read for b in plan.blocks], self.objects.add)

    def __enter__(self) -> "RasterWriter":
        import rasterio

        from resegzoo.outputs.atomic import atomic_path

        stack = contextlib.ExitStack()
        try:
            stack.enter_context(quiet_georef())
            final = stack.enter_context(atomic_path(self.destination))
            self._final = self._label_tmp = final
            if self.plan.label_driver != "GTiff":  # PNG cannot be written by windows: a GeoTIFF first
                self._label_tmp = final.with_name(final.name + ".tif")
                stack.callback(self._label_tmp.unlink, missing_ok=True)
            self._labels = stack.enter_context(rasterio.open(self._label_tmp, "w", **_label_profile(self.plan)))
            self.plan.raster.georef.apply(self._labels)
            if self.plan.palette:
                self._labels.write_colormap(1, {k: (*rgb, 255) for k, rgb in enumerate(self.plan.palette)})
            if self.plan.class_names and self.plan.label_driver == "GTiff":  # a .tif copied alone keeps them
                write_label_names(self._labels, self.plan.class_names)
            if self.plan.probs is not None:
                probs_tmp = stack.enter_context(atomic_path(self.probs_destination))  # type: ignore[arg-type]
                self._probs = stack.enter_context(rasterio.open(probs_tmp, "w", **_probs_profile(self.plan)))
                self.plan.raster.georef.apply(self._probs)
                for k, name in enumerate(self.plan.class_names[:self.plan.num_classes]):
                    self._probs.set_band_description(k + 1, name)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def write(self, block: Block, result: BlockResult) -> None:
        from rasterio.windows import Window

        if result.index != block.index or result.core != block.core:
            raise ValueError(f"result of block {result.index} written as block {block.index}")
        y0, x0, y1, x1 = block.core
        window = Window(x0, y0, x1 - x0, y1 - y0)
        if self._probs is not None and result.probs is None:
            raise ValueError(f"block {block.index} has no probabilities, but the plan asks for them")
        # a write may flush other cached blocks to disk; a failure there is only reported by GDAL
        with raising_gdal_failures(str(self.destination)):
            self._labels.write(result.labels[None], window=window)
            if self._probs is not None:
                self._probs.write(result.probs.astype(self._probs.dtypes[0]), window=window)
                if self.plan.probs == "uint8":
                    self._probs.write_mask(np.where(result.labels != NODATA_LABEL, 255, 0).astype(np.uint8),
                                           window=window)
        if self._assembler is not None:
            if result.objects is None:
                raise ValueError(f"block {block.index} has no objects, but the plan asks for them")
            self._assembler.add(block.index, result.objects)
        self.written.add(block.index)
        self.counts += result.counts
        self.nodata_pixels += result.nodata_pixels
        self.windows_skipped += result.windows_skipped

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        assert self._stack is not None
        stack, self._stack = self._stack, None
        if exc_type is None:
            missing = sorted(set(range(len(self.plan.blocks))) - self.written)
            if missing:
                err = RuntimeError(f"{self.destination}: blocks {missing[:10]} were never written; nothing saved")
                stack.__exit__(RuntimeError, err, None)
                raise err
            try:
                if self._assembler is not None:
                    self._assembler.close()
                    self.objects.finish()
                # the cached blocks reach the disk here: a failure (a full disk) must stop the commit
                with raising_gdal_failures(str(self.destination)):
                    self._labels.close()
                    if self._probs is not None:
                        self._probs.close()
                if nearly_full(self.destination.parent):
                    # libtiff may fail a write without GDAL reporting it: on a full disk the
                    # file may be incomplete, so it is not committed
                    raise OSError(errno.ENOSPC, f"{self.destination}: the disk filled up while writing it")
                if self.plan.label_driver != "GTiff":
                    from rasterio.shutil import copy as gdal_copy

                    with raising_gdal_failures(str(self.destination)):
                        gdal_copy(self._label_tmp, self._final, driver=self.plan.label_driver)
                    Path(f"{self._final}.aux.xml").unlink(missing_ok=True)  # nothing a PNG reader needs
            except BaseException as err:
                if not stack.__exit__(type(err), err, err.__traceback__):
                    raise
                return False
        return bool(stack.__exit__(exc_type, exc, tb))


@dataclass
class RasterRun:
    """What :func:`segment_raster` did: the plan, the outputs and the pixel counts."""

    plan: RasterPlan
    labels_path: Path
    probs_path: Path | None
    counts: np.ndarray
    nodata_pixels: int
    windows_skipped: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)
    #: with ``RasterOptions(objects=True)``: the raster's objects (:class:`resegzoo.objects.store.ObjectStore`:
    #: ``counts()``, ``chunks()``, ``paint(window)``)
    objects: Any = None

    def pixel_fraction(self) -> dict[str, float]:
        """Fraction of the VALID pixels per class (all 0 when nothing is valid; never NaN)."""
        total = int(self.counts.sum())
        return {n: (round(int(c) / total, 6) if total else 0.0) for n, c in zip(self.plan.class_names, self.counts)}


def segment_raster(segmenter: Any, vocab: Any, source: str | Path | RasterPlan, destination: str | Path,
                   options: RasterOptions | None = None, *, probs_destination: str | Path | None = None,
                   object_areas: tuple[float, float | None] = (0.0, None)) -> RasterRun:
    """Segment a raster of any size block by block and write its label raster to ``destination``
    (GeoTIFF with the input's grid and georeferencing, or a palette PNG for a plain picture's
    ``.png`` destination); memory is bounded by the block size, not the raster's."""
    from resegzoo.engines.local import LocalEngine

    start = time.perf_counter()
    plan = source if isinstance(source, RasterPlan) else plan_raster(source, segmenter, options, vocab)
    outcomes = LocalEngine().run(block_task(segmenter, vocab, [plan]), [(0, block) for block in plan.blocks],
                                 segmenter=lambda: segmenter)
    if options is not None and options.progress and len(plan.blocks) > 1:
        from tqdm.auto import tqdm

        outcomes = tqdm(outcomes, desc="blocks", unit="block", leave=False, total=len(plan.blocks))
    with RasterWriter(plan, destination, probs_destination, object_areas) as writer:
        # the next block is read and prepared in a background thread while this one is encoded
        for outcome in outcomes:
            if outcome.error is not None:
                raise outcome.error  # type: ignore[misc]  (in this process: always an exception)
            writer.write(outcome.item[1], outcome.value)
    return RasterRun(plan=plan, labels_path=Path(destination),
                     probs_path=None if probs_destination is None else Path(probs_destination),
                     counts=writer.counts, nodata_pixels=writer.nodata_pixels,
                     windows_skipped=writer.windows_skipped, seconds=time.perf_counter() - start,
                     objects=writer.objects)
