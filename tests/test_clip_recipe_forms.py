"""Issue 22 item 4: the clip method's settings live under ``method.settings``; recipes written in the old
form (top-level ``schedule:`` and ``extras:``, ``text.templates``, ``inference.readout`` and
``inference.position_interpolation``) keep loading, with identical outputs.

``tests/data/recipes_before_issue22/`` holds every shipped clip recipe as it was before the move
(commit b42e773, frozen; ``bench-*``: benchmarks/recipes). Each loads to the same recipe as its
migrated shipped copy, alone or over a shipped base, and gives byte-identical labels and
probabilities in this run; a few recipes' outputs are also held against values the commit before
the move produced (labels by sha256; probabilities, which may differ in the last bits on another
CPU, by their per-class sums within 1e-5).
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from resegzoo.api import Segmenter, SegmentRecipe, Vocabulary, load_recipe
from resegzoo.methods.base import MethodError, check_method
from resegzoo.methods.clip.settings import OLD_FORM, parse_settings, settings_of
from resegzoo.schema import SchemaError

ROOT = Path(__file__).resolve().parents[1]
OLD = Path(__file__).parent / "data" / "recipes_before_issue22"
MODEL = "example-tiny"  # the example plugin's tiny random CLIP: 64 px, 8 blocks
CLASSES = "building; road, street; tree, forest; water; grass"


def shipped(old: Path) -> Path:
    """The shipped (migrated) recipe a frozen old-form file was."""
    if old.stem.startswith("bench-"):
        return ROOT / "benchmarks" / "recipes" / f"{old.stem.removeprefix('bench-')}.yaml"
    return ROOT / "registry" / "recipes" / old.name


OLD_RECIPES = sorted(OLD.glob("*.yaml"))


def image() -> np.ndarray:
    """96 x 128 RGB: gradients and a red block (segments to find, windows to stitch)."""
    y, x = np.mgrid[0:96, 0:128]
    rgb = np.stack([(x * 2) % 256, (y * 3) % 256, ((x + y) * 5) % 256], axis=-1)
    rgb[20:60, 30:90] = [200, 40, 40]
    return rgb.astype(np.uint8)


def outputs(recipe: SegmentRecipe) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities of the recipe on the tiny model (SLIC where the recipe names SAM:
    no SAM weights in tests)."""
    masks = "slic" if recipe.masks.generator in ("sam", "sam2") else None
    seg = Segmenter.from_recipe(recipe, model=MODEL, masks=masks)
    result = seg.segment(image(), Vocabulary.parse(CLASSES))
    return result.labels, result.probs


def local_chain(tmp_path: Path) -> Path:
    """The frozen old-form recipes in a folder where each ``base:`` names its old-form sibling (a
    pure old-form chain; as shipped, ``base: eval-default`` names today's migrated recipe)."""
    folder = tmp_path / "old"
    shutil.copytree(OLD, folder)
    for path in folder.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        for name in ("eval-default", "method-naclip"):
            text = text.replace(f"base: {name}\n", f"base: {name}.yaml\n")
        path.write_text(text, encoding="utf-8")
    return folder


# -- the shipped recipes are in the new form, and the old form loads to the same recipe ------------


def test_every_shipped_clip_recipe_is_written_in_the_new_form():
    for path in sorted((ROOT / "registry" / "recipes").glob("*.yaml")) + sorted(
            (ROOT / "benchmarks" / "recipes").glob("*.yaml")):
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "inputs" in data:  # a composition recipe
            continue
        assert not {"schedule", "extras"} & set(data), path
        assert "templates" not in (data.get("text") or {}), path
        assert not {"readout", "position_interpolation"} & set(data.get("inference") or {}), path


@pytest.mark.parametrize("old", OLD_RECIPES, ids=lambda p: p.stem)
def test_an_old_form_recipe_loads_to_the_same_recipe_as_its_new_form(old, tmp_path):
    new = load_recipe(shipped(old))
    assert new.method.name == "clip"
    assert load_recipe(old) == new  # over today's shipped (new-form) base
    assert load_recipe(local_chain(tmp_path) / old.name) == new  # old form all the way down


REGISTRY_OLD = [p for p in OLD_RECIPES if not p.stem.startswith("bench-")]


