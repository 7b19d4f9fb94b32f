"""A raster's finished objects: their areas (m² where georeferenced, else px), the area filters,
per-class counts and ids in a fixed order, whatever order the blocks came in.

Each object is kept as a few numbers and its mask packed 8 pixels a byte (a 30 x 30 px car: about
200 bytes), so tens of thousands of objects take megabytes; the GIS writers read them back in id
order, a chunk at a time (:meth:`ObjectStore.chunks`), and the id raster strip by strip
(:meth:`ObjectStore.paint`).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from resegzoo.objects.instances import Objects

#: the mean radius of the authalic sphere of WGS 84 (m): pixel areas of a geographic CRS
EARTH_RADIUS_M = 6371007.2


def area_function(transform: Optional[Sequence[float]], crs_wkt: Optional[str]) -> tuple[Callable[[Objects], np.ndarray], str]:
    """(area of each object, its unit): ``m2`` for a raster with a CRS and a transform (a projected
    CRS: pixels x the pixel's area in its linear unit converted to metres; a geographic one: each
    pixel's area on the authalic sphere at its latitude), else ``px`` (the pixel count)."""
    if transform is None or crs_wkt is None:
        return (lambda objects: objects.pixels.astype(np.float64)), "px"
    from rasterio.crs import CRS

    a, b, c, d, e, f = (float(v) for v in transform[:6])
    crs = CRS.from_wkt(crs_wkt)
    det = abs(a * e - b * d)
    if not crs.is_geographic:
        factor = float(crs.linear_units_factor[1])
        pixel = det * factor * factor
        return (lambda objects: objects.pixels.astype(np.float64) * pixel), "m2"
    scale = det * (math.pi / 180.0) ** 2 * EARTH_RADIUS_M ** 2

    def geographic(objects: Objects) -> np.ndarray:
        out = np.zeros(len(objects), np.float64)
        for k, ((y0, x0, _, _), mask) in enumerate(zip(objects.boxes, objects.masks)):
            ys, xs = np.nonzero(mask)
            lat = d * (xs + x0 + 0.5) + e * (ys + y0 + 0.5) + f
            out[k] = float(np.cos(np.radians(lat)).sum()) * scale
        return out

    return geographic, "m2"


class ObjectStore:
    """Finished objects of one raster: ``add`` as they are finished, ``finish`` once, then read."""

    def __init__(self, class_names: Sequence[str], area: Callable[[Objects], np.ndarray], unit: str,
                 min_area: float = 0.0, max_area: Optional[float] = None) -> None:
        self.class_names = list(class_names)
        self.area, self.unit = area, unit
        self.min_area, self.max_area = min_area, max_area
        self._parts: list[dict[str, Any]] = []
        self.dropped = 0  # by the area filters
        self.order: Optional[np.ndarray] = None

    def add(self, objects: Objects) -> None:
        if not len(objects):
            return
        areas = self.area(objects)
        keep = areas >= self.min_area
        if self.max_area is not None:
            keep &= areas <= self.max_area
        self.dropped += int((~keep).sum())
        if not keep.any():
            return
        kept = objects.take(np.flatnonzero(keep))
        self._parts.append({"class_ids": kept.class_ids, "names": kept.names, "scores": kept.scores,
                            "presence": kept.presence, "boxes": kept.boxes, "areas": areas[keep],
                            "masks": [np.packbits(m.ravel()) for m in kept.masks]})

    def finish(self) -> None:
        """Fix the ids: objects ordered by their box (top, left, bottom, right), class, best score
        first, name, then their masks' bytes: the same ids whatever order the blocks were done in."""
        parts = self._parts
        cat = lambda key: np.concatenate([p[key] for p in parts]) if parts else None  # noqa: E731
        self.class_ids = cat("class_ids") if parts else np.zeros(0, np.int32)
        self.names = [n for p in parts for n in p["names"]]
        self.scores = cat("scores") if parts else np.zeros(0, np.float32)
        self.presence = cat("presence") if parts else np.zeros(0, np.float32)
        self.boxes = cat("boxes").reshape(-1, 4) if parts else np.zeros((0, 4), np.int64)
        self.areas = cat("areas") if parts else np.zeros(0, np.float64)
        self._masks = [m for p in parts for m in p["masks"]]
        self._parts = []
        digests = np.array([m.tobytes().hex() for m in self._masks], dtype=object).astype(str)
        names = np.array(self.names, dtype=object).astype(str)
        self.order = np.lexsort((digests, names, -self.scores, self.class_ids, self.boxes[:, 3], self.boxes[:, 2],
                                 self.boxes[:, 1], self.boxes[:, 0])) if len(self.names) else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self._masks) if self.order is not None else sum(len(p["names"]) for p in self._parts)

    def counts(self) -> dict[str, int]:
        """Objects per class name (every class, 0 included), in class order."""
        assert self.order is not None, "finish() first"
        found = np.bincount(self.class_ids, minlength=len(self.class_names)) if len(self) else \
            np.zeros(len(self.class_names), np.int64)
        return {name: int(n) for name, n in zip(self.class_names, found)}

    def _mask(self, k: int) -> np.ndarray:
        y0, x0, y1, x1 = (int(v) for v in self.boxes[k])
        return np.unpackbits(self._masks[k], count=(y1 - y0) * (x1 - x0)).astype(bool).reshape(y1 - y0, x1 - x0)

    def chunks(self, size: int = 4096) -> Iterator[tuple[np.ndarray, Objects, np.ndarray]]:
        """(object ids, the objects, their areas), ``size`` at a time, in id order (ids from 1)."""
        assert self.order is not None, "finish() first"
        for s in range(0, len(self.order), size):
            idx = self.order[s:s + size]
            objects = Objects(self.class_ids[idx], [self.names[k] for k in idx], self.scores[idx], self.presence[idx],
                              self.boxes[idx], [self._mask(int(k)) for k in idx], self.boxes[idx])
            yield np.arange(s + 1, s + 1 + len(idx), dtype=np.int64), objects, self.areas[idx]

    def paint(self, window: tuple[int, int, int, int]) -> np.ndarray:
        """(h, w) uint32 object ids over ``window`` (y0, x0, y1, x1), 0 where none; where objects
        overlap, the better score wins (then the smaller id)."""
        assert self.order is not None, "finish() first"
        y0, x0, y1, x1 = window
        out = np.zeros((y1 - y0, x1 - x0), np.uint32)
        if not len(self):
            return out
        ids = np.empty(len(self.order), np.int64)
        ids[self.order] = np.arange(1, len(self.order) + 1)
        b = self.boxes
        hit = np.flatnonzero((b[:, 0] < y1) & (b[:, 2] > y0) & (b[:, 1] < x1) & (b[:, 3] > x0))
        # worst first, so the best is painted last; equal scores: the larger id first
        for k in hit[np.lexsort((-ids[hit], self.scores[hit]))]:
            by0, bx0, by1, bx1 = (int(v) for v in b[k])
            iy0, ix0, iy1, ix1 = max(by0, y0), max(bx0, x0), min(by1, y1), min(bx1, x1)
            m = self._mask(int(k))[iy0 - by0:iy1 - by0, ix0 - bx0:ix1 - bx0]
            out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0][m] = ids[k]
        return out
