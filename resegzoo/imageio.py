"""Reading imagery and writing segmentation outputs.

Everything is read through rasterio (PNG, JPEG, TIFF, GeoTIFF). More than three bands: pick
three with ``bands`` (1-based, like GDAL). Data that is not 8-bit is scaled to 0..255 by a 2-98
percentile stretch per band (computed on a decimated overview, so big files stay cheap), and the
caller is told so. Big rasters are read and written window by window. Every output file is
written to a temporary file in the same folder and moved into place, so nothing is half-written.
"""
from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from resegzoo.errors import ResegzooError
from resegzoo.atomic import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
TIFF_SUFFIXES = (".tif", ".tiff")
#: longest side of the overview read used to estimate percentiles and to draw tiled overlays
OVERVIEW_SIDE = 1024


class ImageError(ResegzooError, ValueError):
    """An input that is not a usable image; the message names the file and the problem."""


@dataclass
class RasterInfo:
    """What is known about an input before its pixels are read."""

    path: Path
    height: int
    width: int
    count: int
    dtype: str
    bands: tuple[int, int, int]
    crs: Any = None  # rasterio CRS or None
    transform: Any = None  # affine Transform or None
    is_tiff: bool = False

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None


@contextlib.contextmanager
def _quiet_georef():
    """PNG/JPEG have no georeferencing; rasterio warns about that on every open."""
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    """``"4,3,2"`` -> (4, 3, 2); 1-based band numbers; one band means grey."""
    if text is None or not text.strip():
        return None
    try:
        bands = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise ImageError(f"--bands {text!r}: give band numbers separated by commas, e.g. 4,3,2") from None
    if len(bands) not in (1, 3) or any(b < 1 for b in bands):
        raise ImageError(f"--bands {text!r}: give 3 band numbers (R,G,B) or 1 (grey), counting from 1")
    return bands


def inspect(path: str | Path, bands: Sequence[int] | None = None) -> RasterInfo:
    """Open ``path``'s header and check it is an image with the requested bands."""
    import rasterio
    from rasterio.errors import RasterioIOError

    path = Path(path)
    try:
        with _quiet_georef(), rasterio.open(path) as src:
            h, w, count, dtype = src.height, src.width, src.count, src.dtypes[0]
            crs, transform = src.crs, src.transform
    except RasterioIOError as exc:
        raise ImageError(f"{path}: not a readable image ({exc})") from None
    if h < 2 or w < 2:
        raise ImageError(f"{path}: the image is {h}x{w} px; at least 2x2 is needed")
    if bands is not None:
        bad = [b for b in bands if b > count]
        if bad:
            raise ImageError(f"{path}: --bands asks for band {bad[0]} but the image has {count} band(s) (1..{count})")
        chosen = tuple(bands) * 3 if len(bands) == 1 else tuple(bands)
    elif count >= 3:
        chosen = (1, 2, 3)
    elif count == 1:
        chosen = (1, 1, 1)
    else:
        raise ImageError(f"{path}: {count} bands; choose three (or one, grey) with --bands, e.g. --bands 1,1,2")
    is_tiff = path.suffix.lower() in TIFF_SUFFIXES
    return RasterInfo(path, h, w, count, dtype, chosen, crs if is_tiff else None, transform, is_tiff)  # type: ignore[arg-type]


