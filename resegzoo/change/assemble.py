"""A pair's outputs from its finished blocks: the steps that need the whole raster, with bounded memory.

1. Otsu over the whole raster: each class's energies from every block, two passes (the range,
   then the histogram: :class:`~resegzoo.change.rule.EnergyHistogram`), one threshold per class.
2. Each block's class maps, the pixel rule's verdict and its evidence (energies, scores) into work
   rasters of the whole grid.
3. The object rule strip by strip over the whole grid (components followed across strips and so
   across blocks: :func:`~resegzoo.change.rule.object_changes`); change = both rules; the change
   raster, what each changed pixel was and became, and a (before, after) code for the polygons.
4. The products: ``STEM.tif`` (COG: 0 unchanged, 1 changed, 255 nodata), ``STEM.from.tif`` and
   ``STEM.to.tif`` (COGs of class labels at changed pixels), ``STEM.gpkg`` (one polygon per region of
   one (before, after) pair, with its area and the scores that decided), ``STEM.overlay.png`` (both
   dates, the changes outlined). Every file appears atomically; the work rasters are removed.
"""
from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from resegzoo.change.blocks import ChangeBlockResult, PairPlan, load_block
from resegzoo.change.rule import EnergyHistogram, NODATA_LABEL, foreground, object_changes
from resegzoo.outputs.gis.vector import STRIP_PIXELS

#: change.tif's classes and colours
CHANGE_CLASSES = ("unchanged", "changed")
CHANGE_PALETTE = ((60, 60, 60), (230, 30, 30))
#: the outline of changed regions in the overlay (yellow: seen on roofs, fields and water alike)
OUTLINE = (255, 221, 0)
#: evidence bands kept per pixel for the polygons' attributes (means over each polygon)
EVIDENCE = ("energy", "energy_ratio", "score_before", "score_after", "coverage")


@dataclass(frozen=True)
class PairOutputs:
    """Where one pair's products go: ``folder/STEM.tif``, ``STEM.from.tif``, ``STEM.to.tif``,
    ``STEM.gpkg`` (or ``.geojson``), ``STEM.overlay.png`` and the sidecar ``STEM.json``."""

    folder: Path
    stem: str = "change"
    vector_format: str = "gpkg"

    def path(self, kind: str) -> Path:
        suffix = {"change": ".tif", "from": ".from.tif", "to": ".to.tif", "vector": f".{self.vector_format}",
                  "overlay": ".overlay.png", "sidecar": ".json"}[kind]
        return self.folder / f"{self.stem}{suffix}"

    @property
    def files(self) -> list[Path]:
        """Every file of a finished pair (the COGs' GDAL ``.aux.xml`` beside them)."""
        paths = [self.path(k) for k in ("change", "from", "to", "vector", "overlay", "sidecar")]
        return paths + [p.with_name(p.name + ".aux.xml") for p in paths[:3]]


@dataclass
class Assembly:
    """What the whole-raster steps found: the thresholds and the counts the sidecar records."""

    thresholds: list[float] = field(default_factory=list)
    valid_pixels: int = 0
    changed_pixels: int = 0
    object_pixels: int = 0
    pixel_rule_pixels: int = 0
    nodata_pixels: int = 0
    windows_skipped: int = 0
    #: (class before, class after) -> changed pixels
    transitions: dict[tuple[str, str], int] = field(default_factory=dict)
    polygons: int = 0


def _profile(pair: PairPlan, count: int, dtype: str, nodata: Any) -> dict[str, Any]:
    raster = pair.before.raster
    profile = {"driver": "GTiff", "height": raster.height, "width": raster.width, "count": count, "dtype": dtype,
               "compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256, "BIGTIFF": "IF_SAFER",
               **raster.georef.profile()}
    if nodata is not None:
        profile["nodata"] = nodata
    return profile


@contextlib.contextmanager
def _opened(path: Path, mode: str, **profile: Any) -> Iterator[Any]:
    import rasterio

    from resegzoo.outputs.gdal_failures import raising_gdal_failures
    from resegzoo.raster.georef import quiet_georef

    with quiet_georef(), raising_gdal_failures(str(path)), rasterio.open(path, mode, **profile) as dst:
        yield dst


def _window(box: tuple[int, int, int, int]) -> Any:
    from rasterio.windows import Window

    y0, x0, y1, x1 = box
    return Window(x0, y0, x1 - x0, y1 - y0)


def transition_code(before: np.ndarray, after: np.ndarray, labels: int) -> np.ndarray:
    """A (before, after) pair of labels (0..labels-1 each) as one code that is never 255 (nodata)."""
    code = before.astype(np.int64) * labels + after.astype(np.int64)
    return code + (code >= NODATA_LABEL)


def transition_names(names: list[str]) -> list[str]:
    """The name of every :func:`transition_code` (``""`` at 255)."""
    n = len(names)
    out = [""] * (n * n + 1)
    for a in range(n):
        for b in range(n):
            code = a * n + b
            out[code + (code >= NODATA_LABEL)] = f"{names[a]} -> {names[b]}"
    return out


