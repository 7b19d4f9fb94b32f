"""Races (issue 17, item 8): two runs that write the same output at the same time, as real processes.

The first run is paused inside its work (while it writes the weights, after every check of the
output) by a wrapper that waits for a file; the second run then goes from start to end while the first is paused. The
second must not write anything: a one-line error, and the first run's result is the one that stays.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from safetensors.torch import save_file

import resegzoo
from resegzoo.outputs.atomic import temporaries
from resegzoo.testing import TINY_MODEL_CONFIG, make_tiny_clip

#: runs the real CLI in a new process; with PAUSE_AT set, ``merge_tensors`` of the composer (the
#: weights being written, after every check of the output) waits until the file GO exists
_COMPOSE = textwrap.dedent("""
    import os, sys, time
    if os.environ.get("PAUSE_AT"):
        import resegzoo.compose.composer as composer

        real = composer.merge_tensors

        def paused(*args, **kwargs):
            open(os.environ["PAUSE_AT"], "w").close()
            while not os.path.exists(os.environ["GO"]):
                time.sleep(0.05)
            return real(*args, **kwargs)

        composer.merge_tensors = paused
    from resegzoo.cli import main
    sys.argv = ["resegzoo", *sys.argv[1:]]
    main()
""")


def _model_folder(folder: Path, seed: int) -> Path:
    folder.mkdir(parents=True)
    model = make_tiny_clip(seed)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_MODEL_CONFIG}))
    return folder


def _compose(tmp_path: Path, model: Path, out: Path, **env: str) -> subprocess.Popen:
    paths = [str(Path(resegzoo.__file__).parents[1]), *sys.path]
    return subprocess.Popen(
        [sys.executable, "-c", _COMPOSE, "compose", "--model", str(model), "--out", str(out)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths), "HF_HUB_OFFLINE": "1", **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the first run ended before its pause: {proc.communicate()}")
        assert time.monotonic() < end, "the first run never reached its work"
        time.sleep(0.05)


def test_two_composes_into_one_out_never_replace_each_other(tmp_path):
    first_model = _model_folder(tmp_path / "a", seed=1)
    second_model = _model_folder(tmp_path / "b", seed=2)
    out = tmp_path / "soup"
    paused, go = tmp_path / "paused", tmp_path / "go"
    first = _compose(tmp_path, first_model, out, PAUSE_AT=str(paused), GO=str(go))
    try:
        _wait_for(paused, first)
        # the first run has checked --out and is working: a second run into the same --out now
        second = _compose(tmp_path, second_model, out)
        stdout, stderr = second.communicate(timeout=300)
    finally:
        go.touch()
        first_out, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert "wrote " in first_out
    assert second.returncode == 1, (stdout, stderr)
    assert "wrote " not in stdout
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    assert str(out) in errors[0] and "another resegzoo compose" in errors[0], errors[0]
    # the folder holds the first run's model (its only input), not the second's
    from resegzoo.compose import read_metadata

    assert [i["label"] for i in read_metadata(out)["inputs"]] == ["a"]
    assert not temporaries(tmp_path)
    assert not list(tmp_path.glob(".*claim")), "the claim is released"