@pytest.mark.parametrize("old", REGISTRY_OLD, ids=lambda p: p.stem)
def test_old_and_new_form_give_byte_identical_outputs(old, tmp_path):
    old_labels, old_probs = outputs(load_recipe(local_chain(tmp_path) / old.name))
    new_labels, new_probs = outputs(load_recipe(shipped(old)))
    assert old_labels.tobytes() == new_labels.tobytes()
    assert old_probs.tobytes() == new_probs.tobytes()


#: what the commit before the move (b42e773) gave for these recipes on this image, vocabulary and
#: model: sha256 of the int32 labels, and each class's probability summed over the image
BEFORE = {
    "eval-default": ("a1005db520277caeb47b82f1e1a8ee56183edcc35df356f35a958f983e15ce11",
        [1027.8954, 3660.3627, 2112.6978, 855.9624, 3077.4860]),
    "method-segearth-ov": ("a4936a498a1d01c38740d31018bfced1d909988d5e718263259f37d3c8c93c0c",
        [822.5562, 6353.1637, 1222.2226, 1732.4270, 905.4526]),
    "reseg-clip-reference": ("9b71c6f446a9069ddfd37bcb2db6fcbfeadd6439f8cd65f6917025ee67c81988",
        [1663.1282, 1706.9720, 1885.9839, 1724.5474, 1928.7932]),
    "segment-default": ("821c9334d11af153e6e932f907ab7ca2f099051812a205845d22c9bbea083b75",
        [878.3809, 2828.0109, 2490.4509, 627.6249, 5463.5323]),
}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_outputs_equal_those_of_the_commit_before_the_move(name):
    labels, probs = outputs(load_recipe(ROOT / "registry" / "recipes" / f"{name}.yaml"))
    digest, sums = BEFORE[name]
    assert hashlib.sha256(labels.astype(np.int32).tobytes()).hexdigest() == digest
    np.testing.assert_allclose(probs.astype(np.float64).sum(axis=(1, 2)), sums, rtol=1e-5, atol=1e-4)


# -- the forms mix, file by file, and the later file wins ---------------------------------------


def test_overrides_in_the_old_form_equal_the_new_form():
    settings = {"schedule": {"rules": ["global*", "neighbor:1"], "uncovered": "self"},
                "templates": "imagenet", "readout": "features", "position_interpolation": "scale-factor",
                "extras": {"cls_token_lambda": -0.2, "majority_vote": True}}
    new = load_recipe(None, method={"name": "clip", "settings": settings})
    assert load_recipe(None, schedule=settings["schedule"], text={"templates": "imagenet"}, extras=settings["extras"],
                       inference={"readout": "features", "position_interpolation": "scale-factor"}) == new
    assert load_recipe(None, rules=["global*", "neighbor:1"], uncovered="self", templates="imagenet",
                       readout="features", position_interpolation="scale-factor", cls_token_lambda=-0.2,
                       majority_vote=True) == new
    assert settings_of(new) == parse_settings(settings)


@pytest.mark.parametrize("base_form, child_form", [("old", "new"), ("new", "old"), ("old", "old"), ("new", "new")])
def test_a_file_overrides_its_base_key_by_key_whichever_form_each_uses(tmp_path, base_form, child_form):
    forms = {
        "old": "text: {{templates: {t}}}\nextras: {{cls_token_lambda: {c}}}\ninference: {{readout: {r}, window: 32}}\n",
        "new": "method: {{name: clip, settings: {{templates: {t}, extras: {{cls_token_lambda: {c}}}, "
               "readout: {r}}}}}\ninference: {{window: 32}}\n",
    }
    (tmp_path / "base.yaml").write_text(forms[base_form].format(t="imagenet", c=-0.3, r="features")
                                        + "schedule: {uncovered: self}\n" * (base_form == "old"))
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\n" + forms[child_form].format(t="remote-sensing", c=0.5, r="logits"))
    clip = settings_of(load_recipe(child))
    assert (clip.templates, clip.extras.cls_token_lambda, clip.readout) == ("remote-sensing", 0.5, "logits")
    assert clip.schedule.uncovered == ("self" if base_form == "old" else "group")  # the base's, kept
    assert load_recipe(child).inference.window == 32


