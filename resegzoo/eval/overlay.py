"""Overlay images: the image, the prediction and the ground truth side by side."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from resegzoo.outputs import atomic
from resegzoo.eval.datasets import DatasetInfo

#: Overlays are shrunk so that their long side is at most this (Potsdam tiles are 6000 px).
OVERLAY_MAX_SIDE = 1024


def palette_for(info: DatasetInfo) -> np.ndarray:
    """(C, 3) uint8: the dataset's own label colours where it has them, else each class name's colour."""
    from resegzoo.outputs.colours import palette_for_names

    palette = np.array(palette_for_names([names[0] for names in info.classes]), dtype=np.uint8)
    for encoding in info.encodings.values():
        for colour, k in (encoding.color or {}).items():
            if k < info.num_classes:
                palette[k] = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return palette


def _blend(image: np.ndarray, labels: np.ndarray, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    valid = labels < len(palette)
    colours = palette[np.where(valid, labels, 0)]
    mixed = (image * (1 - alpha) + colours * alpha).astype(np.uint8)
    return np.where(valid[..., None], mixed, image)  # ignored pixels show the plain image


#: the captions above the three panels of an eval overlay
CAPTIONS = ("image", "prediction", "ground truth")
CAPTION_HEIGHT = 18


def overlay_panel(image: np.ndarray, pred: np.ndarray, label: np.ndarray, info: DatasetInfo) -> np.ndarray:
    """image | prediction | ground truth, side by side under their captions, shrunk to at most
    OVERLAY_MAX_SIDE wide, with the classes' legend on the right."""
    from PIL import Image, ImageDraw

    from resegzoo.outputs.fonts import font_for
    from resegzoo.outputs.imageio import draw_legend

    step = max(1, math.ceil(max(image.shape[0], 3 * image.shape[1]) / OVERLAY_MAX_SIDE))
    image, pred, label = image[::step, ::step], pred[::step, ::step], label[::step, ::step]
    palette = palette_for(info)
    gap = np.full((image.shape[0], 4, 3), 255, dtype=np.uint8)
    panels = np.concatenate([image, gap, _blend(image, pred, palette), gap, _blend(image, label, palette)], axis=1)
    legend = draw_legend(palette, [names[0] for names in info.classes], panels.shape[0] + CAPTION_HEIGHT)
    canvas = Image.new("RGB", (panels.shape[1] + legend.width, legend.height), (255, 255, 255))
    canvas.paste(Image.fromarray(panels), (0, CAPTION_HEIGHT))
    canvas.paste(legend, (panels.shape[1], 0))
    draw = ImageDraw.Draw(canvas)
    width = image.shape[1]
    for k, caption in enumerate(CAPTIONS):
        font = font_for(caption)
        x = k * (width + gap.shape[1]) + max(0, (width - int(font.getlength(caption))) // 2)
        draw.text((x, 2), caption, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def save_overlay(path: Path, image: np.ndarray, pred: np.ndarray, label: np.ndarray, info: DatasetInfo) -> None:
    atomic.save_png(path, overlay_panel(image, pred, label, info))