def assemble(pair: PairPlan, vocab: Any, spooled: dict[int, Path], outputs: PairOutputs,
             say: Callable[[str], None] = lambda line: None) -> Assembly:
    """Write ``outputs`` from the pair's finished blocks (``spooled``: block index -> spool file)."""
    from resegzoo.outputs.atomic import temporary_dir

    names = list(vocab.class_names) + ["background"]
    blocks = {b.index: b for b in pair.blocks}
    missing = sorted(set(blocks) - set(spooled))
    if missing:
        raise RuntimeError(f"{pair.before.path}: blocks {missing[:10]} were never computed; nothing written")

    def results() -> Iterator[ChangeBlockResult]:
        for index in sorted(spooled):
            yield load_block(spooled[index], pair, blocks[index], len(vocab))

    found = Assembly()
    histograms = [EnergyHistogram() for _ in pair.classes]
    for result in results():  # pass 1: each class's range over the whole raster
        valid = result.valid
        for hist, plane in zip(histograms, result.energy):
            hist.extent(plane[valid])
    for result in results():  # pass 2: the histograms over that range
        valid = result.valid
        for hist, plane in zip(histograms, result.energy):
            hist.add(plane[valid])
        found.valid_pixels += int(valid.sum())
        found.nodata_pixels += int((~valid).sum())
        found.windows_skipped += result.windows_skipped
    found.thresholds = [hist.threshold() for hist in histograms]
    say(f"{pair.before.path}: pixel-rule thresholds over the whole raster: " + ", ".join(
        f"{names[c]} {t:.4g}" for c, t in zip(pair.classes, found.thresholds)))
    outputs.folder.mkdir(parents=True, exist_ok=True)
    work = temporary_dir(outputs.folder / f"{outputs.stem}-work")
    try:
        _write_work(pair, results(), found.thresholds, work)
        _write_changes(pair, vocab, names, work, found)
        _write_products(pair, names, work, outputs, found)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return found


def _write_work(pair: PairPlan, results: Iterator[ChangeBlockResult], thresholds: list[float], work: Path) -> None:
    """Pass 3: the class maps and the pixel rule's verdict (``labels.tif``: before, after, pixel
    rule) and the evidence (``evidence.tif``) of every block, on the whole grid."""
    th = np.asarray(thresholds, dtype=np.float32)[:, None, None]
    with _opened(work / "labels.tif", "w", **_profile(pair, 3, "uint8", None)) as labels, \
            _opened(work / "evidence.tif", "w", **_profile(pair, len(EVIDENCE), "float32", None)) as evidence:
        for result in results:
            window = _window(result.core)
            valid = result.valid
            energy = result.energy
            pixel = (energy > th).any(axis=0) & valid if len(energy) else np.zeros_like(valid)
            labels.write(np.stack([result.labels_a, result.labels_b, pixel.astype(np.uint8)]), window=window)
            top = energy.max(axis=0) if len(energy) else np.zeros(valid.shape, np.float32)
            ratio = (energy / th).max(axis=0) if len(energy) else np.zeros(valid.shape, np.float32)
            evidence.write(np.stack([top, ratio, result.top_a, result.top_b, np.ones_like(top)]).astype(np.float32),
                           window=window)