def test_one_setting_in_both_forms_in_one_file_is_an_error(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text("extras: {cls_token_lambda: 0.1}\nmethod: {name: clip, settings: {extras: {cls_token_lambda: 0.2}}}\n")
    with pytest.raises(SchemaError, match="extras.cls_token_lambda is given twice"):
        load_recipe(path)
    path.write_text("inference: {readout: features}\nmethod: {name: clip, settings: {readout: logits}}\n")
    with pytest.raises(SchemaError, match="inference.readout and method.settings.readout are the same setting"):
        load_recipe(path)
    path.write_text("extras: {naclip_std: 2.0}\nmethod: {name: clip, settings: {extras: {cls_token_lambda: 0.2}}}\n")
    assert settings_of(load_recipe(path)).extras.naclip_std == 2.0  # different keys of one section: both kept


def test_old_form_keys_under_another_method_are_not_its_settings(tmp_path):
    """As before: a recipe of another method ignores the clip sections (e.g. eval-default's templates)
    but refuses a majority vote, which needs segments."""
    path = tmp_path / "r.yaml"
    path.write_text("base: eval-default\nmethod: {name: segearth-ov3}\ntext: {templates: reference}\n")
    recipe = load_recipe(path)
    assert recipe.method.name == "segearth-ov3" and recipe.method.settings == {}
    path.write_text("method: {name: segearth-ov3}\ntext: {templates: reference, prompt_pool: remote-sensing}\n")
    assert load_recipe(path).text.prompt_pool == "remote-sensing"  # the shared text setting stays
    path.write_text("method: segearth-ov3\nextras: {majority_vote: true}\n")
    with pytest.raises(SchemaError, match="extras.majority_vote needs segments, but method 'segearth-ov3'"):
        load_recipe(path)


def test_unknown_and_bad_clip_settings_name_the_key(tmp_path):
    with pytest.raises(SchemaError, match=r"unknown key 'extra' \(did you mean 'extras'\?\)"):
        load_recipe(None, method={"name": "clip", "settings": {"extra": {}}})
    with pytest.raises(SchemaError, match="naclip_std must be positive"):
        load_recipe(None, extras={"naclip_std": 0})
    with pytest.raises(SchemaError, match="but extras.last_block='naclip' replaces the last block"):
        load_recipe(None, method={"name": "clip", "settings": {"schedule": {"rules": ["global*", "neighbor:0"]},
                                                              "extras": {"last_block": "naclip"}}})


def test_the_recipe_writes_every_clip_setting_out():
    """The sidecar's recipe holds every clip setting, defaults included, as the old sections did."""
    settings = load_recipe(None, templates="imagenet").to_dict()["method"]["settings"]
    assert set(settings) == set(OLD_FORM.values())
    assert settings["templates"] == "imagenet" and settings["extras"]["naclip_std"] == 5.0


def test_the_old_attributes_still_read_with_a_warning():
    recipe = load_recipe(None, templates="imagenet", majority_vote=True, rules=["global*"])
    with pytest.warns(DeprecationWarning, match="SegmentRecipe.extras is deprecated"):
        assert recipe.extras.majority_vote is True
    with pytest.warns(DeprecationWarning, match="SegmentRecipe.schedule is deprecated"):
        assert recipe.schedule.rules == ["global*"]


# -- the method's own checks, through the seam ------------------------------------------------------


def test_the_clip_checks_run_before_any_model_loads_through_the_spec_hook(tmp_path):
    with pytest.raises(MethodError, match="method 'clip': extras.majority_vote needs segments, but mask generator "
                                          "'none' gives none"):
        check_method(load_recipe(None, majority_vote=True), model=MODEL, masks="none")
    with pytest.raises(MethodError, match="method 'clip': templates: 'nope' is neither a template set"):
        check_method(load_recipe(None, templates="nope"), model=MODEL)
    assert check_method(load_recipe(None, majority_vote=True), model=MODEL, masks="slic").masks == "slic"


def test_check_method_knows_nothing_of_clip_settings():
    source = (ROOT / "resegzoo" / "methods" / "base.py").read_text(encoding="utf-8")
    for word in ("majority_vote", "extras", "schedule", "templates", "readout"):
        assert word not in source, word
