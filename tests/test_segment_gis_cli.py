"""`resegzoo segment --cog --vector ...` end to end, on rasters the tests write (oracle model)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from click.testing import CliRunner
from PIL import Image
from rasterio.crs import CRS
from rasterio.features import rasterize

from gdal_helpers import category_names_and_rat
from resegzoo.cli import build_cli
from segment_helpers import COLOR_CLASSES, block_labels, paint

CLASSES = "; ".join(COLOR_CLASSES)
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0)


def run(*args: str, expect: int = 0):
    result = CliRunner().invoke(build_cli(), ["segment", *args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def _geotiff(path: Path, labels: np.ndarray) -> Path:
    bands = np.moveaxis(paint(labels), -1, 0)
    with rasterio.open(path, "w", driver="GTiff", height=labels.shape[0], width=labels.shape[1], count=3,
                       dtype="uint8", crs="EPSG:32632", transform=TRANSFORM) as dst:
        dst.write(bands)
    return path


def _read_vectors(path: Path):
    import pyogrio

    meta, _, geometry, (names, ids, areas) = pyogrio.raw.read(path)
    return meta, shapely.from_wkb(geometry), names, ids, areas


@pytest.mark.parametrize("tile", [None, "64"])
def test_geotiff_to_cog_style_and_geopackage(tmp_path, tile):
    from rio_cogeo.cogeo import cog_validate

    labels = block_labels(150, 97, cell=5, seed=3)
    src = _geotiff(tmp_path / "scene.tif", labels)
    out = tmp_path / "out"
    run(str(src), "--model", "oracle", "--masks", "none", "--classes", CLASSES, "--out", str(out), "--cog", "--vector",
        *(["--tile-size", tile] if tile else []))
    side = json.loads((out / "scene.json").read_text())
    assert side["outputs"] == {"labels": "scene.labels.tif", "overlay": "scene.overlay.png", "cog": "scene.labels.tif",
                               "attribute_table": "scene.labels.tif.aux.xml", "qgis_style": "scene.labels.qml",
                               "vector": "scene.regions.gpkg"}
    cog = out / "scene.labels.tif"
    assert cog_validate(str(cog))[0]
    with rasterio.open(cog) as dst:
        assert dst.crs == CRS.from_epsg(32632) and dst.transform == TRANSFORM
        np.testing.assert_array_equal(dst.read(1), labels)
        assert [dst.colormap(1)[k][:3] for k in range(4)] == [tuple(c) for c in side["palette"]]
    assert category_names_and_rat(cog)[0] == COLOR_CLASSES
    assert (out / "scene.labels.qml").read_text().count("<paletteEntry") == 4
    meta, geoms, names, ids, areas = _read_vectors(out / "scene.regions.gpkg")
    assert meta["crs"] == "EPSG:32632" and list(meta["fields"]) == ["class", "class_id", "area"]
    assert [COLOR_CLASSES[k] for k in ids] == list(names)
    for k in range(4):
        burnt = rasterize([(g, 1) for g, c in zip(geoms, ids) if c == k], out_shape=labels.shape, transform=TRANSFORM)
        np.testing.assert_array_equal(burnt == 1, labels == k)


def test_png_gives_pixel_coordinate_cog_and_vectors(tmp_path):
    import pyogrio

    labels = block_labels(40, 56, cell=4, seed=1)
    img = tmp_path / "photo.png"
    Image.fromarray(paint(labels)).save(img)
    out = tmp_path / "out"
    run(str(img), "--model", "oracle", "--masks", "none", "--classes", CLASSES, "--out", str(out), "--cog", "--vector")
    np.testing.assert_array_equal(np.array(Image.open(out / "photo.labels.png")), labels)
    with rasterio.open(out / "photo.labels.tif") as dst:
        assert dst.crs is None and dst.transform.is_identity
        np.testing.assert_array_equal(dst.read(1), labels)
    assert pyogrio.read_info(out / "photo.regions.gpkg")["crs"] is None
    _, geoms, _, ids, areas = _read_vectors(out / "photo.regions.gpkg")
    assert areas.sum() == labels.size  # pixel units
    burnt = rasterize([(g, int(c) + 1) for g, c in zip(geoms, ids)], out_shape=labels.shape, transform=Affine.identity())
    np.testing.assert_array_equal(burnt - 1, labels)


def test_geojson_simplified_and_filtered(tmp_path):
    import pyogrio

    labels = block_labels(80, 80, cell=4, seed=2)
    src = _geotiff(tmp_path / "s.tif", labels)
    out = tmp_path / "out"
    run(str(src), "--model", "oracle", "--masks", "none", "--classes", CLASSES, "--out", str(out), "--vector",
        "--vector-format", "geojson", "--simplify", "0.5", "--min-area", "20")
    assert pyogrio.read_info(out / "s.regions.geojson")["crs"] == "EPSG:4326"
    data = json.loads((out / "s.regions.geojson").read_text())
    assert data["features"] and min(f["properties"]["area"] for f in data["features"]) >= 20
    assert json.loads((out / "s.json").read_text())["outputs"]["vector"] == "s.regions.geojson"


def test_geojson_of_a_png_is_refused_before_any_work(tmp_path):
    img = tmp_path / "photo.png"
    Image.fromarray(paint(block_labels(16, 16, cell=4))).save(img)
    out = tmp_path / "out"
    res = run(str(img), "--model", "oracle", "--masks", "none", "--classes", CLASSES, "--out", str(out),
              "--vector", "--vector-format", "geojson", expect=2)
    assert "no CRS" in res.output and not out.exists()


def test_vector_settings_need_vector(tmp_path):
    img = tmp_path / "photo.png"
    Image.fromarray(paint(block_labels(16, 16, cell=4))).save(img)
    res = run(str(img), "--model", "oracle", "--masks", "none", "--classes", CLASSES, "--out", str(tmp_path / "o"),
              "--simplify", "1", expect=2)
    assert "--vector" in res.output


def test_colours_follow_names_not_positions(tmp_path):
    img = tmp_path / "photo.png"
    Image.fromarray(paint(block_labels(16, 16, cell=4))).save(img)
    by_name = []
    for classes in (CLASSES, "; ".join(reversed(COLOR_CLASSES))):
        out = tmp_path / classes.replace("; ", "-")
        run(str(img), "--model", "oracle", "--masks", "none", "--classes", classes, "--out", str(out))
        side = json.loads((out / "photo.json").read_text())
        by_name.append({n: tuple(c) for n, c in zip(side["class_names"], side["palette"])})
    assert by_name[0] == by_name[1]


@pytest.mark.parametrize("cog", [False, True])
def test_label_geotiff_copied_alone_keeps_its_class_names(tmp_path, cog):
    """The class names live in the .tif itself (band description, GDAL metadata in the TIFF's own
    GDAL_METADATA tag), not only in .aux.xml: a .tif copied without its sidecars still names them."""
    import shutil

    from resegzoo.outputs.gis.cog import read_label_names

    src = _geotiff(tmp_path / "scene.tif", block_labels(60, 50, cell=5, seed=4))
    out = tmp_path / "out"
    run(str(src), "--model", "oracle", "--masks", "none", "--classes", CLASSES, "--out", str(out),
        *(["--cog"] if cog else []))
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "scene.labels.tif", alone / "copied.tif")  # no .aux.xml, no .qml
    assert sorted(p.name for p in alone.iterdir()) == ["copied.tif"]
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(alone / "copied.tif") as dst:
        assert read_label_names(dst) == COLOR_CLASSES
        assert dst.tags(1) == {f"CLASS_{k}": name for k, name in enumerate(COLOR_CLASSES)}
        expected = ", ".join(f"{k} {name}" for k, name in enumerate(COLOR_CLASSES))
        assert dst.descriptions == (f"class labels: {expected}; 255 nodata",)
    assert not list(alone.glob("*.aux.xml"))  # reading did not write a sidecar either
