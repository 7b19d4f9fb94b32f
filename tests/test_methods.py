"""The method seam (issue 16): a method plugin written here (tests/method_plugin, never shipped) runs
through `resegzoo segment`, `resegzoo eval` and `--engine ray` like the built-in CLIP method; wrong
combinations are one-line errors before any model loads; probability methods get no softmax."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from resegzoo.cli import build_cli

PLUGIN_DIR = Path(__file__).parent / "method_plugin"
sys.path.insert(0, str(PLUGIN_DIR))  # the plugin module's colours, for painting the inputs
from resegzoo_colour_method import COLOURS, colour_of  # noqa: E402

sys.path.remove(str(PLUGIN_DIR))  # installed only by conftest.py's fixtures (colour_plugin), as a real plugin

CLASSES = "red; green; blue; yellow"


def cli(*args: str):
    return CliRunner().invoke(build_cli(), [str(a) for a in args], catch_exceptions=False)


def _labels_and_image(h: int = 40, w: int = 56) -> tuple[np.ndarray, np.ndarray]:
    names = list(COLOURS)[:4]
    labels = ((np.arange(w)[None, :] * 4 // w) + (np.arange(h)[:, None] // 20)) % 4
    image = np.array([colour_of(n) for n in names], np.uint8)[labels]
    return labels.astype(np.int32), image


def _geotiff(path: Path, image: np.ndarray, nodata_box: tuple[slice, slice]) -> Path:
    import rasterio
    from affine import Affine

    data = image.transpose(2, 0, 1).copy()
    data[:, nodata_box[0], nodata_box[1]] = 0
    with rasterio.open(path, "w", driver="GTiff", height=image.shape[0], width=image.shape[1], count=3,
                       dtype="uint8", nodata=0, crs="EPSG:32632",
                       transform=Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0)) as dst:
        dst.write(data)
    return path


def _read(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1)


# -- the seam, in Python ---------------------------------------------------------------------------
def test_probability_methods_get_no_softmax_and_the_background_threshold_applies_to_them(colour_plugin):
    from resegzoo.api import Segmenter, Vocabulary, load_recipe

    labels, image = _labels_and_image()
    image[:8, :8] = (128, 128, 128)  # a colour no name has: every probability low
    vocab = Vocabulary.parse("red; green, blue; yellow")  # a class with two names: the best one counts
    recipe = load_recipe(None, method={"name": "colour", "settings": {"width": 0.2}}, window=16, stride=8,
                         background_threshold=0.5)
    seg = Segmenter.from_recipe(recipe)
    assert seg.method_name == "colour" and seg.mask_generator is None and seg.masks_name == "none"
    res = seg.segment(image, vocab)
    # the plugin's probabilities as they are (a softmax would make each pixel's classes sum to 1)
    grey = np.linalg.norm(np.array([128, 128, 128.0]) - np.array(COLOURS["red"])) / (255 * 3 ** 0.5)
    np.testing.assert_allclose(res.probs[0, 0, 0], np.exp(-(grey / 0.2) ** 2), rtol=1e-5)
    assert res.probs[:, 20:, :].max() == pytest.approx(1.0) and res.probs.sum(axis=0).min() < 0.5
    # grey is below the threshold: background; the rest is exact (green and blue are one class)
    assert res.class_names == ["red", "green", "yellow", "background"]
    assert (res.labels[:8, :8] == 3).all()
    want = np.array([0, 1, 1, 2])[labels]
    np.testing.assert_array_equal(res.labels[8:, :], want[8:, :])
    # per-name rows, reduced after stitching, give the same labels
    named = Segmenter.from_recipe(load_recipe(None, method="colour", window=16, stride=8, probabilities="name"))
    np.testing.assert_array_equal(named.segment(image, vocab).labels[8:], want[8:])
    assert seg.describe()["method"] == "colour" and seg.describe()["colour_width"] == 0.2
    assert seg.notes == ["colour: a test method, not a segmentation model"]


def test_a_method_that_scores_names_only_is_asked_for_names(colour_plugin):
    from resegzoo.api import Segmenter, Vocabulary, load_recipe

    image = _labels_and_image()[1]
    vocab = Vocabulary.parse("red, white; green; blue; yellow")
    seg = Segmenter.from_recipe(load_recipe(None, method="colour", window=16, stride=8))
    seen = []
    plain = seg.method.window_scores
    seg.method.window_scores = lambda w, v, per_name, maps=None: seen.append(per_name) or plain(w, v, per_name, maps)
    seg.method.names_only = True
    rows, _ = seg.scores(image, vocab)
    assert set(seen) == {True} and rows.shape[0] == 5  # every name, reduced to classes after stitching
    assert seg.segment(image, vocab).probs.shape[0] == 4


def test_a_method_that_breaks_the_contract_is_named():
    from resegzoo.api import Segmenter, Vocabulary, load_recipe
    from resegzoo.methods.base import MethodError

    class Wrong:
        window, window_multiple, device = 16, 1, "cpu"

        def window_scores(self, windows, vocab, per_name, maps=None):
            import torch

            return torch.zeros(len(windows), len(vocab) + 1, 16, 16)

    seg = Segmenter(None, None, load_recipe(None, method="wrong"), method=Wrong(), scores="probabilities")
    with pytest.raises(MethodError, match=r"method 'wrong' returned window scores of shape \(1, 3, 16, 16\), "
                                          r"expected \(1, 2, 16, 16\)"):
        seg.segment(np.zeros((16, 16, 3), np.uint8), Vocabulary.parse("a; b"))


def test_recipe_key_method_short_form_and_merging(tmp_path):
    from resegzoo.api import load_recipe

    assert load_recipe().method.name == "clip"  # the default: today's CLIP pipeline
    base = tmp_path / "base.yaml"
    base.write_text("method: {name: colour, settings: {width: 0.3}}\n")
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\nmethod: {settings: {width: 0.5}}\n")  # same method: merged key by key
    assert load_recipe(child).method.name == "colour" and load_recipe(child).method.settings == {"width": 0.5}
    other = tmp_path / "other.yaml"
    other.write_text("base: base.yaml\nmethod: clip\n")  # another method: the base's settings are not its own
    # (the clip method's settings are written out whole: its defaults, nothing of the base's)
    assert load_recipe(other).method.name == "clip" and load_recipe(other).method.settings == load_recipe(
        None).method.settings


# -- listing ---------------------------------------------------------------------------------------
def test_list_methods_shows_what_each_needs(colour_plugin):
    rows = {r["name"]: r for r in json.loads(cli("list", "methods", "--json").output)}
    assert rows["clip"]["needs"] == {"model": "clip", "masks": True} and rows["clip"]["scores"] == "cosine"
    assert rows["clip"]["plugin"] == "resegzoo.builtin.methods"
    assert rows["colour"]["needs"] == {"model": None, "masks": False} and rows["colour"]["plugin"] == "colour"
    assert rows["colour"]["settings"] == {"width": 0.1, "colours": {}, "feature_offset": 0.0, "feature_bias": 1.0}
    table = cli("list", "methods").output
    assert "clip" in table and "colour" in table


# -- wrong combinations: one line, before any work -------------------------------------------------
@pytest.mark.parametrize("args,message", [
    (["--method", "colour", "--masks", "sam"], "method 'colour' reads no segments, so mask generator 'sam' cannot "
                                               "be used with it; remove --masks"),
    (["--method", "colour", "--sam-checkpoint", "sam-vit-b"], "method 'colour' reads no segments"),
    (["--method", "colour", "--model", "oracle"], "method 'colour' takes no model, but 'oracle' was given"),
    (["--method", "colr"], "unknown method 'colr'; did you mean 'colour'"),
    (["--masks", "slic"], "no model given: method 'clip' needs a clip model"),
])
def test_wrong_combinations_are_one_line_errors_before_any_model_loads(colour_plugin, tmp_path, monkeypatch, args,
                                                                        message):
    from resegzoo.methods.clip import build
    from resegzoo.segmenter import models

    def no_loading(*a, **k):
        raise AssertionError("a model or a mask generator was built before the combination was checked")

    monkeypatch.setattr(models, "build_mask_generator", no_loading)
    monkeypatch.setattr(build, "build_encoder", no_loading)
    image = tmp_path / "in.tif"
    _geotiff(image, _labels_and_image()[1], (slice(0, 1), slice(0, 1)))
    result = cli("segment", image, "--classes", CLASSES, "--out", tmp_path / "out", *args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output  # one line says what to change
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_a_method_with_its_own_model_kind_checks_the_model_before_building(colour_plugin, tmp_path):
    table = tmp_path / "colours.yaml"
    colours = {"red": [90, 0, 0], "green": [0, 90, 0], "blue": [0, 0, 90], "yellow": [90, 90, 0]}  # not the plain ones
    table.write_text(json.dumps(colours))
    root = _dataset(tmp_path / "data", paint=lambda name: tuple(colours[name]))  # right only if the table is read
    base = ["eval", "--dataset", "generic", "--root", root, "--method", "colour-table", "--quiet"]
    result = cli(*base, "--out", tmp_path / "none")
    assert result.exit_code == 2 and "no model given: method 'colour-table' needs a colour-table model" in result.output
    result = cli(*base, "--model", "oracle", "--out", tmp_path / "wrong")  # a record's name: the model route says
    assert result.exit_code == 2 and "'oracle' is a CLIP model, not a colour-table model" in result.output
    result = cli(*base, "--model", "table:/no/such.yaml", "--out", tmp_path / "wrong")  # the plugin's own check
    assert result.exit_code == 2 and ("method 'colour-table' needs a colour-table model: 'table:/no/such.yaml' is "
                                      "no colour table" in result.output)
    result = cli(*base, "--model", f"table:{table}", "--out", tmp_path / "e")
    assert result.exit_code == 0, result.output
    settings = json.loads(next((tmp_path / "e").glob("runs/*/settings.json")).read_text())
    assert settings["fingerprints"]["model"] == {"sha256": hashlib.sha256(table.read_bytes()).hexdigest()}
    assert json.loads((tmp_path / "e" / "results.json").read_text())["runs"][0]["miou"] == 100.0


def test_eval_refuses_wrong_combinations_and_unknown_settings(colour_plugin, tmp_path):
    root = _dataset(tmp_path / "data")
    base = ["eval", "--dataset", "generic", "--root", root, "--quiet", "--out", tmp_path / "out"]
    result = cli(*base, "--method", "colour", "--masks", "slic")
    assert result.exit_code == 2 and "method 'colour' reads no segments" in result.output
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: {name: colour, settings: {widht: 0.1}}\n")
    result = cli(*base, "--recipe", recipe)
    assert result.exit_code == 2 and "method.settings: unknown key 'widht' (did you mean 'width'?)" in result.output
    assert not (tmp_path / "out" / "runs").exists()


# -- segment, eval, ray ---------------------------------------------------------------------------
def _dataset(root: Path, paint=colour_of) -> Path:
    from resegzoo.eval.datasets.generic import load_classes_file
    from resegzoo.eval.synthetic import write_dataset

    root.mkdir(parents=True)
    (root / "classes.yaml").write_text("classes: [red, green, blue, yellow]\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, paint, images=3, height=40, width=56)
    return root


def test_a_plugin_method_segments_a_geotiff_with_nodata(colour_plugin, tmp_path):
    labels, image = _labels_and_image(70, 90)
    tif = _geotiff(tmp_path / "scene.tif", image, (slice(10, 30), slice(40, 60)))
    result = cli("segment", tif, "--classes", CLASSES, "--method", "colour", "--tile-size", "64", "--cog", "--vector",
                 "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    got = _read(tmp_path / "out" / "scene.labels.tif")
    want = labels.astype(np.uint8)
    want[10:30, 40:60] = 255  # nodata stays nodata
    np.testing.assert_array_equal(got, want)
    side = json.loads((tmp_path / "out" / "scene.json").read_text())
    assert side["method"] == "colour" and side["recipe"]["method"] == {"name": "colour", "settings": {}}
    assert side["masks"] == "none" and side["blocks"] > 1 and side["nodata"]["pixels"] == 400
    assert side["gis"]["cog"] and (tmp_path / "out" / "scene.regions.gpkg").stat().st_size > 0


def test_a_plugin_method_is_evaluated_and_its_plugin_is_in_the_run_key(colour_plugin, tmp_path):
    root = _dataset(tmp_path / "data")
    result = cli("eval", "--dataset", "generic", "--root", root, "--method", "colour", "--quiet", "--out", tmp_path / "e")
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "e" / "results.json").read_text())["runs"][0]
    assert run["method"] == "colour" and run["model"] == "" and run["masks"] == "none"
    assert run["miou"] == 100.0
    settings = json.loads(next((tmp_path / "e").glob("runs/*/settings.json")).read_text())
    assert settings["fingerprints"]["method"] == {"name": "colour", "plugin": "colour", "plugin_version": "0.1"}
    assert settings["fingerprints"]["model"] is None
    assert "| - | none | colour |" in (tmp_path / "e" / "results.md").read_text()


def test_a_plugin_method_runs_on_ray_actors_like_here(plugin_paths, tmp_path):
    """Ray actors are other processes: they find the method through its installed entry point
    (the driver's PYTHONPATH), build it from the recipe, and give what the local engine gives."""
    labels, image = _labels_and_image(70, 90)
    folder = tmp_path / "in"
    folder.mkdir()
    _geotiff(folder / "scene.tif", image, (slice(10, 30), slice(40, 60)))
    root = _dataset(tmp_path / "data")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*plugin_paths, os.environ.get("PYTHONPATH", "")]),
           "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    script = (
        "import sys\n"
        "import ray\n"
        "from resegzoo.cli import build_cli\n"
        "ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # one Ray for both commands\n"
        "cli = build_cli()\n"
        "for engine in ('local', 'ray'):\n"
        f"    seg = ['segment', '{folder}', '--classes', '{CLASSES}', '--method', 'colour', '--tile-size', '64',\n"
        f"           '--out', '{tmp_path}/seg-' + engine, '--engine', engine]\n"
        f"    ev = ['eval', '--dataset', 'generic', '--root', '{root}', '--method', 'colour', '--quiet',\n"
        f"          '--out', '{tmp_path}/eval-' + engine, '--engine', engine]\n"
        "    for args in (seg, ev):\n"
        "        if engine == 'ray':\n"
        "            args += ['--actors', '2']\n"
        "        try:\n"
        "            cli(args, standalone_mode=False)\n"
        "        except SystemExit as exc:\n"
        "            sys.exit(f'{args[0]} {engine}: exit {exc.code}')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    np.testing.assert_array_equal(_read(tmp_path / "seg-ray" / "scene.labels.tif"),
                                  _read(tmp_path / "seg-local" / "scene.labels.tif"))
    assert json.loads((tmp_path / "seg-ray" / "scene.json").read_text())["method"] == "colour"
    runs = [json.loads((tmp_path / f"eval-{e}" / "results.json").read_text())["runs"][0] for e in ("local", "ray")]
    assert runs[0]["key"] == runs[1]["key"] and runs[0]["confusion"] == runs[1]["confusion"]
    assert runs[1]["miou"] == 100.0
