"""Rasters that reach other files, and georeferencing that places nothing (issue 17, items 1, 5).

A VRT may be a mosaic of local rasters; a raw band (the bytes of any file as pixels), a network
source (/vsicurl/, http) or an archive source (/vsizip/, ...) is refused with a one-line error
naming the file unless ``--trust-vrt`` is given. Network refusal is checked against a loopback
HTTP server started here, counting the requests it gets. A NaN or Inf geotransform is refused when
the raster is opened, before any work.
"""
from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from hostile_helpers import cli, refused

from resegzoo.raster.reader import ImageError, check_sources, find_rasters, open_raster

SECRET = b"api_key = s3cr3t-value-that-must-not-leak\n" * 64


@pytest.fixture
def workspace(tmp_path, resegzoo_cache):
    (tmp_path / "in").mkdir()
    return tmp_path


@pytest.fixture
def counting_server():
    """A loopback HTTP server that answers 404 to everything and records each request."""
    requests: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            requests.append((self.command, self.path))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = _answer  # noqa: N815 (http.server's naming)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def _geotiff(path: Path, value: int = 90, size: int = 32, transform: Affine | None = None) -> Path:
    transform = transform or Affine(1.0, 0, 500000.0, 0, -1.0, 4000000.0)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=transform) as dst:
        dst.write(np.full((3, size, size), value, np.uint8))
    return path


def _simple_source(source: str, relative: bool = False, size: int = 32, band: int = 1) -> str:
    return (f'<SimpleSource><SourceFilename relativeToVRT="{int(relative)}">{source}</SourceFilename>'
            f'<SourceBand>{band}</SourceBand><SrcRect xOff="0" yOff="0" xSize="{size}" ySize="{size}"/>'
            f'<DstRect xOff="0" yOff="0" xSize="{size}" ySize="{size}"/></SimpleSource>')


def _vrt(path: Path, bands: list[str], size: int = 32) -> Path:
    body = "".join(f'<VRTRasterBand dataType="Byte" band="{i + 1}">{b}</VRTRasterBand>' for i, b in enumerate(bands))
    path.write_text(f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}">{body}</VRTDataset>\n')
    return path


def _raw_vrt(path: Path, target: Path, size: int = 32) -> Path:
    """Three raw bands over ``target``: its bytes, row by row, become the pixels."""
    band = ('<VRTRasterBand dataType="Byte" band="{i}" subClass="VRTRawRasterBand">'
            f'<SourceFilename relativetoVRT="0">{target}</SourceFilename>'
            f'<ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset><LineOffset>{size}</LineOffset>'
            '</VRTRasterBand>')
    path.write_text(f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}">'
                    + "".join(band.format(i=i) for i in (1, 2, 3)) + "</VRTDataset>\n")
    return path


