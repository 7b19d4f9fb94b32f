"""Nodata through the pipeline (neutral fill, no encoder pass for empty windows, eval metrics),
rasters found by what GDAL opens, and batches (--recursive, globs, the summary table)."""
from __future__ import annotations

import numpy as np
import rasterio
from affine import Affine
from click.testing import CliRunner
from PIL import Image

from resegzoo.api import Segmenter, Vocabulary, load_recipe
from resegzoo.cli import build_cli
from resegzoo.raster.reader import NODATA_LABEL, fill_invalid, find_rasters
from resegzoo_oracle import build
from segment_helpers import COLOR_CLASSES, block_labels, paint

CLASSES = "; ".join(COLOR_CLASSES)


def test_fill_invalid_takes_the_nearest_valid_pixel():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (23, 31, 3), dtype=np.uint8)
    valid = rng.random((23, 31)) > 0.7
    filled = fill_invalid(image, valid)
    np.testing.assert_array_equal(filled[valid], image[valid])
    vy, vx = np.nonzero(valid)
    for y, x in zip(*np.nonzero(~valid)):  # brute force: the nearest valid pixel (ties: same distance)
        d = (vy - y) ** 2 + (vx - x) ** 2
        nearest = {tuple(image[a, b]) for a, b in zip(vy[d == d.min()], vx[d == d.min()])}
        assert tuple(filled[y, x]) in nearest


class CountingEncoder:
    """The oracle encoder, counting the windows it encodes."""

    def __init__(self):
        self.inner, self.windows = build(), 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_dense(self, x, *args, **kwargs):
        self.windows += x.shape[0]
        return self.inner.encode_dense(x, *args, **kwargs)


def test_nodata_windows_cost_no_encoder_pass_and_the_generator_never_sees_zeros():
    seen = []

    def generator(window_image):
        seen.append(window_image.copy())
        return np.ones((0, *window_image.shape[:2]), np.int32)

    vocab = Vocabulary([[n] for n in COLOR_CLASSES])
    truth = block_labels(64, 96, cell=8, seed=2)
    image = paint(truth)
    valid = np.ones(truth.shape, bool)
    valid[:, :40] = False                       # the left 40 px are nodata (windows are 16 px) ...
    image[~valid] = 0                           # ... and black, as nodata usually is
    enc = CountingEncoder()
    seg = Segmenter(enc, generator, load_recipe(None, window=16, stride=16))
    res = seg.segment(image, vocab, valid=valid)
    # of the 4 x 6 windows, the 4 x 2 with no valid pixel are skipped; the 4 x 1 cut by the edge are not
    assert res.info["windows_skipped_nodata"] == 4 * 2 and enc.windows == 4 * 4
    np.testing.assert_array_equal(res.labels, np.where(valid, truth, NODATA_LABEL))
    assert (res.probs[:, ~valid] == 0).all()
    # the mask generator saw valid colours only: nodata was filled from the nearest valid pixels
    assert seen and all((w.reshape(-1, 3).max(axis=1) > 0).all() for w in seen)
    # all nodata: no encoder pass at all
    enc.windows = 0
    empty = seg.segment(image, vocab, valid=np.zeros(truth.shape, bool))
    assert enc.windows == 0 and (empty.labels == NODATA_LABEL).all()


def test_eval_leaves_nodata_pixels_out_of_the_metrics(tmp_path):
    from resegzoo.eval.datasets.generic import open_generic

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "classes.yaml").write_text("classes: [red, blue, green, yellow]\n")
    truth = block_labels(32, 40, cell=4, seed=1)
    rgb = np.moveaxis(paint(truth), -1, 0).copy()
    rgb[:, :10, :] = 0
    with rasterio.open(tmp_path / "images" / "a.tif", "w", driver="GTiff", height=32, width=40, count=3,
                       dtype="uint8", nodata=0) as dst:
        dst.write(rgb)
    Image.fromarray(truth.astype(np.uint8)).save(tmp_path / "labels" / "a.png")
    dataset = open_generic(tmp_path)
    image, label = dataset.load(dataset.samples[0])
    assert (label[:10] == 255).all() and (label[10:] == truth[10:]).all()
    assert (image[:10] == image[10]).all()  # filled from the nearest valid row, not black


