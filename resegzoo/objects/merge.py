"""Whole objects: non-maximum suppression within a window, merging across views (windows, blocks).

The rule (docs/METHOD.md, "Objects"): within one window, of two objects of one class whose masks
overlap with IoU above :data:`NMS_IOU` only the better one stays (score, then name, for a fixed
order). Across views, two objects of one class are one object when their masks agree where both
views see: IoU measured inside the intersection of the two views (the strip two overlapping windows
share, or the overlap of two blocks' read boxes) at least :data:`MERGE_IOU`; views that touch
without overlapping (windows at stride = window) compare the masks' lines on either side of the edge; the
smaller of two whose pixels lie (almost: :data:`MERGE_INSIDE`) all inside the other's is the same object
too (a concave object cut into two pieces by one view's edge). An object cut by a
view's edge agrees there with the same object seen by the next view, whole or cut elsewhere; two
neighbours of one class that merely touch do not. A merged object is the union of the masks, with
the best member's score, name and presence. Merging is transitive (an object seen by many views is
one object), and done streaming across blocks by :class:`ObjectAssembler`.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np

from resegzoo.objects.instances import Box, Objects

#: within a window: IoU above which the lesser of two objects of one class is dropped
NMS_IOU = 0.5
#: across views: IoU, inside the area both views see, from which two objects of one class are one
MERGE_IOU = 0.5
#: across views: the share of the smaller mask (all its pixels) lying in the other's from which they
#: are one object too (a concave object cut by a window's edge into two pieces: each piece lies inside
#: the whole object the other view sees, so inside the shared area, with a small IoU there)
MERGE_INSIDE = 0.9
_CHUNK = 1024


def overlapping_pairs(a_boxes: np.ndarray, a_classes: np.ndarray, b_boxes: np.ndarray, b_classes: np.ndarray,
                      same: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(i, j): objects of one class whose boxes overlap or touch (pieces on either side of an edge),
    ``i`` of the first set, ``j`` of the second (``same``: one set, i < j)."""
    found_i, found_j = [], []
    for s in range(0, len(a_boxes), _CHUNK):
        a, ac = a_boxes[s:s + _CHUNK, None, :], a_classes[s:s + _CHUNK, None]
        hit = ((a[..., 0] <= b_boxes[None, :, 2]) & (b_boxes[None, :, 0] <= a[..., 2])
               & (a[..., 1] <= b_boxes[None, :, 3]) & (b_boxes[None, :, 1] <= a[..., 3]) & (ac == b_classes[None, :]))
        i, j = np.nonzero(hit)
        i = i + s
        if same:
            keep = i < j
            i, j = i[keep], j[keep]
        found_i.append(i)
        found_j.append(j)
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(found_i), np.concatenate(found_j)


def _intersect(a: Sequence[int], b: Sequence[int]) -> Box:
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


def _crop(mask: np.ndarray, box: Sequence[int], region: Box) -> np.ndarray:
    """``mask`` (on ``box``) inside ``region``: a bool array of the region's shape."""
    y0, x0, y1, x1 = region
    out = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), bool)
    iy0, ix0, iy1, ix1 = _intersect(box, region)
    if iy0 < iy1 and ix0 < ix1:
        out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = mask[iy0 - box[0]:iy1 - box[0], ix0 - box[1]:ix1 - box[1]]
    return out


def _edge_iou(box_a: Sequence[int], mask_a: np.ndarray, view_a: Sequence[int],
              box_b: Sequence[int], mask_b: np.ndarray, view_b: Sequence[int]) -> float:
    """Views that touch without overlapping (windows at stride = window): IoU of the two masks'
    pixel rows (or columns) on either side of the shared edge, projected across it."""
    for axis in (0, 1):  # 0: a horizontal edge (views one above the other), 1: a vertical one
        other = 1 - axis
        if view_a[axis + 2] == view_b[axis] or view_b[axis + 2] == view_a[axis]:
            first, second = ((box_a, mask_a, view_a), (box_b, mask_b, view_b)) if view_a[axis + 2] == view_b[axis] \
                else ((box_b, mask_b, view_b), (box_a, mask_a, view_a))
            edge = first[2][axis + 2]
            lo, hi = max(view_a[other], view_b[other]), min(view_a[other + 2], view_b[other + 2])
            if lo >= hi:
                return 0.0
            lines = []
            for (box, mask, _), line in ((first, edge - 1), (second, edge)):
                region = [0, 0, 0, 0]
                region[axis], region[axis + 2], region[other], region[other + 2] = line, line + 1, lo, hi
                lines.append(_crop(mask, box, tuple(region)).ravel())  # type: ignore[arg-type]
            union = int((lines[0] | lines[1]).sum())
            return int((lines[0] & lines[1]).sum()) / union if union else 0.0
    return 0.0


