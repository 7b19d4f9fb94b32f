"""Real rasters in (issue 9): nodata in every form, any GDAL format, georeferencing kept exactly.

Every raster here is written by the test with rasterio; `resegzoo segment` runs end to end with the
colour oracle, so the expected labels are known exactly. Each case checks the output's nodata,
grid and georeferencing, class names, and that the sidecar is strict JSON.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from PIL import Image
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.enums import ColorInterp

from resegzoo.cli import build_cli
from segment_helpers import COLOR_CLASSES, block_labels, paint

CLASSES = "; ".join(COLOR_CLASSES)
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0)
H, W = 96, 144


def run(*args: str, expect: int = 0):
    result = CliRunner().invoke(build_cli(), ["segment", *map(str, args)], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def strict_json(path: Path) -> dict:
    def no_constants(name):
        raise AssertionError(f"{path.name} holds {name}: not strict JSON")
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=no_constants)


def segment(src: Path, out: Path, *extra: str, classes: str = CLASSES):
    return run(src, "--model", "oracle", "--masks", "none", "--classes", classes, "--out", out,
               "--window", "16", "--stride", "16", *extra)


def check_outputs(out: Path, stem: str, truth: np.ndarray, valid: np.ndarray, *, georef: dict | None = None,
                  names=COLOR_CLASSES, suffix: str = "tif") -> dict:
    """Labels = truth on valid pixels and 255 elsewhere; nodata set; grid and georeferencing as
    ``georef``; the sidecar strict, naming the classes and counting valid pixels only."""
    from resegzoo.raster.reader import quiet_georef

    side = strict_json(out / f"{stem}.json")
    with quiet_georef(), rasterio.open(out / f"{stem}.labels.{suffix}") as dst:
        labels = dst.read(1)
        if suffix == "tif":
            assert dst.nodata == 255
        for key, value in (georef or {}).items():
            assert getattr(dst, key) == value, key
    np.testing.assert_array_equal(labels, np.where(valid, truth, 255))
    assert side["class_names"] == list(names) and side["nodata"]["label"] == 255
    assert side["nodata"]["pixels"] == int((~valid).sum())
    counts = np.bincount(truth[valid].ravel(), minlength=len(names))
    expected = {n: round(int(c) / max(1, int(valid.sum())), 6) for n, c in zip(names, counts)}
    assert side["pixel_fraction"] == expected
    return side


def write(path: Path, bands: np.ndarray, **profile):
    profile = {"driver": "GTiff", "height": bands.shape[1], "width": bands.shape[2], "count": bands.shape[0],
               "dtype": bands.dtype, **profile}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


@pytest.fixture
def scene():
    truth = block_labels(H, W, cell=4, seed=5)
    valid = np.ones((H, W), bool)
    valid[:, :20] = False          # a nodata strip on the left ...
    valid[30:40, 40:55] = False    # ... and a hole
    return truth, valid, np.moveaxis(paint(truth), -1, 0)


def test_nodata_value(tmp_path, scene):
    truth, valid, rgb = scene
    src = write(tmp_path / "nd.tif", np.where(valid, rgb, 0).astype(np.uint8), nodata=0, crs="EPSG:32632",
                transform=TRANSFORM)
    segment(src, tmp_path / "out")
    side = check_outputs(tmp_path / "out", "nd", truth, valid, georef={"crs": CRS.from_epsg(32632),
                                                                       "transform": TRANSFORM})
    assert side["nodata"]["source"] == 0 and side["crs"] == "EPSG:32632"


def test_nodata_option_overrides_the_file(tmp_path, scene):
    truth, valid, rgb = scene
    # the file says nothing; the user says 7 (pixels 7,7,7 are nodata even though they hold "data")
    src = write(tmp_path / "opt.tif", np.where(valid, rgb, 7).astype(np.uint8), crs="EPSG:32632", transform=TRANSFORM)
    segment(src, tmp_path / "out", "--nodata", "7")
    side = check_outputs(tmp_path / "out", "opt", truth, valid)
    assert side["nodata"]["from"] == "option"


def test_internal_mask(tmp_path, scene):
    truth, valid, rgb = scene
    path = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=3, dtype="uint8", crs="EPSG:32632",
                           transform=TRANSFORM) as dst:
            dst.write(rgb)  # masked pixels hold real colours: only the mask says they are not data
            dst.write_mask(np.where(valid, 255, 0).astype(np.uint8))
    segment(path, tmp_path / "out")
    check_outputs(tmp_path / "out", "masked", truth, valid)


def test_alpha_band(tmp_path, scene):
    truth, valid, rgb = scene
    alpha = np.where(valid, 255, 0).astype(np.uint8)[None]
    path = write(tmp_path / "rgba.tif", np.concatenate([rgb, alpha]), photometric="RGB", crs="EPSG:32632",
                 transform=TRANSFORM)
    with rasterio.open(path, "r+") as dst:
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    segment(path, tmp_path / "out")
    side = check_outputs(tmp_path / "out", "rgba", truth, valid)
    assert side["bands"] == [1, 2, 3]  # the alpha band is a mask, never an image band


@pytest.mark.parametrize("tagged", [True, False])
def test_nan_float(tmp_path, scene, tagged):
    truth, valid, rgb = scene
    data = np.where(valid, rgb.astype(np.float32) / 255.0 * 3.0 + 0.5, np.nan).astype(np.float32)
    data[0, 5, 30] = np.inf  # one infinite value: not valid either
    valid = valid.copy()
    valid[5, 30] = False
    src = write(tmp_path / "f.tif", data, crs="EPSG:32632", transform=TRANSFORM,
                **({"nodata": float("nan")} if tagged else {}))
    segment(src, tmp_path / "out")
    side = check_outputs(tmp_path / "out", "f", truth, valid)
    assert side["stretch"]["low"] == [0.5] * 3 and side["stretch"]["high"] == [3.5] * 3
    assert side["nodata"]["source"] == ("nan" if tagged else None)


def test_uint16_with_nodata_stretches_from_valid_pixels(tmp_path, scene):
    truth, valid, rgb = scene
    data = (3300 + rgb.astype(np.uint16) * 4).astype(np.uint16)  # valid data lies in 3300..4320
    src = write(tmp_path / "u16.tif", np.where(valid, data, 0).astype(np.uint16), nodata=0, crs="EPSG:32632",
                transform=TRANSFORM)
    res = segment(src, tmp_path / "out")
    side = check_outputs(tmp_path / "out", "u16", truth, valid)
    assert side["stretch"]["low"] == [3300.0] * 3 and side["stretch"]["high"] == [4320.0] * 3  # not 0
    assert "percentile stretch" in res.output


def _vrt_mosaic(tmp_path: Path, rgb: np.ndarray) -> Path:
    """A VRT mosaic of 4 GeoTIFF tiles (2 x 2), written by hand as GDAL documents it."""
    hh, hw = H // 2, W // 2
    sources = []
    for i, (y, x) in enumerate([(0, 0), (0, hw), (hh, 0), (hh, hw)]):
        t = TRANSFORM @ Affine.translation(x, y)
        write(tmp_path / f"tile{i}.tif", np.ascontiguousarray(rgb[:, y:y + hh, x:x + hw]), crs="EPSG:32632",
              transform=t)
        sources.append((f"tile{i}.tif", y, x))
    bands = []
    for b in (1, 2, 3):
        srcs = "".join(
            f"<SimpleSource><SourceFilename relativeToVRT=\"1\">{name}</SourceFilename><SourceBand>{b}</SourceBand>"
            f"<SrcRect xOff=\"0\" yOff=\"0\" xSize=\"{hw}\" ySize=\"{hh}\"/>"
            f"<DstRect xOff=\"{x}\" yOff=\"{y}\" xSize=\"{hw}\" ySize=\"{hh}\"/></SimpleSource>"
            for name, y, x in sources)
        bands.append(f"<VRTRasterBand dataType=\"Byte\" band=\"{b}\">{srcs}</VRTRasterBand>")
    gt = ", ".join(repr(v) for v in TRANSFORM.to_gdal())
    xml = (f"<VRTDataset rasterXSize=\"{W}\" rasterYSize=\"{H}\"><SRS>{CRS.from_epsg(32632).to_wkt()}</SRS>"
           f"<GeoTransform>{gt}</GeoTransform>{''.join(bands)}</VRTDataset>")
    path = tmp_path / "mosaic.vrt"
    path.write_text(xml)
    return path


def test_vrt_mosaic_of_four_tiles_is_read_by_blocks_and_written_as_geotiff(tmp_path, scene):
    truth, _, rgb = scene
    vrt = _vrt_mosaic(tmp_path, rgb)
    segment(vrt, tmp_path / "out", "--tile-size", "64")
    side = check_outputs(tmp_path / "out", "mosaic", truth, np.ones((H, W), bool),
                         georef={"crs": CRS.from_epsg(32632), "transform": TRANSFORM, "width": W, "height": H})
    assert side["driver"] == "VRT" and side["tiled"] and side["blocks"] > 1


def test_gcps_are_kept_with_their_crs(tmp_path, scene):
    truth, _, rgb = scene
    gcps = [GroundControlPoint(row=0, col=0, x=10.0, y=50.0, z=0.0, id="a"),
            GroundControlPoint(row=0, col=W, x=10.1, y=50.0, z=0.0, id="b"),
            GroundControlPoint(row=H, col=0, x=10.0, y=49.9, z=0.0, id="c"),
            GroundControlPoint(row=H, col=W, x=10.1, y=49.9, z=12.0, id="d")]
    from resegzoo.raster.reader import quiet_georef

    with quiet_georef():
        path = write(tmp_path / "gcp.tif", rgb)
    with rasterio.open(path, "r+") as dst:
        dst.gcps = (gcps, CRS.from_epsg(4326))
    segment(path, tmp_path / "out", "--tile-size", "64")
    side = check_outputs(tmp_path / "out", "gcp", truth, np.ones((H, W), bool))
    with rasterio.open(tmp_path / "out" / "gcp.labels.tif") as dst:
        out_gcps, out_crs = dst.gcps
    assert out_crs == CRS.from_epsg(4326) and [(g.row, g.col, g.x, g.y, g.z) for g in out_gcps] == \
        [(g.row, g.col, g.x, g.y, g.z) for g in gcps]
    assert side["gcps"] == 4 and side["crs"] == "EPSG:4326"


def test_rotated_transform_is_kept_exactly(tmp_path, scene):
    truth, _, rgb = scene
    rotated = TRANSFORM @ Affine.rotation(17.5)
    src = write(tmp_path / "rot.tif", rgb, crs="EPSG:32632", transform=rotated)
    segment(src, tmp_path / "out", "--tile-size", "64")
    side = check_outputs(tmp_path / "out", "rot", truth, np.ones((H, W), bool),
                         georef={"transform": rotated, "crs": CRS.from_epsg(32632)})
    assert side["transform"] == list(rotated)[:6]


def test_palette_png_is_read_as_its_colours(tmp_path, scene):
    truth, _, _ = scene
    # indices deliberately unrelated to the classes: 9 -> red, 3 -> blue, 200 -> green, 41 -> yellow
    index_of = np.array([9, 3, 200, 41], np.uint8)
    img = Image.fromarray(index_of[truth], mode="P")
    palette = np.zeros((256, 3), np.uint8)
    for k, idx in enumerate(index_of):
        palette[idx] = paint(np.array([[k]]))[0, 0]
    img.putpalette(palette.ravel().tolist())
    img.save(tmp_path / "pal.png")
    segment(tmp_path / "pal.png", tmp_path / "out")
    side = check_outputs(tmp_path / "out", "pal", truth, np.ones((H, W), bool), suffix="png")
    assert side["palette_expanded"] and side["crs"] is None


def test_one_band(tmp_path, scene):
    truth, valid, _ = scene
    grey = np.array([0, 128, 255], np.uint8)[truth % 3][None]
    src = write(tmp_path / "grey.tif", grey, crs="EPSG:32632", transform=TRANSFORM)
    segment(src, tmp_path / "out", classes="black; gray; white")
    side = check_outputs(tmp_path / "out", "grey", truth % 3, np.ones((H, W), bool), names=["black", "gray", "white"])
    assert side["bands"] == [1, 1, 1]


def test_png_with_a_world_file_is_georeferenced(tmp_path, scene):
    truth, _, rgb = scene
    Image.fromarray(np.moveaxis(rgb, 0, -1)).save(tmp_path / "ortho.png")
    # world file: pixel size x, rotation terms, pixel size y, centre of the upper-left pixel
    (tmp_path / "ortho.pgw").write_text("0.5\n0.0\n0.0\n-0.5\n500000.25\n5799999.75\n")
    segment(tmp_path / "ortho.png", tmp_path / "out")
    check_outputs(tmp_path / "out", "ortho", truth, np.ones((H, W), bool), georef={"transform": TRANSFORM})


def test_probabilities_beside_the_labels(tmp_path, scene):
    truth, valid, rgb = scene
    src = write(tmp_path / "p.tif", np.where(valid, rgb, 0).astype(np.uint8), nodata=0, crs="EPSG:32632",
                transform=TRANSFORM)
    for fmt in ("uint8", "float16"):
        out = tmp_path / fmt
        segment(src, out, "--probs", fmt, "--tile-size", "64")
        side = check_outputs(out, "p", truth, valid)
        assert side["outputs"]["probs"] == "p.probs.tif"
        with rasterio.open(out / "p.probs.tif") as dst:
            probs = dst.read()
            mask = dst.dataset_mask()
            assert dst.count == 4 and dst.descriptions == tuple(COLOR_CLASSES)
            assert dst.transform == TRANSFORM and dst.crs == CRS.from_epsg(32632)
            if fmt == "float16":
                assert dst.tags(1, "IMAGE_STRUCTURE").get("NBITS") == "16"
        np.testing.assert_array_equal(mask > 0, valid)
        np.testing.assert_array_equal(probs.argmax(0)[valid], truth[valid])
        if fmt == "float16":
            assert np.isnan(probs[:, ~valid]).all()
            np.testing.assert_allclose(probs[:, valid].sum(0), 1.0, atol=1e-2)
        else:
            assert probs.dtype == np.uint8 and probs[:, valid].max() >= 250


def test_truncated_raster_is_a_one_line_error(tmp_path, scene):
    _, _, rgb = scene
    big = np.repeat(np.repeat(rgb, 8, axis=1), 8, axis=2)
    src = write(tmp_path / "cut.tif", big, crs="EPSG:32632", transform=TRANSFORM, tiled=True, blockxsize=64,
                blockysize=64)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    result = CliRunner().invoke(build_cli(), ["segment", str(src), "--model", "oracle", "--masks", "none",
                                              "--classes", CLASSES, "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "cut.tif" in result.output and "truncated or corrupt" in result.output, result.output
    assert not list((tmp_path / "out").glob("cut.labels*")) if (tmp_path / "out").exists() else True


def test_rpcs_are_kept(tmp_path, scene):
    from rasterio.rpc import RPC

    truth, _, rgb = scene
    coeffs = " ".join(["0"] * 20)
    num = " ".join(["1"] + ["0.01"] * 19)
    rpcs = RPC.from_gdal({"HEIGHT_OFF": "100", "HEIGHT_SCALE": "500", "LAT_OFF": "50", "LAT_SCALE": "0.1",
                          "LINE_DEN_COEFF": num, "LINE_NUM_COEFF": coeffs, "LINE_OFF": "48", "LINE_SCALE": "48",
                          "LONG_OFF": "10", "LONG_SCALE": "0.1", "SAMP_DEN_COEFF": num, "SAMP_NUM_COEFF": coeffs,
                          "SAMP_OFF": "72", "SAMP_SCALE": "72"})
    from resegzoo.raster.reader import quiet_georef

    with quiet_georef():
        path = write(tmp_path / "rpc.tif", rgb)
    with rasterio.open(path, "r+") as dst:
        dst.rpcs = rpcs
    with rasterio.open(path) as src:
        written = src.rpcs.to_gdal()
    segment(path, tmp_path / "out")
    side = check_outputs(tmp_path / "out", "rpc", truth, np.ones((H, W), bool))
    with rasterio.open(tmp_path / "out" / "rpc.labels.tif") as dst:
        assert dst.rpcs is not None and dst.rpcs.to_gdal() == written
    assert side["rpcs"] is True


def test_nodata_reaches_the_cog_and_never_becomes_a_polygon(tmp_path, scene):
    import pyogrio
    import shapely
    from rasterio.features import rasterize
    from rio_cogeo.cogeo import cog_validate

    truth, valid, rgb = scene
    src = write(tmp_path / "gis.tif", np.where(valid, rgb, 0).astype(np.uint8), nodata=0, crs="EPSG:32632",
                transform=TRANSFORM)
    segment(src, tmp_path / "out", "--cog", "--vector", "--tile-size", "64")
    check_outputs(tmp_path / "out", "gis", truth, valid, georef={"crs": CRS.from_epsg(32632), "transform": TRANSFORM})
    assert cog_validate(str(tmp_path / "out" / "gis.labels.tif"))[0]
    meta, _, geometry, (names, ids, areas) = pyogrio.raw.read(tmp_path / "out" / "gis.regions.gpkg")
    geoms = shapely.from_wkb(geometry)
    assert meta["crs"] == "EPSG:32632" and set(ids) <= set(range(len(COLOR_CLASSES)))
    covered = rasterize([(g, 1) for g in geoms], out_shape=truth.shape, transform=TRANSFORM) == 1
    np.testing.assert_array_equal(covered, valid)  # polygons cover the valid pixels, none of the nodata


@pytest.mark.parametrize("interp, expected, note", [
    (("blue", "green", "red", "undefined"), [3, 2, 1], False),   # the file says which bands are R, G, B
    (("undefined",) * 4, [1, 2, 3], True),                      # it does not: 1,2,3, and a note naming them
    (("gray", "undefined", "undefined"), [1, 2, 3], False),     # three bands: nothing to choose
])
def test_band_order_follows_colour_interpretation_or_is_named(tmp_path, interp, expected, note):
    from click.testing import CliRunner
    from rasterio.enums import ColorInterp

    from resegzoo.cli import build_cli

    path = tmp_path / "multi.tif"
    bands = np.stack([np.full((40, 48), 40 * (k + 1), np.uint8) for k in range(len(interp))])
    with rasterio.open(path, "w", driver="GTiff", height=40, width=48, count=len(interp), dtype="uint8",
                       photometric="MINISBLACK") as dst:
        dst.write(bands)
        dst.colorinterp = [ColorInterp[name] for name in interp]
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), ["segment", str(path), "--model", "oracle", "--masks", "none",
                                              "--classes", "red; blue", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "multi.json").read_text())["bands"] == expected
    line = "4 bands and no red/green/blue colour interpretation: read bands 1,2,3 as R,G,B"
    assert (line in result.output) == note and ("--bands" in result.output) == note
