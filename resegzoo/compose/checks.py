"""Checks that inputs can be averaged: same architecture, keys, shapes, dtypes; finite values."""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import torch

from resegzoo.compose.inputs import CompositionError, ResolvedInput
from resegzoo.weights.st_io import SafetensorsFile

_SHOWN = 8  # differences listed per category; the rest are counted


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _config_differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            out += _config_differences(a.get(key), b.get(key), where)
        return out
    return [] if a == b else [f"{prefix}: {json.dumps(a)} vs {json.dumps(b)}"]


def check_compatible(inputs: Sequence[ResolvedInput], files: Sequence[SafetensorsFile]) -> list[str]:
    """Raise CompositionError listing every difference from the first input; returns the key order."""
    problems: list[str] = []
    first, ref = inputs[0], files[0]
    for item, fh in zip(inputs[1:], files[1:]):
        pair = f"{first.label!r} vs {item.label!r}"
        cfg_diff = _config_differences(first.model_config, item.model_config)
        if cfg_diff:
            problems.append(f"{pair}: different architectures ({_listing(cfg_diff)})")
        missing = sorted(set(ref.tensors) - set(fh.tensors))
        extra = sorted(set(fh.tensors) - set(ref.tensors))
        if missing:
            problems.append(f"{item.label!r} lacks {len(missing)} key(s) that {first.label!r} has: {_listing(missing)}")
        if extra:
            problems.append(f"{item.label!r} has {len(extra)} key(s) that {first.label!r} lacks: {_listing(extra)}")
        shape_diff, dtype_diff = [], []
        for key in sorted(set(ref.tensors) & set(fh.tensors)):
            a, b = ref.tensors[key], fh.tensors[key]
            if a.shape != b.shape:
                shape_diff.append(f"{key} {list(a.shape)} vs {list(b.shape)}")
            elif a.dtype != b.dtype:
                dtype_diff.append(f"{key} {a.dtype} vs {b.dtype}")
        if shape_diff:
            problems.append(f"{pair}: {len(shape_diff)} shape mismatch(es): {_listing(shape_diff)}")
        if dtype_diff:
            problems.append(f"{pair}: {len(dtype_diff)} dtype mismatch(es): {_listing(dtype_diff)}")
    if problems:
        raise CompositionError(
            "the inputs cannot be averaged: they must share one architecture with identical keys, "
            "shapes and dtypes.\n  - " + "\n  - ".join(problems)
        )
    return sorted(ref.tensors)


def check_finite(tensor: torch.Tensor, key: str, label: str, norm: float | None = None) -> None:
    """NaN or Inf in an input would poison the average: refuse, naming the tensor.

    ``norm`` (the tensor's L2 norm, if already known) is finite exactly when every element is,
    barring overflow, so the element-wise count only runs when it is not.
    """
    if norm is not None and math.isfinite(norm):
        return
    if tensor.is_floating_point():
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            raise CompositionError(
                f"input {label!r}: tensor {key!r} holds {bad} NaN/Inf value(s); the checkpoint is damaged "
                f"(re-download it) and cannot be composed"
            )


def check_identical(tensors: Sequence[torch.Tensor], key: str, labels: Sequence[str]) -> None:
    """Non-floating tensors (indices, counters) cannot be averaged: they must agree exactly."""
    for tensor, label in zip(tensors[1:], labels[1:]):
        if not torch.equal(tensors[0], tensor):
            raise CompositionError(
                f"non-floating tensor {key!r} differs between {labels[0]!r} and {label!r}; "
                f"integer tensors cannot be averaged, so the inputs must agree on them"
            )
