"""OpenEarthMap (Xia et al., WACV 2023): 8 land-cover classes over 44 countries.

Release: ``<region>/images/<region>_N.tif`` + ``<region>/labels/<region>_N.tif``, with the split
given by ``<split>.txt`` at the root (one file name per line). mmsegmentation:
``img_dir/<split>/X.tif`` + ``ann_dir/<split>/X.tif``. Labels are indices: 0 = unknown (ignored),
1 bareland, 2 rangeland, 3 developed space, 4 road, 5 tree, 6 water, 7 agriculture, 8 building.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from resegzoo.eval.datasets.base import DatasetError, Sample
from resegzoo.eval.datasets.layout import Layout, mmseg_layout, pair


def _find_release(root: Path, split: str) -> Optional[list[Sample]]:
    if not any(p.is_dir() and (p / "images").is_dir() for p in root.iterdir()):
        return None
    split_file = root / f"{split}.txt"
    if not split_file.is_file():
        raise DatasetError(f"{root}: OpenEarthMap's release layout lists the images of split {split!r} in "
                           f"{split_file.name}, which is missing")
    names = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
    images = []
    for name in names:
        region = name.rsplit("_", 1)[0]
        image = root / region / "images" / name
        if not image.is_file():
            raise DatasetError(f"{split_file}: lists {name}, but {image} does not exist")
        images.append(image)
    return pair(images, lambda p: p.parent.parent / "labels" / p.name, lambda p: p.stem, str(root))


LAYOUTS = [
    Layout("release", "<region>/images/*.tif and <region>/labels/*.tif, the split listed in {split}.txt",
           _find_release),
    mmseg_layout([".tif"], ".tif"),
]
