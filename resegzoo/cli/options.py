"""Options shared by several commands (segment, eval)."""
from __future__ import annotations

import click

PRECISION_OPTION = click.option(
    "--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None,
    help="Image encoders (CLIP, SAM) in fp32 or under bf16/fp16 autocast (fp16: CUDA only); text embeddings "
         "and the softmax stay fp32. Overrides the recipe's inference.precision (default fp32).")
THREADS_OPTION = click.option(
    "--threads", type=click.IntRange(min=1), default=None,
    help="CPU threads for torch (default: OMP_NUM_THREADS when set, else torch's default).")
