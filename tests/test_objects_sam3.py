"""segearth-ov3 and proc-sam3 give SAM 3's kept instances as objects (issue 24), on the tiny random
SAM 3 of resegzoo.testing: a GeoTIFF segmented with --objects gives a GeoPackage whose features,
fields, areas and per-class counts agree with the sidecar and with the instances computed here from
the model's raw outputs (every query's mask, another code path than the method's)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from click.testing import CliRunner

from resegzoo.cli import build_cli

NAMES = ["building", "road", "street", "tree"]
CLASSES = "building; road, street; tree"
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0)
#: the tiny random model scores every query about 0.25: this keeps some and drops others
THRESHOLD = 0.2525


def _image(h=40, w=52, seed=0):
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray(np.kron(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8),
                                        np.ones((10, 11, 1), dtype=np.uint8))[:h, :w])


def _recipe(tmp_path, method="segearth-ov3"):
    from resegzoo.weights.zoo import registry_dir

    path = tmp_path / f"{method}.yaml"
    base = "method-proc-sam3-no-pools" if method == "proc-sam3" else "method-segearth-ov3"  # the names as given
    path.write_text(f"base: {registry_dir() / 'recipes' / (base + '.yaml')}\n"
                    f"method: {{name: {method}, settings: {{confidence_threshold: {THRESHOLD}}}}}\n"
                    "inference: {window_placement: image}\n")
    return path


def _expected(folder, image):
    """(name, class, score, mask) of SAM 3's kept instances on one window, from the model's raw outputs
    (all queries' masks), with the per-class suppression written out here: of two masks of one class
    overlapping with IoU above 0.5, the one with the lower score goes."""
    import torch.nn.functional as F

    from resegzoo.methods.segearth_ov3.model import load_scorer

    raw = load_scorer(folder).raw_outputs(torch.from_numpy(image).permute(2, 0, 1), NAMES)
    scores = raw.pred_logits.sigmoid() * raw.presence_logits.sigmoid()[:, None]
    classes = {"building": 0, "road": 1, "street": 1, "tree": 2}
    found = []
    for i, name in enumerate(NAMES):
        for q in np.flatnonzero(scores[i].numpy() > THRESHOLD):
            up = F.interpolate(raw.pred_masks[i, q][None, None], size=image.shape[:2], mode="bilinear",
                               align_corners=False)[0, 0]
            if (up > 0).any():
                found.append((name, classes[name], float(scores[i, q]), (up > 0).numpy()))
    found.sort(key=lambda f: (-f[2], f[0]))
    kept = []
    for item in found:
        if all(other[1] != item[1] or (other[3] & item[3]).sum() / (other[3] | item[3]).sum() <= 0.5 for other in kept):
            kept.append(item)
    return kept


@pytest.mark.parametrize("method", ["segearth-ov3", "proc-sam3"])
def test_sam3_objects_in_a_geopackage_agree_with_the_sidecar_and_the_raw_outputs(tmp_path, tiny_sam3_dir, method):
    import pyogrio
    import shapely
    from rasterio.features import rasterize

    image = _image()
    src = tmp_path / "scene.tif"
    with rasterio.open(src, "w", driver="GTiff", height=40, width=52, count=3, dtype="uint8", crs="EPSG:32632",
                       transform=TRANSFORM) as dst:
        dst.write(np.moveaxis(image, -1, 0))
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), ["segment", str(src), "--recipe", str(_recipe(tmp_path, method)),
                                              "--model", f"local-dir:{tiny_sam3_dir}", "--classes", CLASSES,
                                              "--objects", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    expected = _expected(tiny_sam3_dir, image)
    assert 2 <= len(expected)  # the threshold keeps some instances (and drops others)
    meta, _, geometries, fields = pyogrio.raw.read(str(out / "scene.objects.gpkg"), layer="objects")
    rows = [dict(zip(meta["fields"], values), geometry=shapely.from_wkb(g)) for *values, g in zip(*fields, geometries)]
    assert sorted(meta["fields"]) == sorted(["object_id", "class", "class_id", "name", "score", "presence", "area"])
    assert len(rows) == len(expected)
    side = json.loads((out / "scene.json").read_text())
    counts = {name: sum(1 for e in expected if e[1] == k) for k, name in enumerate(["building", "road", "tree"])}
    assert side["objects"]["per_class"] == counts and side["objects"]["count"] == len(rows)
    assert {r["class"] for r in rows} <= set(counts) and sum(r["class"] == c for r in rows for c in counts) == len(rows)
    for row in rows:
        covered = rasterize([(row["geometry"], 1)], out_shape=(40, 52), transform=TRANSFORM, dtype="uint8").astype(bool)
        match = [e for e in expected if e[0] == row["name"] and np.array_equal(e[3], covered)]
        assert len(match) == 1, row
        assert row["score"] == pytest.approx(match[0][2], abs=1e-6) and row["score"] > THRESHOLD
        assert row["area"] == pytest.approx(covered.sum() * 0.25) and 0 < row["presence"] < 1


def test_sam3_objects_under_bf16_with_nodata_agree_with_the_sidecar(tmp_path, tiny_sam3_dir):
    """--precision bf16 (autocast: SAM 3's mask logits come back in bfloat16) on a GeoTIFF with nodata:
    objects are written, never on a nodata pixel, and the GeoPackage agrees with the sidecar."""
    import pyogrio
    import shapely
    from rasterio.features import rasterize

    image = _image()
    src = tmp_path / "scene.tif"
    data = np.moveaxis(image, -1, 0).copy()
    data[:, :, :20] = 0  # the left 20 columns: nodata
    with rasterio.open(src, "w", driver="GTiff", height=40, width=52, count=3, dtype="uint8", crs="EPSG:32632",
                       transform=TRANSFORM, nodata=0) as dst:
        dst.write(data)
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), ["segment", str(src), "--recipe", str(_recipe(tmp_path)), "--model",
                                              f"local-dir:{tiny_sam3_dir}", "--classes", CLASSES, "--objects",
                                              "--precision", "bf16", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    side = json.loads((out / "scene.json").read_text())
    meta, _, geometries, fields = pyogrio.raw.read(str(out / "scene.objects.gpkg"), layer="objects")
    rows = [dict(zip(meta["fields"], values), geometry=shapely.from_wkb(g)) for *values, g in zip(*fields, geometries)]
    assert side["objects"]["count"] == len(rows) >= 1
    assert sum(side["objects"]["per_class"].values()) == len(rows)
    for row in rows:
        covered = rasterize([(row["geometry"], 1)], out_shape=(40, 52), transform=TRANSFORM, dtype="uint8").astype(bool)
        assert covered.any() and not covered[:, :20].any(), row
        assert row["area"] == pytest.approx(covered.sum() * 0.25) and row["score"] > THRESHOLD
