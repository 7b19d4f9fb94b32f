"""Inputs that are not what they seem (issue 26, items 3 and 7).

Item 3: a FIFO (or another file that is not a regular file) given as an input raster hung forever
(opening a FIFO waits for a writer), in the CLI and in ``segment_files``; so did a FIFO given as
a recipe, a vocabulary or a template file. A file named directly is a one-line error naming it;
a folder or a pattern skips such entries with a note.

Item 7: ``--out`` inside a ``--recursive`` input folder made the second run segment the first
run's outputs and nest ``out/out/...``. The output folder, and files a resegzoo sidecar lists as
its outputs, are left out of what folders and patterns find.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hostile_helpers import assert_one_line_error, bounded, cli, files_under, plant, refused


@pytest.fixture
def workspace(tmp_path, resegzoo_cache):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "in" / "scene.png")
    return tmp_path


def _segment(*args: str):
    with bounded():
        return cli("segment", "--model", "oracle", "--masks", "none", "--classes", "red; blue", *args)


# -- item 3: files that are not regular files -----------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
def test_a_fifo_or_device_named_as_the_input_is_a_one_line_error(workspace, kind):
    special = plant(workspace / "in" / "pipe.tif", kind)
    with bounded():
        refused(workspace, "segment", str(special), "--model", "oracle", "--masks", "none", "--classes", "red; blue",
                "--out", str(workspace / "out"), fragments=(str(special), "not a raster file", "regular files only"),
                out=workspace / "out", allowed=[workspace / "resegzoo-cache"])


def test_a_fifo_given_to_segment_files_is_refused(workspace):
    from resegzoo.api import BatchInputError, segment_files

    pipe = plant(workspace / "in" / "pipe.tif", "fifo")
    with bounded(), pytest.raises(BatchInputError, match="FIFO"):
        segment_files([pipe], "red; blue", workspace / "out", model="oracle", masks="none")


def test_a_folder_skips_a_fifo_with_a_note_and_segments_the_rest(workspace):
    pipe = plant(workspace / "in" / "pipe.tif", "fifo")
    result = _segment(str(workspace / "in"), "--out", str(workspace / "out"))
    assert result.exit_code == 0, result.output
    assert f"note: {pipe}: skipped, it is a FIFO (named pipe), not a regular file" in result.output
    assert (workspace / "out" / "scene.json").is_file() and not (workspace / "out" / "pipe.json").exists()


def test_a_pattern_skips_a_fifo_with_a_note(workspace):
    pipe = plant(workspace / "in" / "pipe.png", "fifo")
    result = _segment(str(workspace / "in" / "*.png"), "--out", str(workspace / "out"))
    assert result.exit_code == 0, result.output
    assert f"{pipe}: skipped, it is a FIFO" in result.output
    assert (workspace / "out" / "scene.json").is_file()


@pytest.mark.parametrize("option", ["--recipe", "--vocab", "--templates"])
def test_a_fifo_as_recipe_vocabulary_or_templates_is_a_one_line_error(workspace, option):
    pipe = plant(workspace / "settings.yaml", "fifo")
    classes = () if option == "--vocab" else ("--classes", "red; blue")
    with bounded():
        result = cli("segment", str(workspace / "in" / "scene.png"), "--model", "oracle", "--masks", "none",
                     option, str(pipe), *classes, "--out", str(workspace / "out"))
    assert_one_line_error(result, str(pipe), "FIFO")
    assert files_under(workspace / "out") == []


# -- item 7: the output folder inside the inputs ---------------------------------------------------


def _sidecars(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*.json"))


def test_out_inside_a_recursive_input_folder_is_not_segmented_again(workspace):
    out = workspace / "in" / "out"
    for _ in range(2):
        result = _segment(str(workspace / "in"), "--recursive", "--out", str(out), "--overwrite")
        assert result.exit_code == 0, result.output
    assert _sidecars(out) == [Path("scene.json")], "the second run segmented the first run's outputs"
    assert not (out / "out").exists()
    assert json.loads((out / "scene.json").read_text())["input"] == str(workspace / "in" / "scene.png")


def test_outputs_listed_by_a_sidecar_are_left_out_of_a_folders_inputs(workspace):
    """Outputs of an earlier run written inside the input folder (another --out then): the files
    its sidecar lists are not inputs; the note says so."""
    first = _segment(str(workspace / "in"), "--recursive", "--out", str(workspace / "in" / "results"))
    assert first.exit_code == 0, first.output
    second = _segment(str(workspace / "in"), "--recursive", "--out", str(workspace / "elsewhere"))
    assert second.exit_code == 0, second.output
    assert _sidecars(workspace / "elsewhere") == [Path("scene.json")]
    assert "left out 2 file(s) resegzoo wrote" in second.output


def test_a_file_named_directly_is_taken_even_in_out(workspace):
    """Only what folders and patterns find is filtered: an output named on purpose is an input."""
    first = _segment(str(workspace / "in"), "--out", str(workspace / "out"))
    assert first.exit_code == 0, first.output
    second = _segment(str(workspace / "out" / "scene.overlay.png"), "--out", str(workspace / "out2"))
    assert second.exit_code == 0, second.output
    assert (workspace / "out2" / "scene.overlay.json").is_file()


def test_expand_inputs_leaves_out_the_output_folder_given_relative(workspace, monkeypatch):
    from resegzoo.batch.inputs import expand_inputs

    (workspace / "in" / "out").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(workspace / "in" / "out" / "old.png")
    monkeypatch.chdir(workspace)
    found = expand_inputs(["in"], recursive=True, out="in/out")
    assert [f.path for f in found] == [Path("in/scene.png")]
    assert len(expand_inputs(["in"], recursive=True)) == 2  # without out: both
    assert os.path.isdir("in/out")
