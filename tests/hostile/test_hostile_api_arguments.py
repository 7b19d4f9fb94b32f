"""``resegzoo.api.segment_files`` given arguments of the wrong type or value (issue 26, item 10).

Each was checked late, or not at all: ``inputs="a.tif"`` was read one character at a time,
``engine="foo"`` ran, ``probs="float64"`` wrote uint8, ``overwrite`` with ``skip_existing`` was
accepted, ``classes=None``, ``out=None``, ``bands=3`` and ``device=None`` raised raw TypeErrors, and
bands given as numbers were checked only after the model loaded. Every argument now goes through the
one checker the CLI uses too (``SegmentOptions.check``): a wrong type is a TypeError, a wrong value
a ValueError, each naming the argument, before the model loads and before anything is written.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import rasterio

from hostile_helpers import cli

from resegzoo.api import BatchInputError, BatchProgress, segment_files

CLASSES = "red; blue"


@pytest.fixture
def scene(red_blue_geotiff) -> Path:
    return red_blue_geotiff


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if a segmenter (any model) is built."""
    from resegzoo.segmenter.core import Segmenter

    built = []

    def refuse(*args, **kwargs):
        built.append(args)
        raise AssertionError("a model was built before the arguments were checked")

    monkeypatch.setattr(Segmenter, "from_recipe", classmethod(refuse))
    monkeypatch.setattr(Segmenter, "from_spec", classmethod(refuse), raising=False)
    return built


def _segment(inputs, out, **kwargs):
    kwargs = {"model": "oracle", "masks": "none", "progress": BatchProgress(quiet=True), **kwargs}
    return segment_files(inputs, CLASSES, out, **kwargs)


@pytest.mark.parametrize("as_path", [False, True], ids=["text", "pathlib"])
def test_one_input_given_alone_is_one_input_not_its_letters(scene, tmp_path, monkeypatch, as_path):
    monkeypatch.chdir(scene.parent)
    result = _segment(Path("scene.tif") if as_path else "scene.tif", tmp_path / "out")
    assert [Path(r["input"]).name for r in result.records] == ["scene.tif"] and not result.failures


def test_a_missing_input_given_alone_is_named_whole(tmp_path, no_model):
    with pytest.raises(BatchInputError, match="nowhere.tif: no such file"):
        _segment(str(tmp_path / "nowhere.tif"), tmp_path / "out")


@pytest.mark.parametrize("kwargs,error,message", [
    ({"engine": "foo"}, ValueError, r"engine 'foo': use local or ray"),
    ({"engine": 3}, TypeError, r"engine=3: give 'local', 'ray'"),
    ({"probs": "float64"}, ValueError, r"probs='float64': .* uint8 or float16"),
    ({"probs": True}, TypeError, r"probs=True"),
    ({"overwrite": True, "skip_existing": True}, ValueError, r"overwrite and skip_existing"),
    ({"classes": None}, TypeError, r"classes=None: give the classes as text"),
    ({"classes": ["red", "blue"]}, TypeError, r"classes=\['red', 'blue'\]"),
    ({"out": None}, TypeError, r"out=None: give a folder path"),
    ({"bands": 3}, TypeError, r"bands=3: give band numbers"),
    ({"bands": (1.0, 2.0, 3.0)}, TypeError, r"bands=\(1.0, 2.0, 3.0\)"),
    ({"bands": (0, 1, 2)}, ValueError, r"bands=\(0, 1, 2\): .*counting from 1"),
    ({"bands": [1, 2]}, ValueError, r"bands=\(1, 2\): give 3 band numbers"),
    ({"device": None}, TypeError, r"device=None: give a torch device as text"),
    ({"nodata": True}, TypeError, r"nodata=True: give a number"),
    ({"nodata": [0]}, TypeError, r"nodata=\[0\]"),
    ({"recursive": "yes"}, TypeError, r"recursive='yes': give True or False"),
    ({"continue_on_error": 1}, TypeError, r"continue_on_error=1: give True or False"),
    ({"stretch": 3000}, TypeError, r"stretch=3000"),
    ({"model": 7}, TypeError, r"model=7"),
    ({"recipe": 7}, TypeError, r"recipe=7"),
    ({"inputs": 7}, TypeError, r"inputs=7"),
    ({"inputs": [7]}, TypeError, r"inputs: 7 is not a path"),
    ({"inputs": []}, ValueError, r"inputs: no input given"),
])
def test_a_wrong_argument_is_a_clear_error_before_any_model_or_file(scene, tmp_path, no_model, kwargs, error, message):
    out = tmp_path / "out"
    arguments = {"inputs": [scene], "classes": CLASSES, "out": out, "model": "oracle", "masks": "none", **kwargs}
    with pytest.raises(error, match=message) as raised:
        segment_files(arguments.pop("inputs"), arguments.pop("classes"), arguments.pop("out"), **arguments)
    assert isinstance(raised.value, BatchInputError)  # the CLI's one-line usage error too
    assert not out.exists() and not no_model