def read_bands(info: RasterInfo, window: Any = None, out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """(3, h, w) raw band data of the whole image or a rasterio ``Window``, optionally decimated."""
    import rasterio
    from rasterio.errors import RasterioIOError

    unique = sorted(set(info.bands))
    try:
        with _quiet_georef(), rasterio.open(info.path) as src:
            shape = None if out_shape is None else (len(unique), *out_shape)
            data = src.read(unique, window=window, out_shape=shape)
    except RasterioIOError as exc:  # a header that opens but pixels that do not: truncated or corrupt
        raise ImageError(f"{info.path}: the pixels cannot be read ({exc}); the file is truncated or corrupt") from None
    return np.stack([data[unique.index(b)] for b in info.bands])


@dataclass
class Stretch:
    """How non-8-bit data is mapped to 0..255: per band, low -> 0 and high -> 255."""

    low: list[float]
    high: list[float]
    percentiles: tuple[float, float] = (2.0, 98.0)

    def apply(self, data: np.ndarray) -> np.ndarray:
        lo = np.asarray(self.low, dtype=np.float64)[:, None, None]
        hi = np.asarray(self.high, dtype=np.float64)[:, None, None]
        scaled = (data.astype(np.float64) - lo) / np.maximum(hi - lo, 1e-12) * 255.0
        return np.clip(np.round(scaled), 0, 255).astype(np.uint8)

    def describe(self) -> str:
        p0, p1 = self.percentiles
        return f"{p0:g}-{p1:g} percentile stretch per band (low {self.low}, high {self.high})"


def plan_stretch(info: RasterInfo) -> Stretch | None:
    """None for 8-bit data; else percentiles of a decimated overview of the chosen bands."""
    if info.dtype == "uint8":
        return None
    scale = min(1.0, OVERVIEW_SIDE / max(info.height, info.width))
    shape = (max(1, round(info.height * scale)), max(1, round(info.width * scale)))
    data = read_bands(info, out_shape=shape).astype(np.float64).reshape(3, -1)
    low, high = np.percentile(data, [2.0, 98.0], axis=1)
    return Stretch([float(v) for v in low], [float(v) for v in high])


def to_uint8(data: np.ndarray, stretch: Stretch | None) -> np.ndarray:
    """(3, h, w) band data -> (h, w, 3) uint8."""
    out = data if stretch is None else stretch.apply(data)
    return np.ascontiguousarray(np.moveaxis(out.astype(np.uint8, copy=False), 0, -1))


def read_image(path: str | Path, bands: Sequence[int] | None = None) -> tuple[np.ndarray, RasterInfo, Stretch | None]:
    """The whole image as (H, W, 3) uint8, its info, and the stretch applied (None: 8-bit)."""
    info = inspect(path, bands)
    stretch = plan_stretch(info)
    return to_uint8(read_bands(info), stretch), info, stretch


# -- tiles -------------------------------------------------------------------------------------
Box = tuple[int, int, int, int]  # (y0, x0, y1, x1)


def tiles(height: int, width: int, tile: int, overlap: int) -> Iterator[tuple[Box, Box]]:
    """(read box with context, core box it is responsible for); cores tile the image exactly.

    Read boxes are at most ``tile`` px per side; the context is capped at a quarter tile."""
    overlap = min(overlap, tile // 4)
    step = tile - 2 * overlap
    for cy in range(0, height, step):
        for cx in range(0, width, step):
            core = (cy, cx, min(cy + step, height), min(cx + step, width))
            read = (max(0, cy - overlap), max(0, cx - overlap),
                    min(height, core[2] + overlap), min(width, core[3] + overlap))
            yield read, core


# -- outputs -----------------------------------------------------------------------------------
def make_palette(class_names: Sequence[str]) -> list[tuple[int, int, int]]:
    """One colour per class, keyed by its name (stable across runs and vocabulary orders; see
    :mod:`resegzoo.colours`); 'background' is black."""
    from resegzoo.colours import palette_for_names

    return palette_for_names(class_names)


def write_label_png(path: Path, labels: np.ndarray, palette: Sequence[tuple[int, int, int]]) -> None:
    """A palette PNG whose pixel values are the class indices."""
    from PIL import Image

    if len(palette) > 256:
        raise ValueError(f"{len(palette)} classes do not fit a palette PNG (at most 256)")
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    flat = [c for rgb in palette for c in rgb]
    img.putpalette(flat + [0] * (768 - len(flat)))
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def draw_overlay(image: np.ndarray, labels: np.ndarray, palette: Sequence[tuple[int, int, int]],
                 class_names: Sequence[str], alpha: float = 0.5, note: str | None = None) -> Any:
    """The image blended with the label colours, with a legend strip on the right (PIL image);
    ``note`` (e.g. "RANDOM WEIGHTS") is written in red below the class names."""
    from PIL import Image, ImageDraw

    colours = np.asarray(palette, dtype=np.float32)[labels]
    blend = (image.astype(np.float32) * (1 - alpha) + colours * alpha).round().astype(np.uint8)
    from resegzoo.fonts import font_for

    row, pad = 16, 4
    fonts = [font_for(name) for name in class_names]  # per name: any script draws as letters
    note_font = font_for(note) if note else None
    widths = [int(f.getlength(n)) for f, n in zip(fonts, class_names)]
    if note:
        widths.append(int(note_font.getlength(note)) - 10 - pad)  # the note starts at the swatches' edge
    legend_w = 12 + max(widths) + 3 * pad
    height = max(blend.shape[0], row * (len(class_names) + (1 if note else 0)) + 2 * pad)
    canvas = Image.new("RGB", (blend.shape[1] + legend_w, height), (255, 255, 255))
    canvas.paste(Image.fromarray(blend), (0, 0))
    draw = ImageDraw.Draw(canvas)
    x0 = blend.shape[1] + pad
    for k, name in enumerate(class_names):
        y = pad + k * row
        draw.rectangle([x0, y + 2, x0 + 10, y + 12], fill=tuple(palette[k]), outline=(0, 0, 0))
        draw.text((x0 + 10 + pad, y + 1), name, fill=(0, 0, 0), font=fonts[k])
    if note:
        draw.text((x0, pad + len(class_names) * row + 1), note, fill=(200, 0, 0), font=note_font)
    return canvas


def write_overlay(path: Path, *args: Any, **kwargs: Any) -> None:
    canvas = draw_overlay(*args, **kwargs)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


def write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


@contextlib.contextmanager
def label_geotiff(path: Path, info: RasterInfo, palette: Sequence[tuple[int, int, int]]) -> Iterator[Any]:
    """An open single-band uint8 GeoTIFF with the input's CRS and transform and a colour map;
    write windows into it with ``dst.write(block, 1, window=...)``. Moved into place on success."""
    import rasterio

    profile = {"driver": "GTiff", "height": info.height, "width": info.width, "count": 1,
               "dtype": "uint8", "compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256,
               "BIGTIFF": "IF_SAFER"}  # label maps of huge rasters may pass 4 GB
    if info.crs is not None:
        profile["crs"] = info.crs
    if info.transform is not None and not info.transform.is_identity:
        profile["transform"] = info.transform
    with atomic_path(path) as tmp:
        with _quiet_georef(), rasterio.open(tmp, "w", **profile) as dst:
            yield dst
            dst.write_colormap(1, {k: (*rgb, 255) for k, rgb in enumerate(palette)})
