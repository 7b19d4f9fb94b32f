"""File names that are not UTF-8 (issue 17, item 6).

A Linux file name is bytes; one that is not UTF-8 (a Latin-1 ``caf\\xe9.png`` copied from an old
disk) used to stop a folder batch with UnicodeEncodeError, even under --continue-on-error. Now it
is segmented like any other: its outputs get a UTF-8 stem (``caf%E9``), its sidecar records the
name as shown plus its exact bytes, the summary and errors show it with ``\\xNN``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

from hostile_helpers import assert_one_line_error, cli

from resegzoo.raster.names import output_stem, path_of_record, path_record, shown

LATIN1 = b"caf\xe9"  # "café" in Latin-1: not UTF-8


def _name(raw: bytes) -> str:
    return os.fsdecode(raw)


@pytest.fixture
def workspace(tmp_path, resegzoo_cache):
    (tmp_path / "in").mkdir()
    return tmp_path


def _png(path: Path, value: int) -> Path:
    Image.fromarray(np.full((32, 32, 3), value, np.uint8)).save(path, format="PNG")
    return path


def _geotiff(path: Path) -> Path:
    made = path.with_name("made.tif")  # rasterio itself cannot be given the name: rename after
    with rasterio.open(made, "w", driver="GTiff", width=32, height=32, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=Affine(1.0, 0, 500000.0, 0, -1.0, 4000000.0)) as dst:
        dst.write(np.stack([np.full((32, 32), v, np.uint8) for v in (200, 20, 20)]))
    made.rename(path)
    return path


def _segment(workspace: Path, *extra: str):
    return cli("segment", str(workspace / "in"), "--model", "oracle", "--masks", "none", "--classes", "red; blue",
               "--out", str(workspace / "out"), *extra)


def test_names_helpers_round_trip():
    name = _name(b"/data/" + LATIN1 + b"-\xc3\xa9.tif")
    assert shown(name) == "/data/caf\\xe9-\u00e9.tif"
    assert output_stem(_name(LATIN1 + b"-\xc3\xa9")) == "caf%E9-\u00e9"
    record = path_record(name)
    json.dumps(record).encode("utf-8")
    assert path_of_record(record) == Path(name)
    assert path_record("/data/plain.tif") == {"input": "/data/plain.tif"}


def test_a_folder_with_names_that_are_not_utf8_is_segmented(workspace):
    _png(workspace / "in" / _name(LATIN1 + b".png"), 90)
    _geotiff(workspace / "in" / _name(b"sc\xe8ne.tif"))
    _png(workspace / "in" / "plain.png", 30)
    result = _segment(workspace, "--vector", "--cog")
    assert result.exit_code == 0, result.output
    out = workspace / "out"
    assert (out / "caf%E9.labels.png").is_file() and (out / "sc%E8ne.labels.tif").is_file()
    assert (out / "sc%E8ne.regions.gpkg").is_file() and (out / "plain.json").is_file()
    record = json.loads((out / "sc%E8ne.json").read_bytes().decode("utf-8"))  # strict UTF-8 JSON
    assert record["input"].endswith("sc\\xe8ne.tif")
    assert path_of_record(record) == workspace / "in" / _name(b"sc\xe8ne.tif")
    assert record["crs"] == "EPSG:32633"
    assert "caf\\xe9.png" in result.output and "sc\\xe8ne.tif" in result.output  # the summary


def test_skip_existing_recognises_a_name_that_is_not_utf8(workspace):
    _png(workspace / "in" / _name(LATIN1 + b".png"), 90)
    assert _segment(workspace).exit_code == 0
    again = _segment(workspace, "--skip-existing")
    assert again.exit_code == 0, again.output
    assert "skipped" in again.output
    assert not list((workspace / "out").glob("caf%E9-2*"))


def test_a_world_file_of_a_name_that_is_not_utf8_is_found(workspace):
    """GDAL reaches the file through links named in UTF-8: its siblings of the same stem come along."""
    _png(workspace / "in" / _name(LATIN1 + b".png"), 90)
    (workspace / "in" / _name(LATIN1 + b".pgw")).write_text("2.0\n0.0\n0.0\n-2.0\n600000.0\n5000000.0\n")
    (workspace / "in" / _name(LATIN1 + b".png.aux.xml")).write_text(
        '<PAMDataset><SRS dataAxisToSRSAxisMapping="1,2">EPSG:32632</SRS></PAMDataset>\n')
    result = _segment(workspace)
    assert result.exit_code == 0, result.output
    record = json.loads((workspace / "out" / "caf%E9.json").read_text("utf-8"))
    # a world file names the centre of the first pixel: GDAL's corner is half a pixel before
    assert record["transform"][:3] == [2.0, 0.0, 599999.0] and record["crs"] == "EPSG:32632"


def test_a_broken_file_with_such_a_name_is_one_line_and_reported_per_file(workspace):
    broken = _png(workspace / "in" / _name(LATIN1 + b".png"), 90)
    broken.write_bytes(broken.read_bytes()[:-30])  # truncated: GDAL opens it, the stream check refuses
    _png(workspace / "in" / "plain.png", 30)
    result = cli("segment", str(broken), "--model", "oracle", "--masks", "none", "--classes", "red; blue",
                 "--out", str(workspace / "out"))
    assert_one_line_error(result, "caf\\xe9.png")
    result = _segment(workspace, "--continue-on-error")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "failed: " in result.output and "caf\\xe9.png" in result.output
    assert (workspace / "out" / "plain.labels.png").is_file()
