"""Objects in evaluation (issue 24): a dataset's instance labels against a method's objects.

Where a dataset ships instance labels (iSAID's ``*_instance_id_RGB.png``: each colour other than
black one instance, its class the semantic label under it) and the method gives objects (its
``instances`` output), each image's objects and true instances are stored beside its confusion
matrix (``objects/<id>.npz``) and scored over the split:

- counts per class: true and found objects, and the count error (mean over images of
  |found - true|, and found / true - 1 over the split);
- mask AP (COCO's AP over IoU 0.50:0.95, AP50, per class) by pycocotools' COCOeval on run-length
  encoded masks, one object at a time (a split of big images never holds its masks as full
  arrays); left out, with a note saying what to install, where pycocotools is not installed.

The background class (and ignored pixels) holds no objects on either side.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from resegzoo.objects.instances import Objects

#: what to install for mask AP (the ``eval-ap`` extra)
AP_INSTALL = "pip install 'resegzoo[eval-ap]' (pycocotools)"


def read_instances(path: Path, label: np.ndarray, class_names: Sequence[str], background: Optional[int]) -> Objects:
    """The true instances of one image: ``path`` is an RGB instance-id image (0 = none, every other
    colour one instance), ``label`` the image's decoded class map (255 = ignore); each instance's
    class is the most common class under it (background and ignore: no instance)."""
    from scipy import ndimage

    from resegzoo.eval.datasets.base import DatasetError, _read_array
    from resegzoo.eval.metrics import IGNORE_INDEX

    try:
        raw = _read_array(path, palette_as_rgb=True)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the instance labels: {exc}") from exc
    if raw.ndim == 2:
        ids = raw.astype(np.int64)
    elif raw.ndim == 3 and raw.shape[2] >= 3:
        rgb = raw[..., :3].astype(np.int64)
        ids = rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)
    else:
        raise DatasetError(f"{path}: instance labels are (H, W) ids or (H, W, 3) colours; got shape {raw.shape}")
    if ids.shape != label.shape:
        raise DatasetError(f"{path}: instance labels are {ids.shape[1]}x{ids.shape[0]} but the class labels "
                           f"{label.shape[1]}x{label.shape[0]}")
    values, inverse = np.unique(ids, return_inverse=True)
    inverse = inverse.reshape(ids.shape)
    if values[0] != 0:  # index 0 stands for "no instance"
        inverse = inverse + 1
        values = np.concatenate([[0], values])
    n, k = len(values) - 1, len(class_names)
    scored = label < k
    votes = np.bincount(inverse[scored] * k + label[scored].astype(np.int64), minlength=(n + 1) * k).reshape(n + 1, k)
    class_ids, boxes, masks = [], [], []
    for inst, found in enumerate(ndimage.find_objects(inverse), start=1):
        if found is None or not votes[inst].any():
            continue
        cls = int(votes[inst].argmax())
        if cls == background or cls == IGNORE_INDEX:
            continue
        ys, xs = found
        mask = inverse[ys, xs] == inst
        class_ids.append(cls)
        boxes.append((ys.start, xs.start, ys.stop, xs.stop))
        masks.append(np.ascontiguousarray(mask))
    count = len(class_ids)
    return Objects(np.array(class_ids, np.int32), [class_names[c] for c in class_ids], np.ones(count, np.float32),
                   np.ones(count, np.float32), np.array(boxes, np.int64).reshape(-1, 4), masks,
                   np.zeros((count, 4), np.int64))


def without_background(objects: Objects, background: Optional[int], num_classes: int) -> Objects:
    """The objects of the dataset's object classes (not its background, not the method's own)."""
    keep = (objects.class_ids < num_classes) & (objects.class_ids != (-1 if background is None else background))
    return objects.take(np.flatnonzero(keep))


def image_arrays(found: Objects, truth: Objects, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """One image's objects and true instances as plain arrays (its ``objects/<id>.npz``)."""
    return {**found.to_arrays("found_"), **truth.to_arrays("truth_"), "size": np.array(size, np.int64)}


def from_image_arrays(arrays: Any) -> tuple[Objects, Objects, tuple[int, int]]:
    size = np.asarray(arrays["size"]).astype(np.int64)
    if size.shape != (2,):
        raise ValueError("size is not (height, width)")
    return Objects.from_arrays(arrays, "found_"), Objects.from_arrays(arrays, "truth_"), (int(size[0]), int(size[1]))


