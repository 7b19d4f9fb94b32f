"""Rasters read over HTTPS and from S3-compatible storage (issue 27, part 1), against local servers
only: the suite's TLS server and moto's S3 server, both on 127.0.0.1. Reads are windowed (range
requests, counted), results are byte-identical to the same file on disk, signatures and keys
never reach outputs, logs or errors, and failures are one line naming the URL."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from rasterio.io import MemoryFile

from resegzoo.cli import build_cli
from segment_helpers import COLOR_CLASSES, block_labels, paint

CLASSES = "; ".join(COLOR_CLASSES)
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0)
SIGNATURE = "X-Amz-Signature=secret0123456789"
#: few windows (the oracle model needs no masks): the tests are about reading, not segmenting
FAST_RECIPE = "inference: {window: 224, stride: 224}\nmasks: {generator: none}\n"


@pytest.fixture
def fast(tmp_path) -> tuple[str, ...]:
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST_RECIPE)
    return ("--recipe", str(recipe), "--model", "oracle", "--classes", CLASSES)


def cog_bytes(height: int, width: int, seed: int = 0, noise: bool = False) -> bytes:
    """A tiled (256 px), deflate-compressed, georeferenced 3-band GeoTIFF with overviews, as bytes."""
    labels = block_labels(height, width, cell=16, seed=seed)
    bands = np.moveaxis(paint(labels), -1, 0)
    if noise:  # incompressible: the file's size is its pixels', so fetched bytes tell what was read
        bands = np.random.default_rng(seed).integers(0, 256, bands.shape, dtype=np.uint8)
    with MemoryFile() as memory:
        with memory.open(driver="GTiff", height=height, width=width, count=3, dtype="uint8", crs="EPSG:32632",
                         transform=TRANSFORM, tiled=True, blockxsize=256, blockysize=256,
                         compress="deflate") as dst:
            dst.write(bands)
            dst.build_overviews([2, 4], rasterio.enums.Resampling.nearest)
        return memory.read()


def segment(*args: str, expect: int = 0):
    result = CliRunner().invoke(build_cli(), ["segment", *args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def run_both(tmp_path: Path, url: str, data: bytes, fast: tuple[str, ...], *extra: str):
    """Segment ``url`` and the same bytes on disk; returns (remote out, local out, CLI result)."""
    local = tmp_path / "disk" / "scene.tif"
    local.parent.mkdir()
    local.write_bytes(data)
    common = (*fast, "--tile-size", "256", *extra)
    remote_out, local_out = tmp_path / "remote-out", tmp_path / "local-out"
    result = segment(url, *common, "--out", str(remote_out))
    segment(str(local), *common, "--out", str(local_out))
    return remote_out, local_out, result


def assert_same_results(remote_out: Path, local_out: Path, stem: str = "scene") -> dict:
    for suffix in (".labels.tif", ".overlay.png"):
        assert (remote_out / f"{stem}{suffix}").read_bytes() == (local_out / f"{stem}{suffix}").read_bytes(), suffix
    remote_side = json.loads((remote_out / f"{stem}.json").read_text())
    local_side = json.loads((local_out / f"{stem}.json").read_text())
    assert remote_side["pixel_fraction"] == local_side["pixel_fraction"]
    assert remote_side["size"] == local_side["size"] and remote_side["bands"] == local_side["bands"]
    return remote_side


def no_secret_in(folder: Path, *texts: str, secret: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    for text in texts:
        assert secret not in text


def test_https_cog_is_read_by_ranges_and_equals_the_file_on_disk(tmp_path, https_process_server, fast):
    server = https_process_server
    data = cog_bytes(300, 420)
    server.put("/scenes/scene.tif", data)
    url = f"{server.base}/scenes/scene.tif?{SIGNATURE}"
    remote_out, local_out, result = run_both(tmp_path, url, data, fast)
    side = assert_same_results(remote_out, local_out)
    assert side["input"] == f"{server.base}/scenes/scene.tif"  # recorded without the query string
    gets = [r for r in server.requests() if r["path"].startswith("/scenes/scene.tif")]
    # every read a range request; GDAL probes a signed URL's size with one GET it cuts after the headers
    assert gets and sum(r["range"] is None for r in gets) <= 1 and gets[-1]["range"] is not None
    no_secret_in(remote_out, result.output, secret="secret0123456789")


def test_one_block_of_a_large_remote_cog_fetches_a_small_part_of_it(https_process_server):
    from resegzoo.raster.reader import open_raster

    server = https_process_server
    data = cog_bytes(2048, 2048, noise=True)
    server.put("/big.tif", data)
    raster = open_raster(f"{server.base}/big.tif", stretch=False)
    assert (raster.height, raster.width) == (2048, 2048)
    opened = sum(r["sent"] for r in server.sent())
    pixels, valid = raster.read((512, 768, 768, 1024))  # one 256 px block
    fetched = sum(r["sent"] for r in server.sent())
    with MemoryFile(data) as memory, memory.open() as src:
        expected = src.read(window=((512, 768), (768, 1024)))
    np.testing.assert_array_equal(pixels, expected)
    assert valid.all()
    assert opened < 0.02 * len(data), (opened, len(data))  # the header, not the file
    assert fetched - opened < 0.05 * len(data), (fetched - opened, len(data))  # about one tile of 12 MB
    assert all(r["range"] is not None for r in server.requests())


def test_s3_prefix_expands_like_a_folder_and_results_equal_the_disk(tmp_path, s3_server, fast):
    data = cog_bytes(300, 420, seed=1)
    for key in ("tiles/scene.tif", "tiles/other.tif", "tiles/sub/deep.tif", "tiles/notes.txt"):
        s3_server.put(key, data)
    remote_out, local_out, result = run_both(tmp_path, "s3://test-bucket/tiles/", data, fast)
    assert sorted(p.name for p in remote_out.glob("*.json")) == ["other.json", "scene.json"]  # not below, not .txt
    side = assert_same_results(remote_out, local_out)
    assert side["input"] == "s3://test-bucket/tiles/scene.tif"
    no_secret_in(remote_out, result.output, secret=s3_server.env["AWS_SECRET_ACCESS_KEY"])
    deep = tmp_path / "deep-out"
    segment("/vsis3/test-bucket/tiles/", "--recursive", *fast, "--tile-size", "256", "--out", str(deep))
    assert (deep / "sub" / "deep.labels.tif").read_bytes() == (local_out / "scene.labels.tif").read_bytes()
    assert json.loads((deep / "sub" / "deep.json").read_text())["input"] == "/vsis3/test-bucket/tiles/sub/deep.tif"
    single = tmp_path / "single-out"
    segment("s3://test-bucket/tiles/sub/*.tif", *fast, "--out", str(single))
    assert [p.name for p in single.glob("*.json")] == ["deep.json"]


def one_line_error(result, *fragments: str, absent: tuple[str, ...] = ()) -> None:
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    for text in absent:
        assert text not in result.output


def test_failures_are_one_line_naming_the_url_without_its_query(tmp_path, https_process_server, s3_server):
    import socket

    args = ("--model", "oracle", "--masks", "none", "--classes", CLASSES, "--out", str(tmp_path / "out"))
    run = lambda url: CliRunner().invoke(build_cli(), ["segment", url, *args])  # noqa: E731
    one_line_error(run("s3://test-bucket/missing.tif"), "s3://test-bucket/missing.tif", "no such object")
    one_line_error(run("s3://no-such-bucket/tiles/"), "s3://no-such-bucket/tiles/", "cannot list")
    s3_server.put("notes/readme.txt", b"no rasters here")
    one_line_error(run("s3://test-bucket/notes/"), "s3://test-bucket/notes/", "no rasters", "below this prefix")
    server = https_process_server
    server.status("/denied.tif", 403)
    one_line_error(run(f"{server.base}/denied.tif?{SIGNATURE}"), f"{server.base}/denied.tif",
                   "access denied", absent=("secret0123456789",))
    with socket.socket() as sock:  # bound, never listening: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        one_line_error(run(f"https://127.0.0.1:{port}/x.tif?{SIGNATURE}"), f"https://127.0.0.1:{port}/x.tif",
                       "no network", absent=("secret0123456789",))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_vrt_on_a_server_is_not_followed_unless_trusted(tmp_path, https_process_server):
    """A VRT found at a URL lists other files and URLs: untrusted, it is not opened at all."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(range(256)) * 64)
    vrt = (f'<VRTDataset rasterXSize="64" rasterYSize="64"><VRTRasterBand dataType="Byte" band="1" '
           f'subClass="VRTRawRasterBand"><SourceFilename relativeToVRT="0">{secret}</SourceFilename>'
           f'<ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset><LineOffset>64</LineOffset>'
           f'</VRTRasterBand></VRTDataset>')
    server = https_process_server
    server.put("/evil.vrt", vrt.encode())
    result = CliRunner().invoke(build_cli(), ["segment", f"{server.base}/evil.vrt", "--model", "oracle",
                                              "--masks", "none", "--classes", CLASSES, "--out", str(tmp_path / "o")])
    one_line_error(result, f"{server.base}/evil.vrt", "not followed unless --trust-vrt")
    assert str(secret) not in result.output


