"""Built-in mask generators: sam, sam2, slic, felzenszwalb, none (registered like any plugin's)."""
from __future__ import annotations

from typing import Any

from resegzoo.plugins.hookspecs import hookimpl


def _sam(**settings: Any) -> Any:
    from resegzoo.masks.sam_factory import build_sam_generator

    return build_sam_generator(**settings)


def _sam2(**settings: Any) -> Any:
    from resegzoo.masks.sam2_factory import build_sam2_generator

    return build_sam2_generator(**settings)


def _slic(**settings: Any) -> Any:
    from resegzoo.masks.superpixels import build_slic

    return build_slic(**settings)


def _felzenszwalb(**settings: Any) -> Any:
    from resegzoo.masks.superpixels import build_felzenszwalb

    return build_felzenszwalb(**settings)


def _none(**settings: Any) -> Any:
    from resegzoo.masks.none import build_none

    return build_none(**settings)


@hookimpl
def resegzoo_register_mask_generators(register):
    from resegzoo.plugins.interfaces import MaskGeneratorSpec

    register(MaskGeneratorSpec(
        "sam", _sam,
        "Segment Anything (vit_b/vit_l/vit_h) at 4 levels, one image embedding per crop shared by all "
        "levels, run once per region of up to 1024 px; settings: model, checkpoint, levels, cache_dir, ...",
        runtime_settings=("precision",)))
    register(MaskGeneratorSpec(
        "sam2", _sam2,
        "SAM 2.1 (hiera_t/hiera_s/hiera_b+/hiera_l) at 4 levels, one image embedding per crop shared by all "
        "levels; needs the extra: pip install \"resegzoo[sam2]\"; settings as sam's",
        runtime_settings=("precision",)))
    register(MaskGeneratorSpec(
        "slic", _slic, "SLIC superpixels (scikit-image) at several scales; no weights (default n_segments "
        "64/32/16/8 per window)"))
    register(MaskGeneratorSpec(
        "felzenszwalb", _felzenszwalb, "Felzenszwalb segments (scikit-image) at several scales; no weights "
        "(default scales 32/64/128/256)"))
    register(MaskGeneratorSpec("none", _none, "no segments (zero levels): with an all-global schedule, plain CLIP"))
