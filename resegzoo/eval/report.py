"""Reports of evaluation runs: results.md (Markdown tables), results.json, per_class.csv, overlays.

Numbers in reports are percentages with two decimals; a class absent from both prediction and
ground truth has no IoU/F1 and shows as ``-`` (``null`` in JSON) and is left out of the means.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from resegzoo import __version__
from resegzoo.eval import atomic
from resegzoo.eval.datasets import Dataset, DatasetInfo
from resegzoo.eval.runner import RunResult

#: Distinct colours for classes of datasets whose labels are not colour-coded.
DEFAULT_PALETTE = np.array([
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255],
    [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195], [128, 128, 0], [255, 215, 180],
    [0, 0, 128], [128, 128, 128],
], dtype=np.uint8)

#: Overlays are shrunk so that their long side is at most this (Potsdam tiles are 6000 px).
OVERLAY_MAX_SIDE = 1024


def palette_for(info: DatasetInfo) -> np.ndarray:
    """(C, 3) uint8: the dataset's own label colours where it has them, else distinct defaults."""
    palette = np.array([DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)] for i in range(info.num_classes)], dtype=np.uint8)
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


def _pct(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else round(100 * value, 4)


def results_dict(dataset: Dataset, results: Sequence[RunResult]) -> dict[str, Any]:
    info = dataset.info
    runs = []
    for r in results:
        s = r.scores
        runs.append({
            "label": r.spec.label, "key": r.key, "run_dir": str(r.run_dir),
            "model": r.spec.model, "masks": r.spec.masks, "recipe_source": r.spec.recipe_source,
            "recipe": r.spec.recipe.to_dict(), "images": r.images,
            "miou": _json_number(s.miou), "mean_accuracy": _json_number(s.mean_accuracy),
            "overall_accuracy": _json_number(s.overall_accuracy), "mean_f1": _json_number(s.mean_f1),
            "pixels": s.pixels,
            "per_class": {name: {"iou": _json_number(s.iou[k]), "accuracy": _json_number(s.accuracy[k]),
                                 "f1": _json_number(s.f1[k])} for k, name in enumerate(r.class_names)},
            "confusion": r.confusion.tolist(),
        })
    return {
        "resegzoo": __version__,
        "units": "percent",
        "dataset": {**dataset.describe(), "title": info.title, "classes": info.class_names,
                    "prompts": info.classes, "images_in_split": len(dataset)},
        "runs": runs,
    }


def markdown(dataset: Dataset, results: Sequence[RunResult]) -> str:
    info = dataset.info
    d = dataset.describe()
    lines = [f"# {info.title} ({d['split'] or 'all'} split, {d['layout']} layout)", ""]
    header = "| run | model | masks | images | mIoU | mAcc | aAcc | mF1 |"
    if len(results) > 1:
        header += " Δ mIoU |"
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    base = results[0].scores.miou if results else float("nan")
    for r in results:
        s = r.scores
        row = (f"| {r.spec.label} | {r.spec.model} | {r.spec.masks} | {r.images} | {_pct(s.miou)} | "
               f"{_pct(s.mean_accuracy)} | {_pct(s.overall_accuracy)} | {_pct(s.mean_f1)} |")
        if len(results) > 1:
            delta = s.miou - base
            row += " - |" if r is results[0] or math.isnan(delta) else f" {100 * delta:+.2f} |"
        lines.append(row)
    names = info.class_names
    lines += ["", "Per-class IoU (%):", "", "| run | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for r in results:
        lines.append(f"| {r.spec.label} | " + " | ".join(_pct(v) for v in r.scores.iou) + " |")
    lines += ["", "Classes absent from both prediction and ground truth show as '-' and are left out of the means."]
    return "\n".join(lines) + "\n"


def per_class_csv(results: Sequence[RunResult]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["run", "class", "iou", "accuracy", "f1", "gt_pixels", "predicted_pixels"])
    for r in results:
        gt, predicted = r.confusion.sum(axis=1), r.confusion.sum(axis=0)
        for k, name in enumerate(r.class_names):
            writer.writerow([r.spec.label, name, _pct(r.scores.iou[k]), _pct(r.scores.accuracy[k]),
                             _pct(r.scores.f1[k]), int(gt[k]), int(predicted[k])])
    return buf.getvalue()


def write_reports(out_dir: str | Path, dataset: Dataset, results: Sequence[RunResult]) -> dict[str, Path]:
    """Write results.md, results.json and per_class.csv into ``out_dir`` (atomically)."""
    out = Path(out_dir)
    paths = {"markdown": out / "results.md", "json": out / "results.json", "csv": out / "per_class.csv"}
    atomic.write_text(paths["json"], json.dumps(results_dict(dataset, results), indent=2, default=str) + "\n")
    atomic.write_text(paths["csv"], per_class_csv(results))
    atomic.write_text(paths["markdown"], markdown(dataset, results))
    return paths
