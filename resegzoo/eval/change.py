"""Evaluating change detection (``resegzoo eval`` on a change dataset): each pair through the change
rule (:class:`resegzoo.change.pair.ChangeDetector`), a 2 x 2 confusion matrix per pair (unchanged,
changed), stored and resumed like a segmentation image's (:class:`resegzoo.eval.runner.EvalRun`), and
the numbers SegEarth-OV3's evaluation prints: mmsegmentation's ``IoUMetric`` with ``mIoU`` and
``mFscore`` over both classes, besides the IoU and F1 of the change class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from resegzoo.eval.datasets import Dataset
from resegzoo.eval.metrics import IGNORE_INDEX, confusion_matrix
from resegzoo.eval.runner import EvalRun, RunResult


@dataclass(frozen=True)
class ChangeScores:
    """mmsegmentation's ``IoUMetric`` (``iou_metrics=['mIoU', 'mFscore']``) of a 2 x 2 confusion matrix
    (rows: truth, columns: prediction; class 1 = changed), as fractions; NaN where undefined."""

    iou: list[float]
    precision: list[float]
    recall: list[float]
    fscore: list[float]
    miou: float
    mfscore: float
    #: the change class's
    change_iou: float
    change_f1: float
    pixels: int


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def change_scores(cm: np.ndarray) -> ChangeScores:
    """mmseg's formulas (``mmseg.evaluation.metrics.IoUMetric.total_area_to_metrics``): per class
    IoU = intersection / union, precision = intersection / predicted, recall = intersection / truth,
    F = 2 P R / (P + R) (NaN where P + R is 0 or either is undefined, as torch's 0/0); the means
    over the classes that are not NaN (``np.nanmean``)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    truth, predicted = cm.sum(axis=1), cm.sum(axis=0)
    iou = _ratio(tp, truth + predicted - tp)
    precision, recall = _ratio(tp, predicted), _ratio(tp, truth)
    with np.errstate(invalid="ignore", divide="ignore"):
        fscore = 2 * precision * recall / (precision + recall)
    fscore = np.where(np.isfinite(fscore), fscore, np.nan)

    def nanmean(v: np.ndarray) -> float:
        return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")

    return ChangeScores(iou=iou.tolist(), precision=precision.tolist(), recall=recall.tolist(), fscore=fscore.tolist(),
                        miou=nanmean(iou), mfscore=nanmean(fscore), change_iou=float(iou[1]),
                        change_f1=float(fscore[1]), pixels=int(cm.sum()))


class ChangeEvalRun(EvalRun):
    """The run folder of one (change dataset, setting) pair: :class:`EvalRun`'s storage, resuming and
    run key (the dataset's protocol and second-date files in it: ``ChangeDataset.key_settings``);
    each pair scored by the change rule with the dataset's settings."""

    def rule_settings(self) -> Any:
        """The change rule's settings: the dataset's protocol, its background class (by its label
        in this run's prompts) as background."""
        info = self.dataset.info
        assert info.change is not None
        background = (self.spec.prompts(info)[info.background][0],) if info.background is not None else ()
        return info.change.settings(background)

    def read_sample(self, sample: Any, prepare: Any = None) -> tuple[Any, np.ndarray]:
        """Both dates and the label (each date is prepared per window inside the change rule)."""
        return self.dataset.load(sample)

    def evaluate_sample(self, segmenter: Any, vocab: Any, sample: Any, overlay: bool = False,
                        loaded: tuple[Any, np.ndarray] | None = None) -> np.ndarray:
        """Detect the change of one pair and return its 2 x 2 confusion matrix."""
        from resegzoo.change.pair import ChangeDetector

        pair, label = loaded if loaded is not None else self.dataset.load(sample)
        image_a, valid_a, image_b, valid_b = pair
        maps = ChangeDetector(segmenter, vocab, self.rule_settings()).detect(image_a, image_b, valid_a, valid_b)
        pred = np.where(maps.change == 1, 1, 0).astype(np.uint8)  # nodata pixels are ignored in the label
        cm = confusion_matrix(pred, label, 2)
        if overlay:
            from resegzoo.eval.runner import safe_id

            save_change_overlay(self.overlay_dir / f"{safe_id(sample.id)}.png", image_a, image_b, pred, label)
        return cm


def eval_run_class(dataset: Dataset) -> type[EvalRun]:
    """The run of ``dataset``'s kind: :class:`ChangeEvalRun` for a change dataset, else :class:`EvalRun`."""
    return ChangeEvalRun if dataset.info.change is not None else EvalRun


def save_change_overlay(path: Path, image_a: np.ndarray, image_b: np.ndarray, pred: np.ndarray,
                        label: np.ndarray) -> None:
    """before | after | predicted change | true change (changed pixels red on the after image; ignored
    pixels plain), shrunk to at most 1024 px wide."""
    from PIL import Image

    from resegzoo.outputs import atomic

    step = max(1, math.ceil(4 * image_a.shape[1] / 1024))
    a, b = image_a[::step, ::step], image_b[::step, ::step]
    red = np.array([230, 30, 30], np.float32)

    def marked(mask: np.ndarray) -> np.ndarray:
        mask = mask[::step, ::step] == 1
        out = b.astype(np.float32)
        out[mask] = 0.4 * out[mask] + 0.6 * red
        return out.astype(np.uint8)

    gap = np.full((a.shape[0], 4, 3), 255, np.uint8)
    panels = np.concatenate([a, gap, b, gap, marked(pred), gap, marked(np.where(label == IGNORE_INDEX, 0, label))], 1)
    with atomic.atomic_path(path) as tmp:
        Image.fromarray(panels).save(tmp, format="PNG")


def _pct(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def change_markdown(dataset: Dataset, results: Sequence[RunResult]) -> str:
    """The table of a change dataset: the change class's IoU and F1, mmseg's mIoU and mF1 over
    (unchanged, changed), and the numbers published on it."""
    info = dataset.info
    d = dataset.describe()
    protocol = info.change
    crop = f"{protocol.crop} px crops" if protocol.crop else "whole images"
    lines = [f"# {info.title} ({d['split'] or 'all'} split, {d['layout']} layout, {crop}): change detection", "",
             "| run | recipe | model | method | pairs | IoU (change) | F1 (change) | mIoU | mF1 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = change_scores(r.confusion)
        lines.append(f"| {r.spec.label} | {r.spec.recipe_name} | {r.spec.model or '-'} | {r.spec.recipe.method.name} | "
                     f"{r.images} | {_pct(s.change_iou)} | {_pct(s.change_f1)} | {_pct(s.miou)} | {_pct(s.mfscore)} |")
    for source, numbers in protocol.published.items():
        cells = [f"{numbers[k]:.1f}" if k in numbers else "-" for k in ("iou", "f1", "miou", "mf1")]
        lines.append(f"| published: {source} | - | - | - | - | " + " | ".join(cells) + " |")
    lines += ["", f"Change rule: background threshold {protocol.background_threshold}, coverage {protocol.coverage}, "
                  f"min area {protocol.min_area} (SegEarth-OV3's settings for {info.title}); mIoU and mF1 are "
                  "mmsegmentation's IoUMetric over (unchanged, changed), as SegEarth-OV3 reports them."]
    return "\n".join(lines) + "\n"


def change_results(dataset: Dataset, results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """The change numbers of each run, for results.json (percent)."""
    out = []
    for r in results:
        s = change_scores(r.confusion)
        out.append({"label": r.spec.label, "iou_change": _json(s.change_iou), "f1_change": _json(s.change_f1),
                    "miou": _json(s.miou), "mf1": _json(s.mfscore),
                    "per_class": {name: {"iou": _json(s.iou[k]), "precision": _json(s.precision[k]),
                                         "recall": _json(s.recall[k]), "fscore": _json(s.fscore[k])}
                                  for k, name in enumerate(r.class_names)}})
    return out


def _json(value: float) -> float | None:
    return None if math.isnan(value) else round(100 * value, 4)
