"""`resegzoo segment` writes each input's outputs as a unit and never clobbers another run's
(issue 8, items 9, 10 and 16): name claims, sidecar last, --skip-existing, --continue-on-error,
and a model random by design says so."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from resegzoo.outputs import imageio
from resegzoo.cli import build_cli
from segment_helpers import COLOR_CLASSES, block_labels, paint

CLASSES = "; ".join(COLOR_CLASSES)
ORACLE = ["--model", "oracle", "--masks", "none", "--classes", CLASSES]


def segment(*args: str):
    return CliRunner().invoke(build_cli(), ["segment", *args], catch_exceptions=False)


def _pngs(folder: Path, n: int) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img{i}.png"
        Image.fromarray(paint(block_labels(20, 24, cell=4, seed=i))).save(path)
        paths.append(path)
    return paths


def _names(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def _claim_of(pid: int) -> str:
    """What a claim file of process ``pid`` on this host holds (start time unknown: 0)."""
    from resegzoo.outputs.atomic import owner_tag

    return f"{owner_tag().split('-')[0]}-{pid}-0"


def _unit(stem: str) -> list[str]:
    return [f"{stem}.json", f"{stem}.labels.png", f"{stem}.overlay.png"]


@pytest.fixture
def segment_calls(monkeypatch):
    """Counts Segmenter.segment calls; ``hooks[n]`` runs before the n-th call (1-based)."""
    from resegzoo.segmenter.core import Segmenter

    original = Segmenter.segment
    calls: list[int] = []
    hooks: dict[int, object] = {}

    def counted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) in hooks:
            hooks[len(calls)]()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Segmenter, "segment", counted)
    return calls, hooks


# -- item 9: claims --------------------------------------------------------------------------------


def test_a_second_run_into_the_same_folder_gets_dash_2_and_never_replaces_the_first(tmp_path, segment_calls):
    calls, hooks = segment_calls
    (img,) = _pngs(tmp_path / "in", 1)
    out = tmp_path / "out"
    second = {}

    def start_the_second_run():  # while the first run is segmenting img0
        hooks.clear()
        second["result"] = segment(str(img), *ORACLE[:-1], "red; blue; green; yellow; gray", "--out", str(out))

    hooks[1] = start_the_second_run
    first = segment(str(img), *ORACLE, "--out", str(out))
    assert first.exit_code == 0 and second["result"].exit_code == 0, first.output + second["result"].output
    assert _names(out) == sorted(_unit("img0") + _unit("img0-2"))
    # each unit is its own run's, whole: the first run's classes in img0, the second's in img0-2
    assert json.loads((out / "img0.json").read_text())["class_names"] == COLOR_CLASSES
    assert json.loads((out / "img0-2.json").read_text())["class_names"] == COLOR_CLASSES + ["gray"]


def test_a_live_claim_by_another_process_is_respected(tmp_path):
    (img,) = _pngs(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".img0.claim").write_text(_claim_of(other.pid))
        assert segment(str(img), *ORACLE, "--out", str(out)).exit_code == 0
        assert _names(out) == sorted([".img0.claim"] + _unit("img0-2"))
    finally:
        other.kill()
        other.wait()


def test_concurrent_processes_each_get_their_own_names(tmp_path):
    inputs = _pngs(tmp_path / "in", 3)
    out = tmp_path / "out"
    script = "from resegzoo.cli import main; main()"
    procs = [subprocess.Popen([sys.executable, "-c", script, "segment", *map(str, inputs), *ORACLE[:-1],
                               CLASSES + ("; gray" if k else ""), "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for k in range(2)]
    for p in procs:
        output = p.communicate(timeout=300)[0].decode()
        assert p.returncode == 0, output
    sidecars = sorted(out.glob("*.json"))
    assert len(sidecars) == 6 and not list(out.glob(".*"))  # 2 runs x 3 inputs, no claim left
    classes = sorted(len(json.loads(s.read_text())["class_names"]) for s in sidecars)
    assert classes == [4, 4, 4, 5, 5, 5]


# -- item 10: units, resume, continue-on-error -------------------------------------------------------


def test_the_sidecar_is_written_last(tmp_path, monkeypatch):
    (img,) = _pngs(tmp_path / "in", 1)
    out = tmp_path / "out"
    original = imageio.write_json
    seen = {}

    def spy(path, data):
        seen["before_sidecar"] = _names(out)
        original(path, data)

    monkeypatch.setattr(imageio, "write_json", spy)
    assert segment(str(img), *ORACLE, "--out", str(out)).exit_code == 0
    assert seen["before_sidecar"] == [".img0.claim", "img0.labels.png", "img0.overlay.png"]
    assert _names(out) == sorted(_unit("img0"))


def test_an_interrupted_input_leaves_nothing_half_written(tmp_path, monkeypatch):
    inputs = _pngs(tmp_path / "in", 2)
    out = tmp_path / "out"

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    original = imageio.write_overlay
    monkeypatch.setattr(imageio, "write_overlay",
                        lambda path, *a, **k: ctrl_c() if path.name.startswith("img1") else original(path, *a, **k))
    result = segment(*map(str, inputs), *ORACLE, "--out", str(out))
    assert result.exit_code == 130
    assert _names(out) == _unit("img0")  # img1's labels, written before the overlay, are gone


def test_a_killed_run_s_leftovers_are_taken_back_not_duplicated(tmp_path):
    (img,) = _pngs(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".img0.claim").write_text(_claim_of(dead.pid))  # the run that held it was SIGKILLed
    (out / "img0.labels.png").write_bytes(b"half a PNG")
    assert segment(str(img), *ORACLE, "--out", str(out)).exit_code == 0
    assert _names(out) == sorted(_unit("img0"))
    np.testing.assert_array_equal(np.array(Image.open(out / "img0.labels.png")), block_labels(20, 24, cell=4, seed=0))


def test_a_finished_unit_whose_claim_outlived_its_run_is_kept(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (img_a,), (img_b,) = _pngs(a, 1), _pngs(b, 1)
    out = tmp_path / "out"
    assert segment(str(img_a), *ORACLE, "--out", str(out)).exit_code == 0
    finished = {name: (out / name).read_bytes() for name in _unit("img0")}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".img0.claim").write_text(_claim_of(dead.pid))  # killed between its sidecar and releasing the claim
    assert segment(str(img_b), *ORACLE, "--out", str(out)).exit_code == 0
    assert _names(out) == sorted(_unit("img0") + _unit("img0-2"))
    assert {name: (out / name).read_bytes() for name in _unit("img0")} == finished


def test_skip_existing_resumes_a_killed_batch_and_reruns_nothing(tmp_path, segment_calls):
    calls, hooks = segment_calls
    inputs = _pngs(tmp_path / "in", 3)
    out = tmp_path / "out"

    def ctrl_c():
        raise KeyboardInterrupt

    hooks[2] = ctrl_c
    assert segment(*map(str, inputs), *ORACLE, "--out", str(out)).exit_code == 130
    assert _names(out) == sorted(_unit("img0"))
    calls.clear(), hooks.clear()
    resumed = segment(*map(str, inputs), *ORACLE, "--out", str(out), "--skip-existing")
    assert resumed.exit_code == 0, resumed.output
    assert len(calls) == 2 and "img0.png: skipped" in resumed.output
    assert _names(out) == sorted(_unit("img0") + _unit("img1") + _unit("img2"))
    calls.clear()
    assert segment(*map(str, inputs), *ORACLE, "--out", str(out), "--skip-existing").exit_code == 0
    assert not calls
    # other settings are not "existing": they are computed, into new names
    assert segment(str(inputs[0]), *ORACLE, "--out", str(out), "--skip-existing", "--window", "16").exit_code == 0
    assert len(calls) == 1 and (out / "img0-2.json").is_file()
    # asking for GIS outputs the finished unit lacks is another setting too
    calls.clear()
    assert segment(str(inputs[1]), *ORACLE, "--out", str(out), "--skip-existing", "--vector").exit_code == 0
    assert len(calls) == 1 and (out / "img1-2.regions.gpkg").is_file() and not (out / "img1.regions.gpkg").exists()
    # a sidecar of another input under the same name is not this input's result
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(paint(block_labels(20, 24, cell=2, seed=9))).save(other / "img1.png")
    calls.clear()
    assert segment(str(other / "img1.png"), *ORACLE, "--out", str(out), "--skip-existing").exit_code == 0
    assert len(calls) == 1 and (out / "img1-3.json").is_file()


def test_continue_on_error_reports_bad_inputs_at_the_end_and_writes_the_rest(tmp_path):
    good = _pngs(tmp_path / "in", 2)
    unreadable = tmp_path / "in" / "broken.png"
    unreadable.write_bytes(b"")
    tiny = tmp_path / "in" / "tiny.png"  # readable, but too small to segment (fails mid-way)
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tiny)
    out = tmp_path / "out"
    args = [str(good[0]), str(unreadable), str(tiny), str(good[1]), *ORACLE, "--out", str(out)]
    result = segment(*args, "--continue-on-error")
    assert result.exit_code == 1, result.output
    assert "2 of 4 input(s) failed" in result.output and "Traceback" not in result.output
    assert f"failed: {unreadable}" in result.output and f"failed: {tiny}" in result.output
    assert _names(out) == sorted(_unit("img0") + _unit("img1"))
    stopped = segment(*args[1:], "--out", str(tmp_path / "out2"))  # without the flag: the first bad input stops it
    assert stopped.exit_code != 0


# -- item 16: a model random by design says so ------------------------------------------------------


def _legend_note_pixels(overlay: Path, image_width: int, classes: int) -> int:
    """Non-white pixels below the legend's class rows (where a note is drawn)."""
    legend = np.array(Image.open(overlay).convert("RGB"))[:, image_width:]
    below = legend[4 + 16 * classes:]
    return int((below != 255).any(axis=-1).sum())


