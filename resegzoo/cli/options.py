"""Options shared by several commands (segment, eval, change)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

PRECISION_OPTION = click.option(
    "--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None,
    help="Image encoders (CLIP, SAM) in fp32 or under bf16/fp16 autocast (fp16: CUDA only); text embeddings "
         "and the softmax stay fp32. Overrides the recipe's inference.precision (default fp32).")
THREADS_OPTION = click.option(
    "--threads", type=click.IntRange(min=1), default=None,
    help="CPU threads for torch (default: OMP_NUM_THREADS when set, else torch's default).")


def vocabulary_of(classes: str | None, vocab_file: Path | None) -> Any:
    """--classes or --vocab as a Vocabulary (a usage error otherwise); imports nothing heavy."""
    from resegzoo.schema import SchemaError
    from resegzoo.vocabulary import Vocabulary, VocabularyError

    if (classes is None) == (vocab_file is None):
        raise click.UsageError('give the classes with exactly one of --classes "a; b, synonym; c" or --vocab FILE')
    try:
        return Vocabulary.parse(classes) if classes is not None else Vocabulary.from_file(vocab_file)  # type: ignore[arg-type]
    except (VocabularyError, SchemaError) as exc:
        raise click.UsageError(str(exc)) from None
