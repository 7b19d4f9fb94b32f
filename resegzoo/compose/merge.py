"""Tensor-by-tensor weighted averaging: theta = sum_m w_m theta_m, with bounded memory.

For each tensor name the composer reads that one tensor from every input, checks it, averages it
and hands it to the writer before reading the next name, so the peak is about one tensor per input
plus the output tensor, never a whole model per input.

The average is computed as theta = theta_a + sum_{m != a} w_m (theta_m - theta_a), where a is the
first input with a non-zero weight (the same sum when the weights add up to 1). Terms with weight 0
are skipped, so weights (1, 0, 0) return input 1 bit for bit, and identical inputs give back
exactly themselves (every difference is 0). Fine-tunes of one model differ little, so the
differences are small and float32 loses nothing that matters, at a fraction of float64's cost.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from tqdm.auto import tqdm

from resegzoo.compose.checks import check_finite, check_identical
from resegzoo.compose.distance import DistanceMeter
from resegzoo.weights.st_io import SafetensorsFile

OUTPUT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: elements averaged at once: a few chunks per input stay in the CPU cache (1 MB each in float32)
CHUNK = 1 << 18


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one thread for a while. Averaging is memory-bound, and thousands of small
    element-wise ops on several threads spend their time synchronising: on a busy 2-core machine
    one thread was 5x faster (benchmarks/bench_compose.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def output_dtype(input_dtype: torch.dtype, choice: str) -> torch.dtype:
    """The dtype a tensor is written in: floating tensors follow ``choice``, others keep theirs."""
    if choice == "same" or not input_dtype.is_floating_point:
        return input_dtype
    return OUTPUT_DTYPES[choice]


def average_parts(
    parts: Sequence[torch.Tensor], weights: Sequence[float], dtype: torch.dtype, want_output: bool = True
) -> tuple[torch.Tensor | None, int, dict[int, torch.Tensor]]:
    """Average one chunk: ``(result in dtype or None, anchor index, {m: part_m - part_anchor})``.

    The anchor is the first input with a non-zero weight. Parts of the compute dtype are turned
    into their differences in place (they are scratch buffers), so no chunk-sized memory is
    allocated per input; the differences also give the distance report its pairwise terms.
    """
    anchor = next((m for m, w in enumerate(weights) if w != 0.0), None)
    if anchor is None:
        raise ValueError("all weights are zero")
    compute = torch.float64 if torch.float64 in (dtype, parts[0].dtype) else torch.float32
    base = parts[anchor].to(compute)
    acc = base.clone() if want_output else None
    diffs = {}
    for m, part in enumerate(parts):
        if m == anchor:
            continue
        diff = part.to(compute).sub_(base)
        if acc is not None and weights[m] != 0.0:
            acc.add_(diff, alpha=float(weights[m]))
        diffs[m] = diff
    return (acc.to(dtype) if acc is not None else None), anchor, diffs


def weighted_average(tensors: Sequence[torch.Tensor], weights: Sequence[float], dtype: torch.dtype) -> torch.Tensor:
    """sum_m w_m t_m for floating tensors of one shape (weights summing to 1), cast to ``dtype``.

    Computed in float32 (float64 if the input or output is float64) chunk by chunk, exactly as
    the composer does; the inputs are not modified.
    """
    out = torch.empty(tensors[0].shape, dtype=dtype)
    flat_out = out.reshape(-1)
    flats = [t.reshape(-1) for t in tensors]
    for start in range(0, flat_out.numel(), CHUNK):
        stop = min(start + CHUNK, flat_out.numel())
        result, _, _ = average_parts([f[start:stop].clone() for f in flats], weights, dtype)
        flat_out[start:stop] = result
    return out


def _pair_distances(anchor: int, diffs: dict[int, torch.Tensor]) -> dict[tuple[int, int], float]:
    """Squared L2 distance of every pair of inputs, from their differences to the anchor."""
    sq = {}
    for m, diff in diffs.items():
        sq[tuple(sorted((anchor, m)))] = float(torch.linalg.vector_norm(diff)) ** 2
    others = sorted(diffs)
    for i, m in enumerate(others):
        for n in others[i + 1:]:
            sq[(m, n)] = float(torch.dist(diffs[m], diffs[n])) ** 2
    return sq


def merge_tensors(
    files: Sequence[SafetensorsFile],
    labels: Sequence[str],
    keys: Sequence[str],
    weights: Sequence[float],
    dtype_choice: str = "same",
    emit: Callable[[str, torch.Tensor], None] | None = None,
    meter: DistanceMeter | None = None,
    progress: bool = True,
) -> None:
    """Average every tensor ``keys`` names across ``files``, passing the result to ``emit`` piece by
    piece: ``emit(key, part)`` receives consecutive chunks of the flattened output tensor.

    Inputs are read chunk by chunk into scratch buffers allocated once, so memory stays at a few
    chunks per input whatever the model size. With ``emit=None`` (dry run) the inputs are still
    read, checked and measured.
    """
    largest = max((files[0].tensors[k].nbytes for k in keys), default=0)
    scratch = [torch.empty(min(largest, CHUNK * 8), dtype=torch.uint8) for _ in files]
    total = sum(files[0].tensors[k].nbytes for k in keys)
    with single_threaded(), tqdm(total=total, desc="averaging", unit="B", unit_scale=True, disable=not progress) as bar:
        for key in keys:
            info = files[0].tensors[key]
            numel = info.nbytes // torch.empty((), dtype=info.dtype).element_size()
            out_dtype = output_dtype(info.dtype, dtype_choice)
            if numel == 0 and emit is not None:
                emit(key, torch.empty(0, dtype=out_dtype))
            for start in range(0, numel, CHUNK):
                stop = min(start + CHUNK, numel)
                parts = [fh.read_part(key, start, stop, buf) for fh, buf in zip(files, scratch)]
                if info.dtype.is_floating_point:
                    # one cheap norm per part serves both the NaN/Inf check and the distance report
                    norms = [float(torch.linalg.vector_norm(p, dtype=torch.float32)) for p in parts]
                    for part, norm, label in zip(parts, norms, labels):
                        check_finite(part, key, label, norm)
                    result, anchor, diffs = average_parts(parts, weights, out_dtype, want_output=emit is not None)
                    if meter is not None:
                        meter.add(key, [n * n for n in norms], _pair_distances(anchor, diffs))
                    if emit is not None:
                        emit(key, result)
                else:
                    check_identical(parts, key, labels)
                    if emit is not None:
                        emit(key, parts[0])
                bar.update((stop - start) * (info.nbytes // max(numel, 1)))
