"""`resegzoo eval` counts a method's objects against a dataset's instance labels (issue 24): iSAID's
release layout with its instance masks (``*_instance_id_RGB.png``: every colour but black one object),
the test suite's colour method (one object per patch of a class's colour), a known answer (an
object the method cannot see, two touching objects it sees as one), and mask AP against
torchmetrics' MeanAveragePrecision(iou_type="segm") on the same masks."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from resegzoo.cli import build_cli

PLUGIN_DIR = Path(__file__).parent / "method_plugin"
sys.path.insert(0, str(PLUGIN_DIR))
from resegzoo_colour_method import colour_of  # noqa: E402

sys.path.remove(str(PLUGIN_DIR))

H, W = 60, 90
SHIP, SMALL_VEHICLE, PLANE = 1, 9, 14
#: per image: (class, box, painted in its class's colour: False = the method cannot see it)
IMAGES = [
    [(SHIP, (4, 4, 14, 20), True), (SHIP, (30, 50, 44, 60), True), (SMALL_VEHICLE, (20, 70, 26, 78), True),
     (PLANE, (40, 5, 56, 30), True), (SMALL_VEHICLE, (8, 40, 14, 48), False)],
    [(SMALL_VEHICLE, (10, 10, 16, 18), True), (SMALL_VEHICLE, (10, 18, 16, 26), True),  # touching: one patch
     (SHIP, (35, 40, 50, 80), True)],
]


def _isaid(root: Path, instances: bool = True) -> Path:
    """iSAID's release layout, val split: images, colour semantic masks, RGB instance ids."""
    from resegzoo.eval.datasets import builtin_info

    info = builtin_info("isaid")
    colours = {k: c for c, k in info.encodings["release"].color.items()}
    for i, objects in enumerate(IMAGES):
        image = np.zeros((H, W, 3), np.uint8)
        image[:] = colour_of(info.classes[0][0])
        semantic = np.zeros((H, W, 3), np.uint8)
        ids = np.zeros((H, W, 3), np.uint8)
        for n, (cls, (y0, x0, y1, x1), seen) in enumerate(objects):
            if seen:
                image[y0:y1, x0:x1] = colour_of(info.classes[cls][0])
            semantic[y0:y1, x0:x1] = [int(colours[cls][j:j + 2], 16) for j in (1, 3, 5)]
            ids[y0:y1, x0:x1] = (37 * (n + 1), 11 * n, 200 - n)  # any colour, one per instance
        for folder, name, array in (("images", f"P000{i}.png", image),
                                    ("Semantic_masks", f"P000{i}_instance_color_RGB.png", semantic),
                                    ("Instance_masks", f"P000{i}_instance_id_RGB.png", ids)):
            if folder == "Instance_masks" and not instances:
                continue
            path = root / "val" / folder / "images" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(path)
    return root


def cli(*args):
    return CliRunner().invoke(build_cli(), [str(a) for a in args], catch_exceptions=False)


def _eval(root: Path, out: Path):
    """The colour method, narrow enough that no class's (hashed) colour takes another's for its own."""
    recipe = out.parent / f"{out.name}.yaml"
    recipe.write_text("method: {name: colour, settings: {width: 0.02}}\n")
    return cli("eval", "--dataset", "isaid", "--root", root, "--recipe", recipe, "--quiet", "--out", out)


def _reference_ap() -> tuple[float, float, dict[int, float]]:
    """torchmetrics' mask AP of what the colour method finds (each patch of a class's colour, score
    1) against the instance labels, on full-image masks."""
    import torch
    from scipy import ndimage
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(iou_type="segm", class_metrics=True)
    for objects in IMAGES:
        truth = [(cls, box) for cls, box, _ in objects]
        seen = {}
        for cls, (y0, x0, y1, x1), visible in objects:
            if visible:
                seen.setdefault(cls, np.zeros((H, W), bool))[y0:y1, x0:x1] = True
        found = []
        for cls, mask in seen.items():
            patches, count = ndimage.label(mask)
            found += [(cls, patches == k) for k in range(1, count + 1)]

        def full(box):
            m = np.zeros((H, W), bool)
            y0, x0, y1, x1 = box
            m[y0:y1, x0:x1] = True
            return m

        metric.update([{"masks": torch.from_numpy(np.stack([m for _, m in found])), "scores": torch.ones(len(found)),
                        "labels": torch.tensor([c for c, _ in found])}],
                      [{"masks": torch.from_numpy(np.stack([full(b) for _, b in truth])),
                        "labels": torch.tensor([c for c, _ in truth])}])
    out = metric.compute()
    per_class = {int(c): float(v) for c, v in zip(out["classes"], out["map_per_class"])}
    return float(out["map"]), float(out["map_50"]), per_class