# -- STAC ----------------------------------------------------------------------------------------------
def stac_item(item_id: str, assets: dict, base: str | None = None) -> dict:
    links = [{"rel": "self", "href": f"{base}/items/{item_id}.json"}] if base else []
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": "orthos",
            "geometry": {"type": "Polygon", "coordinates": [[[9, 52], [9.01, 52], [9.01, 52.01], [9, 52.01], [9, 52]]]},
            "bbox": [9, 52, 9.01, 52.01], "properties": {"datetime": "2024-06-01T10:00:00Z"}, "links": links,
            "assets": assets}


def test_stac_item_url_segments_its_visual_asset_and_records_it(tmp_path, https_process_server, fast):
    server = https_process_server
    data = cog_bytes(300, 420, seed=2)
    server.put("/items/data/scene.tif", data)
    item = stac_item("ortho-2024-001", {
        "B08": {"href": "data/nir.tif", "type": "image/tiff; application=geotiff"},
        "visual": {"href": f"data/scene.tif?{SIGNATURE}", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                   "roles": ["visual"]}}, base=server.base)
    server.put("/items/ortho-2024-001.json", json.dumps(item).encode())
    local = tmp_path / "scene.tif"
    local.write_bytes(data)
    out, local_out = tmp_path / "out", tmp_path / "local-out"
    result = segment(f"{server.base}/items/ortho-2024-001.json", *fast, "--out", str(out))
    segment(str(local), *fast, "--out", str(local_out))
    assert (out / "ortho-2024-001.labels.tif").read_bytes() == (local_out / "scene.labels.tif").read_bytes()
    side = json.loads((out / "ortho-2024-001.json").read_text())
    assert side["origin"] == {"stac_item": "ortho-2024-001", "stac_asset": "visual", "stac_collection": "orthos",
                              "stac_href": f"{server.base}/items/data/scene.tif"}
    assert side["input"] == f"{server.base}/items/data/scene.tif"
    no_secret_in(out, result.output, secret="secret0123456789")


