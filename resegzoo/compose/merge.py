"""Tensor-by-tensor weighted averaging: theta = sum_m w_m theta_m, with bounded memory.

For each tensor name the composer reads that one tensor from every input, checks it, averages it
and hands it to the writer before reading the next name, so the peak is about one tensor per input
plus the output tensor, never a whole model per input.

Exactness: terms with weight 0 are skipped and accumulation is in float64, which represents every
fp32/fp16/bf16 value exactly, so weights (1, 0, 0) reproduce input 1 bit for bit and averaging a
model with itself gives it back.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from tqdm.auto import tqdm

from resegzoo.compose.checks import check_finite, check_identical
from resegzoo.compose.distance import DistanceMeter
from resegzoo.compose.st_io import SafetensorsFile

OUTPUT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: elements averaged at once; bounds the float64 scratch space for huge tensors (token embeddings)
CHUNK = 1 << 22


def output_dtype(input_dtype: torch.dtype, choice: str) -> torch.dtype:
    """The dtype a tensor is written in: floating tensors follow ``choice``, others keep theirs."""
    if choice == "same" or not input_dtype.is_floating_point:
        return input_dtype
    return OUTPUT_DTYPES[choice]


def weighted_average(tensors: Sequence[torch.Tensor], weights: Sequence[float], dtype: torch.dtype) -> torch.Tensor:
    """sum_m w_m t_m for floating tensors of one shape, computed in float64 chunks, cast to ``dtype``."""
    out = torch.empty(tensors[0].shape, dtype=dtype)
    flat_out = out.reshape(-1)
    flats = [(float(w), t.reshape(-1)) for w, t in zip(weights, tensors) if w != 0.0]
    for start in range(0, flat_out.numel(), CHUNK):
        stop = min(start + CHUNK, flat_out.numel())
        acc = torch.zeros(stop - start, dtype=torch.float64)
        for w, flat in flats:
            # multiply, then add (no fused alpha): the plain textbook rounding, reproducible anywhere
            acc.add_(flat[start:stop].to(torch.float64) * w)
        flat_out[start:stop] = acc.to(dtype)
    return out


def merge_tensors(
    files: Sequence[SafetensorsFile],
    labels: Sequence[str],
    keys: Sequence[str],
    weights: Sequence[float],
    dtype_choice: str = "same",
    emit: Optional[Callable[[str, torch.Tensor], None]] = None,
    meter: Optional[DistanceMeter] = None,
    progress: bool = True,
) -> None:
    """Average every tensor ``keys`` names across ``files``; pass each result to ``emit``.

    With ``emit=None`` (dry run) the inputs are still read, checked and measured.
    """
    for key in tqdm(keys, desc="averaging", unit="tensor", disable=not progress):
        tensors = [fh.read(key) for fh in files]
        for tensor, label in zip(tensors, labels):
            check_finite(tensor, key, label)
        if not tensors[0].is_floating_point():
            check_identical(tensors, key, labels)
        if meter is not None:
            meter.update(key, tensors)
        if emit is None:
            continue
        if tensors[0].is_floating_point():
            result = weighted_average(tensors, weights, output_dtype(tensors[0].dtype, dtype_choice))
        else:
            result = tensors[0]
        emit(key, result)
        del tensors, result