def test_a_random_model_says_so_in_console_sidecar_and_overlay(tmp_path):
    (img,) = _pngs(tmp_path / "in", 1)
    out, ref = tmp_path / "out", tmp_path / "ref"
    result = segment(str(img), "--model", "example-tiny", "--masks", "slic", "--classes", "road; tree",
                     "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "RANDOM weights by design" in result.output
    side = json.loads((out / "img0.json").read_text())
    assert side["random_weights"] is True and any("RANDOM weights" in n for n in side["notes"])
    assert _legend_note_pixels(out / "img0.overlay.png", 24, 2) > 20
    # a real (non-random) model: no note anywhere
    result = segment(str(img), "--model", "oracle", "--masks", "none", "--classes", "red; blue", "--out", str(ref))
    assert "RANDOM" not in result.output
    side = json.loads((ref / "img0.json").read_text())
    assert side["random_weights"] is False and side["notes"] == []
    assert _legend_note_pixels(ref / "img0.overlay.png", 24, 2) == 0


def test_random_weights_is_a_declared_property_not_a_name_check():
    from resegzoo.plugins.registry import get_registry

    variants = get_registry().variants
    assert variants.get("example-tiny").random_weights is True
    assert not any(variants.get(name).random_weights for name in variants if name != "example-tiny")
