"""Turning a list of binary masks into one segment-id map, and cutting id maps per window.

Id 0 means "no mask covers this pixel"; masks get ids 1..N in the order they are painted.
"""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

#: ``largest-first``: big masks are painted first, so smaller (finer) masks win where masks
#: overlap (resegzoo's default). ``sam-order``: masks are painted in the order SAM returns them,
#: later ones winning, as the reference code does.
PaintOrder = Literal["largest-first", "sam-order"]
PAINT_ORDERS: tuple[str, ...] = ("largest-first", "sam-order")

#: the most mask levels a generator may be asked for (each is an (H, W) int32 map per window;
#: METHOD.md uses 4)
MAX_MASK_LEVELS = 16
#: the most px per side of a region a generator segments at once (SAM's and SLIC's region_size)
MAX_REGION_SIZE = 8192
#: A window or region of an image: (y0, x0, y1, x1), half-open, in pixels.
Box = tuple[int, int, int, int]


def paint_masks(masks: Sequence[np.ndarray], shape: tuple[int, int], order: PaintOrder = "largest-first") -> np.ndarray:
    """Paint boolean masks (each ``shape``) into an (H, W) int32 id map.

    With ``largest-first`` masks of equal area keep their given order (the sort is stable).
    """
    if order not in PAINT_ORDERS:
        raise ValueError(f"unknown paint order {order!r}; use one of {', '.join(PAINT_ORDERS)}")
    id_map = np.zeros(shape, dtype=np.int32)
    if not masks:
        return id_map
    indices = list(range(len(masks)))
    if order == "largest-first":
        areas = [int(np.count_nonzero(m)) for m in masks]
        indices.sort(key=lambda i: -areas[i])
    for new_id, i in enumerate(indices, start=1):
        mask = np.asarray(masks[i], dtype=bool)
        if mask.shape != tuple(shape):
            raise ValueError(f"mask {i} has shape {mask.shape}, expected {tuple(shape)}")
        id_map[mask] = new_id
    return id_map


def cut_window(id_maps: np.ndarray, window: Box, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The (L, h, w) part of ``id_maps`` under ``window``; ``origin`` is where id_maps[.., 0, 0] lies."""
    y0, x0, y1, x1 = window
    oy, ox = origin
    part = id_maps[:, y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    if part.shape[1:] != (y1 - y0, x1 - x0):
        raise ValueError(f"window {window} is not inside the id maps at {origin} of size {id_maps.shape[1:]}")
    return np.ascontiguousarray(part)


def check_image(image: np.ndarray) -> np.ndarray:
    """Raise a clear error unless ``image`` is an (H, W, 3) uint8 array."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"mask generators take an RGB image as an (H, W, 3) uint8 array; got shape "
            f"{image.shape} and dtype {image.dtype}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"the image is empty: shape {image.shape}")
    return image


def check_windows(windows: Sequence[Sequence[int]], height: int, width: int) -> list[Box]:
    """Validate (y0, x0, y1, x1) windows against an image of ``height`` x ``width``."""
    checked: list[Box] = []
    for w in windows:
        if len(w) != 4:
            raise ValueError(f"a window is (y0, x0, y1, x1); got {tuple(w)}")
        y0, x0, y1, x1 = (int(v) for v in w)
        if not (0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width):
            raise ValueError(f"window {(y0, x0, y1, x1)} is empty or outside the {height}x{width} image")
        checked.append((y0, x0, y1, x1))
    return checked
