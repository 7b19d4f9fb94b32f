"""iSAID (Waqas Zamir et al., CVPR-W 2019): 15 object classes + background on DOTA images.

Release: ``<split>/images/**/P0003.png`` with colour-coded semantic masks
``<split>/Semantic_masks/**/P0003_instance_color_RGB.png`` and, where downloaded, instance masks
``<split>/Instance_masks/**/P0003_instance_id_RGB.png`` (or beside the semantic ones; every colour
but black one object: ``resegzoo eval`` counts a method's objects against them). mmsegmentation: patches
``img_dir/<split>/X.png`` + ``ann_dir/<split>/X_instance_color_RGB.png`` holding class indices
(0 background ... 15 harbor, 255 padding).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from resegzoo.eval.datasets.base import Sample
from resegzoo.eval.datasets.layout import Layout, files_with_suffix, mmseg_layout, pair

MASK_SUFFIX = "_instance_color_RGB.png"
INSTANCE_SUFFIX = "_instance_id_RGB.png"


def _find_release(root: Path, split: str) -> Optional[list[Sample]]:
    images_dir, masks_dir = root / split / "images", root / split / "Semantic_masks"
    if not any((root / s / "images").is_dir() for s in ("train", "val", "test")):
        return None
    if not images_dir.is_dir():
        return []
    images = [p for p in files_with_suffix(images_dir, [".png"], recursive=True) if "_instance" not in p.name]
    masks = {p.name: p for p in files_with_suffix(masks_dir, [MASK_SUFFIX], recursive=True)} \
        if masks_dir.is_dir() else {}
    samples = pair(images, lambda p: masks.get(p.stem + MASK_SUFFIX, masks_dir / (p.stem + MASK_SUFFIX)),
                   lambda p: p.stem, str(root / split))
    return with_instances(samples, [root / split / "Instance_masks", masks_dir, images_dir])


def with_instances(samples: list[Sample], folders: list[Path]) -> list[Sample]:
    """The samples with their instance masks, when every sample has one in ``folders`` (or beside its
    label); a split with some missing counts no objects (its semantic labels are scored as ever)."""
    found = {}
    for folder in folders:
        if folder.is_dir():
            for path in files_with_suffix(folder, [INSTANCE_SUFFIX], recursive=True):
                found.setdefault(path.name, path)
    paths = []
    for sample in samples:
        name = sample.label.name.replace(MASK_SUFFIX, INSTANCE_SUFFIX) if sample.label.name.endswith(MASK_SUFFIX) \
            else sample.id + INSTANCE_SUFFIX
        beside = sample.label.with_name(name)
        paths.append(found.get(name) or (beside if beside.is_file() else None))
    if not samples or any(p is None for p in paths):
        return samples
    return [dataclasses.replace(s, instances=p) for s, p in zip(samples, paths)]


def _find_mmseg(root: Path, split: str) -> Optional[list[Sample]]:
    samples = _MMSEG.find(root, split)
    return samples if not samples else with_instances(samples, [])


_MMSEG = mmseg_layout([".png"], MASK_SUFFIX)
LAYOUTS = [
    Layout("release", "{split}/images/**/P*.png with colour masks {split}/Semantic_masks/**/P*" + MASK_SUFFIX,
           _find_release),
    Layout(_MMSEG.name, _MMSEG.expects, _find_mmseg),
]
