"""Progress of a batch (issue 18, items 1 and 13): one line up front saying what will be done, a
blocks bar with an ETA also for one large raster, bars ended before an error, and --quiet."""
from __future__ import annotations

import dataclasses
import json
import re

import click
import pytest
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
        import sys

        plan = original(*args, **kwargs)
        if sys._getframe(1).f_code.co_name == "prepare":  # the segmenter's plans, not the count up front
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
    assert "windows: 100%" in result.output and f"{windows}/{windows}" in result.output  # the bar of one input
    assert result.output.index("segmenting 1 input") < result.output.index("windows: ")


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


class Recording:
    """A BatchProgress front end that records what the batch told it."""

    def __new__(cls):
        from resegzoo.batch.progress import BatchProgress

        class _Recording(BatchProgress):
            def __init__(self) -> None:
                super().__init__(quiet=True)
                self.work, self.ticks = None, []

            def start(self, work) -> None:
                self.work = work

            def windows(self, count: int) -> None:
                self.ticks.append(count)

        return _Recording()


@pytest.mark.parametrize("placement", ["pad", "image"])
def test_a_single_block_raster_moves_the_bar_window_by_window_with_the_true_count(tmp_path, placement):
    """A raster of one block (<= tile size) is one work item: the bar counts its windows as they are
    encoded, and the count up front is the true one (one window for placement "image")."""
    from resegzoo.api import load_recipe, segment_files

    scene = _scene(tmp_path / "scene.tif")
    recipe = load_recipe(None, window=16, stride=16)
    recipe = dataclasses.replace(recipe, inference=dataclasses.replace(recipe.inference, window_placement=placement,
                                                                       batch_size=4))
    progress = Recording()
    result = segment_files([scene], "; ".join(COLOR_CLASSES), tmp_path / "out", recipe=recipe, model="oracle",
                           masks="none", progress=progress)
    assert result.records and progress.work.blocks == 1
    expected = 1 if placement == "image" else 10 * 11  # 150 x 170 px in 16 px windows
    assert progress.work.windows == expected == sum(progress.ticks)
    assert len(progress.ticks) == (1 if placement == "image" else 28)  # batches of 4: the bar moves within the block


def test_the_sidecar_and_the_summary_say_where_the_time_went(tmp_path):
    """read, masks, encode, write seconds in the sidecar and a line under the summary; a slow mask
    generator shows as masks."""
    import time

    from resegzoo.masks.superpixels import SuperpixelGenerator

    scene = _scene(tmp_path / "scene.tif")
    original = SuperpixelGenerator.__call__

    def slow(self, image):
        time.sleep(0.05)
        return original(self, image)

    mp = pytest.MonkeyPatch()
    mp.setattr(SuperpixelGenerator, "__call__", slow)
    try:
        args = [{"none": "slic", "16": "48", "8": "48"}.get(a, a) for a in ARGS]  # 4 x 4 windows
        result = CliRunner().invoke(build_cli(), ["segment", str(scene), *args, "--out", str(tmp_path / "out")],
                                    catch_exceptions=False)
    finally:
        mp.undo()
    assert result.exit_code == 0, result.output
    split = json.loads((tmp_path / "out" / "scene.json").read_text())["time"]
    assert list(split) == ["read", "masks", "encode", "write"] and all(v > 0 for v in split.values())
    windows = int(re.search(r"([\d,]+) window\(s\)", result.output).group(1).replace(",", ""))
    assert split["masks"] >= 0.05 * windows * 0.9  # every window's segments were made, and timed as masks
    line = next(line for line in result.output.splitlines() if line.startswith("time: "))
    assert re.fullmatch(r"time: read [\d.]+ s \(\d+%\), masks [\d.]+ s \(\d+%\), encode [\d.]+ s \(\d+%\), "
                        r"write [\d.]+ s \(\d+%\)", line), line
