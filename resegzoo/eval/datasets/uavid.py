"""UAVid (Lyu et al., ISPRS J. 2020): oblique UAV video frames of urban scenes.

Release: ``uavid_<split>/seqN/Images/X.png`` + ``uavid_<split>/seqN/Labels/X.png`` (colour-coded;
the folder may also be called ``<split>`` or ``<split>_gt``). mmsegmentation (SegEarth-OV's
converter): ``img_dir/<split>/X.png`` + ``ann_dir/<split>/X.png`` with indices, moving cars merged
into static cars.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from resegzoo.eval.datasets.base import Sample
from resegzoo.eval.datasets.layout import Layout, files_with_suffix, mmseg_layout, pair


def _find_release(root: Path, split: str) -> Optional[list[Sample]]:
    for folder in (root / f"uavid_{split}", root / split, root / f"{split}_gt"):
        sequences = sorted(p for p in folder.glob("seq*") if (p / "Images").is_dir()) if folder.is_dir() else []
        if sequences:
            break
    else:
        return [] if list(root.glob("*/seq*/Images")) else None
    samples: list[Sample] = []
    for seq in sequences:
        samples += pair(files_with_suffix(seq / "Images", [".png"]), lambda p, s=seq: s / "Labels" / p.name,
                        lambda p, s=seq: f"{s.name}_{p.stem}", str(seq))
    return samples


LAYOUTS = [
    Layout("release", "uavid_{split}/seq*/Images/*.png with colour labels uavid_{split}/seq*/Labels/*.png",
           _find_release),
    mmseg_layout([".png"], ".png"),
]
