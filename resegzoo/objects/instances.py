"""What a method gives per window (:class:`Instance`) and the objects the pipeline keeps (:class:`Objects`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, NamedTuple, Optional, Sequence

import numpy as np

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1), end exclusive


@dataclass(frozen=True)
class Instance:
    """One instance a method found in one window (the seam's optional output).

    ``mask``: bool, True on the instance's pixels: the whole window's (S, S) (``box`` None) or, with
    ``box`` (y0, x0, y1, x1) in window pixels, that box's crop (saves memory on big windows)."""

    #: the vocabulary name (prompt) that found it
    name: str
    #: the method's confidence in 0..1 (SAM 3: sigmoid(class logit) x presence)
    score: float
    #: how sure the method is the name is in the window at all, 0..1 (1 for a method without one)
    presence: float
    mask: Any
    box: Optional[Box] = None


class Object(NamedTuple):
    """One object of :class:`Objects`, as iterating over them gives it."""

    class_id: int
    name: str
    score: float
    presence: float
    box: Box
    mask: np.ndarray  # bool, the box's shape


def _tight(mask: np.ndarray) -> Optional[Box]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


@dataclass
class Objects:
    """Objects in one pixel frame (a window, an image, a raster), as parallel columns."""

    class_ids: np.ndarray  # (n,) int32
    names: list[str]
    scores: np.ndarray  # (n,) float32
    presence: np.ndarray  # (n,) float32
    boxes: np.ndarray  # (n, 4) int64 (y0, x0, y1, x1): the tight box of the mask
    masks: list[np.ndarray]  # n bool arrays, each its box's shape
    #: (n, 4) int64: the box of the view that saw each object (its window, its block's read box):
    #: where it could be seen whole, so where two views' masks of one object must agree
    views: np.ndarray

    @classmethod
    def empty(cls) -> "Objects":
        return cls(np.zeros(0, np.int32), [], np.zeros(0, np.float32), np.zeros(0, np.float32),
                   np.zeros((0, 4), np.int64), [], np.zeros((0, 4), np.int64))

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[Object]:
        for i in range(len(self)):
            yield Object(int(self.class_ids[i]), self.names[i], float(self.scores[i]), float(self.presence[i]),
                         tuple(int(v) for v in self.boxes[i]), self.masks[i])  # type: ignore[arg-type]

    @property
    def pixels(self) -> np.ndarray:
        """(n,) int64: each object's pixel count."""
        return np.array([int(m.sum()) for m in self.masks], dtype=np.int64)

    def take(self, index: Any) -> "Objects":
        """The objects at ``index`` (indices or a boolean array), in that order."""
        idx = np.arange(len(self))[index] if len(self) else np.zeros(0, np.int64)
        return Objects(self.class_ids[idx], [self.names[i] for i in idx], self.scores[idx], self.presence[idx],
                       self.boxes[idx].reshape(-1, 4), [self.masks[i] for i in idx], self.views[idx].reshape(-1, 4))

    def shifted(self, dy: int, dx: int) -> "Objects":
        """The same objects in a frame whose origin is (-dy, -dx) from this one's."""
        offset = np.array([dy, dx, dy, dx], np.int64)
        return dataclasses.replace(self, boxes=self.boxes + offset, views=self.views + offset)

    def with_views(self, view: Box) -> "Objects":
        return dataclasses.replace(self, views=np.tile(np.asarray(view, np.int64), (len(self), 1)))

    @staticmethod
    def concat(parts: Sequence["Objects"]) -> "Objects":
        parts = [p for p in parts if len(p)]
        if not parts:
            return Objects.empty()
        return Objects(np.concatenate([p.class_ids for p in parts]).astype(np.int32),
                       [n for p in parts for n in p.names],
                       np.concatenate([p.scores for p in parts]).astype(np.float32),
                       np.concatenate([p.presence for p in parts]).astype(np.float32),
                       np.concatenate([p.boxes for p in parts]), [m for p in parts for m in p.masks],
                       np.concatenate([p.views for p in parts]))

    @classmethod
    def from_instances(cls, instances: Sequence[Instance], window: Box, class_of: Mapping[str, int],
                       method: str = "") -> "Objects":
        """A window's instances as objects in the frame the window ``window`` lies in (its box is
        their view). Empty masks are left out; a name outside the vocabulary is a ValueError."""
        y0, x0, y1, x1 = window
        rows: list[tuple[int, str, float, float, Box, np.ndarray]] = []
        for inst in instances:
            if inst.name not in class_of:
                raise ValueError(f"method {method!r} gave an instance named {inst.name!r}, which is no name of "
                                 "the vocabulary")
            mask = np.asarray(inst.mask, dtype=bool)
            by, bx = (0, 0) if inst.box is None else (int(inst.box[0]), int(inst.box[1]))
            want = (y1 - y0, x1 - x0) if inst.box is None else (inst.box[2] - inst.box[0], inst.box[3] - inst.box[1])
            if mask.shape != tuple(want):
                raise ValueError(f"method {method!r} gave an instance mask of shape {mask.shape}, expected "
                                 f"{tuple(want)} ({'its box' if inst.box is not None else 'the window'})")
            tight = _tight(mask)
            if tight is None:
                continue
            ty0, tx0, ty1, tx1 = tight
            box = (y0 + by + ty0, x0 + bx + tx0, y0 + by + ty1, x0 + bx + tx1)
            rows.append((class_of[inst.name], inst.name, float(inst.score), float(inst.presence), box,
                         np.ascontiguousarray(mask[ty0:ty1, tx0:tx1])))
        if not rows:
            return cls.empty()
        return cls(np.array([r[0] for r in rows], np.int32), [r[1] for r in rows],
                   np.array([r[2] for r in rows], np.float32), np.array([r[3] for r in rows], np.float32),
                   np.array([r[4] for r in rows], np.int64), [r[5] for r in rows],
                   np.tile(np.asarray(window, np.int64), (len(rows), 1)))

    def clipped(self, valid: Optional[np.ndarray], size: tuple[int, int]) -> "Objects":
        """Each mask cut to the frame's ``size`` (h, w) and to its ``valid`` pixels (None: all); boxes
        tightened, objects left without a pixel dropped."""
        h, w = size
        keep, boxes, masks = [], [], []
        for i, (box, mask) in enumerate(zip(self.boxes, self.masks)):
            y0, x0, y1, x1 = (int(v) for v in box)
            cy0, cx0, cy1, cx1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
            if cy0 >= cy1 or cx0 >= cx1:
                continue
            m = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
            if valid is not None:
                m = m & valid[cy0:cy1, cx0:cx1]
            tight = _tight(m)
            if tight is None:
                continue
            ty0, tx0, ty1, tx1 = tight
            keep.append(i)
            boxes.append((cy0 + ty0, cx0 + tx0, cy0 + ty1, cx0 + tx1))
            masks.append(np.ascontiguousarray(m[ty0:ty1, tx0:tx1]))
        out = self.take(np.array(keep, np.int64))
        out.boxes = np.array(boxes, np.int64).reshape(-1, 4)
        out.masks = masks
        return out

    def resampled(self, scale_y: float, scale_x: float) -> "Objects":
        """The objects in a frame ``1 / scale`` times this one's (the source frame of a resized image:
        ``scale`` = resized / source size), masks by nearest neighbour (a pixel takes the value at its
        centre), views grown to whole pixels."""
        boxes, masks = [], []
        for box, mask in zip(self.boxes, self.masks):
            y0, x0, y1, x1 = (int(v) for v in box)
            sy0, sx0 = int(np.floor(y0 / scale_y)), int(np.floor(x0 / scale_x))
            sy1, sx1 = int(np.ceil(y1 / scale_y)), int(np.ceil(x1 / scale_x))
            ry = np.floor((np.arange(sy0, sy1) + 0.5) * scale_y).astype(np.int64) - y0
            rx = np.floor((np.arange(sx0, sx1) + 0.5) * scale_x).astype(np.int64) - x0
            inside_y, inside_x = (ry >= 0) & (ry < y1 - y0), (rx >= 0) & (rx < x1 - x0)
            m = np.zeros((sy1 - sy0, sx1 - sx0), bool)
            m[np.ix_(inside_y, inside_x)] = mask[np.ix_(ry[inside_y], rx[inside_x])]
            boxes.append((sy0, sx0, sy1, sx1))
            masks.append(m)
        views = self.views.astype(np.float64) / np.array([scale_y, scale_x, scale_y, scale_x])
        views = np.concatenate([np.floor(views[:, :2]), np.ceil(views[:, 2:])], axis=1).astype(np.int64)
        return Objects(self.class_ids, list(self.names), self.scores, self.presence,
                       np.array(boxes, np.int64).reshape(-1, 4), masks, views.reshape(-1, 4))

    # -- as plain arrays (the spool's .npz, Ray's pickles stay small) ------------------------------
    def to_arrays(self, prefix: str = "objects_") -> dict[str, np.ndarray]:
        """Plain arrays (no pickles): masks packed 8 pixels a byte, end to end."""
        table = sorted(set(self.names))
        packed = [np.packbits(m.ravel()) for m in self.masks]
        ends = np.cumsum([len(p) for p in packed], dtype=np.int64)
        return {f"{prefix}class_ids": self.class_ids.astype(np.int32),
                f"{prefix}name_table": np.array(table, dtype=str).reshape(-1),
                f"{prefix}name_ids": np.array([table.index(n) for n in self.names], np.int32),
                f"{prefix}scores": self.scores.astype(np.float32), f"{prefix}presence": self.presence.astype(np.float32),
                f"{prefix}boxes": self.boxes.astype(np.int64).reshape(-1, 4),
                f"{prefix}views": self.views.astype(np.int64).reshape(-1, 4),
                f"{prefix}mask_ends": ends,
                f"{prefix}mask_bits": np.concatenate(packed) if packed else np.zeros(0, np.uint8)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "objects_") -> "Objects":
        """The objects :meth:`to_arrays` gave, checked (ValueError on arrays that do not fit together)."""
        get = lambda key: np.asarray(arrays[prefix + key])  # noqa: E731
        boxes, views = get("boxes").reshape(-1, 4).astype(np.int64), get("views").reshape(-1, 4).astype(np.int64)
        n = len(boxes)
        table, name_ids, ends, bits = [str(s) for s in get("name_table")], get("name_ids"), get("mask_ends"), get("mask_bits")
        columns = (get("class_ids"), name_ids, get("scores"), get("presence"), views, ends)
        if any(len(c) != n for c in columns) or (n and (name_ids.min() < 0 or name_ids.max() >= len(table))):
            raise ValueError("object columns of different lengths, or names outside their table")
        sizes = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        if n and (sizes.min() <= 0 or not np.array_equal(np.diff(np.concatenate([[0], ends])), (sizes + 7) // 8)
                  or ends[-1] != len(bits)):
            raise ValueError("object masks do not fit their boxes")
        masks, start = [], 0
        for (y0, x0, y1, x1), end, size in zip(boxes, ends, sizes):
            masks.append(np.unpackbits(bits[start:end], count=int(size)).astype(bool).reshape(y1 - y0, x1 - x0))
            start = int(end)
        return cls(get("class_ids").astype(np.int32), [table[i] for i in name_ids], get("scores").astype(np.float32),
                   get("presence").astype(np.float32), boxes, masks, views)