@dataclass
class ObjectScores:
    """Object counts per class over a split and, where pycocotools is installed, mask AP (0..1)."""

    class_names: list[str]
    #: the classes scored (the dataset's classes less its background)
    classes: list[int]
    images: int
    truth: np.ndarray  # (K,) true instances per class
    found: np.ndarray  # (K,) objects found per class
    abs_error: np.ndarray  # (K,) sum over images of |found - true|
    ap: Optional[float] = None
    ap50: Optional[float] = None
    ap_per_class: dict[str, Optional[float]] = field(default_factory=dict)
    #: why AP is missing (None when it is there)
    ap_note: Optional[str] = None

    def count_error(self, k: int) -> float:
        """Mean absolute count error per image of class ``k``."""
        return float(self.abs_error[k]) / self.images if self.images else float("nan")

    def relative_error(self, k: int) -> float:
        """found / true - 1 over the split (NaN without true instances)."""
        return float(self.found[k]) / float(self.truth[k]) - 1 if self.truth[k] else float("nan")

    def to_dict(self) -> dict[str, Any]:
        def number(v: float) -> Optional[float]:
            return None if v is None or np.isnan(v) else round(float(v), 6)

        return {
            "images": self.images,
            "true": int(self.truth[self.classes].sum()), "found": int(self.found[self.classes].sum()),
            "per_class": {self.class_names[k]: {"true": int(self.truth[k]), "found": int(self.found[k]),
                                                "count_error": number(self.count_error(k)),
                                                "relative_error": number(self.relative_error(k)),
                                                "mask_ap": number(self.ap_per_class.get(self.class_names[k]))}
                          for k in self.classes},
            "mask_ap": number(self.ap), "mask_ap50": number(self.ap50), "mask_ap_note": self.ap_note,
            "mask_ap_protocol": "COCO (pycocotools COCOeval, iouType segm: IoU 0.50:0.95, up to 100 objects "
                                "per image, all areas)",
        }


def score_objects(images: Iterable[tuple[Objects, Objects, tuple[int, int]]], class_names: Sequence[str],
                  background: Optional[int]) -> ObjectScores:
    """Counts per class and mask AP over ``images``: (found, truth, (height, width)) each."""
    k = len(class_names)
    classes = [c for c in range(k) if c != background]
    truth_total, found_total, abs_error = np.zeros(k, np.int64), np.zeros(k, np.int64), np.zeros(k, np.int64)
    coco = _CocoMasks()
    count = 0
    for found, truth, size in images:
        count += 1
        t = np.bincount(truth.class_ids, minlength=k)[:k]
        f = np.bincount(found.class_ids, minlength=k)[:k]
        truth_total += t
        found_total += f
        abs_error += np.abs(f - t)
        coco.add(count, found, truth, size)
    scores = ObjectScores(list(class_names), classes, count, truth_total, found_total, abs_error)
    try:
        coco.evaluate(scores, classes)
    except ImportError:
        scores.ap_note = f"mask AP left out: pycocotools is not installed ({AP_INSTALL})"
    return scores


def _rle(mask: np.ndarray, box: Sequence[int], size: tuple[int, int]) -> dict:
    from pycocotools import mask as mask_utils

    full = np.zeros(size, np.uint8, order="F")
    y0, x0, y1, x1 = (int(v) for v in box)
    full[y0:y1, x0:x1] = mask
    return mask_utils.encode(full)


class _CocoMasks:
    """Each object as COCO run-length encoding, added image by image (one full mask at a time)."""

    def __init__(self) -> None:
        self.images: list[dict] = []
        self.truth: list[dict] = []
        self.found: list[dict] = []
        self.missing = False

    def add(self, image_id: int, found: Objects, truth: Objects, size: tuple[int, int]) -> None:
        self.images.append({"id": image_id, "height": size[0], "width": size[1]})
        if self.missing:
            return
        try:
            for obj in truth:
                self.truth.append({"id": len(self.truth) + 1, "image_id": image_id, "category_id": obj.class_id + 1,
                                   "segmentation": _rle(obj.mask, obj.box, size), "iscrowd": 0})
            for obj in found:
                self.found.append({"image_id": image_id, "category_id": obj.class_id + 1,
                                   "segmentation": _rle(obj.mask, obj.box, size), "score": obj.score})
        except ImportError:
            self.missing = True

    def evaluate(self, scores: ObjectScores, classes: list[int]) -> None:
        if self.missing:
            raise ImportError("pycocotools")
        from pycocotools import mask as mask_utils
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        for ann in self.truth:
            ann["area"] = float(mask_utils.area(ann["segmentation"]))
            ann["bbox"] = [float(v) for v in mask_utils.toBbox(ann["segmentation"])]
        truth = COCO()
        truth.dataset = {"images": self.images, "annotations": self.truth,
                         "categories": [{"id": c + 1, "name": scores.class_names[c]} for c in classes]}
        with contextlib.redirect_stdout(io.StringIO()):  # COCO's API prints as it goes
            truth.createIndex()
            if not self.truth:
                scores.ap_note = "mask AP left out: the split has no true instances"
                return
            found = truth.loadRes(self.found) if self.found else COCO()
            if not self.found:
                found.dataset = {"images": self.images, "annotations": [], "categories": truth.dataset["categories"]}
                found.createIndex()
            run = COCOeval(truth, found, "segm")
            run.evaluate()
            run.accumulate()
            run.summarize()
        scores.ap, scores.ap50 = _ap(float(run.stats[0])), _ap(float(run.stats[1]))
        precision = run.eval["precision"]  # (iou, recall, class, area, max detections)
        for index, c in enumerate(run.params.catIds):
            values = precision[:, :, index, 0, -1]
            values = values[values > -1]
            scores.ap_per_class[scores.class_names[c - 1]] = float(values.mean()) if values.size else None


def _ap(value: float) -> Optional[float]:
    return None if value < 0 else value  # COCOeval's -1: nothing to score
