"""resegzoo.eval.metrics against torchmetrics, and the documented conventions for absent classes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassJaccardIndex

from resegzoo.eval.metrics import IGNORE_INDEX, confusion_matrix, scores

C = 6


def _random_pair(seed: int, shape=(64, 80), ignore_fraction=0.1):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, C, size=shape)
    # predictions agree with the target half of the time, so scores are far from 0 and 1
    pred = np.where(rng.random(shape) < 0.5, target, rng.integers(0, C, size=shape))
    target[rng.random(shape) < ignore_fraction] = IGNORE_INDEX
    return pred, target


def _tm(metric_cls, average, pred, target):
    metric = metric_cls(num_classes=C, average=average, ignore_index=IGNORE_INDEX)
    return metric(torch.from_numpy(pred).long().flatten(), torch.from_numpy(target).long().flatten()).numpy()


def test_scores_equal_torchmetrics_with_ignore_pixels():
    pred, target = _random_pair(0)
    s = scores(confusion_matrix(pred, target, C))
    np.testing.assert_allclose(s.iou, _tm(MulticlassJaccardIndex, "none", pred, target), rtol=1e-6)
    assert s.miou == pytest.approx(float(_tm(MulticlassJaccardIndex, "macro", pred, target)), rel=1e-6)
    np.testing.assert_allclose(s.accuracy, _tm(MulticlassAccuracy, "none", pred, target), rtol=1e-6)
    assert s.mean_accuracy == pytest.approx(float(_tm(MulticlassAccuracy, "macro", pred, target)), rel=1e-6)
    assert s.overall_accuracy == pytest.approx(float(_tm(MulticlassAccuracy, "micro", pred, target)), rel=1e-6)
    np.testing.assert_allclose(s.f1, _tm(MulticlassF1Score, "none", pred, target), rtol=1e-6)
    assert s.mean_f1 == pytest.approx(float(_tm(MulticlassF1Score, "macro", pred, target)), rel=1e-6)
    assert s.pixels == int((target != IGNORE_INDEX).sum())


def test_accumulated_per_image_matrices_equal_one_pass_over_all_images():
    pairs = [_random_pair(seed, shape=(20 + seed, 30)) for seed in range(4)]
    total = sum(confusion_matrix(p, t, C) for p, t in pairs)
    metric = MulticlassJaccardIndex(num_classes=C, average="none", ignore_index=IGNORE_INDEX)
    for p, t in pairs:  # torchmetrics' own accumulation over batches
        metric.update(torch.from_numpy(p).flatten(), torch.from_numpy(t).flatten())
    np.testing.assert_allclose(scores(total).iou, metric.compute().numpy(), rtol=1e-6)


def test_class_absent_from_prediction_and_truth_is_nan_and_left_out_like_torchmetrics_macro():
    pred, target = _random_pair(1)
    pred[pred == 5] = 0
    target[target == 5] = 0  # class 5 appears nowhere
    s = scores(confusion_matrix(pred, target, C))
    assert math.isnan(s.iou[5]) and math.isnan(s.f1[5]) and math.isnan(s.accuracy[5])
    assert s.miou == pytest.approx(np.mean(s.iou[:5]))
    assert s.miou == pytest.approx(float(_tm(MulticlassJaccardIndex, "macro", pred, target)), rel=1e-6)
    assert s.mean_f1 == pytest.approx(float(_tm(MulticlassF1Score, "macro", pred, target)), rel=1e-6)


def test_class_predicted_but_absent_from_truth_counts_zero_iou_and_no_accuracy():
    # 2 x 2 image, classes 0..2: truth has no class 2, one pixel is predicted as 2.
    target = np.array([[0, 0], [1, 1]])
    pred = np.array([[0, 2], [1, 1]])
    s = scores(confusion_matrix(pred, target, 3))
    assert s.iou == pytest.approx([0.5, 1.0, 0.0])  # class 2: union 1, intersection 0
    assert s.miou == pytest.approx(0.5)
    assert s.accuracy[:2] == pytest.approx([0.5, 1.0]) and math.isnan(s.accuracy[2])
    assert s.mean_accuracy == pytest.approx(0.75)  # over classes present in the truth (mmseg)
    assert s.overall_accuracy == pytest.approx(0.75)
    assert s.f1 == pytest.approx([2 / 3, 1.0, 0.0])


def test_confusion_matrix_layout_and_bad_input():
    cm = confusion_matrix(np.array([1, 1, 0, 2]), np.array([0, 1, 0, IGNORE_INDEX]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]  # rows truth, columns prediction
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 3)), np.zeros((3, 2)), 3)
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix(np.array([3]), np.array([0]), 3)
    # an out-of-range prediction on an ignored pixel is harmless
    assert confusion_matrix(np.array([7]), np.array([IGNORE_INDEX]), 3).sum() == 0
