"""Any folder of images and label maps, described by a classes YAML.

Two layouts are read:

- ``images/X.{png,jpg,tif}`` + ``labels/X.{png,tif}`` (optionally one level deeper:
  ``images/<split>/`` + ``labels/<split>/``);
- the ReSeg-CLIP reference code's: one folder per tile holding ``R_G_B_IR.png`` (the first three
  bands are used) and ``L.png`` (class indices), anywhere below the root.

The classes file (``<root>/classes.yaml`` unless given; docs/datasets.md has a complete example)
looks like::

    classes:                 # evaluation order; synonyms in a list
      - [road, street]
      - building
    index: {0: 0, 1: 1}      # optional: raw label value -> class (255 = ignore);
                             # default: value k is class k, 255 is ignored
    color: {"#ff0000": 0}    # optional: for RGB label files
    unlisted: error          # or ignore: label values in neither map
    background: null         # optional: index of the "everything else" class
    change: {crop: 512, background_threshold: 0.4, coverage: 0.3}
                             # --dataset change-generic only (A/, B/, label/ folders): the protocol
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Union

from resegzoo.eval.datasets.base import ChangeProtocol, DatasetError, DatasetInfo, LabelEncoding, Sample
from resegzoo.eval.datasets.layout import Dataset, Layout, open_with_layouts, pair
from resegzoo.eval.metrics import IGNORE_INDEX
from resegzoo.raster.discovery import find_rasters
from resegzoo.schema import SchemaError, from_mapping, load_yaml

LABEL_SUFFIXES = (".png", ".tif", ".tiff")
REFERENCE_IMAGE, REFERENCE_LABEL = "R_G_B_IR.png", "L.png"


@dataclass(frozen=True)
class ClassesFile:
    classes: list[Union[str, list[str]]]
    index: Optional[dict[int, int]] = None
    color: Optional[dict[str, int]] = None
    unlisted: Literal["error", "ignore"] = "error"
    background: Optional[int] = None
    title: str = "generic dataset"
    #: a change dataset's protocol (``--dataset change-generic``: crop, the change rule's settings)
    change: Optional[ChangeProtocol] = None


def _label_of(labels_dir: Path):
    def find(image: Path) -> Path:
        for suffix in LABEL_SUFFIXES:
            if (labels_dir / (image.stem + suffix)).is_file():
                return labels_dir / (image.stem + suffix)
        return labels_dir / (image.stem + ".png")
    return find


def _find_folders(root: Path, split: str) -> Optional[list[Sample]]:
    if not (root / "images").is_dir():
        return None
    images_dir, labels_dir = root / "images", root / "labels"
    if split and (images_dir / split).is_dir():
        images_dir, labels_dir = images_dir / split, labels_dir / split
    return pair(find_rasters(images_dir), _label_of(labels_dir), lambda p: p.stem,
                str(root))


def _find_reference(root: Path, split: str) -> Optional[list[Sample]]:
    images = sorted(root.rglob(REFERENCE_IMAGE))
    if not images:
        return None
    samples = pair(images, lambda p: p.parent / REFERENCE_LABEL,
                   lambda p: p.parent.relative_to(root).as_posix().replace("/", "_") or "tile", str(root))
    # the reference tiles' 4th channel is infrared, stored where a PNG keeps alpha
    return [dataclasses.replace(s, alpha_is_band=True) for s in samples]


LAYOUTS = [
    Layout("folders", "images/* (any raster GDAL opens) with labels/*.png|tif of the same name", _find_folders),
    Layout("reference", f"tile folders each holding {REFERENCE_IMAGE} and {REFERENCE_LABEL}", _find_reference),
]


#: the shape of a classes file, in one line, for errors (docs/datasets.md has the full example)
EXPECTED_SHAPE = ('expected a mapping with a `classes:` list in evaluation order, e.g. '
                  '"classes: [building, [road, street], tree]" (optional keys: index, color, unlisted, '
                  'background, title); see docs/datasets.md')


def load_classes_file(path: Path, change_layouts: Optional[list[str]] = None) -> DatasetInfo:
    """A classes file as a dataset record; ``change_layouts``: a change dataset's (the classes are then
    its vocabulary, the labels 0 unchanged and 1 (or 255) changed unless ``index`` says otherwise)."""
    data = load_yaml(path)
    if isinstance(data, list):
        raise DatasetError(f"{path}: got a list of {len(data)} item(s) at the top; put it under `classes:`. "
                           + EXPECTED_SHAPE)
    try:
        record = from_mapping(ClassesFile, data, str(path))
    except SchemaError as exc:
        raise DatasetError(f"{exc}. A classes file is {EXPECTED_SHAPE.removeprefix('expected ')}") from None
    classes = [[c] if isinstance(c, str) else list(c) for c in record.classes]
    index = record.index
    change = record.change if change_layouts is None else (record.change or ChangeProtocol())
    if record.change is not None and change_layouts is None:
        raise DatasetError(f"{path}: a change: section belongs to a change dataset; use --dataset change-generic")
    if index is None and record.color is None:
        index = ({0: 0, 1: 1, IGNORE_INDEX: 1} if change is not None
                 else {k: k for k in range(len(classes))} | {IGNORE_INDEX: IGNORE_INDEX})
    encoding = LabelEncoding(index=index, color=record.color, unlisted=record.unlisted)
    layouts = change_layouts if change_layouts is not None else [layout.name for layout in LAYOUTS]
    try:
        return DatasetInfo(name="change-generic" if change is not None else "generic", title=record.title,
                           classes=classes, encodings={name: encoding for name in layouts},
                           default_split="", background=record.background, change=change)
    except ValueError as exc:
        raise DatasetError(f"{path}: {exc}") from exc


def find_classes_file(root: Path, classes: str | Path | None = None) -> Path:
    """``classes``, or ``<root>/classes.yaml`` (or ``.yml``)."""
    if classes is not None:
        return Path(classes)
    candidates = [root / "classes.yaml", root / "classes.yml"]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise DatasetError(f"{root}: a generic dataset needs a classes file: expected {candidates[0]} "
                           "(or pass --classes FILE)")
    return found


def open_generic(root: str | Path, split: Optional[str] = None, classes: str | Path | None = None) -> Dataset:
    """Open a folder dataset; ``classes`` defaults to ``<root>/classes.yaml`` (or ``.yml``)."""
    root = Path(root).expanduser()
    info = load_classes_file(find_classes_file(root, classes))
    return open_with_layouts(info, root, split or "", LAYOUTS)
