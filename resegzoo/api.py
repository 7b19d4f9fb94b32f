"""resegzoo's public Python API: what the CLI, the evaluation and notebook users call.

    from resegzoo.api import load_recipe, Segmenter, Vocabulary
    recipe = load_recipe(None, window=224)                 # METHOD.md defaults + overrides
    seg = Segmenter.from_recipe(recipe, model="remoteclip-vit-l-14", masks="slic")
    res = seg.segment(image_uint8_hw3, Vocabulary.parse("building; road, street; tree"))
    res.labels        # (H, W) int32 indices into res.class_names
    res.probs         # (K, H, W) float32 softmax over the K vocabulary classes

With ``inference.background_threshold`` set, pixels whose top probability is below it get the
label ``len(vocabulary)`` and ``res.class_names[-1] == "background"``.

Rasters of any size (anything GDAL opens), block by block in bounded memory, nodata kept:

    from resegzoo.api import RasterOptions, segment_raster
    run = segment_raster(seg, vocab, "scene.tif", "scene.labels.tif", RasterOptions(nodata=0))
    run.pixel_fraction()   # per class, of the valid pixels; run.nodata_pixels
"""
from __future__ import annotations

from resegzoo.batch.job import RasterOptions, RasterPlan, RasterRun, plan_raster, segment_raster
from resegzoo.segmenter.core import ModelLoadError, Segmenter, SegmentResult, check_image
from resegzoo.segmenter.recipe import SegmentRecipe, load_recipe
from resegzoo.segmenter.text import Vocabulary, VocabularyError, load_templates

__all__ = [
    "ModelLoadError",
    "RasterOptions",
    "RasterPlan",
    "RasterRun",
    "SegmentRecipe",
    "SegmentResult",
    "Segmenter",
    "Vocabulary",
    "VocabularyError",
    "check_image",
    "load_recipe",
    "load_templates",
    "plan_raster",
    "segment_raster",
]
