"""The batch as an API (issue 15, item 3): ``resegzoo.api.segment_files`` from Python writes what
``resegzoo segment`` writes; the CLI reaches engines only through ``resegzoo.engines``."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from resegzoo.api import BatchInputError, BatchProgress, GisOutputs, segment_files
from resegzoo.cli import build_cli
from segment_helpers import COLOR_CLASSES, block_labels, paint

CLASSES = "; ".join(COLOR_CLASSES)
RESULT_KEYS = ("input", "outputs", "size", "class_names", "palette", "pixel_fraction", "nodata", "blocks", "recipe",
               "stretch", "crs", "transform", "gis")


def _geotiff(path: Path, labels: np.ndarray) -> Path:
    rgb = paint(labels).transpose(2, 0, 1)
    with rasterio.open(path, "w", driver="GTiff", height=labels.shape[0], width=labels.shape[1], count=3,
                       dtype="uint8", crs="EPSG:32632", transform=Affine(0.5, 0, 500000.0, 0, -0.5, 5800000.0)) as dst:
        dst.write(rgb)
    return path


@pytest.fixture
def scenes(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _geotiff(folder / "big.tif", block_labels(140, 150, cell=5, seed=1))  # several blocks at --tile-size 64
    _geotiff(folder / "small.tif", block_labels(20, 24, cell=4, seed=2))
    return folder


def _files(out: Path) -> dict[str, object]:
    """Every output's content (a GeoPackage's features: the file holds its time of writing)."""
    from pyogrio.raw import read

    def content(path: Path) -> object:
        if path.suffix == ".gpkg":
            _, _, geometry, fields = read(path)
            return [bytes(g) for g in geometry], [list(f) for f in fields]
        return path.read_bytes()

    return {p.name: content(p) for p in sorted(out.iterdir()) if not p.name.endswith(".json")}


def test_segment_files_writes_what_the_cli_writes(tmp_path, scenes):
    from resegzoo.api import load_recipe

    cli = CliRunner().invoke(build_cli(), ["segment", str(scenes), "--model", "oracle", "--masks", "none",
                                           "--classes", CLASSES, "--window", "16", "--stride", "8",
                                           "--tile-size", "64", "--vector", "--out", str(tmp_path / "cli")],
                             catch_exceptions=False)
    assert cli.exit_code == 0, cli.output
    recipe = load_recipe(None, window=16, stride=8, tile_size=64)
    result = segment_files([scenes], CLASSES, tmp_path / "api", recipe=recipe, model="oracle", masks="none",
                           gis=GisOutputs(vector=True), progress=BatchProgress(quiet=True))
    assert not result.failures and not result.skipped and result.inputs == 2
    assert sorted(r["input"] for r in result.records) == [str(scenes / "big.tif"), str(scenes / "small.tif")]
    big = next(r for r in result.records if r["input"].endswith("big.tif"))
    assert big["blocks"] > 1  # the one-raster-many-blocks path was taken
    # the same files (the sidecars differ only in the seconds they took)
    assert _files(tmp_path / "api") == _files(tmp_path / "cli")
    for name in ("big", "small"):
        api, by_cli = (json.loads((tmp_path / where / f"{name}.json").read_text()) for where in ("api", "cli"))
        assert {k: api[k] for k in RESULT_KEYS} == {k: by_cli[k] for k in RESULT_KEYS}
    np.testing.assert_array_equal(rasterio.open(tmp_path / "api" / "big.labels.tif").read(1),
                                  block_labels(140, 150, cell=5, seed=1))
    assert result.summary().splitlines()[-2].startswith("total: 2 images")
    assert result.summary().splitlines()[-1].startswith("time: read ")
    # a rerun with skip_existing does nothing and says which inputs it skipped
    again = segment_files([scenes], CLASSES, tmp_path / "api", recipe=recipe, model="oracle", masks="none",
                          gis=GisOutputs(vector=True), skip_existing=True, progress=BatchProgress(quiet=True))
    assert not again.records and sorted(p.name for p in again.skipped) == ["big.tif", "small.tif"]


def test_segment_files_checks_its_arguments_before_any_work(tmp_path, scenes):
    out = tmp_path / "out"
    with pytest.raises(BatchInputError, match="no such file or folder"):
        segment_files([tmp_path / "nowhere.tif"], CLASSES, out, model="oracle", masks="none")
    with pytest.raises(BatchInputError, match="give 3 band numbers"):
        segment_files([scenes], CLASSES, out, model="oracle", masks="none", bands="1,2")
    assert not out.exists()


def test_the_segment_command_is_option_parsing_and_reaches_engines_only_through_their_interface():
    import resegzoo.cli.segment as module

    source = Path(module.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not any(name.startswith("resegzoo.engines.") for name in imported), imported
    assert not any(name.startswith(("resegzoo.batch", "resegzoo.outputs.claims")) for name in imported), imported
    assert len(source.splitlines()) < 250


def test_a_front_end_receives_the_batch_s_progress_through_one_object(tmp_path, scenes):
    from resegzoo.api import load_recipe

    events = []

    class Recorder(BatchProgress):
        def say(self, message):
            events.append(("say", message))

        def start(self, work):
            events.append(("start", work.inputs, work.blocks, work.windows))

        def block(self, outcome):
            events.append(("block", outcome.job, outcome.block.index, outcome.error))

        def finished(self, path, outputs, record):
            events.append(("finished", Path(path).name, outputs.split(", ")[-1], record["blocks"]))

    result = segment_files([scenes], CLASSES, tmp_path / "out", recipe=load_recipe(None, window=16, stride=8,
                           tile_size=64), model="oracle", masks="none", progress=Recorder())
    blocks = sum(r["blocks"] for r in result.records)
    assert events[0][0] == "start" and events[0][1:3] == (2, blocks) and events[0][3] > 0
    assert [e for e in events if e[0] == "block"] and all(e[3] is None for e in events if e[0] == "block")
    assert len([e for e in events if e[0] == "block"]) == blocks
    assert sorted(e[1:] for e in events if e[0] == "finished") == [("big.tif", "big.json", blocks - 1),
                                                                   ("small.tif", "small.json", 1)]