def shared_iou(box_a: Sequence[int], mask_a: np.ndarray, view_a: Sequence[int],
               box_b: Sequence[int], mask_b: np.ndarray, view_b: Sequence[int]) -> float:
    """IoU of two masks inside the area both views see (one view: the plain IoU); views that only
    touch: the IoU of the masks' lines on either side of the shared edge (:func:`_edge_iou`)."""
    shared = _intersect(view_a, view_b)
    if shared[0] >= shared[2] or shared[1] >= shared[3]:
        return _edge_iou(box_a, mask_a, view_a, box_b, mask_b, view_b)
    around = (min(box_a[0], box_b[0]), min(box_a[1], box_b[1]), max(box_a[2], box_b[2]), max(box_a[3], box_b[3]))
    region = _intersect(shared, around)
    if region[0] >= region[2] or region[1] >= region[3]:
        return 0.0
    a, b = _crop(mask_a, box_a, region), _crop(mask_b, box_b, region)
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 0.0


def one_object(box_a: Sequence[int], mask_a: np.ndarray, view_a: Sequence[int],
               box_b: Sequence[int], mask_b: np.ndarray, view_b: Sequence[int], iou: float = MERGE_IOU) -> bool:
    """Two objects of one class in different views are one: their masks agree where both views see
    (:func:`shared_iou` at least ``iou``), or the smaller one lies (almost) wholly inside the other
    (:data:`MERGE_INSIDE` of all its pixels, not only of those in the shared area: a sliver of an
    object that reaches into the shared strip and meets a neighbour's mask there is no reason)."""
    if shared_iou(box_a, mask_a, view_a, box_b, mask_b, view_b) >= iou:
        return True
    region = _intersect(_intersect(view_a, view_b), _intersect(box_a, box_b))
    if region[0] >= region[2] or region[1] >= region[3]:
        return False
    inside = int((_crop(mask_a, box_a, region) & _crop(mask_b, box_b, region)).sum())
    smaller = min(int(mask_a.sum()), int(mask_b.sum()))
    return smaller > 0 and inside >= MERGE_INSIDE * smaller


def _rank(objects: Objects) -> np.ndarray:
    """Indices best first: score, then name, then presence (a fixed order, whatever the input order)."""
    if not len(objects):
        return np.zeros(0, np.int64)
    return np.lexsort((-objects.presence, np.array(objects.names, dtype=object).astype(str), -objects.scores))


def nms(objects: Objects, iou: float = NMS_IOU) -> Objects:
    """Objects of one view with, among those of one class overlapping with IoU above ``iou``, the best only."""
    if len(objects) < 2:
        return objects
    i, j = overlapping_pairs(objects.boxes, objects.class_ids, objects.boxes, objects.class_ids, same=True)
    rank = np.empty(len(objects), np.int64)
    rank[_rank(objects)] = np.arange(len(objects))
    suppressors: dict[int, list[int]] = {}
    for a, b in zip(i, j):
        if shared_iou(objects.boxes[a], objects.masks[a], objects.views[a],
                      objects.boxes[b], objects.masks[b], objects.views[b]) > iou:
            better, worse = (a, b) if rank[a] < rank[b] else (b, a)
            suppressors.setdefault(int(worse), []).append(int(better))
    dropped: set[int] = set()
    for k in _rank(objects):  # greedy, best first: a dropped object suppresses nothing
        if any(s not in dropped for s in suppressors.get(int(k), [])):
            dropped.add(int(k))
    return objects.take(np.array([k for k in range(len(objects)) if k not in dropped], np.int64))


def union_of(objects: Objects, members: Sequence[int]) -> Objects:
    """One object from ``members``: the union of their masks (and views), the best one's score,
    name and presence."""
    sub = objects.take(np.asarray(members, np.int64))
    best = int(_rank(sub)[0])
    boxes, views = sub.boxes, sub.views
    box = (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max()))
    mask = np.zeros((box[2] - box[0], box[3] - box[1]), bool)
    for (y0, x0, y1, x1), m in zip(boxes, sub.masks):
        mask[y0 - box[0]:y1 - box[0], x0 - box[1]:x1 - box[1]] |= m
    view = (views[:, 0].min(), views[:, 1].min(), views[:, 2].max(), views[:, 3].max())
    return Objects(sub.class_ids[best:best + 1], [sub.names[best]], sub.scores[best:best + 1],
                   sub.presence[best:best + 1], np.array([box], np.int64), [mask], np.array([view], np.int64))