def test_stac_asset_bands_by_common_name_and_asset_choice(tmp_path, fast):
    """An item file whose asset lists its bands (blue, green, red, nir): read as 3,2,1; --asset picks
    another asset; a missing one is one line listing the item's assets."""
    bands = np.moveaxis(paint(block_labels(64, 80, cell=16)), -1, 0)
    scene = tmp_path / "bgrn.tif"
    with rasterio.open(scene, "w", driver="GTiff", height=64, width=80, count=4, dtype="uint8",
                       photometric="MINISBLACK") as dst:
        dst.write(np.concatenate([bands[::-1], bands[:1]]))  # B, G, R, NIR
    eo = [{"name": n, "eo:common_name": n} for n in ("blue", "green", "red", "nir")]
    item = stac_item("bgrn", {"analytic": {"href": "bgrn.tif", "eo:bands": eo},
                              "thumb": {"href": "thumb.png", "roles": ["thumbnail"]}})
    (tmp_path / "item.json").write_text(json.dumps(item))
    out = tmp_path / "out"
    segment(str(tmp_path / "item.json"), *fast, "--out", str(out))
    side = json.loads((out / "bgrn.json").read_text())
    assert side["bands"] == [3, 2, 1] and side["origin"]["stac_asset"] == "analytic"
    explicit = tmp_path / "explicit"
    segment(str(tmp_path / "item.json"), *fast, "--bands", "1,2,3", "--out", str(explicit))
    assert json.loads((explicit / "bgrn.json").read_text())["bands"] == [1, 2, 3]  # --bands wins
    result = CliRunner().invoke(build_cli(), ["segment", str(tmp_path / "item.json"), *fast, "--asset", "visual",
                                              "--out", str(tmp_path / "o2")])
    one_line_error(result, "STAC item 'bgrn' has no asset 'visual'", "analytic, thumb")


