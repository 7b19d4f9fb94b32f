"""Progress of a batch (issue 18, items 1 and 13): one line up front saying what will be done, a
blocks bar with an ETA also for one large raster, bars ended before an error, and --quiet."""
from __future__ import annotations

import re

import click
import rasterio
from affine import Affine
from click.testing import CliRunner

from resegzoo.cli import ResegzooGroup, build_cli
from resegzoo.errors import ResegzooError
from segment_helpers import COLOR_CLASSES, block_labels, paint

ARGS = ["--model", "oracle", "--masks", "none", "--classes", "; ".join(COLOR_CLASSES), "--window", "16",
        "--stride", "8", "--tile-size", "64"]


def _scene(path):
    labels = block_labels(150, 170, cell=5, seed=3)
    with rasterio.open(path, "w", driver="GTiff", height=150, width=170, count=3, dtype="uint8", crs="EPSG:32632",
                       transform=Affine(0.5, 0, 500000.0, 0, -0.5, 5800000.0)) as dst:
        dst.write(paint(labels).transpose(2, 0, 1))
    return path


def test_one_large_raster_says_what_it_will_do_and_shows_a_blocks_bar(tmp_path, monkeypatch):
    from resegzoo.segmenter import core

    made = []
    original = core.WindowPlan.make

    def counted(*args, **kwargs):
        plan = original(*args, **kwargs)
        made.append(len(plan.windows))
        return plan

    monkeypatch.setattr(core.WindowPlan, "make", counted)
    scene = _scene(tmp_path / "scene.tif")
    result = CliRunner().invoke(build_cli(), ["segment", str(scene), *ARGS, "--out", str(tmp_path / "out")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    line = re.search(r"segmenting 1 input\(s\): 25,500 px in (\d+) block\(s\), ([\d,]+) window\(s\) to encode "
                     r"on the local engine", result.output)
    assert line, result.output
    blocks, windows = int(line.group(1)), int(line.group(2).replace(",", ""))
    assert blocks == len(made) > 1
    assert windows == sum(made)  # the windows announced are the windows encoded
    assert f"blocks: 100%" in result.output and f"{blocks}/{blocks}" in result.output  # the bar of one input
    assert result.output.index("segmenting 1 input") < result.output.index("blocks: ")


def test_quiet_prints_nothing_but_errors(tmp_path):
    scene = _scene(tmp_path / "scene.tif")
    quiet = CliRunner().invoke(build_cli(), ["segment", str(scene), *ARGS, "--out", str(tmp_path / "out"), "--quiet"],
                               catch_exceptions=False)
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output == ""
    assert (tmp_path / "out" / "scene.json").is_file()
    failed = CliRunner().invoke(build_cli(), ["segment", str(tmp_path / "nowhere.tif"), *ARGS, "--quiet"])
    assert failed.exit_code == 2 and "nowhere.tif: no such file or folder" in failed.output


def test_an_error_gets_a_line_of_its_own_after_an_open_progress_bar():
    @click.group(cls=ResegzooGroup)
    def group():
        pass

    @group.command()
    def work():
        from tqdm.auto import tqdm

        bar = tqdm(total=3, desc="preparing inputs", unit="model")
        bar.update(0)
        raise ResegzooError("broken input")

    result = CliRunner().invoke(group, ["work"])
    assert result.exit_code == 1
    assert "preparing inputs" in result.output
    assert any(line == "Error: broken input" for line in result.output.splitlines()), repr(result.output)
