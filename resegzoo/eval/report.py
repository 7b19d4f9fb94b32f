"""Reports of evaluation runs: results.md (Markdown tables), results.json and per_class.csv.

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

from resegzoo import __version__
from resegzoo.outputs import atomic
from resegzoo.eval.datasets import Dataset
from resegzoo.eval.runner import RunResult
from resegzoo.segmenter.recipe import protocol_name


#: what the protocol column means (METHOD.md section 6)
PROTOCOL_NOTE = ("Protocol: peers = SegEarth-OV's evaluation protocol exactly (registry/recipes/eval-default.yaml), "
                 "resegzoo = resegzoo's earlier one (eval-resegzoo.yaml), custom = neither; only peers rows "
                 "compare with the peers' published numbers.")


RANDOM_MARK = "(random weights)"
RANDOM_NOTE = (f"Rows marked {RANDOM_MARK} use a model whose weights are random by design (a demo or test "
               "model): their numbers measure nothing.")


def random_weights(result: RunResult) -> bool:
    """Whether the run's model is a record with random weights by design."""
    return bool(result.spec.resolved is not None and result.spec.resolved.random_weights)


def _row_name(result: RunResult) -> str:
    return f"{result.spec.label} {RANDOM_MARK}" if random_weights(result) else result.spec.label


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
            "method": r.spec.recipe.method.name, "model": r.spec.model, "masks": r.spec.masks,
            "recipe_source": r.spec.recipe_source,
            "recipe_name": r.spec.recipe_name, "random_weights": random_weights(r),
            "protocol": protocol_name(r.spec.recipe), "recipe": r.spec.recipe.to_dict(), "images": r.images,
            "prompts": r.spec.prompts(info),
            "miou": _json_number(s.miou), "mean_accuracy": _json_number(s.mean_accuracy),
            "overall_accuracy": _json_number(s.overall_accuracy), "mean_f1": _json_number(s.mean_f1),
            "pixels": s.pixels,
            "per_class": {name: {"iou": _json_number(s.iou[k]), "accuracy": _json_number(s.accuracy[k]),
                                 "f1": _json_number(s.f1[k])} for k, name in enumerate(r.class_names)},
            "confusion": r.confusion.tolist(),
            **({"objects": r.objects.to_dict()} if r.objects is not None else {}),
        })
    extra: dict[str, Any] = {}
    if info.change is not None:
        from resegzoo.eval.change import change_results

        extra["change"] = change_results(dataset, results)
    return {
        **extra,
        "resegzoo": __version__,
        "units": "percent",
        "dataset": {**dataset.describe(), "title": info.title, "classes": info.class_names,
                    "prompts": info.classes, "images_in_split": len(dataset)},  # each run: its own "prompts"
        "runs": runs,
    }


def markdown(dataset: Dataset, results: Sequence[RunResult]) -> str:
    info = dataset.info
    if info.change is not None:  # pairs of dates: the change class's numbers (resegzoo.eval.change)
        from resegzoo.eval.change import change_markdown

        return change_markdown(dataset, results)
    d = dataset.describe()
    lines = [f"# {info.title} ({d['split'] or 'all'} split, {d['layout']} layout)", ""]
    header = "| run | recipe | model | masks | method | protocol | images | mIoU | mAcc | aAcc | mF1 |"
    if len(results) > 1:
        header += " Δ mIoU |"
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    base = results[0].scores.miou if results else float("nan")
    for r in results:
        s = r.scores
        row = (f"| {_row_name(r)} | {r.spec.recipe_name} | {r.spec.model or '-'} | {r.spec.masks} | "
               f"{r.spec.recipe.method.name} | {protocol_name(r.spec.recipe)} | "
               f"{r.images} | {_pct(s.miou)} | "
               f"{_pct(s.mean_accuracy)} | {_pct(s.overall_accuracy)} | {_pct(s.mean_f1)} |")
        if len(results) > 1:
            delta = s.miou - base
            row += " - |" if r is results[0] or math.isnan(delta) else f" {100 * delta:+.2f} |"
        lines.append(row)
    names = info.class_names
    lines += ["", "Per-class IoU (%):", "", "| run | recipe | " + " | ".join(names) + " |",
              "|" + "---|" * (len(names) + 2)]
    for r in results:
        lines.append(f"| {_row_name(r)} | {r.spec.recipe_name} | " + " | ".join(_pct(v) for v in r.scores.iou) + " |")
    lines += objects_markdown(results)
    lines += ["", "Classes absent from both prediction and ground truth show as '-' and are left out of the means.",
              PROTOCOL_NOTE]
    if any(random_weights(r) for r in results):
        lines.append(RANDOM_NOTE)
    return "\n".join(lines) + "\n"


def objects_markdown(results: Sequence[RunResult]) -> list[str]:
    """The runs' object counts per class against the instance labels, and mask AP (runs that count objects)."""
    counted = [r for r in results if r.objects is not None]
    if not counted:
        return []
    lines = ["", "Objects against the instance labels: true / found per class, count error (mean |found - true| "
                 "per image), mask AP (%, COCO: IoU 0.50:0.95, up to 100 objects per image):", ""]
    for r in counted:
        o = r.objects
        names = [o.class_names[k] for k in o.classes]
        ap = "-" if o.ap is None else f"{100 * o.ap:.2f}" + ("" if o.ap50 is None else f" (AP50 {100 * o.ap50:.2f})")
        lines += [f"{_row_name(r)}: {int(o.found[o.classes].sum())} objects found, {int(o.truth[o.classes].sum())} "
                  f"true, in {o.images} image(s); mask AP {ap}" + (f" ({o.ap_note})" if o.ap_note else ""), "",
                  "| | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1),
                  "| true / found | " + " | ".join(f"{o.truth[k]} / {o.found[k]}" for k in o.classes) + " |",
                  "| count error | " + " | ".join(f"{o.count_error(k):.2f}" for k in o.classes) + " |",
                  "| mask AP | " + " | ".join(_pct(o.ap_per_class.get(o.class_names[k])) for k in o.classes) + " |", ""]
    return lines


def per_class_csv(results: Sequence[RunResult]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["run", "recipe", "model", "masks", "method", "random_weights", "class", "iou", "accuracy", "f1",
                     "gt_pixels", "predicted_pixels"])
    for r in results:
        gt, predicted = r.confusion.sum(axis=1), r.confusion.sum(axis=0)
        ident = [r.spec.label, r.spec.recipe_name, r.spec.model, r.spec.masks, r.spec.recipe.method.name,
                 str(random_weights(r)).lower()]
        for k, name in enumerate(r.class_names):
            writer.writerow([*ident, name, _pct(r.scores.iou[k]), _pct(r.scores.accuracy[k]),
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
