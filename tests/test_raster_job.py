"""The block API (resegzoo.batch.job): plan once, segment blocks anywhere, write in any order,
seamless tiles with a context-sensitive model."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import rasterio
from affine import Affine

from resegzoo.api import Segmenter, Vocabulary, load_recipe, segment_raster
from resegzoo.batch.job import RasterOptions, RasterWriter, plan_raster, segment_block
from resegzoo.raster.reader import NODATA_LABEL
from resegzoo_oracle import build
from segment_helpers import COLOR_CLASSES, block_labels, paint

TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0)


def _geotiff(path, rgb_hwc, **extra):
    h, w = rgb_hwc.shape[:2]
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=3, dtype=rgb_hwc.dtype,
                       crs="EPSG:32632", transform=TRANSFORM, **extra) as dst:
        dst.write(np.moveaxis(rgb_hwc, -1, 0))
    return path


def _textured(height, width, seed=0):
    """Colour blocks with smooth texture: windows differ, so a context-sensitive model's
    labels depend on what each window sees."""
    rng = np.random.default_rng(seed)
    base = paint(block_labels(height, width, cell=24, seed=seed)).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    wave = 40 * np.sin(yy / 9.0)[..., None] * np.cos(xx / 13.0)[..., None]
    return np.clip(base * 0.7 + wave + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def clip_segmenter(tiny_clip):
    import open_clip

    from resegzoo.methods.clip.encoder import MaskedClipEncoder

    # global attention in every block: each patch's feature depends on the whole window (context)
    encoder = MaskedClipEncoder(tiny_clip, open_clip.tokenize, rules=["global"] * 8)
    # tile_overlap 0: the halo comes from the planner's own rule (at least one window)
    return Segmenter(encoder, None, load_recipe(None, window=32, stride=16, batch_size=32, tile_overlap=0))


@pytest.mark.parametrize("short_side", [None, 96])  # 96: every block resized by 0.75
def test_tiled_equals_whole_image_with_a_context_sensitive_model(tmp_path, clip_segmenter, short_side):
    import dataclasses

    seg = clip_segmenter
    if short_side:
        seg = Segmenter(seg.encoder, seg.mask_generator,
                        dataclasses.replace(seg.recipe, inference=dataclasses.replace(seg.recipe.inference,
                                                                                      short_side=short_side)))
    vocab = Vocabulary.parse("a; b; c; d; e; f; g; h")  # a random tiny CLIP spreads these over the image
    image = _textured(128, 192, seed=2)
    src = _geotiff(tmp_path / "scene.tif", image)
    whole = seg.segment(image, vocab).labels
    assert len(np.unique(whole)) >= 3 and np.bincount(whole.ravel()).max() < 0.8 * whole.size  # not one class
    run = segment_raster(seg, vocab, src, tmp_path / "tiled.tif", RasterOptions(block=48))
    assert len(run.plan.blocks) >= 8 and all(b.read != (0, 0, 128, 192) for b in run.plan.blocks)  # really tiled
    with rasterio.open(tmp_path / "tiled.tif") as dst:
        tiled = dst.read(1)
    agreement = float((tiled == whole).mean())
    assert agreement >= 0.995, agreement
    # the same blocks without context around them do show seams: the halo is what removes them
    naive = segment_raster(seg, vocab, src, tmp_path / "naive.tif", RasterOptions(block=48, halo=0))
    with rasterio.open(naive.labels_path) as dst:
        assert float((dst.read(1) == whole).mean()) < agreement


def test_plan_and_results_are_picklable_and_blocks_write_in_any_order(tmp_path):
    seg = Segmenter(build(), None, load_recipe(None, window=16, stride=8))
    vocab = Vocabulary([[n] for n in COLOR_CLASSES])
    labels = block_labels(70, 90, cell=5, seed=3)
    src = _geotiff(tmp_path / "a.tif", paint(labels))
    plan = plan_raster(src, seg, RasterOptions(block=24, probs="uint8"), vocab)
    plan = pickle.loads(pickle.dumps(plan))
    assert plan.tiled and plan.class_names == tuple(COLOR_CLASSES) and plan.label_driver == "GTiff"
    results = [pickle.loads(pickle.dumps(segment_block(seg, vocab, plan, b))) for b in plan.blocks]
    with RasterWriter(plan, tmp_path / "rev.tif", tmp_path / "rev.probs.tif") as writer:
        for block, result in reversed(list(zip(plan.blocks, results))):
            writer.write(block, result)
    with rasterio.open(tmp_path / "rev.tif") as dst:
        np.testing.assert_array_equal(dst.read(1), labels)
        assert dst.nodata == NODATA_LABEL and dst.transform == TRANSFORM and dst.crs.to_epsg() == 32632
    with rasterio.open(tmp_path / "rev.probs.tif") as dst:
        probs = dst.read()
        assert probs.shape == (4, 70, 90) and dst.descriptions == tuple(COLOR_CLASSES)
        np.testing.assert_array_equal(probs.argmax(0), labels)
    assert int(writer.counts.sum()) == 70 * 90 and writer.nodata_pixels == 0


def test_writer_saves_nothing_unless_every_block_arrives(tmp_path):
    seg = Segmenter(build(), None, load_recipe(None, window=16, stride=8))
    vocab = Vocabulary([[n] for n in COLOR_CLASSES])
    src = _geotiff(tmp_path / "a.tif", paint(block_labels(60, 60, cell=5)))
    plan = plan_raster(src, seg, RasterOptions(block=20), vocab)
    with pytest.raises(RuntimeError, match="never written"):
        with RasterWriter(plan, tmp_path / "out.tif") as writer:
            for block in plan.blocks[:-1]:
                writer.write(block, segment_block(seg, vocab, plan, block))
    with pytest.raises(KeyboardInterrupt):
        with RasterWriter(plan, tmp_path / "out.tif") as writer:
            writer.write(plan.blocks[0], segment_block(seg, vocab, plan, plan.blocks[0]))
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif"]  # no output, no temporary left
