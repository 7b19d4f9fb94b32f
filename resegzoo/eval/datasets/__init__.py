"""Evaluation datasets: the remote-sensing benchmarks in their release and mmsegmentation layouts.

Class names, label encodings and per-dataset evaluation settings live in
``registry/datasets/<name>.yaml``; how files are found on disk lives in one small module per
dataset family. Datasets reach the CLI as plugins (:mod:`resegzoo.builtin.datasets`), so a
third-party plugin adds a dataset the same way: register a ``DatasetSpec`` whose
``factory(root, split=None, **options)`` returns a :class:`Dataset`.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Optional

from resegzoo.eval.datasets.base import DatasetError, DatasetInfo, LabelEncoding, Sample, load_dataset_info
from resegzoo.eval.datasets.layout import Dataset, Layout, open_with_layouts

#: built-in dataset name -> (module, attribute holding its layouts), tried in order
BUILTIN_LAYOUTS: dict[str, tuple[str, str]] = {
    "openearthmap": ("resegzoo.eval.datasets.openearthmap", "LAYOUTS"),
    "loveda": ("resegzoo.eval.datasets.loveda", "LAYOUTS"),
    "isaid": ("resegzoo.eval.datasets.isaid", "LAYOUTS"),
    "potsdam": ("resegzoo.eval.datasets.isprs", "POTSDAM_LAYOUTS"),
    "vaihingen": ("resegzoo.eval.datasets.isprs", "VAIHINGEN_LAYOUTS"),
    "uavid": ("resegzoo.eval.datasets.uavid", "LAYOUTS"),
    "udd5": ("resegzoo.eval.datasets.udd", "LAYOUTS"),
    "vdd": ("resegzoo.eval.datasets.udd", "LAYOUTS"),
    # change detection (pairs of dates): resegzoo.eval.change
    "levir-cd": ("resegzoo.eval.datasets.change", "AB_LAYOUTS"),
    "whu-cd": ("resegzoo.eval.datasets.change", "AB_LAYOUTS"),
    "s2looking": ("resegzoo.eval.datasets.change", "S2LOOKING_LAYOUTS"),
}

__all__ = ["BUILTIN_LAYOUTS", "Dataset", "DatasetError", "DatasetInfo", "LabelEncoding", "Layout", "Sample",
           "builtin_info", "load_dataset_info", "open_builtin"]


def datasets_dir() -> Path:
    from resegzoo.weights.zoo import registry_dir

    return registry_dir() / "datasets"


def builtin_info(name: str) -> DatasetInfo:
    """The dataset record ``registry/datasets/<name>.yaml``."""
    return load_dataset_info(datasets_dir() / f"{name}.yaml")


def open_builtin(name: str, root: str | Path, split: Optional[str] = None) -> Dataset:
    """Open built-in dataset ``name`` found at ``root`` in any of its layouts."""
    module, attr = BUILTIN_LAYOUTS[name]
    layouts = getattr(importlib.import_module(module), attr)
    info = builtin_info(name)
    if info.change is not None:
        from resegzoo.eval.datasets.change import open_change

        return open_change(info, root, split, layouts)
    return open_with_layouts(info, root, split, layouts)
