"""`resegzoo eval` end to end with the oracle encoder on generated datasets of every layout."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from resegzoo.cli import build_cli
from resegzoo.eval.datasets import builtin_info
from resegzoo.eval.datasets.generic import load_classes_file
from resegzoo.eval.metrics import confusion_matrix, scores
from resegzoo.eval.synthetic import PATHS, write_dataset
from resegzoo_oracle import color_of

# The oracle needs no resizing and no 224 px windows; small windows keep the tests fast while
# still exercising sliding windows, strides and padding (48 x 64 images, 32 px windows).
RECIPE = "inference: {window: 32, stride: 16}\nmasks: {generator: none}\n"


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE)
    return path


def invoke(*args: str):
    return CliRunner().invoke(build_cli(), ["eval", *args, "--quiet"], catch_exceptions=False)


def run_json(out):
    return json.loads((out / "results.json").read_text())


def write_generic(root, images=2, height=48, width=64):
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.yaml").write_text("classes:\n  - [red, crimson]\n  - green\n  - blue\n")
    return write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of,
                         images=images, height=height, width=width)


@pytest.mark.parametrize("name,layout", list(PATHS))
def test_every_layout_evaluates_to_100_miou_with_the_oracle(tmp_path, recipe, name, layout):
    root, out = tmp_path / "data", tmp_path / "out"
    if name == "generic":
        root.mkdir()
        (root / "classes.yaml").write_text("classes:\n  - [road, street]\n  - building\n  - tree\n")
        info = load_classes_file(root / "classes.yaml")
    else:
        info = builtin_info(name)
    write_dataset(info, layout, root, color_of)
    result = invoke("--dataset", name, "--root", str(root), "--recipe", str(recipe), "--model", "oracle",
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    report = run_json(out)
    run = report["runs"][0]
    assert report["dataset"]["layout"] == layout and run["images"] == 2
    assert run["miou"] == 100.0 and run["overall_accuracy"] == 100.0 and run["mean_f1"] == 100.0
    assert all(c["iou"] == 100.0 for c in run["per_class"].values())  # every class occurs
    assert "| 100.00 | 100.00 | 100.00 | 100.00 |" in (out / "results.md").read_text()
    assert len(list(out.glob("runs/*/overlays/*.png"))) == 2
    rows = list(csv.DictReader((out / "per_class.csv").open()))
    assert [r["class"] for r in rows] == info.class_names


def test_a_corrupted_region_gives_the_hand_computed_iou(tmp_path, recipe):
    root, out = tmp_path / "data", tmp_path / "out"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.yaml").write_text("classes: [red, green, blue]\n")
    label = np.repeat(np.repeat(np.arange(3, dtype=np.uint8), 20)[None, :], 40, axis=0)  # 40 x 60, 3 stripes
    image = np.array([color_of(n) for n in ("red", "green", "blue")], dtype=np.uint8)[label]
    image[:10, :10] = color_of("green")  # 100 red pixels painted green
    Image.fromarray(image).save(root / "images" / "a.png")
    Image.fromarray(label).save(root / "labels" / "a.png")
    result = invoke("--dataset", "generic", "--root", str(root), "--recipe", str(recipe), "--model", "oracle",
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    run = run_json(out)["runs"][0]
    # red: 700 hits, 100 missed -> 700/800; green: 800 hits + 100 false -> 800/900; blue: perfect
    assert run["per_class"]["red"]["iou"] == pytest.approx(87.5)
    assert run["per_class"]["green"]["iou"] == pytest.approx(100 * 800 / 900)
    assert run["per_class"]["blue"]["iou"] == pytest.approx(100.0)
    assert run["miou"] == pytest.approx((87.5 + 100 * 800 / 900 + 100) / 3)
    assert run["overall_accuracy"] == pytest.approx(100 * 2300 / 2400)
    assert run["confusion"] == [[700, 100, 0], [0, 800, 0], [0, 0, 800]]


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(tmp_path, recipe, monkeypatch):
    from resegzoo.segmenter.core import Segmenter

    root = tmp_path / "data"
    write_generic(root, images=4)
    (root / "images" / "img_2.png").write_bytes((root / "images" / "img_1.png").read_bytes())  # make errors
    original = Segmenter.segment
    calls = []

    interrupt_at = [3]

    def flaky(self, image, vocab, progress=False):
        calls.append(1)
        if len(calls) == interrupt_at[0]:
            raise KeyboardInterrupt  # Ctrl-C while the third image is being segmented
        return original(self, image, vocab, progress)

    monkeypatch.setattr(Segmenter, "segment", flaky)
    args = ["--dataset", "generic", "--root", str(root), "--recipe", str(recipe), "--model", "oracle"]
    interrupted = invoke(*args, "--out", str(tmp_path / "a"))
    assert interrupted.exit_code == 130
    assert "2 finished image(s)" in interrupted.output and "run the same command again" in interrupted.output
    assert len(list((tmp_path / "a").glob("runs/*/confusion/*.npy"))) == 2
    assert not (tmp_path / "a" / "results.md").exists()

    calls.clear()
    interrupt_at[0] = -1  # no more interruptions
    resumed = invoke(*args, "--out", str(tmp_path / "a"))
    assert resumed.exit_code == 0 and len(calls) == 2  # only the two missing images are segmented
    calls.clear()
    fresh = invoke(*args, "--out", str(tmp_path / "b"))
    assert fresh.exit_code == 0 and len(calls) == 4
    assert (tmp_path / "a" / "results.md").read_text() == (tmp_path / "b" / "results.md").read_text()
    assert (tmp_path / "a" / "per_class.csv").read_text() == (tmp_path / "b" / "per_class.csv").read_text()
    assert run_json(tmp_path / "a")["runs"][0]["confusion"] == run_json(tmp_path / "b")["runs"][0]["confusion"]
    assert run_json(tmp_path / "a")["runs"][0]["miou"] < 100  # img_2 has img_1's colours, so errors count

    calls.clear()  # a finished run is re-reported without segmenting anything
    assert invoke(*args, "--out", str(tmp_path / "a")).exit_code == 0 and not calls


def test_other_settings_never_mix_with_stored_results(tmp_path, recipe):
    root, out = tmp_path / "data", tmp_path / "out"
    write_generic(root)
    base = ["--dataset", "generic", "--root", str(root), "--out", str(out)]
    assert invoke(*base, "--recipe", str(recipe), "--model", "oracle").exit_code == 0
    assert invoke(*base, "--recipe", str(recipe), "--model", "oracle-p4").exit_code == 0
    run_dirs = sorted(p.name for p in (out / "runs").iterdir())
    assert len(run_dirs) == 2 and run_dirs[0].startswith("oracle-") and run_dirs[1].startswith("oracle-p4-")
    assert run_json(out)["runs"][0]["model"] == "oracle-p4"  # the report shows this invocation's run only


def test_ablation_table_has_one_row_per_combination_with_independently_checked_scores(tmp_path, recipe):
    from resegzoo.api import Segmenter, Vocabulary, load_recipe

    root, out = tmp_path / "data", tmp_path / "out"
    truths = write_generic(root)
    stride8 = tmp_path / "stride8.yaml"
    stride8.write_text("inference: {window: 32, stride: 8}\nmasks: {generator: none}\n")
    result = invoke("--dataset", "generic", "--root", str(root), "--recipe", str(recipe), "--recipe", str(stride8),
                    "--model", "oracle", "--model", "oracle-p4", "--out", str(out))
    assert result.exit_code == 0, result.output
    runs = run_json(out)["runs"]
    assert [r["label"] for r in runs] == ["recipe / oracle", "recipe / oracle-p4", "stride8 / oracle",
                                          "stride8 / oracle-p4"]
    assert runs[0]["miou"] == 100.0 and runs[2]["miou"] == 100.0
    # the 4 px oracle blurs stripe edges: recompute its score straight through the Python API
    seg = Segmenter.from_recipe(load_recipe(recipe), model="oracle-p4", masks="none")
    vocab = Vocabulary(classes=[["red", "crimson"], ["green"], ["blue"]])
    images = [np.asarray(Image.open(root / "images" / f"img_{i}.png")) for i in range(2)]
    cm = sum(confusion_matrix(seg.segment(im, vocab).labels, t, 3) for im, t in zip(images, truths))
    assert runs[1]["miou"] == pytest.approx(100 * scores(cm).miou, abs=1e-3) and runs[1]["miou"] < 100
    table = (out / "results.md").read_text()
    assert "Δ mIoU" in table and f"| {runs[1]['miou'] - 100:+.2f} |" in table


def test_limit_evaluates_the_first_images_only(tmp_path, recipe):
    root, out = tmp_path / "data", tmp_path / "out"
    write_generic(root, images=3)
    result = invoke("--dataset", "generic", "--root", str(root), "--recipe", str(recipe), "--model", "oracle",
                    "--out", str(out), "--limit", "1", "--overlays", "0")
    assert result.exit_code == 0
    assert run_json(out)["runs"][0]["images"] == 1 and run_json(out)["dataset"]["images_in_split"] == 3
    assert not list(out.glob("runs/*/overlays/*.png"))


def test_user_errors_are_messages_not_tracebacks(tmp_path, recipe):
    root = tmp_path / "data"
    write_dataset(builtin_info("openearthmap"), "mmseg", root, color_of)
    cases = [
        (["--dataset", "vaihinge", "--root", str(root)], "did you mean 'vaihingen'"),
        (["--dataset", "loveda", "--root", str(tmp_path / "missing")], "does not exist"),
        (["--dataset", "vdd", "--root", str(tmp_path), "--model", "oracle"], "does not look like VDD"),
        # OpenEarthMap's .tif files are not LoveDA's .png files
        (["--dataset", "loveda", "--root", str(root), "--model", "oracle"], "no images for split 'val'; expected"),
        (["--dataset", "openearthmap", "--root", str(root), "--recipe", "nope.yaml", "--model", "oracle"],
         "no shipped recipe of that name"),
        (["--dataset", "openearthmap", "--root", str(root), "--classes", str(recipe)], "--dataset generic and change-generic only"),
        (["--dataset", "openearthmap", "--root", str(root), "--recipe", str(recipe)], "no model given"),
        (["--dataset", "openearthmap", "--root", str(root), "--recipe", str(recipe), "--model", "no-such-model"],
         "no-such-model"),
    ]
    for i, (args, message) in enumerate(cases):
        out = tmp_path / f"out{i}"
        result = CliRunner().invoke(build_cli(), ["eval", *args, "--quiet", "--out", str(out)])
        assert result.exit_code in (1, 2), (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output and not isinstance(result.exception, (TypeError, AttributeError))
        assert not out.exists()  # nothing written for a failed start

    threshold = tmp_path / "bg.yaml"  # OpenEarthMap scores no background class
    threshold.write_text("inference: {window: 32, stride: 16, background_threshold: 0.5}\nmasks: {generator: none}\n")
    result = CliRunner().invoke(build_cli(), ["eval", "--dataset", "openearthmap", "--root", str(root), "--recipe",
                                              str(threshold), "--model", "oracle", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "has no background class" in result.output  # a usage error (docs: Exit status)


def test_dataset_background_threshold_maps_the_extra_class_to_the_dataset_background(tmp_path):
    # LoveDA's record sets background_threshold 0.3. With logit_scale 1 the softmax over 7 classes
    # is nearly flat (top probability ~0.15), so every pixel falls below the threshold and must
    # land in LoveDA's own background class (index 0), not be dropped or mis-indexed.
    root, out = tmp_path / "data", tmp_path / "out"
    truths = write_dataset(builtin_info("loveda"), "mmseg", root, color_of, images=1)
    flat = tmp_path / "flat.yaml"
    flat.write_text("inference: {window: 32, stride: 16, logit_scale: 1.0}\nmasks: {generator: none}\n")
    args = ["--dataset", "loveda", "--root", str(root), "--recipe", str(flat), "--model", "oracle"]
    result = invoke(*args, "--out", str(out))
    assert result.exit_code == 0, result.output
    run = run_json(out)["runs"][0]
    assert run["recipe"]["inference"]["background_threshold"] == 0.3
    confusion = np.array(run["confusion"])
    valid = truths[0] != 255
    assert confusion[:, 0].sum() == valid.sum() == confusion.sum()  # all predicted background
    assert confusion[0, 0] == (truths[0] == 0).sum()

    assert invoke(*args, "--out", str(tmp_path / "out2"), "--no-dataset-settings").exit_code == 0
    run = run_json(tmp_path / "out2")["runs"][0]
    assert run["recipe"]["inference"]["background_threshold"] is None and run["miou"] == 100.0


def test_a_setting_the_recipe_states_wins_over_the_dataset_setting(tmp_path):
    from resegzoo.eval.ablation import plan_runs
    from resegzoo.schema import SchemaError

    info = builtin_info("loveda")  # its record: background_threshold 0.3
    stated = tmp_path / "stated.yaml"
    stated.write_text("inference: {window: 32, background_threshold: 0.5}\n")
    off = tmp_path / "off.yaml"
    off.write_text("inference: {background_threshold: null}\n")
    silent = tmp_path / "silent.yaml"
    silent.write_text("inference: {window: 32}\n")
    runs = plan_runs(info, [str(stated), str(off), str(silent)], ["oracle"], [])
    assert [r.recipe.inference.background_threshold for r in runs] == [0.5, None, 0.3]
    assert [r.recipe.inference.window for r in runs] == [32, None, 32]  # the files' own settings stay
    typo = tmp_path / "typo.yaml"
    typo.write_text("inference: {windw: 32}\n")
    with pytest.raises(SchemaError, match=r"typo.yaml.*unknown key 'windw'"):
        plan_runs(info, [str(typo)], ["oracle"], [])


def test_a_real_clip_model_with_slic_segments_gives_the_api_s_own_confusion(tmp_path):
    # Not the oracle: a tiny random open_clip model (the example plugin's) behind the masked
    # encoder, with SLIC segments and Vaihingen's background threshold. The numbers are
    # meaningless, but the CLI must count exactly what the public API predicts.
    from resegzoo.api import Segmenter, Vocabulary, load_recipe
    from resegzoo.eval.datasets import open_builtin

    root, out = tmp_path / "data", tmp_path / "out"
    write_dataset(builtin_info("vaihingen"), "release", root, color_of, images=1)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("inference: {window: 64, stride: 32}\nmasks: {generator: slic}\n")
    result = invoke("--dataset", "vaihingen", "--root", str(root), "--recipe", str(recipe), "--model", "example-tiny",
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    run = run_json(out)["runs"][0]
    dataset = open_builtin("vaihingen", root)
    image, label = dataset.load(dataset.samples[0])
    seg = Segmenter.from_recipe(load_recipe(recipe, inference={"background_threshold": 0.1}), model="example-tiny")
    res = seg.segment(image, Vocabulary(classes=builtin_info("vaihingen").classes))
    pred = np.where(res.labels == res.background_index, 5, res.labels)  # clutter is Vaihingen's background
    assert run["confusion"] == confusion_matrix(pred, label, 6).tolist()
    assert sum(map(sum, run["confusion"])) == int((label != 255).sum())


@pytest.fixture
def segment_calls(monkeypatch):
    from resegzoo.segmenter.core import Segmenter

    calls, original = [], Segmenter.segment

    def counting(self, image, vocab, progress=False):
        calls.append(1)
        return original(self, image, vocab, progress)

    monkeypatch.setattr(Segmenter, "segment", counting)
    return calls


def test_the_same_settings_under_another_label_reuse_their_results(tmp_path, recipe, segment_calls):
    root, out = tmp_path / "data", tmp_path / "out"
    write_generic(root)
    stride8 = tmp_path / "stride8.yaml"
    stride8.write_text("inference: {window: 32, stride: 8}\nmasks: {generator: none}\n")
    base = ["--dataset", "generic", "--root", str(root), "--model", "oracle", "--out", str(out)]
    assert invoke(*base, "--recipe", str(recipe)).exit_code == 0  # one recipe: the row is labelled "oracle"
    first = run_json(out)["runs"][0]
    assert first["label"] == "oracle" and len(segment_calls) == 2
    segment_calls.clear()
    assert invoke(*base, "--recipe", str(recipe), "--recipe", str(stride8)).exit_code == 0  # labels: recipe names
    runs = run_json(out)["runs"]
    assert [r["label"] for r in runs] == ["recipe", "stride8"]
    assert len(segment_calls) == 2  # stride8's two images only: recipe.yaml's came from the first command
    assert runs[0]["run_dir"] == first["run_dir"] and runs[0]["confusion"] == first["confusion"]
    assert len(list((out / "runs").iterdir())) == 2


def test_a_folder_named_by_an_earlier_label_is_adopted(tmp_path, recipe, segment_calls):
    root, out = tmp_path / "data", tmp_path / "out"
    write_generic(root)
    args = ["--dataset", "generic", "--root", str(root), "--model", "oracle", "--recipe", str(recipe), "--out", str(out)]
    assert invoke(*args).exit_code == 0
    run_dir = out / "runs" / run_json(out)["runs"][0]["run_dir"].rsplit("/", 1)[-1]
    legacy = run_dir.with_name("my-old-label-" + run_json(out)["runs"][0]["key"][:12])  # how resegzoo named it before
    run_dir.rename(legacy)
    segment_calls.clear()
    assert invoke(*args).exit_code == 0 and segment_calls == []
    assert run_dir.is_dir() and not legacy.exists()


def test_every_row_names_its_recipe_and_random_weights_are_marked(tmp_path, recipe):
    root, out = tmp_path / "data", tmp_path / "out"
    write_generic(root, images=1)
    result = invoke("--dataset", "generic", "--root", str(root), "--recipe", str(recipe), "--model", "oracle",
                    "--model", "example-tiny", "--out", str(out), "--overlays", "0")
    assert result.exit_code == 0, result.output
    table = (out / "results.md").read_text()
    assert "| oracle | recipe.yaml | oracle | none |" in table
    assert "| example-tiny (random weights) | recipe.yaml | example-tiny | none |" in table
    assert "| oracle | recipe.yaml | 100.00 |" in table  # the per-class table too
    assert "| example-tiny (random weights) | recipe.yaml |" in table.split("Per-class IoU")[1]
    assert "random by design" in table
    rows = list(csv.DictReader((out / "per_class.csv").open()))
    assert {(r["run"], r["recipe"], r["random_weights"]) for r in rows} == {
        ("oracle", "recipe.yaml", "false"), ("example-tiny", "recipe.yaml", "true")}
    assert [r["random_weights"] for r in run_json(out)["runs"]] == [False, True]
