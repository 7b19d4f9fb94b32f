"""The public API for plugin authors: everything a plugin imports from resegzoo, from one module.

    from resegzoo.plugin import hookimpl, ModelRecord, MaskGeneratorSpec

    @hookimpl
    def resegzoo_register_mask_generators(register):
        register(MaskGeneratorSpec("my-grid", MyGrid, "square cells at several scales"))

It holds the hook marker, every record and spec a hook receives or registers, the protocols the
things a plugin registers follow, and the helpers a method, a weighting or a dataset needs. The
names here (and the fields and signatures of what they name) are a contract: they stay, a later
release only adds to them. ``tests/test_plugin_api.py`` holds them against the snapshot
``tests/plugin_api.json``. Where each name lives inside resegzoo may change; import it from here.

Importing this module stays light (no torch, nothing slow): names whose modules import torch or take
long to import (``Vocabulary``, the weighting and dataset types, ``cache_dir``) are imported when
first used. docs/plugins.md shows each kind of plugin with an example that runs.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from resegzoo.errors import ResegzooError
from resegzoo.methods.base import (FEATURES, INSTANCES, Method, MethodBase, MethodContext, MethodError, MethodSpec, ScoreKind,
                                   WindowOutputs, class_of_names, names_to_classes, vocabulary_names)
from resegzoo.plugins.hookspecs import hookimpl
from resegzoo.plugins.interfaces import DatasetSpec, DenseEncoder, MaskGenerator, MaskGeneratorSpec, WeightingSpec
from resegzoo.plugins.manager import DISABLE_ENV, get_plugin_manager
from resegzoo.plugins.registry import build_registry, get_registry
from resegzoo.weights.records import ClipDetails, ClipVariant, ModelRecord, RecordSource, SamDetails
from resegzoo.weights.zoo import ResolvedModel

if TYPE_CHECKING:  # the names imported when first used (see _LAZY), for type checkers and readers
    from resegzoo.compose.weighting import WeightingContext, WeightingError, WeightingResult
    from resegzoo.compose.weighting.models import ScoringModel
    from resegzoo.eval.datasets import Dataset, DatasetError, DatasetInfo, LabelEncoding, Layout, Sample
    from resegzoo.eval.datasets.layout import mmseg_layout, open_with_layouts
    from resegzoo.objects.instances import Instance
    from resegzoo.vocabulary import Vocabulary
    from resegzoo.weights.cache import cache_dir

#: name -> the module it is imported from when first used (those modules import torch or numpy)
_LAZY: dict[str, str] = {
    # what a method's window_scores is given
    "Vocabulary": "resegzoo.vocabulary",
    # what a method's window_outputs lists per window for the instances output (segment --objects)
    "Instance": "resegzoo.objects.instances",
    # a weighting strategy: called with a WeightingContext, returns a WeightingResult
    "WeightingContext": "resegzoo.compose.weighting",
    "WeightingResult": "resegzoo.compose.weighting",
    "WeightingError": "resegzoo.compose.weighting",
    "ScoringModel": "resegzoo.compose.weighting.models",
    # a dataset: a DatasetSpec's factory returns a Dataset
    "Dataset": "resegzoo.eval.datasets",
    "DatasetError": "resegzoo.eval.datasets",
    "DatasetInfo": "resegzoo.eval.datasets",
    "LabelEncoding": "resegzoo.eval.datasets",
    "Layout": "resegzoo.eval.datasets",
    "Sample": "resegzoo.eval.datasets",
    "mmseg_layout": "resegzoo.eval.datasets.layout",
    "open_with_layouts": "resegzoo.eval.datasets.layout",
    # resegzoo's cache folder: where a plugin keeps what it downloads or generates
    "cache_dir": "resegzoo.weights.cache",
}

__all__ = [
    # hooks
    "hookimpl",
    # records and specs the hooks register (ModelRecord: weights of any kind; ClipVariant: earlier
    # releases' CLIP record, still taken)
    "ModelRecord",
    "RecordSource",
    "ClipDetails",
    "SamDetails",
    "ClipVariant",
    "DatasetSpec",
    "MaskGeneratorSpec",
    "MethodSpec",
    "WeightingSpec",
    # protocols of what a plugin builds, and what it is given
    "DenseEncoder",
    "MaskGenerator",
    "Method",
    "MethodBase",
    "MethodContext",
    "ResolvedModel",
    "ScoreKind",
    "Vocabulary",
    # a method's outputs beside its scores (window_outputs): the names and what it returns
    "FEATURES",
    "WindowOutputs",
    # segment --objects: the instances output and what it lists per window
    "INSTANCES",
    "Instance",
    # helpers for methods
    "class_of_names",
    "names_to_classes",
    "vocabulary_names",
    # weightings
    "ScoringModel",
    "WeightingContext",
    "WeightingResult",
    # datasets
    "Dataset",
    "DatasetInfo",
    "LabelEncoding",
    "Layout",
    "Sample",
    "mmseg_layout",
    "open_with_layouts",
    # errors a plugin raises for problems its users can fix (one line, no traceback)
    "DatasetError",
    "MethodError",
    "ResegzooError",
    "WeightingError",
    # files, and testing a plugin through its entry point
    "DISABLE_ENV",
    "build_registry",
    "cache_dir",
    "get_plugin_manager",
    "get_registry",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next use is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
