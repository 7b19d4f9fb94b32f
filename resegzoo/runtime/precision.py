"""Run-time settings of the image encoders: numeric precision (CLIP image tower, SAM) and CPU threads.

``fp32`` runs everything in float32. ``bf16`` and ``fp16`` run the image encoders under
``torch.autocast``: matrix products and convolutions in the lower precision, reductions such as
layer norms in float32, weights kept in float32. Text embeddings, the cosine scores, stitching and
the final softmax always stay float32 (the caller casts the encoder's output with ``.float()``).

fp16 on a CPU is refused: PyTorch's CPU kernels are slow or missing for it and there is no gain.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, ContextManager, Literal

from resegzoo.errors import ResegzooError

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")


class PrecisionError(ResegzooError, ValueError):
    """A precision that is unknown or that the device cannot run."""


def autocast_dtype(precision: str, device: Any) -> Any:
    """The torch dtype autocast uses for ``precision`` on ``device``; None for fp32.

    Raises PrecisionError for an unknown precision and for fp16 on a CPU."""
    import torch

    if precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    kind = torch.device(device).type
    if precision == "fp16" and kind == "cpu":
        raise PrecisionError("fp16 is not supported on the CPU (slow or missing kernels); use --precision bf16 "
                             "or fp32 on a CPU, fp16 on a CUDA device")
    available = getattr(torch.amp, "is_autocast_available", None)  # torch >= 2.4
    if available is not None and not available(kind):
        raise PrecisionError(f"--precision {precision} needs autocast, which torch does not offer on {kind} "
                             "devices; use fp32 there")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def autocast(precision: str, device: Any) -> ContextManager[Any]:
    """A context that runs the encoder in ``precision`` on ``device`` (nothing for fp32)."""
    import torch

    dtype = autocast_dtype(precision, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def set_threads(threads: int | None) -> int | None:
    """Set torch's CPU threads: ``threads`` when given, else ``OMP_NUM_THREADS`` when set, else
    torch's own default. Returns the number set (None: torch's default, left alone; torch is not
    even imported then, so a command that fails its checks does not pay for it). Only the CLI
    calls this (a library must not change a process-wide setting behind its caller's back)."""
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        if env.isdigit() and int(env) > 0:
            threads = int(env)
    if threads is None:
        return None
    if threads < 1:
        raise PrecisionError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)
    return torch.get_num_threads()