def _write_changes(pair: PairPlan, vocab: Any, names: list[str], work: Path, found: Assembly) -> None:
    """Pass 4, strip by strip over the whole grid: the object rule, change = both rules, what each
    changed pixel was and became, its (before, after) code, and each pixel's coverage."""
    from rasterio.windows import Window

    settings = pair.settings
    background = settings.background_ids(vocab)
    h, w = pair.height, pair.width
    rows = max(1, STRIP_PIXELS // max(1, w))
    n = len(names)
    code_dtype = "uint8" if n * n + 1 < NODATA_LABEL else "uint16"
    code_nodata = NODATA_LABEL if code_dtype == "uint8" else 65535
    pairs = np.zeros(n * n + 1, dtype=np.int64)
    with _opened(work / "labels.tif", "r") as labels, \
            _opened(work / "evidence.tif", "r+") as evidence, \
            _opened(work / "change.tif", "w", **_profile(pair, 1, "uint8", NODATA_LABEL)) as change, \
            _opened(work / "from.tif", "w", **_profile(pair, 1, "uint8", NODATA_LABEL)) as before, \
            _opened(work / "to.tif", "w", **_profile(pair, 1, "uint8", NODATA_LABEL)) as after, \
            _opened(work / "codes.tif", "w", **_profile(pair, 1, code_dtype, code_nodata)) as codes:

        def read(r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
            a, b = labels.read((1, 2), window=Window(0, r0, w, r1 - r0))
            return foreground(a, background), foreground(b, background)

        for r0, r1, objects, coverage in object_changes(read, h, w, settings, rows):
            window = Window(0, r0, w, r1 - r0)
            a, b, pixel = labels.read(window=window)
            valid = a != NODATA_LABEL
            changed = objects & (pixel > 0) & valid
            change.write(np.where(valid, changed.astype(np.uint8), NODATA_LABEL).astype(np.uint8)[None], window=window)
            before.write(np.where(changed, a, NODATA_LABEL).astype(np.uint8)[None], window=window)
            after.write(np.where(changed, b, NODATA_LABEL).astype(np.uint8)[None], window=window)
            code = np.where(changed, transition_code(a, b, n), code_nodata)
            codes.write(code.astype(code_dtype)[None], window=window)
            evidence.write(coverage[None], indexes=[EVIDENCE.index("coverage") + 1], window=window)
            pairs += np.bincount(code[changed], minlength=len(pairs))[:len(pairs)]
            found.changed_pixels += int(changed.sum())
            found.object_pixels += int((objects & valid).sum())
            found.pixel_rule_pixels += int((pixel > 0).sum())
    labels_of = transition_names(names)
    found.transitions = {tuple(labels_of[c].split(" -> ")): int(v)  # type: ignore[misc]
                         for c, v in enumerate(pairs) if v and labels_of[c]}


def _write_products(pair: PairPlan, names: list[str], work: Path, outputs: PairOutputs, found: Assembly) -> None:
    from resegzoo.outputs.gis.cog import write_cog
    from resegzoo.outputs.imageio import make_palette

    palette = make_palette(names)
    write_cog(work / "change.tif", outputs.path("change"), list(CHANGE_CLASSES), list(CHANGE_PALETTE))
    write_cog(work / "from.tif", outputs.path("from"), names, palette)
    write_cog(work / "to.tif", outputs.path("to"), names, palette)
    found.polygons = _write_polygons(work, names, outputs)
    _draw_overlay(pair, work / "change.tif", outputs.path("overlay"))


def _write_polygons(work: Path, names: list[str], outputs: PairOutputs) -> int:
    """One polygon per 4-connected region of changed pixels of one (before, after) pair, with
    columns before, after, pixels and the means over its pixels of each :data:`EVIDENCE` band."""
    import rasterio
    import shapely
    from rasterio.features import rasterize
    from rasterio.windows import Window, from_bounds

    from resegzoo.outputs.gis.vector import vectorize, write_regions
    from resegzoo.raster.georef import quiet_georef

    labels_of = transition_names(names)
    regions = vectorize(work / "codes.tif", labels_of)
    count = len(regions)
    means = np.zeros((len(EVIDENCE), count), dtype=np.float64)
    pixels = np.zeros(count, dtype=np.int64)
    with quiet_georef(), rasterio.open(work / "evidence.tif") as src:
        for i, polygon in enumerate(regions.geometries):
            window = from_bounds(*shapely.bounds(polygon), transform=src.transform).round_offsets().round_lengths()
            window = window.intersection(Window(0, 0, src.width, src.height))
            inside = rasterize([polygon], out_shape=(int(window.height), int(window.width)),
                               transform=src.window_transform(window), fill=0, default_value=1, dtype="uint8") > 0
            values = src.read(window=window)
            pixels[i] = int(inside.sum())
            means[:, i] = values[:, inside].mean(axis=1) if pixels[i] else np.nan
    befores = np.array([labels_of[k].split(" -> ")[0] for k in regions.class_ids], dtype=object)
    afters = np.array([labels_of[k].split(" -> ")[1] for k in regions.class_ids], dtype=object)
    columns = {"before": befores, "after": afters, "pixels": pixels,
               **{name: means[k].astype(np.float32) for k, name in enumerate(EVIDENCE)}}
    write_regions(outputs.path("vector"), regions, outputs.vector_format, columns=columns)
    return count


def _draw_overlay(pair: PairPlan, change_path: Path, overlay_path: Path) -> None:
    """Both dates side by side (decimated, bounded memory), each changed region outlined."""
    import rasterio
    from PIL import Image, ImageDraw
    from scipy import ndimage

    from resegzoo.outputs.atomic import atomic_path
    from resegzoo.outputs.imageio import draw_legend
    from resegzoo.raster.georef import quiet_georef

    shape = pair.before.raster.overview_shape()
    image_a, _ = pair.before.raster.read_rgb(out_shape=shape)
    image_b, _ = pair.after.read_rgb(out_shape=shape)
    with quiet_georef(), rasterio.open(change_path) as src:
        change = src.read(1, out_shape=shape) == 1
    outline = change & ~ndimage.binary_erosion(change, border_value=0)
    outline = ndimage.binary_dilation(outline, iterations=max(1, min(shape) // 300))
    panels = []
    for image, title in ((image_a, "before"), (image_b, "after")):
        shown = image.copy()
        shown[outline] = OUTLINE
        panel = Image.fromarray(shown)
        ImageDraw.Draw(panel).text((4, 2), title, fill=(255, 255, 255))
        panels.append(panel)
    gap = 8
    legend = draw_legend([OUTLINE], ["changed (outlined)"], shape[0])
    canvas = Image.new("RGB", (2 * shape[1] + gap + legend.width, max(shape[0], legend.height)), (255, 255, 255))
    canvas.paste(panels[0], (0, 0))
    canvas.paste(panels[1], (shape[1] + gap, 0))
    canvas.paste(legend, (2 * shape[1] + gap, 0))
    with atomic_path(overlay_path) as tmp:
        canvas.save(tmp, format="PNG")
