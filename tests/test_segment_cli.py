"""`resegzoo segment` end to end: PNG, GeoTIFF (whole and tile by tile), 16-bit, bad inputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from PIL import Image
from rasterio.crs import CRS
from affine import Affine

from resegzoo.cli import build_cli
from segment_helpers import COLOR_CLASSES, block_labels, paint

CLASSES = "; ".join(COLOR_CLASSES)


def run(*args: str, expect: int = 0):
    result = CliRunner().invoke(build_cli(), ["segment", *args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def _png(path: Path, labels: np.ndarray) -> Path:
    Image.fromarray(paint(labels)).save(path)
    return path


def _geotiff(path: Path, bands: np.ndarray, crs="EPSG:32632") -> tuple[Path, object]:
    transform = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0)
    with rasterio.open(path, "w", driver="GTiff", height=bands.shape[1], width=bands.shape[2],
                       count=bands.shape[0], dtype=bands.dtype, crs=crs, transform=transform) as dst:
        dst.write(bands)
    return path, transform


def test_png_round_trip_and_outputs(tmp_path):
    labels = block_labels(45, 70, cell=3, seed=1)
    img = _png(tmp_path / "scene.png", labels)
    out = tmp_path / "out"
    res = run(str(img), "--model", "oracle", "--masks", "none", "--classes", CLASSES, "--out", str(out),
              "--window", "16", "--stride", "6")
    assert "scene.labels.png" in res.output
    lab_img = Image.open(out / "scene.labels.png")
    assert lab_img.mode == "P"
    np.testing.assert_array_equal(np.array(lab_img), labels)
    side = json.loads((out / "scene.json").read_text())
    assert side["class_names"] == COLOR_CLASSES and side["model"] == "oracle" and side["masks"] == "none"
    assert side["recipe"]["inference"]["window"] == 16 and side["stretch"] is None
    assert len(side["palette"]) == 4 and side["crs"] is None
    # palette of the PNG = the sidecar's palette
    assert lab_img.getpalette()[:12] == [c for rgb in side["palette"] for c in rgb]
    overlay = Image.open(out / "scene.overlay.png")
    assert overlay.size[1] >= 45 and overlay.size[0] > 70  # image + legend strip


def test_background_threshold_from_the_command_line(tmp_path):
    labels = block_labels(20, 24, cell=4, num_classes=3)
    img = tmp_path / "bg.png"
    Image.fromarray(paint(labels, ["red", "blue", "gray"])).save(img)  # gray: no class of its own
    out = tmp_path / "out"
    run(str(img), "--model", "oracle", "--masks", "none", "--classes", "red; blue", "--background-threshold", "0.9",
        "--out", str(out))
    np.testing.assert_array_equal(np.array(Image.open(out / "bg.labels.png")), labels)
    side = json.loads((out / "bg.json").read_text())
    assert side["class_names"] == ["red", "blue", "background"] and side["palette"][2] == [0, 0, 0]


def test_outputs_never_overwrite(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    labels = block_labels(20, 24, cell=4)
    _png(a / "x.png", labels), _png(b / "x.png", labels[::-1].copy())
    out = tmp_path / "out"
    run(str(a), str(b / "x.png"), "--model", "oracle", "--masks", "none", "--classes", CLASSES, "--out", str(out))
    np.testing.assert_array_equal(np.array(Image.open(out / "x.labels.png")), labels)
    np.testing.assert_array_equal(np.array(Image.open(out / "x-2.labels.png")), labels[::-1])
    run(str(a / "x.png"), "--model", "oracle", "--masks", "none", "--classes", CLASSES, "--out", str(out))
    assert (out / "x-3.labels.png").exists() and json.loads((out / "x-3.json").read_text())["input"].endswith("x.png")
    run(str(b / "x.png"), "--overwrite", "--model", "oracle", "--masks", "none", "--classes", CLASSES, "--out", str(out))
    np.testing.assert_array_equal(np.array(Image.open(out / "x.labels.png")), labels[::-1])
    assert not (out / "x-4.json").exists()


@pytest.mark.parametrize("tile, short_side", [(None, None), ("64", None), ("64", "194")])
def test_geotiff_keeps_georeferencing_whole_and_tiled(tmp_path, tile, short_side):
    labels = block_labels(150, 97, cell=5, seed=3)
    src, transform = _geotiff(tmp_path / "scene.tif", np.moveaxis(paint(labels), -1, 0))
    out = tmp_path / "out"
    args = [str(src), "--model", "oracle", "--masks", "none", "--classes", CLASSES, "--out", str(out)]
    # tiled and resized (x2, every tile by the whole raster's factor): still pixel-exact
    run(*args, *(["--tile-size", tile] if tile else []), *(["--short-side", short_side] if short_side else []))
    with rasterio.open(out / "scene.labels.tif") as dst:
        assert dst.crs == CRS.from_epsg(32632) and dst.transform == transform
        assert dst.count == 1 and dst.dtypes[0] == "uint8"
        np.testing.assert_array_equal(dst.read(1), labels)
        assert dst.colormap(1)[1][:3] == tuple(json.loads((out / "scene.json").read_text())["palette"][1])
    side = json.loads((out / "scene.json").read_text())
    assert side["tiled"] is bool(tile) and side["crs"] == "EPSG:32632"
    assert side["transform"] == list(transform)[:6]
    assert abs(sum(side["pixel_fraction"].values()) - 1) < 1e-4
    assert (out / "scene.overlay.png").exists()


def test_sixteen_bit_bands_are_stretched_and_reported(tmp_path):
    labels = block_labels(40, 50, cell=5, seed=4)
    rgb = paint(labels).astype(np.uint16) * 4  # 0 / 1020: a 2-98 % stretch maps back to 0 / 255
    nir = np.full((1, 40, 50), 77, np.uint16)
    stack = np.concatenate([rgb[..., ::-1].transpose(2, 0, 1), nir])  # stored as B, G, R, NIR
    src, _ = _geotiff(tmp_path / "s2.tif", stack)
    out = tmp_path / "out"
    res = run(str(src), "--bands", "3,2,1", "--model", "oracle", "--masks", "none", "--classes", CLASSES,
              "--out", str(out))
    assert "percentile stretch" in res.output
    with rasterio.open(out / "s2.labels.tif") as dst:
        np.testing.assert_array_equal(dst.read(1), labels)
    side = json.loads((out / "s2.json").read_text())
    assert side["stretch"]["percentiles"] == [2.0, 98.0] and side["bands"] == [3, 2, 1]
    assert side["source_dtype"] == "uint16"


def test_tiny_clip_with_slic_end_to_end(tmp_path, tiny_clip):
    # a real (tiny, random) open_clip model in open_clip's folder layout, SLIC segments
    from safetensors.torch import save_file

    from resegzoo.testing import TINY_MODEL_CONFIG

    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_MODEL_CONFIG,
                                                              "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in tiny_clip.state_dict().items()}, folder / "open_clip_model.safetensors")
    img = _png(tmp_path / "rgb.png", block_labels(70, 90, cell=10))
    out = tmp_path / "out"
    run(str(img), "--model", f"local-dir:{folder}", "--masks", "slic", "--classes", "building; road, street; tree",
        "--out", str(out))
    labels = np.array(Image.open(out / "rgb.labels.png"))
    assert labels.shape == (70, 90) and labels.max() <= 2
    side = json.loads((out / "rgb.json").read_text())
    assert side["encoder"]["schedule"][-6:] == ["segment:0", "segment:1", "segment:2", "segment:3",
                                                "neighbor:0", "neighbor:0"]
    assert side["encoder"]["image_size"] == 64 and side["masks"] == "slic"


@pytest.mark.parametrize("case", ["not-an-image", "empty-classes", "empty-name", "one-pixel", "missing-model",
                                  "bands-out-of-range", "both-class-options", "unknown-masks", "bad-templates",
                                  "bad-threshold"])
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, case):
    good = _png(tmp_path / "good.png", block_labels(20, 20, cell=4))
    out = tmp_path / "out"
    args = [str(good), "--model", "oracle", "--masks", "none", "--classes", CLASSES]
    expect = {
        "not-an-image": "not a readable image",
        "empty-classes": "class list is empty",
        "empty-name": "class 2 has an empty name",
        "one-pixel": "at least 2x2",
        "missing-model": "cannot load model",
        "bands-out-of-range": "has 3 band(s)",
        "both-class-options": "exactly one of --classes",
        "unknown-masks": "unknown mask generator",
        "bad-templates": "neither a template set",
        "bad-threshold": "background_threshold must be in (0, 1)",
    }[case]
    if case == "not-an-image":
        bad = tmp_path / "notes.png"
        bad.write_text("this is not a picture")
        args[0] = str(bad)
    elif case == "empty-classes":
        args[-1] = " ; "
    elif case == "empty-name":
        args[-1] = "red;;blue"
    elif case == "one-pixel":
        Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
        args[0] = str(tmp_path / "dot.png")
    elif case == "missing-model":
        args[2] = str(tmp_path / "no-such-model.pt")
    elif case == "bands-out-of-range":
        args += ["--bands", "4,3,2"]
    elif case == "both-class-options":
        (tmp_path / "v.txt").write_text("red\n")
        args += ["--vocab", str(tmp_path / "v.txt")]
    elif case == "unknown-masks":
        args[4] = "slick"
    elif case == "bad-templates":
        args += ["--templates", "imagenett"]
    elif case == "bad-threshold":
        args += ["--background-threshold", "2"]
    result = CliRunner().invoke(build_cli(), ["segment", *args, "--out", str(out)])
    assert result.exit_code != 0
    assert expect in result.output, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (AttributeError, TypeError))
    assert not out.exists()  # nothing written, not even the folder


def test_help_explains_every_option():
    res = run("--help")
    for opt in ["--classes", "--vocab", "--model", "--masks", "--recipe", "--out", "--device", "--bands",
                "--arch", "--window", "--stride", "--short-side", "--tile-size", "--templates",
                "--background-threshold", "--overwrite"]:
        assert opt in res.output
