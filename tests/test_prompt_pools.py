"""Prompt pools: ProC-SAM3's per-dataset pools merged into the datasets' classes (counts, alias and
fuzzy-match cases), the shipped union, user pool files, eval's recipes and `segment --prompt-pool`
with a CLIP method (the oracle: the prompts act as synonyms). No SAM 3 here (tests/test_proc_sam3.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from resegzoo.cli import build_cli
from resegzoo.eval.datasets import builtin_info
from resegzoo.prompt_pools import (
    PromptPool, PromptPoolError, dataset_pool, expand_classes, expand_for, expand_vocabulary, load_pool, match_class,
    union_of)
from resegzoo.vocabulary import Vocabulary

#: ProC-SAM3's own class lists (configs/cls_<dataset>.txt, commit 234c87e), and the prompt counts its
#: PromptBank gives with its cls_<dataset>_exp.txt (issue 23; checked against its code)
PROC_CLASSES = {
    "loveda": [["background"], ["building", "house"], ["road"], ["water"], ["barren", "bareland", "soil"],
               ["forest", "tree"], ["agricultural"]],
    "isaid": [["background"], ["ship"], ["store tank"], ["baseball diamond"], ["tennis court"], ["basketball court"],
              ["ground track field"], ["bridge"], ["large vehicle"], ["small vehicle"], ["helicopter"],
              ["swimming pool"], ["roundabout"], ["soccer ball field"], ["plane"], ["harbor"]],
    "openearthmap": [["background"], ["bareland", "barren"], ["grass"], ["pavement"], ["road"], ["tree", "forest"],
                     ["water", "river"], ["cropland"], ["building", "roof", "house"]],
    "potsdam": [["road"], ["building"], ["grass"], ["tree"], ["car"], ["clutter"]],
    "vaihingen": [["road"], ["building"], ["grass"], ["tree"], ["car"], ["clutter"]],
    "uavid": [["background"], ["building"], ["road"], ["car"], ["tree"], ["vegetation"], ["human"]],
    "udd5": [["vegetation"], ["building"], ["road"], ["vehicle"], ["background"]],
    "vdd": [["background"], ["facade"], ["road"], ["vegetation"], ["vehicle"], ["roof"], ["water"]],
}
COUNTS = {"loveda": 28, "isaid": 24, "openearthmap": 27, "potsdam": 12, "vaihingen": 15, "uavid": 25, "udd5": 9,
          "vdd": 14}


def cli(*args: str):
    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


@pytest.mark.parametrize("dataset", sorted(COUNTS))
def test_proc_sam3_prompt_counts(dataset):
    info = builtin_info(dataset)
    expanded = expand_for(PROC_CLASSES[dataset], "dataset", info.prompt_pool, dataset)
    assert sum(len(names) for names in expanded) == COUNTS[dataset]
    Vocabulary(expanded)  # an ordinary vocabulary: no name in two classes
    # the record's own ProC-SAM3 classes (OpenEarthMap without its ninth 'background' class)
    classes, _ = info.for_method("proc-sam3")
    own = expand_for(classes, "dataset", info.prompt_pool, dataset)
    assert sum(len(n) for n in own) == COUNTS[dataset] - (dataset == "openearthmap")


def test_aliases_come_first_when_one_is_the_key():
    info = builtin_info("loveda")
    expanded = expand_for(PROC_CLASSES["loveda"], "dataset", info.prompt_pool)
    # the pool line "barren, bareland, bare soil, wasteland": the class's own names first, none twice
    assert expanded[4] == ["barren", "bareland", "soil", "bare soil", "wasteland"]
    assert expanded[5] == ["forest", "tree", "dense forest", "natural woodland"]


def test_fuzzy_key_match_of_dataset_pools():
    info = builtin_info("isaid")
    expanded = expand_for(PROC_CLASSES["isaid"], "dataset", info.prompt_pool)
    # "storage tank, oil tank, ..." is iSAID's "store tank"; its key is the class's name, not the line's
    assert expanded[2] == ["store tank", "oil tank", "cylindrical container"]
    assert expanded[6] == ["ground track field", "athletic track", "track field"]  # "running track, ..."
    assert expanded[13] == ["soccer ball field", "football field"]  # "soccer field, football field"
    assert match_class("storage tank", PROC_CLASSES["isaid"]) == 2
    assert match_class("Soccer_Field", PROC_CLASSES["isaid"]) == 13
    assert match_class("helipad tower", PROC_CLASSES["isaid"]) is None  # nothing close enough
    # the fuzzy match applies to a key no class has as a name, when no line is the class's name
    pool = dataset_pool([["store tank"]], [["storage tank", "oil tank"]])
    assert pool.entries == (("store tank", ("store tank", "oil tank")),)
    fuzzy_only = PromptPool((("storage tanks", ("oil tank",)),))
    assert expand_classes([["store tank"], ["ship"]], fuzzy_only, fuzzy=True) == [["oil tank"], ["ship"]]
    assert expand_classes([["store tank"], ["ship"]], fuzzy_only) == [["store tank"], ["ship"]]


def test_user_pools_match_names_exactly_and_keep_each_class_its_own_names():
    pool = load_pool("remote-sensing")
    vocab = expand_vocabulary(Vocabulary.parse("Tree; forest; water tower; low_vegetation; road, lane"), pool)
    tree, forest, tower, low, road = vocab.classes
    assert tree[0] == "Tree" and "forest" not in tree and "woodland" in tree  # forest is another class's name
    assert forest[0] == "forest" and "tree" not in forest and "dense forest" in forest
    assert tower == ("water tower",)  # no fuzzy match for user vocabularies: "water" is not this class
    assert low == ("low_vegetation",)
    assert road[:2] == ("road", "lane") and "asphalt road" in road
    assert vocab.class_names == ["Tree", "forest", "water tower", "low_vegetation", "road"]
    # keys are compared after ProC-SAM3's normalisation (case, '_' and '-', spaces)
    assert expand_classes([["Low-Vegetation"]], PromptPool((("low  vegetation", ("grass",)),))) == \
        [["Low-Vegetation", "grass"]]
    # repeats are dropped regardless of case; an earlier class keeps a prompt two keys share
    pool = PromptPool((("a", ("x", "X", "y")), ("b", ("x", "z"))))
    assert expand_classes([["a"], ["b"]], pool) == [["a", "x", "y"], ["b", "z"]]


def test_the_shipped_union_is_the_datasets_pools():
    names = ["openearthmap", "loveda", "isaid", "potsdam", "uavid", "udd5", "vdd"]  # Vaihingen: false colour
    union = union_of([PromptPool.from_lines(builtin_info(n).prompt_pool, n) for n in names])
    shipped = load_pool("remote-sensing")
    assert shipped.entries == union.entries
    road = dict(shipped.entries)["road"]
    assert road[:3] == ("asphalt road", "traffic lane", "paved road") and "red tree" not in dict(shipped.entries)["tree"]


def test_pool_files_and_their_errors(tmp_path):
    good = tmp_path / "pool.txt"
    good.write_text("# my pool\n\nroad, street, asphalt road\n  building , house,roof \n", encoding="utf-8")
    pool = load_pool(str(good))
    assert pool.entries == (("road", ("street", "asphalt road")), ("building", ("house", "roof")))
    with pytest.raises(PromptPoolError, match="neither a shipped pool"):
        load_pool(str(tmp_path / "missing.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\nroad\n")
    with pytest.raises(PromptPoolError, match="no line gives"):
        load_pool(str(empty))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("route, chauss\xe9e\n".encode("latin-1"))
    with pytest.raises(PromptPoolError, match="not UTF-8"):
        load_pool(str(latin))
    big = tmp_path / "big.txt"
    big.write_bytes(b"a, b\n" * 300_000)
    with pytest.raises(PromptPoolError, match="larger than"):
        load_pool(str(big))
    with pytest.raises(PromptPoolError):
        load_pool(str(tmp_path))  # a folder


def test_eval_plans_merge_the_pool_per_recipe(tmp_path):
    from resegzoo.eval.ablation import plan_runs
    from resegzoo.schema import SchemaError

    model = [str(tmp_path)]  # never loaded: planning only checks a folder exists... with a config
    (tmp_path / "config.json").write_text('{"model_type": "sam3"}')
    runs = plan_runs(builtin_info("loveda"), ["method-proc-sam3", "method-proc-sam3-no-pools",
                                              "method-proc-sam3-no-residual", "method-proc-sam3-no-pools-no-residual"],
                     model, [])
    counts = [sum(len(n) for n in run.prompts(builtin_info("loveda"))) for run in runs]
    assert counts == [28, 11, 28, 11]
    assert [run.recipe.method.settings.get("residual", True) for run in runs] == [True, True, False, False]
    for run in runs:
        inf = run.recipe.inference
        assert (inf.window_placement, inf.background_threshold) == ("image", 0.1)
        assert run.recipe.method.settings["confidence_threshold"] == 0.4
    # a CLIP recipe may take a dataset's pool too: it is paired with the CLIP class names
    clip = tmp_path / "clip-pool.yaml"
    clip.write_text("base: method-segearth-ov\ntext: {prompt_pool: dataset}\n")
    run, = plan_runs(builtin_info("loveda"), [str(clip)], ["example-tiny"], [])
    assert run.classes[2] == ["road", "asphalt road", "paved road", "street"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: method-proc-sam3\ntext: {prompt_pool: /nonexistent/pool.txt}\n")
    with pytest.raises(SchemaError, match="prompt_pool.*neither a shipped pool"):
        plan_runs(builtin_info("loveda"), [str(bad)], model, [])


def _warm_cool_scene():
    labels = np.zeros((32, 48), np.int64)
    labels[:, 16:32] = 1
    labels[:, 32:] = 0
    labels[8:24, 36:44] = 1
    colours = {0: [(255, 0, 0), (255, 128, 0)], 1: [(0, 0, 255), (0, 255, 255)]}
    image = np.zeros((32, 48, 3), np.uint8)
    image[:, :16] = colours[0][0]
    image[:, 16:32] = colours[1][0]
    image[:, 32:] = colours[0][1]
    image[8:24, 36:44] = colours[1][1]
    return image, labels


def test_segment_with_a_pool_file_and_a_clip_method(tmp_path):
    """The oracle's CLIP features are colours: "warm" and "cool" mean nothing to it, so only the
    pool's prompts (colour words, taken as synonyms) can label the scene right."""
    image, labels = _warm_cool_scene()
    Image.fromarray(image).save(tmp_path / "scene.png")
    (tmp_path / "pool.txt").write_text("warm, red, orange\ncool, blue, cyan\nunused, green\n")
    common = ["--model", "oracle", "--masks", "none", "--window", "16", "--stride", "16", "--classes", "warm; cool"]
    result = cli("segment", str(tmp_path / "scene.png"), *common, "--prompt-pool", str(tmp_path / "pool.txt"),
                 "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "scene.labels.png")), labels)
    side = json.loads((tmp_path / "out" / "scene.json").read_text())
    assert side["classes"] == [["warm", "red", "orange"], ["cool", "blue", "cyan"]]
    assert side["class_names"] == ["warm", "cool"]
    assert side["recipe"]["text"]["prompt_pool"] == str(tmp_path / "pool.txt")
    plain = cli("segment", str(tmp_path / "scene.png"), *common, "--out", str(tmp_path / "plain"))
    assert plain.exit_code == 0, plain.output
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "plain" / "scene.labels.png")), labels)
    assert json.loads((tmp_path / "plain" / "scene.json").read_text())["classes"] == [["warm"], ["cool"]]
    missing = cli("segment", str(tmp_path / "scene.png"), *common, "--prompt-pool", "nope.txt",
                  "--out", str(tmp_path / "bad"))
    assert missing.exit_code == 2 and "neither a shipped pool" in missing.output
    assert not (tmp_path / "bad").exists()


def test_segment_files_takes_a_pool_in_the_api(tmp_path):
    from resegzoo.api import segment_files

    image, labels = _warm_cool_scene()
    Image.fromarray(image).save(tmp_path / "scene.png")
    (tmp_path / "pool.txt").write_text("warm, red, orange\ncool, blue, cyan\n")
    result = segment_files([tmp_path / "scene.png"], "warm; cool", tmp_path / "out", model="oracle", masks="none",
                           recipe=None, prompt_pool=str(tmp_path / "pool.txt"), progress=None)
    assert result.records[0]["classes"] == [["warm", "red", "orange"], ["cool", "blue", "cyan"]]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "scene.labels.png")), labels)
