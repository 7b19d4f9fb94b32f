"""`resegzoo eval` reruns: resume after Ctrl-C on every layout, and no stale results after the
model, the SAM weights, resegzoo's version or the dataset's files change (issue 8, items 3-4)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from resegzoo.cli import build_cli
from resegzoo.eval.datasets import builtin_info
from resegzoo.eval.datasets.generic import load_classes_file
from resegzoo.eval.synthetic import PATHS, write_dataset
from resegzoo_oracle import color_of

RECIPE = "inference: {window: 32, stride: 16}\nmasks: {generator: none}\n"


def invoke(*args: str):
    return CliRunner().invoke(build_cli(), ["eval", *args, "--quiet"], catch_exceptions=False)


def _dataset(root, name, layout, images=2):
    if name == "generic":
        root.mkdir(parents=True)
        (root / "classes.yaml").write_text("classes:\n  - [road, street]\n  - building\n  - tree\n")
        info = load_classes_file(root / "classes.yaml")
    else:
        info = builtin_info(name)
    write_dataset(info, layout, root, color_of, images=images)


@pytest.fixture
def count_segment_calls(monkeypatch):
    """Counts Segmenter.segment calls; ``interrupt_at[0] = n`` makes the n-th call a Ctrl-C."""
    from resegzoo.segmenter.core import Segmenter

    original = Segmenter.segment
    calls: list[int] = []
    interrupt_at = [-1]

    def counted(self, image, vocab, progress=False, scale=None):
        calls.append(1)
        if len(calls) == interrupt_at[0]:
            raise KeyboardInterrupt
        return original(self, image, vocab, progress, scale)

    monkeypatch.setattr(Segmenter, "segment", counted)
    return calls, interrupt_at


@pytest.mark.parametrize("name,layout", list(PATHS))
def test_every_layout_resumes_after_ctrl_c_and_reruns_without_segmenting(tmp_path, name, layout,
                                                                        count_segment_calls):
    calls, interrupt_at = count_segment_calls
    root, out, recipe = tmp_path / "data", tmp_path / "out", tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    _dataset(root, name, layout, images=3)
    args = ["--dataset", name, "--root", str(root), "--recipe", str(recipe), "--model", "oracle", "--out", str(out)]
    interrupt_at[0] = 2
    interrupted = invoke(*args)
    assert interrupted.exit_code == 130, interrupted.output
    assert "1 finished image(s)" in interrupted.output
    calls.clear()
    interrupt_at[0] = -1
    resumed = invoke(*args)
    assert resumed.exit_code == 0, resumed.output
    report = json.loads((out / "results.json").read_text())
    images = report["runs"][0]["images"]  # Potsdam's val split keeps 2 of the 3 tiles written
    assert images >= 2 and len(calls) == images - 1  # only the images without a stored result
    assert report["runs"][0]["miou"] == 100.0
    calls.clear()
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert not calls  # a finished run is reported again from its stored results
    assert len(list((out / "runs").iterdir())) == 1