def _segment(workspace: Path, *inputs: Path | str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    return ("segment", *map(str, inputs), "--model", "oracle", "--masks", "none", "--classes", "red; blue",
            "--out", str(workspace / "out"), *extra)


def _refused(workspace: Path, *inputs: Path | str, fragments: tuple[str, ...]) -> str:
    return refused(workspace, *_segment(workspace, *inputs), fragments=fragments, out=workspace / "out",
                   allowed=[workspace / "resegzoo-cache"])


# -- raw bands ----------------------------------------------------------------------------------


def test_a_raw_band_over_any_file_is_refused(workspace):
    secret = workspace / "secret.txt"
    secret.write_bytes(SECRET)
    vrt = _raw_vrt(workspace / "in" / "scene.vrt", secret)
    message = _refused(workspace, vrt, fragments=(str(vrt), "raw band", "--trust-vrt"))
    assert "s3cr3t" not in message


def test_a_raw_band_is_read_only_with_trust_vrt(workspace):
    """The opt-in works (and shows what the refusal prevents: the file's bytes become pixels)."""
    secret = workspace / "secret.bin"
    secret.write_bytes(bytes(range(256)) * 4)
    vrt = _raw_vrt(workspace / "in" / "scene.vrt", secret)
    raster = open_raster(vrt, trust_vrt=True)
    rgb, _ = raster.read_rgb()
    assert rgb[0, :5, 0].tolist() == [0, 1, 2, 3, 4]


def test_a_raw_band_hidden_in_a_nested_vrt_or_behind_a_tif_name_is_refused(workspace):
    secret = workspace / "secret.txt"
    secret.write_bytes(SECRET)
    _raw_vrt(workspace / "inner.vrt", secret)
    outer = _vrt(workspace / "in" / "mosaic.vrt", [_simple_source(str(workspace / "inner.vrt"), band=b)
                                                    for b in (1, 2, 3)])
    _refused(workspace, outer, fragments=(str(outer), "inner.vrt", "raw band"))
    disguised = workspace / "in" / "photo.tif"  # GDAL decides by content: this is a VRT
    disguised.write_text(_raw_vrt(workspace / "x.vrt", secret).read_text())
    _refused(workspace, disguised, fragments=(str(disguised), "raw band"))


def test_element_names_in_any_case_are_checked_as_gdal_reads_them(workspace):
    secret = workspace / "secret.txt"
    secret.write_bytes(SECRET)
    vrt = workspace / "in" / "scene.vrt"
    vrt.write_text(_raw_vrt(workspace / "x.vrt", secret).read_text().replace("subClass", "SUBCLASS"))
    with pytest.raises(ImageError, match="raw band"):
        check_sources(vrt)


# -- network and archive sources ------------------------------------------------------------------


@pytest.mark.parametrize("form", ["/vsicurl/{url}/scene.tif", "{url}/scene.tif", "/vsicurl_streaming/{url}/a.tif"])
def test_a_network_source_is_refused_without_any_request(workspace, counting_server, monkeypatch, form):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    url, requests = counting_server
    source = form.format(url=url)
    vrt = _vrt(workspace / "in" / "scene.vrt", [_simple_source(source, band=1)] * 3)
    _refused(workspace, vrt, fragments=(str(vrt), "--trust-vrt"))
    assert requests == []


def test_trust_vrt_lets_a_network_source_through(workspace, counting_server):
    """The server does count requests: the same VRT with --trust-vrt reaches it."""
    url, requests = counting_server
    vrt = _vrt(workspace / "in" / "scene.vrt", [_simple_source(f"/vsicurl/{url}/scene.tif", band=1)] * 3)
    cli(*_segment(workspace, vrt, extra=("--trust-vrt",)))
    assert requests, "the trusted VRT made no request"


def test_gdal_itself_makes_no_request_for_an_untrusted_raster(workspace, counting_server):
    """Defence in depth: past the XML check, GDAL's /vsicurl/ is switched off for untrusted reads."""
    url, requests = counting_server
    local = _geotiff(workspace / "local.tif")
    vrt = _vrt(workspace / "in" / "scene.vrt", [_simple_source(str(local), band=b) for b in (1, 2, 3)])
    raster = open_raster(vrt)
    vrt.write_text(vrt.read_text().replace(str(local), f"/vsicurl/{url}/scene.tif"))
    with pytest.raises(ImageError):
        raster.read_rgb()
    assert requests == []


@pytest.mark.parametrize("source, kind", [("/vsizip/{root}/a.zip/a.tif", "an archive file system (/vsizip/)"),
                                          ("/vsitar/{root}/a.tar/a.tif", "an archive file system (/vsitar/)"),
                                          ("/vsis3/bucket/a.tif", "network or virtual file system (/vsis3/)"),
                                          ("/vsimem/a.tif", "network or virtual file system (/vsimem/)"),
                                          ("NETCDF:{root}/a.nc:var", "driver prefix"),
                                          ("{root}/missing.tif", "is not a file")])
def test_archive_virtual_and_driver_sources_are_refused(workspace, source, kind):
    vrt = _vrt(workspace / "in" / "scene.vrt", [_simple_source(source.format(root=workspace), band=1)] * 3)
    _refused(workspace, vrt, fragments=(str(vrt), kind))


def test_a_wms_description_is_refused_before_gdal_opens_it(workspace, counting_server):
    url, requests = counting_server
    wms = workspace / "in" / "service.wms"
    wms.write_text(f'<GDAL_WMS><Service name="TMS"><ServerUrl>{url}/${{z}}/${{x}}/${{y}}.png</ServerUrl></Service>'
                   '<DataWindow><UpperLeftX>-180</UpperLeftX><UpperLeftY>90</UpperLeftY><LowerRightX>180</LowerRightX>'
                   '<LowerRightY>-90</LowerRightY><TileLevel>2</TileLevel><TileCountX>1</TileCountX>'
                   '<TileCountY>1</TileCountY></DataWindow><BlockSizeX>256</BlockSizeX><BlockSizeY>256</BlockSizeY>'
                   '</GDAL_WMS>\n')
    _refused(workspace, wms, fragments=(str(wms), "GDAL_WMS", "network"))
    assert requests == []


def test_a_folder_with_a_hostile_vrt_reports_it_and_goes_on_under_continue_on_error(workspace, counting_server):
    url, requests = counting_server
    _geotiff(workspace / "in" / "good.tif")
    bad = _vrt(workspace / "in" / "bad.vrt", [_simple_source(f"/vsicurl/{url}/x.tif", band=1)] * 3)
    assert bad in find_rasters(workspace / "in"), "a folder input must not hide the refused file"
    _refused(workspace, workspace / "in", fragments=(str(bad),))
    result = cli(*_segment(workspace, workspace / "in", extra=("--continue-on-error",)))
    assert result.exit_code == 1, result.output
    assert str(bad) in result.output and "Traceback" not in result.output
    assert (workspace / "out" / "good.labels.tif").exists() and not list((workspace / "out").glob("bad.*"))
    assert requests == []


def test_a_mosaic_of_local_rasters_still_works(workspace):
    left, right = _geotiff(workspace / "left.tif", 40), _geotiff(workspace / "right.tif", 200)
    mosaic = workspace / "in" / "mosaic.vrt"
    bands = []
    for b in (1, 2, 3):
        parts = [_simple_source(str(left), band=b).replace('<DstRect xOff="0"', '<DstRect xOff="0"'),
                 _simple_source("../right.tif", relative=True, band=b).replace('<DstRect xOff="0"', '<DstRect xOff="32"')]
        bands.append("".join(parts))
    body = "".join(f'<VRTRasterBand dataType="Byte" band="{i + 1}">{b}</VRTRasterBand>' for i, b in enumerate(bands))
    mosaic.write_text(f'<VRTDataset rasterXSize="64" rasterYSize="32"><SRS>EPSG:32633</SRS>'
                      f'<GeoTransform>500000, 1, 0, 4000000, 0, -1</GeoTransform>{body}</VRTDataset>\n')
    rgb, _ = open_raster(mosaic).read_rgb()
    assert rgb[0, 0, 0] == 40 and rgb[0, -1, 0] == 200
    result = cli(*_segment(workspace, mosaic))
    assert result.exit_code == 0, result.output
    assert (workspace / "out" / "mosaic.labels.tif").exists()


def test_eval_labels_go_through_the_same_check(workspace):
    from resegzoo.eval.datasets.base import DatasetError, LabelEncoding, read_label

    secret = workspace / "secret.txt"
    secret.write_bytes(SECRET)
    label = workspace / "label.tif"
    label.write_text(_raw_vrt(workspace / "x.vrt", secret).read_text())
    with pytest.raises(DatasetError, match="raw band"):
        read_label(label, LabelEncoding(index={0: 0, 1: 1}))


# -- NaN / Inf georeferencing (item 5) ----------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("extra", [(), ("--vector",)])
def test_a_geotransform_that_is_not_finite_is_refused_when_opened(workspace, value, extra):
    scene = _geotiff(workspace / "in" / "scene.tif", transform=Affine(1.0, 0, value, 0, -1.0, 4000000.0))
    message = refused(workspace, *_segment(workspace, scene, extra=extra), fragments=(str(scene), "not finite"),
                      out=workspace / "out", allowed=[workspace / "resegzoo-cache"])
    assert "Traceback" not in message


def test_gcps_that_are_not_finite_are_refused(workspace):
    from rasterio.control import GroundControlPoint

    scene = workspace / "in" / "scene.tif"
    with rasterio.open(scene, "w", driver="GTiff", width=32, height=32, count=3, dtype="uint8") as dst:
        dst.write(np.full((3, 32, 32), 90, np.uint8))
        dst.gcps = ([GroundControlPoint(0, 0, float("nan"), 1.0), GroundControlPoint(31, 31, 10.0, 10.0),
                     GroundControlPoint(0, 31, 10.0, 1.0)], rasterio.crs.CRS.from_epsg(4326))
    with pytest.raises(ImageError, match="not finite"):
        open_raster(scene)


def test_a_finite_geotransform_still_gives_strict_json(workspace):
    scene = _geotiff(workspace / "in" / "scene.tif")
    result = cli(*_segment(workspace, scene))
    assert result.exit_code == 0, result.output
    json.loads((workspace / "out" / "scene.json").read_text(), parse_constant=lambda c: pytest.fail(c))
