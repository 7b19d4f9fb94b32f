"""One resume rule for both engines (issue 17, item 15): rerunning an interrupted batch with
--skip-existing into the same --out skips the finished inputs and continues an interrupted raster
from its finished blocks; a rerun without it says so instead of silently recomputing into -2."""
from __future__ import annotations

import json

import numpy as np
import rasterio
from affine import Affine
from click.testing import CliRunner

from resegzoo.cli import build_cli
from segment_helpers import COLOR_CLASSES, block_labels, paint

ARGS = ["--model", "oracle", "--masks", "none", "--classes", "; ".join(COLOR_CLASSES), "--window", "16",
        "--stride", "8", "--tile-size", "64"]


def _geotiff(path, labels):
    with rasterio.open(path, "w", driver="GTiff", height=labels.shape[0], width=labels.shape[1], count=3,
                       dtype="uint8", crs="EPSG:32632", transform=Affine(0.5, 0, 500000.0, 0, -0.5, 5800000.0)) as dst:
        dst.write(paint(labels).transpose(2, 0, 1))


def segment(*args):
    return CliRunner().invoke(build_cli(), ["segment", *map(str, args)], catch_exceptions=False)


def test_a_rerun_with_skip_existing_resumes_where_the_local_engine_stopped(tmp_path, monkeypatch):
    from resegzoo.segmenter.core import Segmenter

    folder = tmp_path / "in"
    folder.mkdir()
    maps = {"a": block_labels(130, 140, cell=5, seed=1), "b": block_labels(130, 140, cell=7, seed=2)}
    for name, labels in maps.items():
        _geotiff(folder / f"{name}.tif", labels)
    out = tmp_path / "out"
    original, calls = Segmenter.segment, []

    def counted(self, *args, **kwargs):
        calls.append(1)
        if stop_at and len(calls) == stop_at:
            raise KeyboardInterrupt  # Ctrl-C in the middle of b's blocks
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Segmenter, "segment", counted)
    stop_at = 0
    whole = segment(folder, *ARGS, "--out", tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    blocks = {n: json.loads((tmp_path / "whole" / f"{n}.json").read_text())["blocks"] for n in maps}
    assert blocks["a"] > 2 and blocks["b"] > 2 and len(calls) == blocks["a"] + blocks["b"]

    calls.clear()
    stop_at = blocks["a"] + 3  # a is finished, b has 2 blocks done
    assert segment(folder, *ARGS, "--out", out).exit_code == 130
    assert (out / "a.json").is_file() and not (out / "b.labels.tif").exists()

    # a plain rerun would compute a again into a-2: it says so up front
    calls.clear()
    stop_at = 1
    plain = segment(folder, *ARGS, "--out", out)
    assert "a.json; writing a-2.* (--skip-existing skips finished inputs" in plain.output
    assert not (out / "a-2.json").exists()

    calls.clear()
    stop_at = 0
    resumed = segment(folder, *ARGS, "--out", out, "--skip-existing")
    assert resumed.exit_code == 0, resumed.output
    assert "a.tif: skipped" in resumed.output and "b.tif: resuming, 2 of" in resumed.output
    assert len(calls) == blocks["b"] - 2  # only b's missing blocks were computed
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "whole").iterdir())
    for name in maps:
        with rasterio.open(out / f"{name}.labels.tif") as src, \
                rasterio.open(tmp_path / "whole" / f"{name}.labels.tif") as ref:
            np.testing.assert_array_equal(src.read(), ref.read())
    assert not (out / ".resegzoo-blocks").exists()  # the spool is gone once b is assembled
