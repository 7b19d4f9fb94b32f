"""Finding a dataset's files on disk: layouts, image/label pairing, and the opened :class:`Dataset`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from resegzoo.eval.metrics import IGNORE_INDEX
from resegzoo.eval.datasets.base import DatasetError, DatasetInfo, LabelEncoding, Sample, read_image, read_label

#: ``find(root, split)`` returns the samples, or None when ``root`` does not hold this layout.
Finder = Callable[[Path, str], Optional[list[Sample]]]


@dataclass(frozen=True)
class Layout:
    """One way a dataset is laid out on disk (the authors' release, mmsegmentation's, ...)."""

    #: key into :attr:`DatasetInfo.encodings`
    name: str
    #: what the layout looks like, for error messages; ``{split}`` is filled in
    expects: str
    find: Finder


def files_with_suffix(folder: Path, suffixes: Sequence[str], recursive: bool = False) -> list[Path]:
    """Files in ``folder`` whose name ends with one of ``suffixes`` (case-insensitive), sorted."""
    lowered = tuple(s.lower() for s in suffixes)
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.name.lower().endswith(lowered))


def strip_suffix(name: str, suffixes: Sequence[str]) -> str:
    for suffix in suffixes:
        if name.lower().endswith(suffix.lower()):
            return name[: len(name) - len(suffix)]
    return name


def pair(images: list[Path], label_of: Callable[[Path], Path], id_of: Callable[[Path], str],
         where: str) -> list[Sample]:
    """Samples for ``images``; any image without its label file is an error naming it."""
    samples, missing = [], []
    for image in images:
        label = label_of(image)
        if label.is_file():
            samples.append(Sample(id_of(image), image, label))
        else:
            missing.append(f"{image.name} -> {label}")
    if missing:
        shown = "\n  ".join(missing[:5]) + ("\n  ..." if len(missing) > 5 else "")
        raise DatasetError(f"{where}: {len(missing)} image(s) have no label file (expected):\n  {shown}")
    return samples


def mmseg_layout(img_suffixes: Sequence[str], seg_suffix: str, name: str = "mmseg") -> Layout:
    """mmsegmentation's converted layout: ``img_dir/<split>/X<img suffix>`` + ``ann_dir/<split>/X<seg_suffix>``."""

    def find(root: Path, split: str) -> Optional[list[Sample]]:
        img_dir, ann_dir = root / "img_dir" / split, root / "ann_dir" / split
        if not (root / "img_dir").is_dir():
            return None
        if not img_dir.is_dir() or not ann_dir.is_dir():
            return []
        return pair(files_with_suffix(img_dir, img_suffixes),
                    lambda p: ann_dir / (strip_suffix(p.name, img_suffixes) + seg_suffix),
                    lambda p: strip_suffix(p.name, img_suffixes), str(root))

    shown = "|".join(img_suffixes)
    return Layout(name, f"img_dir/{{split}}/*{shown} with labels ann_dir/{{split}}/*{seg_suffix} "
                        "(mmsegmentation's converted layout)", find)


class Dataset:
    """An opened dataset: its samples in a fixed order, read one at a time."""

    def __init__(self, info: DatasetInfo, root: Path, split: str, layout: str,
                 samples: list[Sample], encoding: LabelEncoding) -> None:
        ids = [s.id for s in samples]
        if len(set(ids)) != len(ids):
            raise DatasetError(f"{root}: two samples share an id; sample ids must be unique")
        self.info, self.root, self.split, self.layout = info, root, split, layout
        self.samples, self.encoding = samples, encoding

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def load(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        """(image (H, W, 3) uint8, label (H, W) uint8 class indices with 255 = ignore).

        The image's nodata pixels are ignored in the label (left out of the metrics) and filled
        from their nearest valid pixels in the image (no flat patch the model takes for a segment)."""
        from resegzoo.raster.opening import fill_invalid

        image, valid = read_image(sample.image, sample.alpha_is_band)
        label = read_label(sample.label, self.encoding)
        if image.shape[:2] != label.shape:
            raise DatasetError(f"{sample.label}: label is {label.shape[1]}x{label.shape[0]} but its image "
                               f"{sample.image.name} is {image.shape[1]}x{image.shape[0]}")
        if not valid.all():
            label = np.where(valid, label, np.uint8(IGNORE_INDEX)).astype(np.uint8)
            image = fill_invalid(image, valid) if valid.any() else image
        return image, label

    def describe(self) -> dict:
        return {"dataset": self.info.name, "root": str(self.root), "split": self.split,
                "layout": self.layout, "images": len(self.samples)}

    def key_settings(self) -> dict:
        """What an evaluation run's key holds beside the settings every dataset has (none here; a
        change dataset's protocol and second-date files)."""
        return {}


def open_with_layouts(info: DatasetInfo, root: str | Path, split: Optional[str],
                      layouts: Sequence[Layout]) -> Dataset:
    """Try each layout in turn; none matching is an error that lists what was expected where."""
    root = Path(root).expanduser()
    split = split or info.default_split
    if not root.is_dir():
        raise DatasetError(f"{info.title}: dataset folder {root} does not exist")
    for layout in layouts:
        samples = layout.find(root, split)
        if samples is None:
            continue
        if not samples:
            raise DatasetError(f"{info.title} ({layout.name} layout) at {root}: no images for split {split!r}; "
                               f"expected {layout.expects.format(split=split)}")
        if layout.name not in info.encodings:
            raise DatasetError(f"{info.name}: no label encoding for layout {layout.name!r} in its dataset record")
        return Dataset(info, root, split, layout.name, samples, info.encodings[layout.name])
    expected = "\n  - ".join(f"{layout.name}: {layout.expects.format(split=split)}" for layout in layouts)
    raise DatasetError(f"{root} does not look like {info.title} (split {split!r}); expected one of:\n  - {expected}")
