"""UDD5 (Chen et al., PRCV 2018) and VDD (Cai et al., 2023): nadir UAV images.

Both release as ``<split>/src/X.JPG`` + ``<split>/gt/X.png`` (SegEarth-OV reads these folders
directly); an mmsegmentation-style ``img_dir``/``ann_dir`` copy is read too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from resegzoo.eval.datasets.base import Sample
from resegzoo.eval.datasets.layout import Layout, files_with_suffix, mmseg_layout, pair

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _find_release(root: Path, split: str) -> Optional[list[Sample]]:
    if not any((p / "src").is_dir() for p in root.iterdir() if p.is_dir()):
        return None
    src, gt = root / split / "src", root / split / "gt"
    if not src.is_dir():
        return []
    return pair(files_with_suffix(src, IMAGE_SUFFIXES), lambda p: gt / (p.stem + ".png"),
                lambda p: p.stem, str(root / split))


LAYOUTS = [
    Layout("release", "{split}/src/*.JPG with labels {split}/gt/*.png", _find_release),
    mmseg_layout(IMAGE_SUFFIXES, ".png"),
]
