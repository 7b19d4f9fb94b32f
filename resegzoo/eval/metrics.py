"""Segmentation metrics from an accumulated confusion matrix.

The confusion matrix ``cm`` is (C, C) int64 with rows = ground truth, columns = prediction.
Pixels whose ground truth is the ignore index (or any value outside 0..C-1) are left out.

Classes absent from both prediction and ground truth have no IoU and no F1 (0/0): they are NaN
and left out of the means (mmsegmentation's convention; torchmetrics' ``average="macro"`` gives
them weight 0, which is the same mean). Per-class accuracy (recall) is NaN for a class with no
ground-truth pixel, so mean accuracy averages over the classes present in the ground truth
(mmsegmentation's convention; torchmetrics' macro accuracy would count a class that is predicted
but absent from the ground truth as 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The ignore value resegzoo's decoded labels use.
IGNORE_INDEX = 255


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(C, C) int64 counts; rows are ground truth, columns predictions.

    ``target`` pixels equal to ``ignore_index`` (or outside ``0..C-1``) are skipped. A prediction
    outside ``0..C-1`` on a valid pixel is an error: it would silently vanish from the counts.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {target.shape}")
    target = target.astype(np.int64, copy=False).ravel()
    pred = pred.astype(np.int64, copy=False).ravel()
    valid = (target != ignore_index) & (target >= 0) & (target < num_classes)
    target, pred = target[valid], pred[valid]
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"predictions must lie in 0..{num_classes - 1}; got {pred.min()}..{pred.max()}")
    counts = np.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0 (undefined, not zero)."""
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


@dataclass(frozen=True)
class Scores:
    """Metrics of one confusion matrix, as fractions in [0, 1] (NaN where undefined)."""

    iou: list[float]
    accuracy: list[float]
    f1: list[float]
    miou: float
    overall_accuracy: float
    mean_accuracy: float
    mean_f1: float
    pixels: int

    def to_dict(self) -> dict:
        return {
            "miou": self.miou, "overall_accuracy": self.overall_accuracy,
            "mean_accuracy": self.mean_accuracy, "mean_f1": self.mean_f1, "pixels": self.pixels,
            "iou": self.iou, "accuracy": self.accuracy, "f1": self.f1,
        }


def scores(cm: np.ndarray) -> Scores:
    """Per-class IoU, accuracy (recall) and F1, their means, and overall pixel accuracy."""
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"a confusion matrix is square; got shape {cm.shape}")
    tp = np.diag(cm).astype(np.float64)
    gt = cm.sum(axis=1).astype(np.float64)      # tp + fn
    predicted = cm.sum(axis=0).astype(np.float64)  # tp + fp
    union = gt + predicted - tp
    iou = _divide(tp, union)
    accuracy = _divide(tp, gt)
    f1 = _divide(2 * tp, gt + predicted)
    total = float(cm.sum())
    return Scores(
        iou=iou.tolist(), accuracy=accuracy.tolist(), f1=f1.tolist(),
        miou=_nanmean(iou), mean_accuracy=_nanmean(accuracy), mean_f1=_nanmean(f1),
        overall_accuracy=float(tp.sum() / total) if total else float("nan"),
        pixels=int(total),
    )