def _geotiff(path, labels):
    with rasterio.open(path, "w", driver="GTiff", height=labels.shape[0], width=labels.shape[1], count=3,
                       dtype="uint8", crs="EPSG:32632", transform=Affine(1, 0, 0, 0, -1, 0)) as dst:
        dst.write(np.moveaxis(paint(labels), -1, 0))
    return path


def test_rasters_are_found_by_what_gdal_opens_not_by_suffix(tmp_path):
    labels = block_labels(20, 24, cell=4)
    _geotiff(tmp_path / "a.tif", labels)
    _geotiff(tmp_path / "scene.data", labels)                    # an odd suffix, still a GeoTIFF
    Image.fromarray(paint(labels)).save(tmp_path / "c.png")
    (tmp_path / "c.pgw").write_text("1\n0\n0\n-1\n0.5\n-0.5\n")  # a world file: part of c.png
    (tmp_path / "notes.tif").write_text("not a raster at all")  # a TIFF suffix, but no raster
    (tmp_path / "a.tif.aux.xml").write_text("<PAMDataset/>")
    _geotiff(tmp_path / "a.tif.ovr", labels[::2, ::2])             # an external overview: part of a.tif
    with rasterio.open(tmp_path / "a.tif") as src:
        vrt = f"""<VRTDataset rasterXSize="24" rasterYSize="20"><VRTRasterBand dataType="Byte" band="1">
        <SimpleSource><SourceFilename relativeToVRT="1">a.tif</SourceFilename><SourceBand>1</SourceBand>
        </SimpleSource></VRTRasterBand></VRTDataset>"""
        assert src.count == 3
    (tmp_path / "b.vrt").write_text(vrt)
    assert [p.name for p in find_rasters(tmp_path)] == ["a.tif", "b.vrt", "c.png", "scene.data"]


def test_batches_recursive_globs_and_the_summary_table(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    _geotiff(tmp_path / "d" / "one.tif", block_labels(20, 24, cell=4, seed=1))
    _geotiff(tmp_path / "d" / "sub" / "two.tif", block_labels(16, 30, cell=4, seed=2))
    args = ["--model", "oracle", "--masks", "none", "--classes", CLASSES, "--window", "16", "--stride", "16"]
    runner = CliRunner()
    flat = runner.invoke(build_cli(), ["segment", str(tmp_path / "d"), *args, "--out", str(tmp_path / "flat")])
    assert flat.exit_code == 0, flat.output
    assert sorted(p.name for p in (tmp_path / "flat").glob("*.labels.tif")) == ["one.labels.tif"]
    deep = runner.invoke(build_cli(), ["segment", str(tmp_path / "d"), "--recursive", *args, "--out",
                                       str(tmp_path / "deep")])
    assert deep.exit_code == 0, deep.output
    # the input folders are mirrored under --out (issue 18 item 10)
    assert sorted(str(p.relative_to(tmp_path / "deep")) for p in (tmp_path / "deep").rglob("*.labels.tif")) == \
        ["one.labels.tif", "sub/two.labels.tif"]
    table = deep.output[deep.output.index("image "):].splitlines()
    assert table[0].split() == ["image", "pixels", "nodata", "classes", "seconds", "outputs"]
    assert table[1].split()[:2] == ["one.tif", "480"] and table[2].split()[:2] == ["sub/two.tif", "480"]
    assert table[3].startswith("total: 2 images") and "960" in table[3]
    pattern = str(tmp_path / "d" / "**" / "t*.tif")
    glob = runner.invoke(build_cli(), ["segment", pattern, "--recursive", *args, "--out", str(tmp_path / "glob")])
    assert glob.exit_code == 0, glob.output
    assert [str(p.relative_to(tmp_path / "glob")) for p in (tmp_path / "glob").rglob("*.labels.tif")] == \
        ["sub/two.labels.tif"]
    none = runner.invoke(build_cli(), ["segment", str(tmp_path / "d" / "*.jp2"), *args, "--out", str(tmp_path / "x")])
    assert none.exit_code != 0 and "no rasters match" in none.output