def _groups(count: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = np.array(list(pairs), np.int64).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    order = np.argsort(labels, kind="stable")
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    return [list(map(int, g)) for g in np.split(order, cuts)] if count else []


def merge(objects: Objects, iou: float = MERGE_IOU) -> Objects:
    """Objects of several views with those seen by different views merged (the rule above)."""
    if len(objects) < 2:
        return objects
    i, j = overlapping_pairs(objects.boxes, objects.class_ids, objects.boxes, objects.class_ids, same=True)
    differ = (objects.views[i] != objects.views[j]).any(axis=1)
    pairs = [(int(a), int(b)) for a, b in zip(i[differ], j[differ])
             if one_object(objects.boxes[a], objects.masks[a], objects.views[a],
                           objects.boxes[b], objects.masks[b], objects.views[b], iou)]
    if not pairs:
        return objects
    return Objects.concat([objects.take(np.array(g)) if len(g) == 1 else union_of(objects, g)
                           for g in _groups(len(objects), pairs)])


def _overlap(a: Sequence[int], b: Sequence[int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class ObjectAssembler:
    """A raster's objects made whole across its blocks as the blocks arrive, in any order.

    ``reads``: each block's read box (its view). A block's objects (raster pixels) are merged with
    those of the blocks already here whose read boxes overlap its own; an object is finished (handed
    to ``done``) as soon as every block that could still merge with it has arrived: every neighbour
    of every block its group spans. Memory: the objects of blocks whose neighbours are not all here."""

    def __init__(self, reads: Sequence[Box], done: Callable[[Objects], Any], iou: float = MERGE_IOU) -> None:
        self.reads = [tuple(int(v) for v in r) for r in reads]
        self.iou = iou
        self.done = done
        self.neighbours = [{j for j, other in enumerate(self.reads) if j != i and _overlap(read, other)}
                           for i, read in enumerate(self.reads)]
        self.arrived: set[int] = set()
        self.complete: set[int] = set()
        self.pending: dict[int, Objects] = {}
        self.alive: dict[int, np.ndarray] = {}
        from scipy.cluster.hierarchy import DisjointSet

        self.groups = DisjointSet()

    def add(self, index: int, objects: Objects) -> None:
        """Block ``index``'s objects (in raster pixels; their view is set to the block's read box)."""
        if index in self.arrived:
            raise ValueError(f"objects of block {index} given twice")
        objects = objects.with_views(self.reads[index])
        self.pending[index] = objects
        self.alive[index] = np.ones(len(objects), bool)
        for k in range(len(objects)):
            self.groups.add((index, k))
        for other in sorted(self.neighbours[index] & self.arrived):
            there = self.pending.get(other)
            if there is None or not len(there) or not len(objects):
                continue
            i, j = overlapping_pairs(objects.boxes, objects.class_ids, there.boxes, there.class_ids)
            for a, b in zip(i, j):
                if one_object(objects.boxes[a], objects.masks[a], objects.views[a],
                              there.boxes[b], there.masks[b], there.views[b], self.iou):
                    self.groups.merge((index, int(a)), (other, int(b)))
        self.arrived.add(index)
        ready = [b for b in sorted(self.neighbours[index] | {index})
                 if b in self.arrived and b not in self.complete and self.neighbours[b] <= self.arrived]
        self.complete.update(ready)
        for block in ready:
            self._finish_groups_in(block)

    def _finish_groups_in(self, block: int) -> None:
        objects = self.pending.get(block)
        if objects is None:
            return
        for k in np.flatnonzero(self.alive[block]):
            if not self.alive[block][k]:  # finished with an earlier member of its group
                continue
            members = sorted(self.groups.subset((block, int(k))))
            if any(b not in self.complete for b, _ in members):
                continue
            for b, m in members:
                self.alive[b][m] = False
            if len(members) == 1:
                self.done(objects.take(np.array([k])))
            else:
                parts = Objects.concat([self.pending[b].take(np.array([m])) for b, m in members])
                self.done(union_of(parts, list(range(len(parts)))))
        for b in [b for b in list(self.pending) if not self.alive[b].any()]:
            del self.pending[b], self.alive[b]

    def close(self) -> None:
        """Every block has arrived: nothing may be left unfinished."""
        missing = set(range(len(self.reads))) - self.arrived
        if missing:
            raise RuntimeError(f"objects of blocks {sorted(missing)[:10]} never arrived")
        if self.pending:
            raise RuntimeError("objects left unfinished after every block arrived (a bug in the assembler)")
