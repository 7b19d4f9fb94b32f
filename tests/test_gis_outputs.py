"""GIS products from a label raster: COG (validity, colour table, mode overviews, names read back by
GDAL, QGIS style), polygons (exact coverage, seamless strip-wise vectorisation, CRS, GeoJSON)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize, shapes
from shapely.geometry import shape

from gdal_helpers import category_names_and_rat
from resegzoo.outputs.colours import palette_for_names
from resegzoo.outputs.gis import NODATA_LABEL, GisError
from resegzoo.outputs.gis.cog import write_cog
from resegzoo.outputs.gis.style import qml_text, write_qml
from resegzoo.outputs.gis.vector import vectorize, write_regions

NAMES = ["building", "水体", "Лес", "حقل"]  # Latin, CJK, Cyrillic, Arabic class names
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0)
ROTATED = Affine(0.4, 0.1, 500000.0, 0.3, -0.4, 5800000.0)  # a rotated, sheared grid


def blob_labels(height: int, width: int, num_classes: int = 4, seed: int = 0, smooth: float = 4.0) -> np.ndarray:
    """Irregular regions (with holes, pinches and long shapes) from smoothed noise, as uint8 classes."""
    from skimage.filters import gaussian

    rng = np.random.default_rng(seed)
    noise = rng.random((num_classes, height, width))
    return np.argmax(np.stack([gaussian(n, smooth) for n in noise]), axis=0).astype(np.uint8)


def write_labels(path: Path, labels: np.ndarray, crs="EPSG:32632", transform=TRANSFORM, nodata=NODATA_LABEL,
                 blocksize: int | None = None) -> Path:
    profile = {"driver": "GTiff", "height": labels.shape[0], "width": labels.shape[1], "count": 1, "dtype": "uint8",
               "nodata": nodata}
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    if blocksize:
        profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(labels, 1)
    return path


# -- COG -----------------------------------------------------------------------------------------
def test_cog_is_valid_with_colours_names_and_mode_overviews(tmp_path):
    from rio_cogeo.cogeo import cog_validate

    # every 2x2 block: three pixels of class 1, one of class 2 at a position that cycles; an
    # average or nearest-neighbour overview would show class 2 somewhere, the mode never does
    h, w = 1200, 1100
    labels = np.ones((h, w), np.uint8)
    yy, xx = np.mgrid[0:h:2, 0:w:2]
    pos = (yy // 2 + xx // 2) % 4
    labels[yy + pos // 2, xx + pos % 2] = 2
    labels[:40, :60] = NODATA_LABEL
    src = write_labels(tmp_path / "scene.labels.tif", labels)
    palette = palette_for_names(NAMES)
    cog, aux = write_cog(src, src, NAMES, palette)  # replaces the plain GeoTIFF
    assert cog == src and aux.name == "scene.labels.tif.aux.xml"
    valid, errors, _ = cog_validate(str(cog))
    assert valid, errors
    with rasterio.open(cog) as dst:
        assert dst.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert dst.compression.name.lower() == "deflate" and dst.block_shapes[0] == (512, 512)
        assert dst.crs == CRS.from_epsg(32632) and dst.transform == TRANSFORM and dst.nodata == NODATA_LABEL
        np.testing.assert_array_equal(dst.read(1), labels)
        cmap = dst.colormap(1)
        assert [cmap[k][:3] for k in range(len(NAMES))] == palette and cmap[NODATA_LABEL][3] == 0
        assert dst.overviews(1)[0] == 2
    with rasterio.open(cog, overview_level=0) as ovr:
        first = ovr.read(1)
        assert set(np.unique(first[20:, 30:])) == {1}
    names, columns, rows, table_type = category_names_and_rat(cog)
    assert names == NAMES
    assert table_type == 0  # GRTT_THEMATIC
    assert [c for c, _ in columns] == ["Value", "Class", "Red", "Green", "Blue", "Alpha"]
    assert [u for _, u in columns] == [5, 2, 6, 7, 8, 9]  # GFU_MinMax, GFU_Name, GFU_Red..Alpha
    assert rows == [[str(k), n, *map(str, palette[k]), "255"] for k, n in enumerate(NAMES)]


def test_cog_of_a_png_label_map_is_in_pixel_coordinates(tmp_path):
    from PIL import Image
    from rio_cogeo.cogeo import cog_validate

    labels = blob_labels(64, 80, seed=2)
    png = tmp_path / "x.labels.png"
    Image.fromarray(labels).save(png)
    cog, _ = write_cog(png, tmp_path / "x.labels.tif", NAMES, palette_for_names(NAMES))
    assert cog_validate(str(cog))[0]
    with rasterio.open(cog) as dst:
        assert dst.crs is None and dst.transform.is_identity
        np.testing.assert_array_equal(dst.read(1), labels)
    assert category_names_and_rat(cog)[0] == NAMES


def test_cog_refuses_what_is_not_a_label_raster(tmp_path):
    path = tmp_path / "rgb.tif"
    with rasterio.open(path, "w", driver="GTiff", height=8, width=8, count=3, dtype="uint8") as dst:
        dst.write(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(GisError, match="one uint8 band"):
        write_cog(path, tmp_path / "c.tif", NAMES, palette_for_names(NAMES))


def test_qml_is_a_paletted_qgis_style_with_the_classes(tmp_path):
    names = [*NAMES, 'quote " & <tag>']
    palette = palette_for_names(names)
    path = write_qml(tmp_path / "x.labels.qml", names, palette)
    root = ET.parse(path).getroot()
    assert root.tag == "qgis"
    renderer = root.find("pipe/rasterrenderer")
    assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
    entries = renderer.findall("colorPalette/paletteEntry")
    assert [(int(e.get("value")), e.get("label")) for e in entries] == list(enumerate(names))
    assert [e.get("color") for e in entries] == ["#%02x%02x%02x" % rgb for rgb in palette]
    assert qml_text(names, palette).startswith("<!DOCTYPE qgis")


# -- vectors -------------------------------------------------------------------------------------
def _whole_raster_polygons(labels: np.ndarray, transform: Affine) -> list[tuple[int, object]]:
    """The reference: rasterio.features.shapes over the whole array at once."""
    return [(int(v), shape(g)) for g, v in shapes(labels, mask=labels != NODATA_LABEL, transform=transform)]


def _signature(items) -> list[tuple[int, float, tuple]]:
    return sorted((int(k), round(g.area, 6), tuple(round(b, 6) for b in g.bounds)) for k, g in items)


@pytest.mark.parametrize("strip_rows", [1, 7, 50])
def test_strip_wise_vectors_equal_whole_raster_vectors(tmp_path, strip_rows):
    labels = blob_labels(150, 130, seed=1)
    labels[60:75, 20:90] = NODATA_LABEL  # a nodata band across several strips
    path = write_labels(tmp_path / "l.tif", labels, transform=ROTATED)
    regions = vectorize(path, NAMES, strip_rows=strip_rows)
    reference = _whole_raster_polygons(labels, ROTATED)
    # many regions really cross strip edges (pixel rows), so the merging is exercised
    spans = [shape(g).bounds for g, _ in shapes(labels, mask=labels != NODATA_LABEL)]
    assert sum(int(y0) // strip_rows != (int(y1) - 1) // strip_rows for _, y0, _, y1 in spans) > 10
    assert len(regions) == len(reference)
    assert _signature(zip(regions.class_ids, regions.geometries)) == _signature(reference)
    for k in range(len(NAMES)):
        mine = shapely.union_all([g for c, g in zip(regions.class_ids, regions.geometries) if c == k])
        theirs = shapely.union_all([g for c, g in reference if c == k])
        assert shapely.symmetric_difference(mine, theirs).area < 1e-6
    assert NODATA_LABEL not in set(regions.class_ids.tolist())


def test_polygons_cover_exactly_the_class_pixels_in_the_geopackage(tmp_path):
    import pyogrio

    labels = blob_labels(90, 110, seed=3)
    labels[:10, :] = NODATA_LABEL
    path = write_labels(tmp_path / "l.tif", labels, blocksize=32)
    regions = vectorize(path, NAMES, strip_rows=16)
    gpkg = write_regions(tmp_path / "l.regions.gpkg", regions)
    info = pyogrio.read_info(gpkg)
    assert info["layer_name"] == "regions" and info["crs"] == "EPSG:32632" and info["geometry_type"] == "Polygon"
    assert list(info["fields"]) == ["class", "class_id", "area"] and info["features"] == len(regions)
    meta, _, geometry, fields = pyogrio.raw.read(gpkg)
    names, ids, areas = fields
    geoms = shapely.from_wkb(geometry)
    assert [NAMES[k] for k in ids] == list(names)
    np.testing.assert_allclose(areas, shapely.area(geoms))
    for k in range(len(NAMES)):
        burnt = rasterize([(g, 1) for g, c in zip(geoms, ids) if c == k], out_shape=labels.shape,
                          transform=TRANSFORM, fill=0, dtype="uint8")
        np.testing.assert_array_equal(burnt == 1, labels == k)  # exactly the class-k pixels
    assert np.isclose(areas.sum(), (labels != NODATA_LABEL).sum() * 0.25)


def test_geojson_is_rfc7946_in_wgs84(tmp_path):
    import pyogrio
    from rasterio.warp import transform as reproject_points

    labels = blob_labels(40, 50, seed=4)
    path = write_labels(tmp_path / "l.tif", labels)
    regions = vectorize(path, NAMES)
    out = write_regions(tmp_path / "l.regions.geojson", regions, "geojson")
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["type"] == "FeatureCollection" and "crs" not in data  # RFC 7946: no crs member
    assert pyogrio.read_info(out)["crs"] == "EPSG:4326"
    assert {f["properties"]["class"] for f in data["features"]} <= set(NAMES)
    # feature order is kept: the first feature is the first region, reprojected by GDAL
    x, y = np.asarray(data["features"][0]["geometry"]["coordinates"][0]).T
    lon, lat = reproject_points("EPSG:32632", "EPSG:4326", *np.asarray(regions.geometries[0].exterior.coords).T)
    np.testing.assert_allclose(sorted(zip(x, y)), sorted(zip(lon, lat)), atol=1e-6)
    assert 8.9 < x.min() and x.max() < 9.1 and 52.3 < y.min() < 52.4  # UTM 32N near E 500 km, N 5800 km


def test_geojson_needs_a_crs(tmp_path):
    path = write_labels(tmp_path / "l.tif", blob_labels(20, 20), crs=None)
    with pytest.raises(GisError, match="no CRS"):
        write_regions(tmp_path / "l.geojson", vectorize(path, NAMES), "geojson")


def test_simplify_keeps_a_gapless_coverage_and_min_area_drops_small_regions(tmp_path):
    labels = blob_labels(120, 120, seed=5, smooth=2.0)
    path = write_labels(tmp_path / "l.tif", labels)
    exact = vectorize(path, NAMES)
    simple = vectorize(path, NAMES, simplify=1.0)
    assert len(simple) == len(exact)
    assert shapely.get_num_coordinates(simple.geometries).sum() < 0.7 * shapely.get_num_coordinates(exact.geometries).sum()
    assert shapely.coverage_is_valid(simple.geometries)  # no overlaps, shared edges still shared
    assert np.isclose(simple.areas.sum(), shapely.union_all(simple.geometries).area)
    assert np.isclose(simple.areas.sum(), exact.areas.sum())  # the outer boundary is the raster's edge
    big = vectorize(path, NAMES, min_area=20.0)
    assert 0 < len(big) < len(exact) and big.areas.min() >= 20.0
    assert len(big) == int((exact.areas >= 20.0).sum())
    # with both, the threshold applies to the simplified polygons, whose areas are the ones written
    both = vectorize(path, NAMES, simplify=1.0, min_area=20.0)
    assert len(both) == int((simple.areas >= 20.0).sum()) and both.areas.min() >= 20.0


def test_geopackage_is_version_1_2_which_gdal_3_6_opens_without_warning(tmp_path):
    import sqlite3

    path = write_labels(tmp_path / "l.tif", blob_labels(20, 20))
    gpkg = write_regions(tmp_path / "l.gpkg", vectorize(path, NAMES))
    with sqlite3.connect(gpkg) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # 'GPKG'
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200


def test_all_nodata_gives_an_empty_layer(tmp_path):
    import pyogrio

    path = write_labels(tmp_path / "l.tif", np.full((30, 30), NODATA_LABEL, np.uint8))
    regions = vectorize(path, NAMES, strip_rows=8)
    assert len(regions) == 0
    assert pyogrio.read_info(write_regions(tmp_path / "e.gpkg", regions))["features"] == 0
