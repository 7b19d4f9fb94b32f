"""Mask generators and the attention schedule are matched at setup, before any image is read
(issue 8, item 5): `none` with the default schedule falls back to all-global and says so; a
generator with fewer levels than the schedule reads is a one-line error with the fix."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from resegzoo.plugins import registry as registry_module
from resegzoo.cli import build_cli
from resegzoo.plugins.interfaces import MaskGeneratorSpec
from resegzoo.plugins.registry import build_registry


class TwoLevels:
    """A third-party generator with 2 levels that does not declare level_count."""

    def __call__(self, image):
        h, w = image.shape[:2]
        left = np.where(np.arange(w)[None, :] < w // 2, 1, 2).repeat(h, 0)
        return np.stack([left, np.ones((h, w))]).astype(np.int32)


@pytest.fixture
def two_levels_registered(monkeypatch):
    registry = build_registry()
    registry.mask_generators.add("two-levels", MaskGeneratorSpec("two-levels", TwoLevels, "test"), "test-plugin")
    monkeypatch.setattr(registry_module, "_default", registry)


@pytest.fixture
def no_image_read(monkeypatch):
    from resegzoo.raster.reader import Raster

    def must_not_read(*args, **kwargs):
        raise AssertionError("an image was read before the setup check")

    monkeypatch.setattr(Raster, "read_raw", must_not_read)  # every pixel read goes through it


def _image(tmp_path):
    path = tmp_path / "x.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


def _segment(*args):
    return CliRunner().invoke(build_cli(), ["segment", *args], catch_exceptions=False)


def test_masks_none_with_a_clip_model_falls_back_to_an_all_global_schedule_and_says_so(tmp_path):
    out = tmp_path / "out"
    result = _segment(str(_image(tmp_path)), "--model", "example-tiny", "--masks", "none",
                      "--classes", "road; tree", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "gives no segment levels, so every attention block is global" in result.output
    side = json.loads((out / "x.json").read_text())
    assert side["encoder"]["schedule"] == ["global"] * side["encoder"]["depth"]
    assert any("every attention block is global" in note for note in side["notes"])


def test_all_global_fallback_equals_an_explicit_all_global_recipe(tmp_path):
    from resegzoo.api import Segmenter, Vocabulary, load_recipe

    image = np.asarray(Image.open(_image(tmp_path)))
    vocab = Vocabulary.parse("road; tree; water")
    fallback = Segmenter.from_recipe(load_recipe(None), model="example-tiny", masks="none")
    recipe = tmp_path / "global.yaml"
    recipe.write_text("schedule: {rules: [" + ", ".join(["global"] * 8) + "]}\nmasks: {generator: none}\n")
    explicit = Segmenter.from_recipe(load_recipe(recipe), model="example-tiny")
    assert explicit.notes == [n for n in explicit.notes if "RANDOM" in n]  # no fallback note when asked for
    np.testing.assert_array_equal(fallback.segment(image, vocab).probs, explicit.segment(image, vocab).probs)


def test_a_generator_with_too_few_levels_is_a_one_line_error_before_any_image(tmp_path, two_levels_registered,
                                                                              no_image_read):
    result = _segment(str(_image(tmp_path)), "--model", "example-tiny", "--masks", "two-levels",
                      "--classes", "road; tree", "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert "reads segment levels 0..3, but mask generator 'two-levels' gives 2 level(s)" in line
    assert "set schedule.rules in a --recipe that reads levels 0..1 only" in line
    assert not (tmp_path / "out").exists()


def test_a_recipe_schedule_reading_more_levels_than_slic_gives_names_the_fix(tmp_path, no_image_read):
    recipe = tmp_path / "r.yaml"
    rules = ["global"] * 5 + ["segment:0", "segment:2", "neighbor:0"]
    recipe.write_text(f"schedule: {{rules: {json.dumps(rules)}}}\nmasks: {{generator: slic, settings: "
                      "{n_segments: [32, 16]}}\n")
    result = _segment(str(_image(tmp_path)), "--model", "example-tiny", "--recipe", str(recipe),
                      "--classes", "road; tree", "--out", str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    assert "reads segment levels 0..2, but mask generator 'slic' gives 2 level(s); change schedule.rules" in result.output


def test_a_generator_with_enough_levels_runs(tmp_path, two_levels_registered):
    recipe = tmp_path / "r.yaml"
    rules = ["global"] * 5 + ["segment:0", "segment:1", "neighbor:0"]
    recipe.write_text(f"schedule: {{rules: {json.dumps(rules)}}}\n")
    result = _segment(str(_image(tmp_path)), "--model", "example-tiny", "--recipe", str(recipe), "--masks",
                      "two-levels", "--classes", "road; tree", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", ["slic", "felzenszwalb", "none"])
def test_declared_level_counts_match_what_the_generators_return(name):
    from resegzoo.segmenter.models import build_mask_generator

    generator = build_mask_generator(name, {})
    image = np.random.default_rng(1).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    assert generator.level_count == generator(image).shape[0]