def test_gis_options_given_by_hand_are_checked_too(scene, tmp_path, no_model):
    from resegzoo.api import GisOutputs

    for gis, error, message in [(GisOutputs(vector=True, vector_format="shp"), ValueError, "gpkg or geojson"),
                                (GisOutputs(vector=True, simplify=-1.0), ValueError, "gis.simplify=-1.0"),
                                ("cog", TypeError, "gis='cog'"),
                                (GisOutputs(objects="yes"), TypeError, "gis.objects='yes': give True or False"),
                                (GisOutputs(objects=True, min_object_area=-1.0), ValueError,
                                 r"gis.min_object_area=-1.0: give a finite number"),
                                (GisOutputs(objects=True, max_object_area="big"), TypeError,
                                 "gis.max_object_area='big': give a number, or None"),
                                # objects of a method that gives none: refused by the checker, by name
                                (GisOutputs(objects=True), ValueError, "gives no objects")]:
        with pytest.raises(error, match=message):
            _segment([scene], tmp_path / "out", gis=gis)
    assert not (tmp_path / "out").exists()


def test_bands_given_as_numbers_beyond_the_image_fail_before_the_model(scene, tmp_path, no_model):
    with pytest.raises(BatchInputError, match="asks for band 4 but the image has 3"):
        _segment([scene], tmp_path / "out", bands=(4, 3, 2))
    assert not (tmp_path / "out").exists()


def test_the_cli_refuses_overwrite_with_skip_existing_through_the_same_checker(scene, tmp_path):
    result = cli("segment", str(scene), "--classes", CLASSES, "--model", "oracle", "--masks", "none",
                 "--out", str(tmp_path / "out"), "--overwrite", "--skip-existing")
    assert result.exit_code == 2 and "overwrite and skip_existing contradict each other" in result.output
    assert not (tmp_path / "out").exists()


def test_probs_float16_asked_by_the_api_is_written_as_float16(scene, tmp_path):
    result = _segment([scene], tmp_path / "out", probs="float16")
    with rasterio.open(tmp_path / "out" / result.records[0]["outputs"]["probs"]) as src:
        # GDAL's half floats: float32 pixels stored in 16 bits
        assert src.count == 2 and src.tags(1, ns="IMAGE_STRUCTURE").get("NBITS") == "16"


@pytest.mark.parametrize("options, progress", [("not options", None), (None, None), ("checked", "yes")])
def test_run_segment_refuses_wrong_types_as_resegzoo_errors(scene, tmp_path, no_model, options, progress):
    """``run_segment`` is the second public way in: a wrong type there is the same one-line error
    (a BatchInputError, so the CLI's one handler and callers catching resegzoo's errors see it)."""
    from resegzoo.api import OptionTypeError, SegmentOptions, run_segment

    if options == "checked":
        options = SegmentOptions.check(inputs=[scene], classes=CLASSES, out=tmp_path / "out", model="oracle",
                                       masks="none")
    with pytest.raises(OptionTypeError) as raised:
        run_segment(options, progress)
    assert isinstance(raised.value, (BatchInputError, TypeError))
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
