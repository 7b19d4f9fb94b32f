"""segearth-ov3 through the shared pipeline: segment (GeoTIFF with nodata, --cog --vector), names
to classes and the background threshold, eval with the ablation recipes, --engine ray, bf16, and
wrong combinations refused before any work. The tiny random SAM 3 of resegzoo.testing serves all."""
from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from click.testing import CliRunner

from resegzoo.cli import build_cli

CLASSES = "building; road, street; tree"
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0)


def cli(*args: str):
    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


@pytest.fixture
def whole_image(tmp_path):
    """The shipped recipe with SegEarth-OV3's whole-image protocol (one window per image or block)."""
    from resegzoo.weights.zoo import registry_dir

    path = tmp_path / "whole.yaml"
    path.write_text(f"base: {registry_dir() / 'recipes' / 'method-segearth-ov3.yaml'}\n"
                    "inference: {window_placement: image}\n")
    return path


def _image(h=40, w=52, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    img = np.kron(base, np.ones((10, 11, 1), dtype=np.uint8))[:h, :w]  # blocks: structure for the model
    return np.ascontiguousarray(img)


def _direct_labels(folder, image, threshold=None):
    """What the pipeline must give for a one-window image: the scorer on the image, each class's
    best name, argmax, the background class where the best class scores below ``threshold``."""
    from resegzoo.methods.segearth_ov3.fusion import FusionSwitches
    from resegzoo.methods.segearth_ov3.model import load_scorer

    names = ["building", "road", "street", "tree"]
    scores = load_scorer(folder).score_window(torch.from_numpy(image).permute(2, 0, 1), names, FusionSwitches())
    classes = torch.stack([scores[0], scores[1:3].amax(0), scores[3]])
    top, labels = classes.max(0)
    labels = labels.numpy().astype(np.int32)
    if threshold is not None:
        labels[top.numpy() < threshold] = 3
    return labels, classes


def test_geotiff_with_nodata_to_cog_and_vectors(tmp_path, tiny_sam3_dir, whole_image):
    from rio_cogeo.cogeo import cog_validate

    from resegzoo.raster.reader import NODATA_LABEL, fill_invalid

    image = _image()
    valid = np.ones(image.shape[:2], bool)
    valid[:, :9] = False  # a nodata strip
    src_pixels = image.copy()
    src_pixels[~valid] = 0
    src = tmp_path / "scene.tif"
    with rasterio.open(src, "w", driver="GTiff", height=40, width=52, count=3, dtype="uint8", crs="EPSG:32632",
                       transform=TRANSFORM, nodata=0) as dst:
        dst.write(np.moveaxis(src_pixels, -1, 0))
    out = tmp_path / "out"
    result = cli("segment", str(src), "--recipe", str(whole_image), "--model", f"local-dir:{tiny_sam3_dir}",
                 "--classes", CLASSES, "--out", str(out), "--cog", "--vector")
    assert result.exit_code == 0, result.output
    cog = out / "scene.labels.tif"
    assert cog_validate(str(cog))[0]
    with rasterio.open(cog) as dst:
        labels = dst.read(1).astype(np.int32)
        assert dst.transform == TRANSFORM
    assert (labels[~valid] == NODATA_LABEL).all()
    expected, _ = _direct_labels(tiny_sam3_dir, fill_invalid(src_pixels, valid))
    np.testing.assert_array_equal(labels[valid], expected[valid])
    assert len(np.unique(labels[valid])) > 1
    side = json.loads((out / "scene.json").read_text())
    assert side["recipe"]["method"]["name"] == "segearth-ov3"
    assert (out / "scene.regions.gpkg").stat().st_size > 0


def test_names_to_classes_and_the_background_threshold(tiny_sam3_dir, whole_image):
    from resegzoo.api import Segmenter, load_recipe
    from resegzoo.vocabulary import Vocabulary

    image = _image(seed=1)
    _, classes = _direct_labels(tiny_sam3_dir, image)
    threshold = float(classes.max(0).values.median())  # half the pixels go to the background
    recipe = load_recipe(whole_image, inference={"background_threshold": threshold})
    seg = Segmenter.from_recipe(recipe, model=f"local-dir:{tiny_sam3_dir}")
    result = seg.segment(image, Vocabulary(classes=[["building"], ["road", "street"], ["tree"]]))
    expected, _ = _direct_labels(tiny_sam3_dir, image, threshold)
    np.testing.assert_array_equal(result.labels, expected)
    assert result.class_names == ["building", "road", "tree", "background"]
    assert 0 < (result.labels == 3).mean() < 1
    np.testing.assert_allclose(result.probs, classes.numpy(), atol=1e-5)  # probabilities, no softmax


def test_eval_generic_with_the_ablation_recipes(tmp_path, tiny_sam3_dir):
    from resegzoo.eval.datasets.generic import load_classes_file
    from resegzoo.eval.synthetic import write_dataset
    from resegzoo_oracle import color_of

    root, out = tmp_path / "ds", tmp_path / "out"
    root.mkdir()
    (root / "classes.yaml").write_text("classes:\n  - [red, crimson]\n  - green\n  - blue\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=2, height=40, width=52)
    recipes = ["method-segearth-ov3", "method-segearth-ov3-instances-only", "method-segearth-ov3-semantic-only",
               "method-segearth-ov3-no-presence"]
    args = ["eval", "--dataset", "generic", "--root", str(root), "--model", f"local-dir:{tiny_sam3_dir}",
            "--out", str(out), "--quiet"]
    for r in recipes:
        args += ["--recipe", r]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "results.json").read_text())
    runs = report["runs"]
    assert len(runs) == 4
    settings = [run["recipe"]["method"]["settings"] for run in runs]
    assert settings[1]["semantic"] is False and settings[2]["instances"] is False and settings[3]["presence"] is False
    # the switches change what is predicted (each row its own confusion matrix)
    confusions = {json.dumps(run["confusion"]) for run in runs}
    assert len(confusions) > 1


