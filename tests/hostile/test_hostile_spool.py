"""Spooled blocks on resume (issue 26 item 6): a block in ``OUT/.resegzoo-blocks`` is used only if
it is this block's result (its core, its labels' shape and classes, its counts, its probabilities);
anything else is discarded and computed again, as unreadable blocks already were. A valid ``.npz``
with the wrong shape or labels beyond the class count used to be written into the final raster (the
sidecar's shares disagreeing); a wrong ``core`` failed on every rerun ("result of block 3 written
as block 3")."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from hostile_helpers import cli
from segment_helpers import COLOR_CLASSES, block_labels, paint

ARGS = ("--model", "oracle", "--masks", "none", "--classes", "; ".join(COLOR_CLASSES), "--window", "32",
        "--stride", "16", "--tile-size", "64")
PROBS = ("--probs", "uint8")


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    """A 100 x 100 GeoTIFF of 4 blocks, and beside it the outputs of an uninterrupted run
    (``whole/``, and ``whole-probs/`` with --probs uint8)."""
    root = tmp_path_factory.mktemp("spool-scene")
    path = root / "in" / "scene.tif"
    path.parent.mkdir()
    labels = block_labels(100, 100, cell=5, seed=1)
    with rasterio.open(path, "w", driver="GTiff", height=100, width=100, count=3, dtype="uint8", crs="EPSG:32632",
                       transform=Affine(0.5, 0, 500000.0, 0, -0.5, 5800000.0)) as dst:
        dst.write(paint(labels).transpose(2, 0, 1))
    for folder, extra in (("whole", ()), ("whole-probs", PROBS)):
        result = cli("segment", str(path), *ARGS, *extra, "--out", str(root / folder))
        assert result.exit_code == 0, result.output
    return path


def _interrupted(scene: Path, out: Path, monkeypatch, after: int, *extra: str) -> list[Path]:
    """Run until ``after`` blocks are segmented, then Ctrl-C: the spooled blocks it leaves."""
    from resegzoo.segmenter.core import Segmenter

    original, calls = Segmenter.segment, []

    def counted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > after:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Segmenter, "segment", counted)
    try:
        assert cli("segment", str(scene), *ARGS, *extra, "--out", str(out)).exit_code == 130
    finally:
        monkeypatch.setattr(Segmenter, "segment", original)
    spooled = sorted((out / ".resegzoo-blocks").rglob("*.npz"), key=lambda p: int(p.stem))
    assert len(spooled) == after
    return spooled


def _edit(path: Path, **changes) -> None:
    """Rewrite a spooled block with some arrays changed: still a valid .npz of the same names."""
    with np.load(path) as data:
        arrays = dict(data)
    for name, change in changes.items():
        arrays[name] = change(arrays[name], arrays)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _counts(labels: np.ndarray, classes: int = len(COLOR_CLASSES)) -> np.ndarray:
    return np.bincount(labels[labels != 255].ravel(), minlength=classes).astype(np.int64)


LIES = {
    "labels of another shape": dict(labels=lambda a, d: a[:-3, :-2],
                                    counts=lambda a, d: _counts(d["labels"][:-3, :-2])),
    "labels beyond the class count": dict(labels=lambda a, d: np.full_like(a, 200),
                                          counts=lambda a, d: np.zeros_like(a)),
    "counts that are not its labels'": dict(counts=lambda a, d: a[::-1].copy()),
    "another block's core": dict(core=lambda a, d: a + 1),
    "a wrong nodata count": dict(nodata_pixels=lambda a, d: a + 5),
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_spooled_block_that_lies_is_computed_again(scene, tmp_path, monkeypatch, lie):
    whole = scene.parent.parent / "whole"
    out = tmp_path / "out"
    first, second = _interrupted(scene, out, monkeypatch, after=2)
    _edit(second, **LIES[lie])
    resumed = cli("segment", str(scene), *ARGS, "--out", str(out), "--skip-existing")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming, 1 of" in resumed.output, resumed.output  # the good block is kept, the lying one redone
    with rasterio.open(out / "scene.labels.tif") as got, rasterio.open(whole / "scene.labels.tif") as ref:
        np.testing.assert_array_equal(got.read(), ref.read())
    shares = json.loads((out / "scene.json").read_text())["pixel_fraction"]
    assert shares == json.loads((whole / "scene.json").read_text())["pixel_fraction"]


def test_spooled_probabilities_of_the_wrong_shape_are_computed_again(scene, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _, second = _interrupted(scene, out, monkeypatch, 2, *PROBS)
    _edit(second, probs=lambda a, d: a[:1])
    resumed = cli("segment", str(scene), *ARGS, *PROBS, "--out", str(out), "--skip-existing")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming, 1 of" in resumed.output, resumed.output
    with rasterio.open(out / "scene.probs.tif") as got, \
            rasterio.open(scene.parent.parent / "whole-probs" / "scene.probs.tif") as ref:
        np.testing.assert_array_equal(got.read(), ref.read())


def test_a_spool_other_users_can_write_is_not_resumed_from(scene, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _interrupted(scene, out, monkeypatch, after=2)
    (out / ".resegzoo-blocks").chmod(0o777)
    resumed = cli("segment", str(scene), *ARGS, "--out", str(out), "--skip-existing")
    assert resumed.exit_code == 0, resumed.output
    assert "are not used (computed again)" in resumed.output and "writable by every user" in resumed.output
    assert "resuming" not in resumed.output
