"""Dataset readers: every layout of every benchmark, the generic folder dataset, and clear errors."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resegzoo.eval.datasets import (BUILTIN_LAYOUTS, DatasetError, builtin_info, datasets_dir, load_dataset_info,
                                    open_builtin)
from resegzoo.eval.datasets.base import decode_label
from resegzoo.eval.datasets.generic import open_generic
from resegzoo.eval.synthetic import PATHS, write_dataset
from resegzoo.plugins.registry import get_registry
from resegzoo.schema import SchemaError

BUILTIN_CASES = [key for key in PATHS if key[0] != "generic"]


def paint(name: str) -> tuple[int, int, int]:
    # any injective colouring works here; the oracle's colours are used in the CLI tests
    import hashlib

    d = hashlib.md5(name.encode()).digest()
    return d[0], d[1], d[2]


def test_every_builtin_dataset_has_a_record_and_both_layouts():
    segmentation = {"openearthmap", "loveda", "isaid", "potsdam", "vaihingen", "uavid", "udd5", "vdd"}
    change = {"levir-cd", "whu-cd", "s2looking"}  # pairs of dates: tests/test_change_eval.py reads their layouts
    assert set(BUILTIN_LAYOUTS) == segmentation | change
    for name in segmentation:
        info = builtin_info(name)
        assert info.name == name and set(info.encodings) == {"release", "mmseg"} and info.change is None
        assert (name, "release") in PATHS and (name, "mmseg") in PATHS
    for name in change:
        assert builtin_info(name).change is not None
    registered = get_registry().datasets
    assert set(BUILTIN_LAYOUTS) | {"generic", "change-generic"} <= set(registered)


@pytest.mark.parametrize("name,layout", BUILTIN_CASES)
def test_layout_is_found_and_labels_decode_to_the_painted_classes(tmp_path, name, layout):
    info = builtin_info(name)
    truths = write_dataset(info, layout, tmp_path, paint)
    dataset = open_builtin(name, tmp_path)
    assert dataset.layout == layout and dataset.split == info.default_split and len(dataset) == 2
    for sample, truth in zip(dataset, truths):
        image, label = dataset.load(sample)
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8
        np.testing.assert_array_equal(label, truth)
        palette = np.array([paint(n[0]) for n in info.classes], dtype=np.uint8)
        painted = palette[np.minimum(truth, info.num_classes - 1)]
        valid = truth != 255
        np.testing.assert_array_equal(image[valid], painted[valid])


def test_potsdam_release_splits_follow_mmseg_and_all_takes_every_tile(tmp_path):
    info = builtin_info("potsdam")
    write_dataset(info, "release", tmp_path, paint)
    for suffix in ("RGB", "label_noBoundary"):  # a training tile must stay out of val
        folder = "2_Ortho_RGB" if suffix == "RGB" else "5_Labels_all_noBoundary"
        folder = tmp_path / folder
        shutil.copy(folder / f"top_potsdam_2_13_{suffix}.tif", folder / f"top_potsdam_2_10_{suffix}.tif")
    assert [s.id for s in open_builtin("potsdam", tmp_path)] == ["2_13", "2_14"]
    assert [s.id for s in open_builtin("potsdam", tmp_path, split="train")] == ["2_10"]
    assert sorted(s.id for s in open_builtin("potsdam", tmp_path, split="all")) == ["2_10", "2_13", "2_14"]
    with pytest.raises(DatasetError, match="unknown split 'tset'"):
        open_builtin("potsdam", tmp_path, split="tset")


def test_colour_copies_of_indexed_datasets_are_read_too(tmp_path):
    info = builtin_info("udd5")
    truths = write_dataset(info, "release", tmp_path, paint, label_kind="color")
    dataset = open_builtin("udd5", tmp_path)
    np.testing.assert_array_equal(dataset.load(dataset.samples[0])[1], truths[0])


@pytest.mark.parametrize("layout", ["folders", "reference"])
def test_generic_dataset_reads_folders_and_the_reference_tile_layout(tmp_path, layout):
    (tmp_path / "classes.yaml").write_text("classes:\n  - [road, street]\n  - building\n  - tree\n")
    from resegzoo.eval.datasets.generic import load_classes_file

    info = load_classes_file(tmp_path / "classes.yaml")
    assert info.classes == [["road", "street"], ["building"], ["tree"]]
    truths = write_dataset(info, layout, tmp_path, paint)
    dataset = open_generic(tmp_path)
    assert dataset.layout == layout and len(dataset) == 2
    image, label = dataset.load(dataset.samples[1])
    np.testing.assert_array_equal(label, truths[1])
    assert image.shape == (48, 64, 3)  # the reference tiles' 4th (infrared) band is dropped


def test_missing_or_empty_dataset_says_what_was_expected_where(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        open_builtin("loveda", tmp_path / "nope")
    with pytest.raises(DatasetError) as err:
        open_builtin("loveda", tmp_path)
    message = str(err.value)
    assert "does not look like LoveDA" in message
    assert "images_png" in message and "img_dir/val" in message and "ann_dir/val" in message


def test_image_without_label_is_named(tmp_path):
    write_dataset(builtin_info("vdd"), "release", tmp_path, paint)
    (tmp_path / "test" / "gt" / "DJI_0001.png").unlink()
    with pytest.raises(DatasetError, match=r"1 image\(s\) have no label file[\s\S]*DJI_0001"):
        open_builtin("vdd", tmp_path)


def test_wrong_split_of_a_present_layout_is_explained(tmp_path):
    write_dataset(builtin_info("loveda"), "mmseg", tmp_path, paint)
    with pytest.raises(DatasetError, match="no images for split 'train'"):
        open_builtin("loveda", tmp_path, split="train")


def test_openearthmap_release_needs_its_split_file(tmp_path):
    write_dataset(builtin_info("openearthmap"), "release", tmp_path, paint)
    (tmp_path / "val.txt").unlink()
    with pytest.raises(DatasetError, match="val.txt"):
        open_builtin("openearthmap", tmp_path)


def test_malformed_labels_are_errors_naming_the_file(tmp_path):
    write_dataset(builtin_info("vdd"), "release", tmp_path, paint)
    dataset = open_builtin("vdd", tmp_path)
    Image.fromarray(np.full((48, 64), 9, np.uint8)).save(dataset.samples[0].label)
    with pytest.raises(DatasetError, match=r"DJI_0000.png: label values \[9\] are not in"):
        dataset.load(dataset.samples[0])
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(dataset.samples[0].label)
    with pytest.raises(DatasetError, match="RGB label, but this layout's labels are class indices"):
        dataset.load(dataset.samples[0])
    Image.fromarray(np.zeros((40, 64), np.uint8)).save(dataset.samples[1].label)
    with pytest.raises(DatasetError, match="label is 64x40 but its image"):
        dataset.load(dataset.samples[1])


def test_unlisted_colours_are_ignored_where_the_record_says_so():
    encoding = builtin_info("potsdam").encodings["release"]  # as mmseg's converter: unknown -> ignore
    raw = np.array([[[255, 255, 255], [1, 2, 3]]], dtype=np.uint8)
    assert decode_label(raw, encoding).tolist() == [[0, 255]]


def test_dataset_record_typo_names_file_and_key(tmp_path):
    text = (datasets_dir() / "vdd.yaml").read_text()
    bad = tmp_path / "vdd.yaml"
    bad.write_text(text.replace("default_split:", "default_splt:"))
    with pytest.raises(SchemaError, match=r"vdd.yaml: unknown key 'default_splt' \(did you mean 'default_split'\?\)"):
        load_dataset_info(bad)


def test_generic_dataset_without_classes_file_says_where_it_looked(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="classes.yaml"):
        open_generic(tmp_path)


@pytest.mark.parametrize("text, expected", [
    ("- building\n- road\n", "got a list of 2 item\\(s\\) at the top; put it under `classes:`"),
    ("clases: [building]\n", "did you mean 'classes'"),
    ("classes: building\n", "expected a list"),
])
def test_malformed_classes_file_shows_the_expected_shape(tmp_path, text, expected):
    (tmp_path / "images").mkdir()
    (tmp_path / "classes.yaml").write_text(text)
    with pytest.raises(DatasetError, match=expected) as err:
        open_generic(tmp_path)
    message = str(err.value)
    assert "classes: [building, [road, street], tree]" in message and "docs/datasets.md" in message
    assert "\n" not in message


def test_the_documented_classes_file_is_valid(tmp_path):
    """docs/datasets.md's complete example loads as it is written."""
    import re

    from resegzoo.eval.datasets.generic import load_classes_file

    docs = (Path(__file__).resolve().parents[1] / "docs" / "datasets.md").read_text(encoding="utf-8")
    examples = re.findall(r"```yaml\n(.*?)```", docs, flags=re.S)
    assert len(examples) == 2
    for i, example in enumerate(examples):
        (tmp_path / f"c{i}.yaml").write_text(example)
        info = load_classes_file(tmp_path / f"c{i}.yaml")
    full = load_classes_file(tmp_path / "c0.yaml")
    assert full.title == "My orthophotos 2024" and full.background == 5 and len(full.classes) == 6
    assert info.classes == [["building"], ["road", "street"], ["tree"], ["water"]]
