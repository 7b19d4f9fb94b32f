"""One scene, one stretch (issue 18, items 9 and 13): tiles of one scene share the batch's stretch by
default; per file and given values are explicit choices; the sidecar records which; the console
prints the values rounded."""
from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from resegzoo.cli import build_cli
from resegzoo.raster.reader import ImageError, Stretch, open_raster, parse_stretch, shared_stretch

ARGS = ["--model", "oracle", "--masks", "none", "--classes", "red; green; blue", "--window", "16", "--stride", "16"]


def _tile(path, data, x0=0.0):
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2], count=3, dtype="uint16",
                       crs="EPSG:32632", transform=Affine(10, 0, 500000.0 + x0, 0, -10, 5800000.0)) as dst:
        dst.write(data)


@pytest.fixture
def scene(tmp_path):
    """One 16-bit scene cut in two tiles: a dark one and a bright one."""
    rng = np.random.default_rng(0)
    full = np.concatenate([rng.integers(1000, 3000, (3, 32, 32)), rng.integers(6000, 12000, (3, 32, 32))], axis=2)
    folder = tmp_path / "tiles"
    folder.mkdir()
    _tile(folder / "a.tif", full[:, :, :32].astype(np.uint16))
    _tile(folder / "b.tif", full[:, :, 32:].astype(np.uint16), x0=320.0)
    _tile(tmp_path / "whole.tif", full.astype(np.uint16))
    return folder


def _sidecar(out, name):
    return json.loads((out / f"{name}.json").read_text())


def test_tiles_of_one_scene_share_one_stretch_by_default(tmp_path, scene):
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), ["segment", str(scene), *ARGS, "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    a, b = _sidecar(out, "a")["stretch"], _sidecar(out, "b")["stretch"]
    assert a == b and a["scope"] == "batch" and a["method"] == "percentile"
    # the batch's stretch is the whole scene's: the tiles together are the scene
    whole = open_raster(tmp_path / "whole.tif").stretch
    np.testing.assert_allclose(a["low"], whole.low) and np.testing.assert_allclose(a["high"], whole.high)
    assert _sidecar(out, "a")["raster_options"]["stretch"] == "batch"
    assert "2 input(s) (uint16) scaled to 8 bits by a 2-98 percentile stretch per band of every input's" in result.output
    # rounded on the console, exact in the sidecar
    shown = result.output[result.output.index("(low ["):].split(")")[0]
    assert all(len(v.strip().split(".")[-1]) <= 6 for v in shown.replace("(low [", "").replace("high [", "")
               .replace("]", "").split(","))


def test_per_file_and_given_stretches_are_explicit_and_recorded(tmp_path, scene):
    per_file = CliRunner().invoke(build_cli(), ["segment", str(scene), *ARGS, "--stretch", "file", "--out",
                                                str(tmp_path / "file")], catch_exceptions=False)
    assert per_file.exit_code == 0, per_file.output
    a, b = _sidecar(tmp_path / "file", "a")["stretch"], _sidecar(tmp_path / "file", "b")["stretch"]
    assert a["scope"] == b["scope"] == "file" and a["high"] != b["high"]  # four tiles, four stretches
    given = CliRunner().invoke(build_cli(), ["segment", str(scene), *ARGS, "--stretch", "0:12000,0:11000,500:10000",
                                             "--out", str(tmp_path / "given")], catch_exceptions=False)
    assert given.exit_code == 0, given.output
    side = _sidecar(tmp_path / "given", "b")
    assert side["stretch"] == {"method": "given", "scope": "given", "percentiles": None,
                               "low": [0.0, 0.0, 500.0], "high": [12000.0, 11000.0, 10000.0]}
    assert side["raster_options"]["stretch"] == {"low": [0.0, 0.0, 500.0], "high": [12000.0, 11000.0, 10000.0]}
    # another stretch is another setting: --skip-existing does not take one for the other
    again = CliRunner().invoke(build_cli(), ["segment", str(scene), *ARGS, "--stretch", "file", "--skip-existing",
                                             "--out", str(tmp_path / "given")], catch_exceptions=False)
    assert again.exit_code == 0 and (tmp_path / "given" / "a-2.json").is_file()


@pytest.mark.parametrize("text", ["0", "1:2:3", "5:1", "0:nan", "0:1,0:2", "bright"])
def test_bad_stretch_values_are_one_line_errors(text, tmp_path, scene):
    with pytest.raises(ImageError, match="--stretch"):
        parse_stretch(text)
    result = CliRunner().invoke(build_cli(), ["segment", str(scene), *ARGS, "--stretch", text, "--out",
                                              str(tmp_path / "x")])
    assert result.exit_code == 2 and "--stretch" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_one_file_gets_the_same_stretch_either_way(tmp_path, scene):
    raster = open_raster(scene / "a.tif")
    assert shared_stretch([raster]).low == raster.stretch.low and raster.stretch.scope == "file"
    assert parse_stretch("0:100") == Stretch((0.0,) * 3, (100.0,) * 3, percentiles=None, scope="given")
    assert "low [1039.2, " in Stretch((1039.2000000001, 1.0, 2.0), (3263.0599999999395,) * 3).describe()
