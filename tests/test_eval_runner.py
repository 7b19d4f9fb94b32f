"""The run folder: atomic per-image results, and refusing to mix or trust damaged results."""
from __future__ import annotations

import json

import numpy as np
import pytest

from resegzoo.api import load_recipe
from resegzoo.outputs import atomic
from resegzoo.eval.datasets import DatasetError
from resegzoo.eval.datasets.generic import load_classes_file, open_generic
from resegzoo.eval.runner import EvalRun, RunSpec
from resegzoo.eval.synthetic import write_dataset


class PerfectSegmenter:
    """Stands in for the model: returns the ground truth, so only the bookkeeping is tested."""

    def __init__(self, dataset):
        self.truth = {}
        for sample in dataset:
            image, label = dataset.load(sample)
            self.truth[image.tobytes()] = np.where(label == 255, 0, label)

    def segment(self, image, vocab):
        class Result:
            labels = self.truth[image.tobytes()]
            background_index = None
        return Result()


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes: [red, green, blue]\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, lambda n: {"red": (255, 0, 0),
                  "green": (0, 255, 0), "blue": (0, 0, 255)}[n], images=3)
    return open_generic(root)


def spec(**inference):
    return RunSpec(label="perfect", recipe=load_recipe(None, inference={"window": 32, **inference}),
                   model="oracle", masks="none")


def test_crash_while_writing_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "cm.npy"
    atomic.save_npy(target, np.arange(4))

    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic.save_npy(target, np.zeros(4))
    np.testing.assert_array_equal(np.load(target), np.arange(4))
    assert [p.name for p in tmp_path.iterdir()] == ["cm.npy"]


def test_finished_run_scores_every_image_and_other_settings_get_another_folder(tmp_path, dataset):
    first = EvalRun(dataset, spec(), tmp_path / "out")
    result = first.run(lambda s: PerfectSegmenter(dataset), progress=False)
    assert result.images == 3 and result.newly_done == 3 and result.scores.miou == 1.0
    assert sorted(p.name for p in first.confusion_dir.iterdir()) == ["img_0.npy", "img_1.npy", "img_2.npy"]
    other = EvalRun(dataset, spec(stride=8), tmp_path / "out")
    assert other.run_dir != first.run_dir and other.key != first.key

    def must_not_build(_spec):
        raise AssertionError("a finished run must not load the model again")

    again = EvalRun(dataset, spec(), tmp_path / "out").run(must_not_build, progress=False)
    assert again.newly_done == 0 and (again.confusion == result.confusion).all()


def test_tampered_settings_or_damaged_results_are_refused_with_advice(tmp_path, dataset):
    run = EvalRun(dataset, spec(), tmp_path / "out")
    run.run(lambda s: PerfectSegmenter(dataset), progress=False)
    (run.confusion_dir / "img_1.npy").write_bytes(b"not a numpy file")
    with pytest.raises(DatasetError, match="img_1.npy: unreadable per-image result .*delete it"):
        EvalRun(dataset, spec(), tmp_path / "out").run(lambda s: PerfectSegmenter(dataset), progress=False)
    settings = json.loads((run.run_dir / "settings.json").read_text())
    settings["model"] = "something-else"
    (run.run_dir / "settings.json").write_text(json.dumps(settings))
    with pytest.raises(DatasetError, match="holds results of other settings"):
        EvalRun(dataset, spec(), tmp_path / "out").run(lambda s: PerfectSegmenter(dataset), progress=False)
