"""Writing segmentation outputs: colours, the overlay with its legend, the JSON sidecar.

Images are READ by :mod:`resegzoo.raster.reader` (the one raster reader) and label rasters are
written block by block by :mod:`resegzoo.batch.job`. Every file is written to a temporary file in
the same folder and moved into place, so nothing is half-written.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from resegzoo.outputs.atomic import atomic_path


def make_palette(class_names: Sequence[str]) -> list[tuple[int, int, int]]:
    """One colour per class, keyed by its name (stable across runs and vocabulary orders; see
    :mod:`resegzoo.outputs.colours`); 'background' is black."""
    from resegzoo.outputs.colours import palette_for_names

    return palette_for_names(class_names)


def draw_overlay(image: np.ndarray, labels: np.ndarray, palette: Sequence[tuple[int, int, int]],
                 class_names: Sequence[str], alpha: float = 0.5, note: str | None = None) -> Any:
    """The image blended with the label colours, with a legend strip on the right (PIL image);
    ``note`` (e.g. "RANDOM WEIGHTS") is written in red below the class names. Labels outside the
    palette (nodata) show the image as it is."""
    from PIL import Image

    table = np.zeros((256, 3), dtype=np.float32)
    table[:len(palette)] = np.asarray(palette, dtype=np.float32).reshape(-1, 3)
    labelled = (labels < len(palette))[..., None]
    colours = table[np.clip(labels, 0, 255)]
    mixed = np.where(labelled, image.astype(np.float32) * (1 - alpha) + colours * alpha, image.astype(np.float32))
    blend = mixed.round().astype(np.uint8)
    legend = draw_legend(palette, class_names, blend.shape[0], note)
    canvas = Image.new("RGB", (blend.shape[1] + legend.width, legend.height), (255, 255, 255))
    canvas.paste(Image.fromarray(blend), (0, 0))
    canvas.paste(legend, (blend.shape[1], 0))
    return canvas


#: a legend row's height and the padding around it (pixels)
LEGEND_ROW, LEGEND_PAD = 16, 4


def draw_legend(palette: Sequence[tuple[int, int, int]], class_names: Sequence[str], height: int = 0,
                note: str | None = None) -> Any:
    """A white strip with a colour swatch and the name of each class, at least ``height`` tall
    (PIL image); ``note`` in red below the names. Every overlay resegzoo draws uses it."""
    from PIL import Image, ImageDraw

    from resegzoo.outputs.fonts import font_for

    row, pad = LEGEND_ROW, LEGEND_PAD
    fonts = [font_for(name) for name in class_names]  # per name: any script draws as letters
    note_font = font_for(note) if note else None
    widths = [int(f.getlength(n)) for f, n in zip(fonts, class_names)] or [0]
    if note:
        widths.append(int(note_font.getlength(note)) - 10 - pad)  # the note starts at the swatches' edge
    legend_w = 12 + max(widths) + 3 * pad
    height = max(height, row * (len(class_names) + (1 if note else 0)) + 2 * pad)
    strip = Image.new("RGB", (legend_w, height), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    x0 = pad
    for k, name in enumerate(class_names):
        y = pad + k * row
        draw.rectangle([x0, y + 2, x0 + 10, y + 12], fill=tuple(int(v) for v in palette[k]), outline=(0, 0, 0))
        draw.text((x0 + 10 + pad, y + 1), name, fill=(0, 0, 0), font=fonts[k])
    if note:
        draw.text((x0, pad + len(class_names) * row + 1), note, fill=(200, 0, 0), font=note_font)
    return strip


def write_overlay(path: Path, *args: Any, **kwargs: Any) -> None:
    canvas = draw_overlay(*args, **kwargs)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


def write_json(path: Path, data: Any) -> None:
    """Strict JSON (RFC 8259): a NaN or infinity anywhere is a bug, never written as ``NaN``."""
    text = json.dumps(data, indent=2, default=str, allow_nan=False, ensure_ascii=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
