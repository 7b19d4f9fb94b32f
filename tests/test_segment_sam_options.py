"""`resegzoo segment --sam-checkpoint`: folded into the recipe's SAM settings, errors before any output."""
from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from PIL import Image

from resegzoo.api import load_recipe
from resegzoo.cli import build_cli
from resegzoo.cli.segment import _sam_options


def test_sam_checkpoint_implies_sam_and_keeps_recipe_settings(tmp_path):
    recipe_file = tmp_path / "r.yml"
    recipe_file.write_text("masks:\n  generator: sam\n  settings:\n    region_size: 512\n")
    recipe, masks = _sam_options(load_recipe(recipe_file), None, "my_sam.pth", "cuda:1")
    assert masks == "sam"
    assert recipe.masks.generator == "sam"
    assert recipe.masks.settings == {"region_size": 512, "checkpoint": "my_sam.pth", "device": "cuda:1"}


def test_sam_runs_on_the_segmenter_device_unless_the_recipe_says(tmp_path):
    recipe, _ = _sam_options(load_recipe(None), "sam", None, "cpu")
    assert recipe.masks.settings == {"device": "cpu"}  # the default recipe's slic settings are not carried over
    recipe_file = tmp_path / "r.yml"
    recipe_file.write_text("masks:\n  generator: sam\n  settings:\n    device: cuda:0\n")
    recipe, _ = _sam_options(load_recipe(recipe_file), None, None, "cpu")
    assert recipe.masks.settings["device"] == "cuda:0"


def test_other_generators_are_left_alone():
    recipe = load_recipe(None)
    same, masks = _sam_options(recipe, "felzenszwalb", None, "cpu")
    assert same is recipe and masks == "felzenszwalb"


def _image(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path)
    return path


def test_sam_checkpoint_with_another_generator_is_a_usage_error(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), ["segment", str(_image(tmp_path)), "--classes", "red; blue",
                                              "--model", "oracle", "--masks", "slic",
                                              "--sam-checkpoint", "x.pth", "--out", str(out)])
    assert result.exit_code == 2
    assert "--sam-checkpoint goes with --masks sam" in result.output
    assert not out.exists()


def test_missing_sam_checkpoint_is_a_clear_error_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    missing = tmp_path / "nowhere" / "sam_vit_b.pth"
    result = CliRunner().invoke(build_cli(), ["segment", str(_image(tmp_path)), "--classes", "red; blue",
                                              "--model", "oracle", "--sam-checkpoint", str(missing),
                                              "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "sam_vit_b.pth" in result.output and "Traceback" not in result.output
    assert not out.exists()
