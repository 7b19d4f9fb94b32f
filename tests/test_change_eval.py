"""Issue 25 item 3: `resegzoo eval` on change datasets: LEVIR-CD's released layout read with SegEarth-OV3's
512 px crop protocol, a generic A/B/label folder, the change class's IoU and F1 and mmsegmentation's
mIoU and mF1 (checked against torchmetrics and mmseg's formulas written out), resumable runs."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from resegzoo.cli import build_cli
from resegzoo.eval.change import change_scores
from resegzoo.eval.datasets.change import tiles

PLUGIN_DIR = Path(__file__).parent / "method_plugin"
sys.path.insert(0, str(PLUGIN_DIR))
from resegzoo_colour_method import colour_of  # noqa: E402

sys.path.remove(str(PLUGIN_DIR))


def cli(*args: object):
    return CliRunner().invoke(build_cli(), [str(a) for a in args], catch_exceptions=False)


def save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def levir_layout(root: Path, pairs: int = 2, side: int = 1024) -> np.ndarray:
    """LEVIR-CD's released test layout (test/A, test/B, test/label with 0/255 labels): ground of the
    colour the colour method gives "background", buildings of the colour it gives "building". Per
    pair: a building that appears, one that disappears (both in the label and found), and one that
    moves by a few pixels (in the label; its moved copy covers it: the object rule keeps it). Returns
    the change the rule finds, as a stack of labels."""
    ground, building = colour_of("background"), colour_of("building")
    assert np.linalg.norm(np.subtract(ground, building)) > 100  # the two names score apart
    found = []
    for n in range(pairs):
        a = np.empty((side, side, 3), np.uint8)
        a[:] = ground
        b = a.copy()
        truth = np.zeros((side, side), np.uint8)
        rng = np.random.default_rng(n)
        y, x = rng.integers(40, side // 2 - 120, 2)
        b[y:y + 60, x:x + 80] = building                                     # appears (crop 0_0)
        truth[y:y + 60, x:x + 80] = 255
        a[side // 2 + 30:side // 2 + 90, 40:100] = building                  # disappears (crop 1_0)
        truth[side // 2 + 30:side // 2 + 90, 40:100] = 255
        a[100:160, side // 2 + 100:side // 2 + 200] = building               # moves by 6 px (crop 0_1)
        b[106:166, side // 2 + 100:side // 2 + 200] = building
        truth[100:166, side // 2 + 100:side // 2 + 200] = 255
        detected = truth.copy()
        detected[100:166, side // 2 + 100:side // 2 + 200] = 0
        found.append(detected // 255)
        for folder, image in (("A", a), ("B", b), ("label", truth)):
            save_png(root / "test" / folder / f"test_{n + 1}.png", image)
    return np.stack(found)


def test_tiles_follow_the_peers_converter():
    assert tiles(1024, 1024, 512) == [("_0_0", (0, 0, 512, 512)), ("_0_1", (0, 512, 512, 1024)),
                                      ("_1_0", (512, 0, 1024, 512)), ("_1_1", (512, 512, 1024, 1024))]
    assert tiles(512, 512, 512) == [("", None)]
    assert tiles(1000, 1024, 512) == [("", None)]  # not a multiple: whole
    assert tiles(1024, 1024, None) == [("", None)]


@pytest.mark.parametrize("cm", [
    [[900, 20], [35, 45]],
    [[1000, 0], [0, 0]],        # no change anywhere: the change class has no IoU (NaN), left out of the means
    [[800, 50], [150, 0]],      # changes missed entirely: F of the change class is 0/0 in mmseg (NaN)
    [[0, 10], [0, 30]],
])
def test_change_scores_are_mmsegs_and_torchmetrics(cm):
    import torch
    from torchmetrics.classification import BinaryF1Score, BinaryJaccardIndex

    cm = np.array(cm)
    s = change_scores(cm)
    # mmseg's total_area_to_metrics, written out
    tp = np.diag(cm).astype(float)
    union, pred, truth = cm.sum(0) + cm.sum(1) - tp, cm.sum(0), cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / union
        prec, rec = tp / pred, tp / truth
        f = 2 * prec * rec / (prec + rec)
    np.testing.assert_allclose(s.iou, iou, equal_nan=True)
    np.testing.assert_allclose(s.fscore, f, equal_nan=True)
    assert s.miou == pytest.approx(np.nanmean(iou), nan_ok=True)
    if not np.isnan(f).all():
        assert s.mfscore == pytest.approx(np.nanmean(f))
    # the change class's IoU and F1 where defined: torchmetrics on the pixels themselves
    target = torch.tensor(np.repeat([0, 0, 1, 1], [cm[0, 0], cm[0, 1], cm[1, 0], cm[1, 1]]))
    preds = torch.tensor(np.repeat([0, 1, 0, 1], [cm[0, 0], cm[0, 1], cm[1, 0], cm[1, 1]]))
    if cm[1].sum() + cm[:, 1].sum():
        assert s.change_iou == pytest.approx(float(BinaryJaccardIndex()(preds, target)))
    if cm[1, 1]:
        assert s.change_f1 == pytest.approx(float(BinaryF1Score()(preds, target)))


def test_eval_on_a_synthetic_levir_cd_prints_the_table_and_resumes(colour_plugin, tmp_path):
    from resegzoo.eval.datasets import open_builtin

    root = tmp_path / "LEVIR-CD"
    found = levir_layout(root)
    dataset = open_builtin("levir-cd", root)
    assert [s.id for s in dataset][:4] == ["test_1_0_0", "test_1_0_1", "test_1_1_0", "test_1_1_1"]
    out = tmp_path / "eval"
    done = cli("eval", "--dataset", "levir-cd", "--root", root, "--method", "colour-change", "--quiet",
               "--out", out)
    assert done.exit_code == 0, done.output
    # the expected numbers: the rule finds the appearing and disappearing buildings exactly and keeps
    # the moved one (its copy covers it), which the label calls changed
    from PIL import Image

    truth = np.stack([np.asarray(Image.open(root / "test" / "label" / f"test_{n}.png")) // 255 for n in (1, 2)])
    cm = np.zeros((2, 2), np.int64)
    np.add.at(cm, (truth.ravel(), found.ravel()), 1)
    s = change_scores(cm)
    assert 0.3 < s.change_iou < 0.95  # a table that is neither 0 nor 100
    row = next(line for line in done.output.splitlines() if "| colour-change |" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == "8"  # pairs: two 1024 px images, four 512 px crops each
    assert cells[5:9] == [f"{100 * v:.2f}" for v in (s.change_iou, s.change_f1, s.miou, s.mfscore)]
    assert "| published: OmniOVCD (arXiv 2601.13895), training-free | - | - | - | - | 67.2 |" in done.output
    results = json.loads((out / "results.json").read_text())
    assert results["change"][0]["iou_change"] == pytest.approx(100 * s.change_iou)
    assert results["runs"][0]["confusion"] == cm.tolist()
    overlays = list(out.glob("runs/*/overlays/*.png"))
    assert overlays
    again = cli("eval", "--dataset", "levir-cd", "--root", root, "--method", "colour-change", "--quiet",
                "--out", out)
    assert again.exit_code == 0 and "8 of 8 image(s) already done" in again.output
    assert row in again.output


def test_the_peers_converted_crops_and_a_generic_change_folder(colour_plugin, tmp_path):
    from resegzoo.eval.datasets import open_builtin

    root = tmp_path / "LEVIR-CD"
    levir_layout(root, pairs=1, side=512)
    (root / "test" / "label").rename(root / "test" / "label_cvt")  # SegEarth-OV3's converted labels: 0/1
    from PIL import Image

    for path in (root / "test" / "label_cvt").iterdir():
        save_png(path, (np.asarray(Image.open(path)) // 255).astype(np.uint8))
    dataset = open_builtin("levir-cd", root / "test")
    assert [s.id for s in dataset] == ["test_1"] and dataset.samples[0].box is None
    pair, label = dataset.load(dataset.samples[0])
    assert set(np.unique(label)) == {0, 1} and pair[0].shape == (512, 512, 3)

    generic = tmp_path / "mine"
    levir_layout(tmp_path / "tmp", pairs=1, side=512)
    (tmp_path / "tmp" / "test").rename(generic)
    (generic / "classes.yaml").write_text("classes: [building]\nchange: {coverage: 0.3}\n")
    done = cli("eval", "--dataset", "change-generic", "--root", generic, "--method", "colour-change", "--quiet",
               "--out", tmp_path / "g")
    assert done.exit_code == 0, done.output
    assert "IoU (change)" in done.output


def test_whu_cd_and_s2looking_in_their_released_layouts(tmp_path):
    """WHU-CD's A/ B/ label/ tiles of 1024 px become four 512 px crops; S2Looking's Image1/ Image2/
    label/ stay whole, its colour labels (red: new, green: demolished building) read as changed, and
    each carries SegEarth-OV3's settings for it."""
    from resegzoo.eval.datasets import open_builtin

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (1024, 1024, 3), dtype=np.uint8)
    truth = np.zeros((1024, 1024), np.uint8)
    truth[600:700, 100:300] = 255
    for folder, array in (("A", image), ("B", image[::-1]), ("label", truth)):
        save_png(tmp_path / "whu" / "test" / folder / "t1.png", array)
    whu = open_builtin("whu-cd", tmp_path / "whu")
    assert [s.id for s in whu] == ["t1_0_0", "t1_0_1", "t1_1_0", "t1_1_1"]
    (a, valid_a, b, valid_b), label = whu.load(whu.samples[2])  # rows 512:1024, cols 0:512
    np.testing.assert_array_equal(a, image[512:, :512])
    np.testing.assert_array_equal(b, image[::-1][512:, :512])
    np.testing.assert_array_equal(label, truth[512:, :512] // 255)
    assert valid_a.all() and valid_b.all()
    settings = whu.info.change.settings(("background",))
    assert (settings.background_threshold, settings.coverage, settings.min_area) == (0.4, 0.3, 0)

    colour = np.zeros((300, 400, 3), np.uint8)
    colour[10:50, 10:60] = (255, 0, 0)       # a new building
    colour[100:140, 200:260] = (0, 255, 0)   # a demolished one
    for folder, array in (("Image1", image[:300, :400]), ("Image2", image[:300, :400][::-1]), ("label", colour)):
        save_png(tmp_path / "s2" / "test" / folder / "9.png", array)
    s2 = open_builtin("s2looking", tmp_path / "s2")
    assert [s.id for s in s2] == ["9"] and s2.samples[0].box is None
    _, label = s2.load(s2.samples[0])
    want = np.zeros((300, 400), np.uint8)
    want[10:50, 10:60] = want[100:140, 200:260] = 1
    np.testing.assert_array_equal(label, want)
    settings = s2.info.change.settings(("background",))
    assert (settings.background_threshold, settings.coverage, settings.min_area) == (0.6, 0.1, 0)
