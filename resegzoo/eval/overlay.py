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


def overlay_panel(image: np.ndarray, pred: np.ndarray, label: np.ndarray, info: DatasetInfo) -> np.ndarray:
    """image | prediction | ground truth, side by side, shrunk to at most OVERLAY_MAX_SIDE wide."""
    step = max(1, math.ceil(max(image.shape[0], 3 * image.shape[1]) / OVERLAY_MAX_SIDE))
    image, pred, label = image[::step, ::step], pred[::step, ::step], label[::step, ::step]
    palette = palette_for(info)
    gap = np.full((image.shape[0], 4, 3), 255, dtype=np.uint8)
    return np.concatenate([image, gap, _blend(image, pred, palette), gap, _blend(image, label, palette)], axis=1)


def save_overlay(path: Path, image: np.ndarray, pred: np.ndarray, label: np.ndarray, info: DatasetInfo) -> None:
    atomic.save_png(path, overlay_panel(image, pred, label, info))
