"""LoveDA (Wang et al., NeurIPS 2021 datasets track): urban and rural scenes.

Release: ``Val/Urban/images_png/X.png`` + ``Val/Urban/masks_png/X.png`` (and ``Val/Rural/...``).
mmsegmentation: ``img_dir/val/X.png`` + ``ann_dir/val/X.png``. Labels are indices in both:
0 = no data (ignored), 1 background, 2 building, 3 road, 4 water, 5 barren, 6 forest, 7 agriculture.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from resegzoo.eval.datasets.base import Sample
from resegzoo.eval.datasets.layout import Layout, files_with_suffix, mmseg_layout, pair

DOMAINS = ("Urban", "Rural")


def _find_release(root: Path, split: str) -> Optional[list[Sample]]:
    split_dir = root / split.capitalize()
    if not any((root / s.capitalize()).is_dir() for s in ("train", "val", "test")):
        return None
    samples: list[Sample] = []
    for domain in DOMAINS:
        images = split_dir / domain / "images_png"
        if images.is_dir():
            masks = split_dir / domain / "masks_png"
            samples += pair(files_with_suffix(images, [".png"]), lambda p, m=masks: m / p.name,
                            lambda p, d=domain: f"{d}_{p.stem}", str(split_dir / domain))
    return samples


LAYOUTS = [
    Layout("release", "{split} capitalised (Val/, Train/) holding Urban/ and Rural/, each with "
                      "images_png/*.png and masks_png/*.png", _find_release),
    mmseg_layout([".png"], ".png"),
]