def test_eval_counts_objects_per_class_and_their_mask_ap(colour_plugin, tmp_path):
    import pycocotools  # noqa: F401  (the test extra has it: missing is a broken install, a failure, not a skip)
    root = _isaid(tmp_path / "isaid")
    out = tmp_path / "e"
    result = _eval(root, out)
    assert result.exit_code == 0, result.output
    run = json.loads((out / "results.json").read_text())["runs"][0]
    objects = run["objects"]
    per_class = objects["per_class"]
    assert "background" not in per_class and len(per_class) == 15
    # the known answer: ships all found; of four small vehicles one is invisible and two touching
    # ones are one patch; the plane found
    assert {k: (v["true"], v["found"]) for k, v in per_class.items() if v["true"] or v["found"]} == {
        "ship": (3, 3), "small vehicle": (4, 2), "plane": (1, 1)}
    assert per_class["small vehicle"]["count_error"] == pytest.approx(1.0)  # |1 - 2| in each image
    assert per_class["small vehicle"]["relative_error"] == pytest.approx(-0.5)
    assert per_class["ship"]["count_error"] == 0 and objects["true"] == 8 and objects["found"] == 6
    # mask AP: pycocotools on run-length encoded objects, against torchmetrics on full masks
    ap, ap50, ap_per_class = _reference_ap()
    assert objects["mask_ap"] == pytest.approx(ap, abs=1e-6) and objects["mask_ap50"] == pytest.approx(ap50, abs=1e-6)
    assert 0 < ap < 1
    for cls, name in ((SHIP, "ship"), (SMALL_VEHICLE, "small vehicle"), (PLANE, "plane")):
        assert per_class[name]["mask_ap"] == pytest.approx(ap_per_class[cls], abs=1e-6), name
    assert per_class["small vehicle"]["mask_ap"] < per_class["ship"]["mask_ap"] == pytest.approx(1.0)
    report = (out / "results.md").read_text()
    assert "Objects against the instance labels" in report and "6 objects found, 8 true, in 2 image(s)" in report
    assert "| true / found |" in report
    # stored per image: a rerun segments nothing and gives the same numbers; a lost objects file is recomputed
    stored = sorted((next((out / "runs").iterdir()) / "objects").glob("*.npz"))
    assert [p.name for p in stored] == ["P0000.npz", "P0001.npz"]
    stored[0].unlink()
    again = _eval(root, out)
    assert again.exit_code == 0, again.output
    assert json.loads((out / "results.json").read_text())["runs"][0]["objects"] == objects
    assert stored[0].is_file()


def test_without_instance_labels_or_pycocotools_eval_says_what_it_left_out(colour_plugin, tmp_path, monkeypatch):
    root = _isaid(tmp_path / "plain", instances=False)
    out = tmp_path / "e"
    assert _eval(root, out).exit_code == 0
    run = json.loads((out / "results.json").read_text())["runs"][0]
    assert "objects" not in run and not (next((out / "runs").iterdir()) / "objects").exists()
    # counts without pycocotools: AP left out, with what to install
    root = _isaid(tmp_path / "inst")
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    out = tmp_path / "e2"
    assert _eval(root, out).exit_code == 0
    objects = json.loads((out / "results.json").read_text())["runs"][0]["objects"]
    assert objects["true"] == 8 and objects["found"] == 6 and objects["mask_ap"] is None
    assert "pycocotools is not installed" in objects["mask_ap_note"] and "resegzoo[eval-ap]" in objects["mask_ap_note"]


def test_instances_of_an_id_image_are_its_colours_classed_by_the_labels_under_them(tmp_path):
    from resegzoo.eval.objects import read_instances

    ids = np.zeros((6, 8, 3), np.uint8)
    ids[0:2, 0:3] = (1, 0, 0)  # an instance
    ids[0:2, 3:5] = (0, 1, 0)  # another, touching it
    ids[4:6, 0:8] = (0, 0, 1)  # one over two classes: the larger one wins
    ids[3, 7] = (5, 5, 5)  # over background only: no object
    label = np.zeros((6, 8), np.uint8)
    label[0:2, 0:5] = 2
    label[4:6, 0:3], label[4:6, 3:8] = 3, 4
    Image.fromarray(ids).save(tmp_path / "x_instance_id_RGB.png")
    found = read_instances(tmp_path / "x_instance_id_RGB.png", label, [f"c{k}" for k in range(5)], background=0)
    assert sorted((int(c), tuple(int(v) for v in b), int(m.sum())) for c, b, m in
                  zip(found.class_ids, found.boxes, found.masks)) == [(2, (0, 0, 2, 3), 6), (2, (0, 3, 2, 5), 4),
                                                                     (4, (4, 0, 6, 8), 16)]
