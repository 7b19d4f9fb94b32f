"""Messages and exit statuses (issue 26 item 11).

- eval with several recipes where one is bad named none of them (a bad template file or mask
  generator was found only when its run started, after the others' work);
- one exit status per kind of error, documented in --help: 2 for what cannot be done as asked
  (options, recipes and their settings, method settings too, which exited 1), 1 for work that failed;
- YAML ``1e308`` was read as a string (``'1e-3' is not of type Optional``);
- a SAM 3 method with both heads off was accepted (every score 0: every pixel one class);
- an explicit ``masks:`` with a method that reads no segments was silently ignored.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from hostile_helpers import assert_one_line_error, cli

GOOD = "inference: {window: 32, stride: 16}\nmasks: {generator: none}\n"


@pytest.fixture
def workspace(tmp_path, resegzoo_cache):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "in" / "scene.png")
    (tmp_path / "good.yaml").write_text(GOOD)
    return tmp_path


@pytest.fixture
def dataset(workspace):
    from resegzoo.eval.datasets.generic import load_classes_file
    from resegzoo.eval.synthetic import write_dataset
    from resegzoo_oracle import color_of

    root = workspace / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes:\n  - red\n  - green\n  - blue\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=1, height=32, width=48)
    return root


def _segment(workspace: Path, *args: str):
    return cli("segment", str(workspace / "in" / "scene.png"), "--classes", "red; blue", "--out",
               str(workspace / "out"), *args)


def _eval(workspace: Path, dataset: Path, *args: str):
    return cli("eval", "--dataset", "generic", "--root", str(dataset), "--out", str(workspace / "eval"), "--quiet",
               *args)


# -- eval names the bad recipe of several, before any run ---------------------------------------

BAD_RECIPES = {
    "a template file that is not there": GOOD + "text: {templates: no-such-templates.txt}\n",
    "an unknown mask generator": "inference: {window: 32, stride: 16}\nmasks: {generator: no-such-masks}\n",
    "settings the method does not take": GOOD + "method: {name: clip, settings: {x: 1}}\n",
    "a setting of the wrong type": "inference: {window: 32, stride: sixteen}\n",
}


@pytest.mark.parametrize("bad", sorted(BAD_RECIPES))
def test_eval_names_the_bad_recipe_of_several_before_any_run(workspace, dataset, bad):
    recipe = workspace / "bad-one.yaml"
    recipe.write_text(BAD_RECIPES[bad])
    result = _eval(workspace, dataset, "--model", "example-tiny", "--recipe", str(workspace / "good.yaml"),
                   "--recipe", str(recipe))
    assert_one_line_error(result, "bad-one")
    assert result.exit_code == 2, result.output
    assert not (workspace / "eval" / "runs").exists(), "a run started before the bad recipe was found"


# -- one exit status per kind of error ------------------------------------------------------------

USAGE = {
    "a recipe key that does not exist": ("recipe", "inference: {windw: 32}\n"),
    "method settings the method does not take": ("recipe", "method: {name: clip, settings: {x: 1}}\n"),
    "mask settings that do not parse": ("recipe", "masks: {generator: slic, settings: {bogus: 1}}\n"),
    "an unknown mask generator": ("recipe", "masks: {generator: no-such-masks}\n"),
    "an unknown method": ("recipe", "method: no-such-method\n"),
    "a vocabulary of no names": ("vocab", "[]\n"),
}


@pytest.mark.parametrize("case", sorted(USAGE))
def test_every_usage_error_exits_2_in_segment(workspace, case):
    kind, text = USAGE[case]
    path = workspace / f"file.{'yaml'}"
    path.write_text(text)
    if kind == "recipe":
        result = _segment(workspace, "--model", "oracle", "--recipe", str(path))
    else:
        result = cli("segment", str(workspace / "in" / "scene.png"), "--vocab", str(path), "--model", "oracle",
                     "--masks", "none", "--out", str(workspace / "out"))
    assert_one_line_error(result)
    assert result.exit_code == 2, result.output


@pytest.mark.parametrize("case", ["method settings the method does not take", "mask settings that do not parse",
                                  "an unknown mask generator", "a recipe key that does not exist"])
def test_every_usage_error_exits_2_in_eval(workspace, dataset, case):
    path = workspace / "file.yaml"
    path.write_text(USAGE[case][1])
    result = _eval(workspace, dataset, "--model", "oracle", "--recipe", str(path))
    assert_one_line_error(result, "file")
    assert result.exit_code == 2, result.output


def test_work_that_fails_exits_1(workspace):
    broken = workspace / "in" / "broken.png"
    broken.write_bytes((workspace / "in" / "scene.png").read_bytes()[:60])
    result = cli("segment", str(workspace / "in"), "--classes", "red; blue", "--model", "oracle", "--masks", "none",
                 "--out", str(workspace / "out"), "--continue-on-error")
    assert result.exit_code == 1, result.output
    assert "1 of 2 input(s) failed" in result.output


def test_the_exit_statuses_are_documented_in_help_and_docs():
    from resegzoo.cli import build_cli

    text = CliRunner().invoke(build_cli(), ["--help"]).output
    assert "Exit status:" in text
    statuses = [line.split()[0] for line in text.split("Exit status:")[1].splitlines() if line.strip()
                and line.split()[0].isdigit()]
    assert statuses == ["0", "1", "2", "130"], text
    docs = (Path(__file__).parents[2] / "docs" / "segmenting.md").read_text(encoding="utf-8")
    assert "## Exit status" in docs and "| 2 |" in docs and "| 130 |" in docs


# -- YAML numbers ---------------------------------------------------------------------------------


def test_numbers_in_exponent_form_are_numbers(tmp_path):
    from resegzoo.segmenter.recipe import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text("inference: {background_threshold: 1e-3, logit_scale: 5e1}\n")
    recipe = load_recipe(path)
    assert recipe.inference.background_threshold == 0.001 and recipe.inference.logit_scale == 50.0


@pytest.mark.parametrize(("value", "fragments"), [
    ("1e308", ("inference.logit_scale", "1e+308", "limit of 1,000")),
    (".inf", ("inference.logit_scale", "finite number")),
    (".nan", ("inference.logit_scale", "finite number")),
    ("fifty", ("inference.logit_scale", "expected a number, got 'fifty'")),
])
def test_a_number_that_cannot_be_used_is_a_one_line_error(workspace, value, fragments):
    recipe = workspace / "r.yaml"
    recipe.write_text(f"inference: {{logit_scale: {value}}}\n")
    result = _segment(workspace, "--model", "oracle", "--masks", "none", "--recipe", str(recipe))
    assert_one_line_error(result, str(recipe), *fragments)


def test_a_type_error_says_the_type_in_words(workspace):
    recipe = workspace / "r.yaml"
    recipe.write_text("inference: {background_threshold: high}\n")
    message = assert_one_line_error(_segment(workspace, "--model", "oracle", "--masks", "none", "--recipe",
                                             str(recipe)))
    assert "'high' is not a number or null" in message and "Optional" not in message


# -- SAM 3 methods: both heads off; explicit masks with a method that reads none ------------------


@pytest.mark.parametrize("method", ["segearth-ov3", "proc-sam3"])
def test_a_sam3_method_with_both_heads_off_is_refused(workspace, method):
    recipe = workspace / "r.yaml"
    recipe.write_text(f"method: {{name: {method}, settings: {{instances: false, semantic: false}}}}\n"
                      "masks: {generator: none}\n")
    result = _segment(workspace, "--model", "sam3", "--recipe", str(recipe))
    assert_one_line_error(result, "instances", "semantic", "both be off")
    assert result.exit_code == 2


@pytest.mark.parametrize("masks", ["{generator: slic}", "{generator: slic, settings: {}}"])
def test_an_explicit_masks_section_with_a_method_that_reads_none_is_refused(workspace, masks):
    recipe = workspace / "r.yaml"
    recipe.write_text(f"method: segearth-ov3\nmasks: {masks}\n")
    result = _segment(workspace, "--model", "sam3", "--recipe", str(recipe))
    assert_one_line_error(result, "reads no segments", "'slic'", "masks:")
    assert result.exit_code == 2


def test_masks_none_or_no_masks_section_is_fine_for_a_method_that_reads_none(tmp_path):
    from resegzoo.methods.base import check_method
    from resegzoo.segmenter.recipe import load_recipe

    for text in ("method: segearth-ov3\nmasks: {generator: none}\n", "method: segearth-ov3\n"):
        path = tmp_path / "r.yaml"
        path.write_text(text)
        assert check_method(load_recipe(path), model="sam3").masks == "none"
    assert "stated" not in load_recipe(path).to_dict()["masks"]  # how the recipe was written is no setting
