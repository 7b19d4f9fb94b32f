"""Before any model loads: an --out that cannot be written and a --device that does not exist are
one-line errors, never tracebacks after the computing (issue 8, item 6)."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from resegzoo.cli import build_cli
from resegzoo.eval.synthetic import write_dataset
from resegzoo.eval.datasets.generic import load_classes_file
from resegzoo_oracle import color_of

#: a folder that exists and that nobody, root included, can create files in
UNWRITABLE = "/proc"


@pytest.fixture
def no_model_loads(monkeypatch):
    """Any attempt to load a model or compose fails the test: the checks must come first."""
    import resegzoo.compose
    from resegzoo.segmenter.core import Segmenter

    def must_not_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the output folder / device was checked")

    monkeypatch.setattr(Segmenter, "from_recipe", must_not_load)
    monkeypatch.setattr(resegzoo.compose, "compose", must_not_load)


def _image(tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path)
    return path


def _file(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return blocker


def _invoke(*args):
    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


def _generic(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes: [red, green]\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of)
    return root


def _assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], result.output


def _out_cases(tmp_path):
    return {"below-a-file": (str(_file(tmp_path) / "out"), "is a file, not a folder"),
            "unwritable": (UNWRITABLE, "cannot write into /proc")}


@pytest.mark.parametrize("case", ["below-a-file", "unwritable"])
def test_segment_checks_out_before_loading_the_model(tmp_path, no_model_loads, case):
    out, message = _out_cases(tmp_path)[case]
    result = _invoke("segment", str(_image(tmp_path)), "--model", "oracle", "--masks", "none",
                     "--classes", "red; blue", "--out", out)
    _assert_one_line_error(result, message)


@pytest.mark.parametrize("case", ["below-a-file", "unwritable"])
def test_eval_checks_out_before_loading_the_model(tmp_path, no_model_loads, case):
    out, message = _out_cases(tmp_path)[case]
    result = _invoke("eval", "--dataset", "generic", "--root", str(_generic(tmp_path)), "--model", "oracle",
                     "--out", out, "--quiet")
    _assert_one_line_error(result, message)


@pytest.mark.parametrize("case", ["below-a-file", "unwritable"])
def test_compose_checks_out_before_loading_the_models(tmp_path, no_model_loads, case):
    out, message = _out_cases(tmp_path)[case]
    out = out if case == "below-a-file" else f"{UNWRITABLE}/soup"
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b""), b.write_bytes(b"")
    result = _invoke("compose", "--model", str(a), "--model", str(b), "--architecture", "ViT-B-16", "--out", out)
    _assert_one_line_error(result, message)


@pytest.mark.parametrize("command", ["segment", "eval", "compose"])
def test_cuda_without_cuda_is_a_one_line_error_before_any_model_loads(tmp_path, no_model_loads, monkeypatch, command):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = {
        "segment": ["segment", str(_image(tmp_path)), "--model", "oracle", "--classes", "red; blue",
                    "--out", str(tmp_path / "out")],
        "eval": ["eval", "--dataset", "generic", "--root", str(_generic(tmp_path)), "--model", "oracle",
                 "--out", str(tmp_path / "out"), "--quiet"],
        "compose": ["compose", "--model", "a.pt", "--model", "b.pt", "--architecture", "ViT-B-16",
                    "--out", str(tmp_path / "soup")],
    }[command]
    result = _invoke(*args, "--device", "cuda")
    _assert_one_line_error(result, "--device cuda: CUDA is not available on this machine", "--device cpu")
    assert not (tmp_path / "out").exists() and not (tmp_path / "soup").exists()


def test_a_malformed_device_is_a_one_line_error(tmp_path, no_model_loads):
    result = _invoke("segment", str(_image(tmp_path)), "--model", "oracle", "--classes", "red; blue",
                     "--out", str(tmp_path / "out"), "--device", "gpu0")
    _assert_one_line_error(result, "'gpu0' is not a torch device")
