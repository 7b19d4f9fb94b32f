"""ISPRS 2D semantic labelling benchmarks: Potsdam (RGB, 6000x6000 tiles) and Vaihingen (IRRG).

Release labels are RGB colours (boundary pixels black in the eroded ``noBoundary`` versions,
which are preferred when present, as mmsegmentation's converter does). mmsegmentation: 512 px
crops ``img_dir/<split>/X.png`` + ``ann_dir/<split>/X.png`` holding indices (0 = boundary).
Splits follow mmsegmentation's converters (the benchmark's test tiles are ``val``); ``all`` takes
every tile that has a label.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Sequence

from resegzoo.eval.datasets.base import DatasetError, Sample
from resegzoo.eval.datasets.layout import Layout, files_with_suffix, mmseg_layout, pair

POTSDAM_SPLITS = {
    "train": ["2_10", "2_11", "2_12", "3_10", "3_11", "3_12", "4_10", "4_11", "4_12", "5_10", "5_11", "5_12",
              "6_10", "6_11", "6_12", "6_7", "6_8", "6_9", "7_10", "7_11", "7_12", "7_7", "7_8", "7_9"],
    "val": ["5_15", "6_15", "6_13", "3_13", "4_14", "6_14", "5_14", "2_13", "4_15", "2_14", "5_13", "4_13",
            "3_14", "7_13"],
}
VAIHINGEN_SPLITS = {
    "train": ["1", "3", "5", "7", "11", "13", "15", "17", "21", "23", "26", "28", "30", "32", "34", "37"],
    "val": ["2", "4", "6", "8", "10", "12", "14", "16", "20", "22", "24", "27", "29", "31", "33", "35", "38"],
}


def _select(tiles: dict[str, Path], splits: dict[str, list[str]], split: str, where: Path) -> list[Path]:
    if split == "all":
        return [tiles[k] for k in sorted(tiles)]
    if split not in splits:
        raise DatasetError(f"{where}: unknown split {split!r}; choose one of {', '.join([*splits, 'all'])}")
    return [tiles[k] for k in splits[split] if k in tiles]


def _first_dir(root: Path, names: Sequence[str]) -> Optional[Path]:
    return next((root / n for n in names if (root / n).is_dir()), None)


def _find_potsdam(root: Path, split: str) -> Optional[list[Sample]]:
    images_dir = root / "2_Ortho_RGB"
    if not images_dir.is_dir():
        return None
    labels_dir = _first_dir(root, ["5_Labels_all_noBoundary", "5_Labels_all"])
    if labels_dir is None:
        raise DatasetError(f"{root}: found 2_Ortho_RGB/ but no label folder (5_Labels_all_noBoundary/ "
                           "or 5_Labels_all/)")
    tiles = {}
    for path in files_with_suffix(images_dir, [".tif"]):
        match = re.fullmatch(r"top_potsdam_(\d+_\d+)_RGB\.tif", path.name, re.IGNORECASE)
        if match:
            tiles[match.group(1)] = path
    eroded = labels_dir.name.endswith("noBoundary")

    def label_of(p: Path) -> Path:
        stem = p.name[: -len("_RGB.tif")]
        return labels_dir / (f"{stem}_label_noBoundary.tif" if eroded else f"{stem}_label.tif")

    return pair(_select(tiles, POTSDAM_SPLITS, split, root), label_of,
                lambda p: p.name[len("top_potsdam_"): -len("_RGB.tif")], str(root))


VAIHINGEN_LABEL_DIRS = [
    ("ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE", "_noBoundary"),
    ("ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE", ""),
    ("gts_eroded_for_participants", "_noBoundary"),
    ("gts_for_participants", ""),
]


def _find_vaihingen(root: Path, split: str) -> Optional[list[Sample]]:
    images_dir = root / "top"
    if not images_dir.is_dir():
        return None
    found = next(((root / d, suffix) for d, suffix in VAIHINGEN_LABEL_DIRS if (root / d).is_dir()), None)
    if found is None:
        raise DatasetError(f"{root}: found top/ but no label folder; expected one of "
                           + ", ".join(d for d, _ in VAIHINGEN_LABEL_DIRS))
    labels_dir, suffix = found
    tiles = {}
    for path in files_with_suffix(images_dir, [".tif"]):
        match = re.fullmatch(r"top_mosaic_09cm_area(\d+)\.tif", path.name, re.IGNORECASE)
        if match:
            tiles[match.group(1)] = path
    return pair(_select(tiles, VAIHINGEN_SPLITS, split, root),
                lambda p: labels_dir / f"{p.stem}{suffix}.tif",
                lambda p: "area" + p.stem[len("top_mosaic_09cm_area"):], str(root))


POTSDAM_LAYOUTS = [
    Layout("release", "2_Ortho_RGB/top_potsdam_*_RGB.tif with colour labels "
                      "5_Labels_all_noBoundary/top_potsdam_*_label_noBoundary.tif (or 5_Labels_all/)",
           _find_potsdam),
    mmseg_layout([".png"], ".png"),
]
VAIHINGEN_LAYOUTS = [
    Layout("release", "top/top_mosaic_09cm_area*.tif with colour labels in "
                      "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE/ (or the full/"
                      "participants' label folders)", _find_vaihingen),
    mmseg_layout([".png"], ".png"),
]