def test_bf16_on_the_cpu(tmp_path, tiny_sam3_dir, whole_image):
    from PIL import Image

    Image.fromarray(_image(seed=2)).save(tmp_path / "a.png")
    result = cli("segment", str(tmp_path / "a.png"), "--recipe", str(whole_image), "--model",
                 f"local-dir:{tiny_sam3_dir}", "--classes", CLASSES, "--precision", "bf16", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    side = json.loads((tmp_path / "o" / "a.json").read_text())
    assert side["recipe"]["inference"]["precision"] == "bf16"


@pytest.mark.parametrize("extra,message", [
    (["--masks", "sam"], "reads no segments"),
    (["--model", "remoteclip-vit-b-32"], "SAM 3"),
    (["--model", "local-dir:/nonexistent/sam3"], "cannot load model 'local-dir:/nonexistent/sam3': no such folder"),
])
def test_wrong_combinations_are_one_line_before_any_work(tmp_path, tiny_sam3_dir, extra, message):
    from PIL import Image

    Image.fromarray(_image()).save(tmp_path / "a.png")
    model = [] if "--model" in extra else ["--model", f"local-dir:{tiny_sam3_dir}"]
    result = cli("segment", str(tmp_path / "a.png"), "--recipe", "method-segearth-ov3", *model, *extra,
                 "--classes", CLASSES, "--out", str(tmp_path / "o"))
    assert result.exit_code in (1, 2)  # an error of the setup, or of the command line
    lines = [ln for ln in result.output.splitlines() if ln.strip() and not ln.startswith(("Usage:", "Try "))]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "o" / "a.labels.png").exists()


def test_list_methods_names_segearth_ov3():
    result = cli("list", "methods", "--json")
    assert result.exit_code == 0, result.output
    names = [m["name"] for m in json.loads(result.output)]
    assert "segearth-ov3" in names and "clip" in names


def test_segment_on_ray_equals_local(tmp_path, tiny_sam3_dir, whole_image):
    import ray

    from PIL import Image

    for i in range(2):
        Image.fromarray(_image(seed=10 + i)).save(tmp_path / f"im{i}.png")
    common = ["--recipe", str(whole_image), "--model", f"local-dir:{tiny_sam3_dir}", "--classes", CLASSES]
    # The actor computes on one thread (its one reserved CPU); the local run does the same, so both
    # sum in the same order: with more threads a near-tie of the tiny random model (classes equal
    # to 1e-7) can flip one pixel, which says nothing about the engine.
    threads = torch.get_num_threads()
    try:
        local = cli("segment", str(tmp_path / "im0.png"), str(tmp_path / "im1.png"), *common, "--threads", "1",
                    "--out", str(tmp_path / "l"))
    finally:
        torch.set_num_threads(threads)
    assert local.exit_code == 0, local.output
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = cli("segment", str(tmp_path / "im0.png"), str(tmp_path / "im1.png"), *common,
                     "--out", str(tmp_path / "r"), "--engine", "ray", "--actors", "1")
    finally:
        ray.shutdown()
    assert on_ray.exit_code == 0, on_ray.output
    for i in range(2):
        a = np.asarray(Image.open(tmp_path / "l" / f"im{i}.labels.png"))
        b = np.asarray(Image.open(tmp_path / "r" / f"im{i}.labels.png"))
        np.testing.assert_array_equal(a, b)
        assert json.loads((tmp_path / "r" / f"im{i}.json").read_text())["recipe"]["method"]["name"] == "segearth-ov3"


def test_each_dataset_gives_segearth_ov3_its_own_protocol(tiny_sam3_dir):
    from resegzoo.eval.ablation import plan_runs
    from resegzoo.eval.datasets import builtin_info

    model = [f"local-dir:{tiny_sam3_dir}"]
    ov3, = plan_runs(builtin_info("potsdam"), ["method-segearth-ov3-no-presence"], model, [])
    assert ov3.classes == [["road"], ["building"], ["grass"], ["tree"], ["car"], ["clutter"]]
    inf, settings = ov3.recipe.inference, ov3.recipe.method.settings
    assert (inf.window_placement, inf.background_threshold) == ("image", 0.1)
    assert settings["confidence_threshold"] == 0.2 and settings["presence"] is False  # the recipe's switch stays
    clip, = plan_runs(builtin_info("potsdam"), ["method-segearth-ov"], ["example-tiny"], [])
    assert clip.classes is None and clip.recipe.inference.background_threshold == 0.1
    oem, = plan_runs(builtin_info("openearthmap"), ["method-segearth-ov3"], model, [])
    inf = oem.recipe.inference
    assert (inf.window, inf.stride, inf.window_placement, inf.background_threshold) == (512, 512, "shift", None)
    assert oem.recipe.method.settings["confidence_threshold"] == 0.1 and oem.classes is None
    loveda, = plan_runs(builtin_info("loveda"), ["method-segearth-ov3"], model, [], dataset_settings=False)
    assert loveda.recipe.inference.background_threshold is None
    assert "confidence_threshold" not in loveda.recipe.method.settings  # SegEarthOV3Settings' default
    assert loveda.classes[1] == ["building", "house"]  # the method's prompt names even without its settings
