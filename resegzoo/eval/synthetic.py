"""Tiny synthetic copies of the benchmark datasets, in each supported layout, for tests and demos.

Every class k is painted with ``paint(class k's first name)`` (e.g. the oracle test plugin's
``color_of``), so a segmenter that maps colours to names perfectly scores 100 mIoU. Each image
also has a block of ignored pixels (painted an unrelated colour) wherever the layout's encoding
has an ignore value, so ignore handling is exercised too.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from resegzoo.eval.datasets import DatasetInfo, LabelEncoding
from resegzoo.eval.metrics import IGNORE_INDEX

Paint = Callable[[str], tuple[int, int, int]]
VAIHINGEN_ERODED = "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE"

#: (dataset, layout) -> file paths of image i and its label, relative to the root.
#: ``{split}`` is the dataset's default split. Extra files (split lists) are written separately.
PATHS: dict[tuple[str, str], Callable[[int, str], tuple[str, str]]] = {
    ("openearthmap", "release"): lambda i, s: (f"kyiv/images/kyiv_{i}.tif", f"kyiv/labels/kyiv_{i}.tif"),
    ("openearthmap", "mmseg"): lambda i, s: (f"img_dir/{s}/tile_{i}.tif", f"ann_dir/{s}/tile_{i}.tif"),
    ("loveda", "release"): lambda i, s: (f"{s.capitalize()}/{('Urban', 'Rural')[i % 2]}/images_png/{i}.png",
                                         f"{s.capitalize()}/{('Urban', 'Rural')[i % 2]}/masks_png/{i}.png"),
    ("loveda", "mmseg"): lambda i, s: (f"img_dir/{s}/{i}.png", f"ann_dir/{s}/{i}.png"),
    ("isaid", "release"): lambda i, s: (f"{s}/images/images/P000{i}.png",
                                        f"{s}/Semantic_masks/images/P000{i}_instance_color_RGB.png"),
    ("isaid", "mmseg"): lambda i, s: (f"img_dir/{s}/P000{i}_0_48_0_64.png",
                                      f"ann_dir/{s}/P000{i}_0_48_0_64_instance_color_RGB.png"),
    ("potsdam", "release"): lambda i, s: (f"2_Ortho_RGB/top_potsdam_2_1{3 + i}_RGB.tif",
                                          f"5_Labels_all_noBoundary/top_potsdam_2_1{3 + i}_label_noBoundary.tif"),
    ("potsdam", "mmseg"): lambda i, s: (f"img_dir/{s}/2_13_{i}_0_512_512.png", f"ann_dir/{s}/2_13_{i}_0_512_512.png"),
    ("vaihingen", "release"): lambda i, s: (
        f"top/top_mosaic_09cm_area{2 * i + 2}.tif",
        f"{VAIHINGEN_ERODED}/top_mosaic_09cm_area{2 * i + 2}_noBoundary.tif"),
    ("vaihingen", "mmseg"): lambda i, s: (f"img_dir/{s}/area2_{i}.png", f"ann_dir/{s}/area2_{i}.png"),
    ("uavid", "release"): lambda i, s: (f"uavid_{s}/seq2{i}/Images/000000.png", f"uavid_{s}/seq2{i}/Labels/000000.png"),
    ("uavid", "mmseg"): lambda i, s: (f"img_dir/{s}/seq2{i}_000000.png", f"ann_dir/{s}/seq2{i}_000000.png"),
    # UDD5/VDD release JPEGs; here PNG-encoded under the .JPG name so colours survive exactly.
    ("udd5", "release"): lambda i, s: (f"{s}/src/DJI_000{i}.JPG", f"{s}/gt/DJI_000{i}.png"),
    ("udd5", "mmseg"): lambda i, s: (f"img_dir/{s}/DJI_000{i}.png", f"ann_dir/{s}/DJI_000{i}.png"),
    ("vdd", "release"): lambda i, s: (f"{s}/src/DJI_000{i}.JPG", f"{s}/gt/DJI_000{i}.png"),
    ("vdd", "mmseg"): lambda i, s: (f"img_dir/{s}/DJI_000{i}.png", f"ann_dir/{s}/DJI_000{i}.png"),
    ("generic", "folders"): lambda i, s: (f"images/img_{i}.png", f"labels/img_{i}.png"),
    ("generic", "reference"): lambda i, s: (f"tile_{i}/R_G_B_IR.png", f"tile_{i}/L.png"),
}


def class_map(num_classes: int, height: int, width: int, shift: int = 0) -> np.ndarray:
    """(H, W) class indices: vertical stripes through every class, then a horizontal band."""
    x = np.arange(width)[None, :].repeat(height, 0)
    labels = (x * num_classes // width + shift) % num_classes
    labels[height * 2 // 3:, :] = (shift + 1) % num_classes  # a wide band: not only thin stripes
    return labels.astype(np.uint8)


def _raw_values(encoding: LabelEncoding, kind: str, num_classes: int) -> tuple[list, Optional[object]]:
    """For each class its raw label value (smallest index / first colour), and an ignore value."""
    table = encoding.index if kind == "index" else encoding.color
    assert table is not None
    raw: list = [None] * num_classes
    ignore = None
    for value in sorted(table, key=str) if kind == "color" else sorted(table):
        k = table[value]
        if k == IGNORE_INDEX:
            ignore = value if ignore is None else ignore
        elif raw[k] is None:
            raw[k] = value
    return raw, ignore


def _encode(labels: np.ndarray, raw: list, ignore_mask: np.ndarray, ignore, kind: str) -> np.ndarray:
    if kind == "index":
        out = np.array(raw, dtype=np.uint8)[labels]
        if ignore is not None:
            out[ignore_mask] = ignore
        return out
    colours = np.array([[int(c[j:j + 2], 16) for j in (1, 3, 5)] for c in raw], dtype=np.uint8)
    out = colours[labels]
    if ignore is not None:
        out[ignore_mask] = [int(ignore[j:j + 2], 16) for j in (1, 3, 5)]
    return out


def _save(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "TIFF" if path.suffix.lower() in (".tif", ".tiff") else "PNG"
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    path.write_bytes(buf.getvalue())


def write_dataset(info: DatasetInfo, layout: str, root: str | Path, paint: Paint, *, images: int = 2,
                  height: int = 48, width: int = 64, split: Optional[str] = None,
                  label_kind: Optional[str] = None) -> list[np.ndarray]:
    """Write ``images`` samples of ``info`` in ``layout`` under ``root``; returns the decoded labels.

    ``label_kind`` is ``index`` or ``color`` (default: index when the layout's encoding has one).
    """
    root = Path(root)
    split = split if split is not None else info.default_split
    encoding = info.encodings[layout]
    kind = label_kind or ("index" if encoding.index is not None else "color")
    raw, ignore = _raw_values(encoding, kind, info.num_classes)
    if any(v is None for v in raw):
        raise ValueError(f"{info.name}/{layout}: some class has no {kind} value in the encoding")
    palette = np.array([paint(names[0]) for names in info.classes], dtype=np.uint8)
    rng = np.random.default_rng(0)
    truths, names = [], []
    for i in range(images):
        labels = class_map(info.num_classes, height, width, shift=i)
        image = palette[labels]
        ignore_mask = np.zeros_like(labels, dtype=bool)
        if ignore is not None:
            ignore_mask[:6, :6] = True
            image[ignore_mask] = rng.integers(0, 256, size=3, dtype=np.uint8)
        image_rel, label_rel = PATHS[(info.name, layout)](i, split)
        if layout == "reference":  # a 4th band (infrared) that must not be read as colour
            image = np.dstack([image, rng.integers(0, 256, size=(height, width), dtype=np.uint8)])
        _save(root / image_rel, image)
        _save(root / label_rel, _encode(labels, raw, ignore_mask, ignore, kind))
        truths.append(np.where(ignore_mask, IGNORE_INDEX, labels).astype(np.uint8))
        names.append(Path(image_rel).name)
    if (info.name, layout) == ("openearthmap", "release"):
        (root / f"{split}.txt").write_text("\n".join(names) + "\n")
    return truths
