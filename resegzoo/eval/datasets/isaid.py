"""iSAID (Waqas Zamir et al., CVPR-W 2019): 15 object classes + background on DOTA images.

Release: ``<split>/images/**/P0003.png`` with colour-coded semantic masks
``<split>/Semantic_masks/**/P0003_instance_color_RGB.png``. mmsegmentation: patches
``img_dir/<split>/X.png`` + ``ann_dir/<split>/X_instance_color_RGB.png`` holding class indices
(0 background ... 15 harbor, 255 padding).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from resegzoo.eval.datasets.base import Sample
from resegzoo.eval.datasets.layout import Layout, files_with_suffix, mmseg_layout, pair

MASK_SUFFIX = "_instance_color_RGB.png"


def _find_release(root: Path, split: str) -> Optional[list[Sample]]:
    images_dir, masks_dir = root / split / "images", root / split / "Semantic_masks"
    if not any((root / s / "images").is_dir() for s in ("train", "val", "test")):
        return None
    if not images_dir.is_dir():
        return []
    images = [p for p in files_with_suffix(images_dir, [".png"], recursive=True) if "_instance" not in p.name]
    masks = {p.name: p for p in files_with_suffix(masks_dir, [MASK_SUFFIX], recursive=True)} \
        if masks_dir.is_dir() else {}
    return pair(images, lambda p: masks.get(p.stem + MASK_SUFFIX, masks_dir / (p.stem + MASK_SUFFIX)),
                lambda p: p.stem, str(root / split))


LAYOUTS = [
    Layout("release", "{split}/images/**/P*.png with colour masks {split}/Semantic_masks/**/P*" + MASK_SUFFIX,
           _find_release),
    mmseg_layout([".png"], MASK_SUFFIX),
]
