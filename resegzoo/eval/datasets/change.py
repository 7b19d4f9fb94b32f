"""Change-detection datasets: pairs of dates and a change label (LEVIR-CD, WHU-CD, S2Looking and any
``A/ B/ label/`` folder), read as SegEarth-OV3's change configs read them.

Every layout is a folder of the first date's images, one of the second date's and one of labels,
matched by file name; SegEarth-OV3's 512 px protocol (``tools/dataset_converters/cd.py``) is the
record's ``change.crop``: each image whose sides are multiples of it is cut into tiles row by row,
``NAME_i_j`` (LEVIR-CD's 1024 px images give four), so the released folders evaluate like its
converted ones; its converted folders (``test_512``) are read as they are.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from resegzoo.eval.datasets.base import (DatasetError, DatasetInfo, LabelEncoding, Sample, read_image,
                                         read_label)
from resegzoo.eval.datasets.layout import Dataset, Layout, files_with_suffix, strip_suffix
from resegzoo.eval.metrics import IGNORE_INDEX

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: label folders tried in order (SegEarth-OV3's configs read ``label_cvt``; releases ship ``label``)
LABEL_FOLDERS = ("label_cvt", "label")


@dataclass(frozen=True)
class ChangeSample(Sample):
    """One pair: ``image`` (the first date), ``after`` (the second) and ``label``; ``box`` the
    (y0, x0, y1, x1) tile of them that is evaluated (None: the whole images)."""

    after: Optional[Path] = None
    box: Optional[tuple[int, int, int, int]] = None


def _size(path: Path) -> tuple[int, int]:
    from resegzoo.raster.errors import ImageError
    from resegzoo.raster.opening import open_raster

    try:
        raster = open_raster(path, stretch=False)
    except ImageError as exc:
        raise DatasetError(f"cannot read the image: {exc}") from None
    return raster.height, raster.width


def tiles(height: int, width: int, crop: Optional[int]) -> list[tuple[str, tuple[int, int, int, int] | None]]:
    """(suffix, box) of each tile: ``_i_j`` for row i, column j of ``crop`` px tiles when both sides
    are larger than ``crop`` and multiples of it, else one whole image (``""``, None)."""
    if crop is None or (height <= crop and width <= crop) or height % crop or width % crop:
        return [("", None)]
    return [(f"_{i}_{j}", (i * crop, j * crop, (i + 1) * crop, (j + 1) * crop))
            for i in range(height // crop) for j in range(width // crop)]


def pairs_layout(name: str, first: str, second: str, description: str) -> Layout:
    """A layout of ``ROOT/<split>/<first>/X``, ``<second>/X`` and ``label_cvt/X`` or ``label/X`` (or
    the three folders right under ROOT); the samples are whole pairs, tiled by :class:`ChangeDataset`."""

    def find(root: Path, split: str) -> Optional[list[Sample]]:
        base = next((b for b in ([root / split] if split else []) + [root] if (b / first).is_dir()), None)
        if base is None:
            return None
        labels = next((base / f for f in LABEL_FOLDERS if (base / f).is_dir()), None)
        if labels is None or not (base / second).is_dir():
            raise DatasetError(f"{base}: {first}/ is here but {second}/ or a label folder ({', '.join(LABEL_FOLDERS)}) "
                               "is missing")
        samples, missing = [], []
        for image in files_with_suffix(base / first, IMAGE_SUFFIXES):
            stem = strip_suffix(image.name, IMAGE_SUFFIXES)
            after = base / second / image.name
            label = next((labels / f"{stem}{s}" for s in IMAGE_SUFFIXES if (labels / f"{stem}{s}").is_file()), None)
            if not after.is_file() or label is None:
                missing.append(f"{image.name}: {'no ' + str(after) if not after.is_file() else 'no label in ' + str(labels)}")
                continue
            samples.append(ChangeSample(stem, image, label, after=after))
        if missing:
            shown = "\n  ".join(missing[:5]) + ("\n  ..." if len(missing) > 5 else "")
            raise DatasetError(f"{base}: {len(missing)} pair(s) are incomplete:\n  {shown}")
        return samples

    return Layout(name, f"{{split}}/{first}/*, {{split}}/{second}/* and {{split}}/label/* (or label_cvt/) of the same "
                        f"names ({description})", find)


#: LEVIR-CD and WHU-CD: A/, B/, label/ (their releases' layout, and SegEarth-OV3's converted test_512)
AB_LAYOUTS = [pairs_layout("release", "A", "B", "the release's, or SegEarth-OV3's 512 px crops")]
#: S2Looking: Image1/, Image2/, label/
S2LOOKING_LAYOUTS = [pairs_layout("release", "Image1", "Image2", "the release's")]


class ChangeDataset(Dataset):
    """An opened change dataset: pairs (tiles of them, by the record's ``change.crop``), read one at a
    time as (before, its valid mask, after, its valid mask, label)."""

    def __init__(self, info: DatasetInfo, root: Path, split: str, layout: str, samples: list[Sample],
                 encoding: LabelEncoding) -> None:
        if info.change is None:
            raise DatasetError(f"{info.name}: not a change dataset (its record has no change: section)")
        tiled = []
        for sample in samples:
            size = _size(sample.image)
            for suffix, box in tiles(*size, info.change.crop):
                tiled.append(dataclasses.replace(sample, id=sample.id + suffix, box=box))
        super().__init__(info, root, split, layout, tiled, encoding)

    def load(self, sample: Sample) -> tuple[Any, np.ndarray]:
        """((before, valid before, after, valid after), label): (H, W, 3) uint8 images, (H, W) bool
        masks, the (H, W) uint8 change label (0, 1; 255 ignored, and wherever a date has no data)."""
        assert isinstance(sample, ChangeSample) and sample.after is not None
        image_a, valid_a = read_image(sample.image, sample.alpha_is_band)
        image_b, valid_b = read_image(sample.after, sample.alpha_is_band)
        label = read_label(sample.label, self.encoding)
        if not image_a.shape == image_b.shape or image_a.shape[:2] != label.shape:
            raise DatasetError(f"{sample.id}: the two dates and the label differ in size ({image_a.shape[:2]}, "
                               f"{image_b.shape[:2]}, {label.shape})")
        if sample.box is not None:
            y0, x0, y1, x1 = sample.box
            image_a, valid_a, image_b, valid_b, label = (a[y0:y1, x0:x1] for a in
                                                         (image_a, valid_a, image_b, valid_b, label))
        valid = valid_a & valid_b
        if not valid.all():
            label = np.where(valid, label, np.uint8(IGNORE_INDEX)).astype(np.uint8)
        return (image_a, valid_a, image_b, valid_b), label

    def key_settings(self) -> dict[str, Any]:
        """What the run key holds beside the common settings: the protocol and the second dates' files."""
        assert self.info.change is not None
        listing = [[s.id, str(s.after), Path(s.after).stat().st_size, list(s.box or ())] for s in self.samples
                   if isinstance(s, ChangeSample) and s.after is not None]
        return {"change": dataclasses.asdict(self.info.change),
                "after_files": hashlib.sha256(json.dumps(listing).encode("utf-8")).hexdigest()}


def open_change(info: DatasetInfo, root: str | Path, split: Optional[str], layouts: Sequence[Layout]) -> ChangeDataset:
    """Open a change dataset in any of ``layouts`` (the first that finds its folders)."""
    from resegzoo.eval.datasets.layout import open_with_layouts

    plain = open_with_layouts(info, root, split, layouts)
    return ChangeDataset(info, plain.root, plain.split, plain.layout, plain.samples, plain.encoding)


def open_generic_change(root: str | Path, split: Optional[str] = None, classes: str | Path | None = None) -> ChangeDataset:
    """``ROOT/A``, ``ROOT/B``, ``ROOT/label`` (optionally under a split folder) with a classes file
    (``ROOT/classes.yaml`` unless given): the vocabulary, optionally ``change:`` (crop, the rule's
    settings) and the label values (``index``; default 0 unchanged, 1 and 255 changed)."""
    from resegzoo.eval.datasets.base import ChangeProtocol
    from resegzoo.eval.datasets.generic import find_classes_file, load_classes_file

    root = Path(root).expanduser()
    path = find_classes_file(root, classes)
    info = load_classes_file(path, change_layouts=[layout.name for layout in AB_LAYOUTS])
    if info.change is None:
        info = dataclasses.replace(info, change=ChangeProtocol())
    return open_change(info, root, split or "", AB_LAYOUTS)
