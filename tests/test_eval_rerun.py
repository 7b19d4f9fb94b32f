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
    assert f"1 of {images} image(s) already done in {out / 'runs'}" in resumed.output
    assert f"segmenting the other {images - 1}" in resumed.output
    calls.clear()
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert not calls  # a finished run is reported again from its stored results
    assert f"{images} of {images} image(s) already done" in again.output and "nothing left to segment" in again.output
    assert len(list((out / "runs").iterdir())) == 1


# -- item 4: the run key covers the weights, SAM, resegzoo's version and the dataset's files ----------


def test_recomposing_the_model_folder_then_rerunning_eval_never_reuses_stale_results(tmp_path, count_segment_calls):
    from compose_helpers import related_models, save_folders
    from resegzoo.testing import make_tiny_clip

    calls, _ = count_segment_calls
    a, b = save_folders(related_models(2, seed=3), tmp_path / "inputs")
    (c,) = save_folders([make_tiny_clip(seed=11)], tmp_path / "other")
    soup, root, recipe = tmp_path / "soup", tmp_path / "data", tmp_path / "recipe.yaml"
    recipe.write_text("inference: {window: 64, stride: 32}\nmasks: {generator: none}\n")
    _dataset(root, "generic", "folders", images=2)
    cli = CliRunner()

    def compose(*models):
        args = ["compose", *[x for m in models for x in ("--model", m)], "--weighting", "uniform", "--out", str(soup),
                "--force"]
        result = cli.invoke(build_cli(), args, catch_exceptions=False)
        assert result.exit_code == 0, result.output

    def evaluate(out):
        calls.clear()
        result = invoke("--dataset", "generic", "--root", str(root), "--recipe", str(recipe), "--model", str(soup),
                        "--out", str(out))
        assert result.exit_code == 0, result.output
        return json.loads((out / "results.json").read_text())["runs"][0]["confusion"], len(calls)

    compose(a, b)
    first, segmented = evaluate(tmp_path / "out")
    assert segmented == 2
    assert evaluate(tmp_path / "out") == (first, 0)  # same weights: the stored results are reused
    compose(a, c)
    again, segmented = evaluate(tmp_path / "out")
    assert segmented == 2  # other weights in the same folder: computed anew, not reused
    fresh, _ = evaluate(tmp_path / "fresh")
    assert again == fresh and again != first
    assert len(list((tmp_path / "out" / "runs").iterdir())) == 2


def test_run_key_changes_with_resegzoo_version_dataset_files_and_sam_weights(tmp_path, monkeypatch):
    import resegzoo
    from resegzoo.api import load_recipe
    from resegzoo.eval.datasets.generic import open_generic
    from resegzoo.eval.runner import EvalRun, RunSpec

    root = tmp_path / "data"
    _dataset(root, "generic", "folders", images=2)

    def key(masks="none", recipe=None):
        return EvalRun(open_generic(root), RunSpec("r", recipe or load_recipe(None), "oracle", masks), tmp_path).key

    base = key()
    assert key() == base
    monkeypatch.setattr(resegzoo, "__version__", "999.0")
    assert key() != base
    monkeypatch.undo()
    assert key() == base
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=3)  # one image more
    with_three = key()
    assert with_three != base
    (root / "images" / "img_2.png").write_bytes((root / "images" / "img_2.png").read_bytes() + b"\0")  # resized
    assert key() != with_three

    sam_a, sam_b = tmp_path / "a.pth", tmp_path / "b.pth"
    sam_a.write_bytes(b"weights A"), sam_b.write_bytes(b"weights B")
    keys = [key("sam", load_recipe(None, masks={"generator": "sam", "settings": {"checkpoint": str(p)}}))
            for p in (sam_a, sam_b, sam_a)]
    assert keys[0] != keys[1] and keys[0] == keys[2]