def test_stac_search_finds_items_and_a_remote_item_is_not_followed_to_local_files(tmp_path, https_process_server,
                                                                                  fast):
    server = https_process_server
    data = cog_bytes(300, 420, seed=3)
    server.put("/cogs/a.tif", data)
    landing = {"type": "Catalog", "id": "test-api", "stac_version": "1.0.0", "description": "local",
               "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"],
               "links": [{"rel": "self", "href": f"{server.base}/index.json"},
                         {"rel": "root", "href": f"{server.base}/index.json"},
                         {"rel": "search", "href": f"{server.base}/search", "type": "application/geo+json",
                          "method": "POST"}]}
    server.put("/index.json", json.dumps(landing).encode())
    found = {"type": "FeatureCollection", "features": [
        stac_item("tile-a", {"visual": {"href": f"{server.base}/cogs/a.tif", "roles": ["visual"]}}),
        stac_item("tile-b", {"visual": {"href": f"{server.base}/cogs/a.tif", "roles": ["visual"]}})], "links": []}
    server.put("/search", json.dumps(found).encode())
    out = tmp_path / "out"
    segment("--stac", f"{server.base}/index.json", "--collection", "orthos", "--bbox", "9,52,9.1,52.1",
            "--datetime", "2024-06-01/2024-06-30", *fast, "--out", str(out))
    assert sorted(p.name for p in out.glob("*.json")) == ["tile-a.json", "tile-b.json"]
    posted = [r for r in server.requests() if r["path"] == "/search"]
    body = json.loads(posted[0]["range"])  # the POST body is logged in the range column
    assert body["collections"] == ["orthos"] and body["bbox"] == [9, 52, 9.1, 52.1]
    assert body["datetime"].startswith("2024-06-01")
    # a remote item pointing at a file of this machine is refused
    secret = tmp_path / "secret.tif"
    secret.write_bytes(data)
    server.put("/items/evil.json", json.dumps(stac_item("evil", {"visual": {"href": str(secret)}},
                                                        base=server.base)).encode())
    result = CliRunner().invoke(build_cli(), ["segment", f"{server.base}/items/evil.json", *fast,
                                              "--out", str(tmp_path / "o3")])
    one_line_error(result, "names the local file", "unless --trust-vrt")
    bad = CliRunner().invoke(build_cli(), ["segment", "--bbox", "1,2,3", *fast, "x.tif"])
    assert bad.exit_code == 2 and "go with --stac URL" in bad.output


@pytest.mark.parametrize("url, gdal, public, prefix", [
    ("s3://bucket/tiles/a.tif", "/vsis3/bucket/tiles/a.tif", "s3://bucket/tiles/a.tif", False),
    ("gs://bucket/a.tif", "/vsigs/bucket/a.tif", "gs://bucket/a.tif", False),
    ("az://container/dir/", "/vsiaz/container/dir/", "az://container/dir/", True),
    ("s3://bucket", "/vsis3/bucket", "s3://bucket", True),
    ("http://host:8080/x.tif?token=abc", "/vsicurl/http://host:8080/x.tif?token=abc", "http://host:8080/x.tif", False),
    ("https://user:pw@host/a/b.tif?sig=1#f", "/vsicurl/https://user:pw@host/a/b.tif?sig=1#f", "https://host/a/b.tif",
     False),
    ("/vsis3/bucket/k.tif", "/vsis3/bucket/k.tif", "/vsis3/bucket/k.tif", False),
    ("/vsicurl/https://h/x.tif?sig=2", "/vsicurl/https://h/x.tif?sig=2", "/vsicurl/https://h/x.tif", False),
])
def test_every_scheme_maps_to_gdal_and_shows_without_secrets(url, gdal, public, prefix):
    from resegzoo.raster import remote

    assert remote.is_url(url)
    assert remote.gdal_path(url) == gdal and remote.public_url(url) == public and remote.is_prefix(url) == prefix
    assert remote.scrub(f"GDAL: cannot read {url}: HTTP 500") == f"GDAL: cannot read {remote.public_url(url)}: HTTP 500" \
        or url.startswith("/vsi") and "?" not in url
    assert not remote.is_url("tiles/a.tif") and not remote.is_url("C:/data/a.tif") and not remote.is_url("/vsizip/a.zip")
