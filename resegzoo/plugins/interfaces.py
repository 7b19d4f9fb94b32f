"""Typed records that plugins register, and the protocols the things they register follow.

CLIP variants are :class:`resegzoo.weights.zoo.ClipVariant` records (zoo entries); the rest live here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class MaskGenerator(Protocol):
    """Turns an RGB image into L segment-id maps, finest level first.

    Optional method, for sliding-window inference (callers use
    :func:`resegzoo.masks.generate_for_windows`, which falls back to calling the generator on
    each window's pixels when the method is missing)::

        def generate_windows(self, image, windows: list[tuple[int, int, int, int]]) -> list[np.ndarray]:
            '''Each (y0, x0, y1, x1) window's (L, y1 - y0, x1 - x0) int32 id maps.'''

    SAM implements it by running once per region of up to 1024 px that holds several windows and
    cutting each window's maps out of the region's (segments are cut at window borders).

    Optional attribute ``level_count: int``, the L it always returns. The segmenter checks it
    against the levels the attention schedule reads when it is set up, before any image; a
    generator without it is called once on a small test image to find out.
    """

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """``image``: H x W x 3 uint8. Returns L x H x W int32, 0 = no segment covers the pixel."""
        ...


@dataclass(frozen=True)
class MaskGeneratorSpec:
    """A named mask generator; ``factory(**settings)`` builds a :class:`MaskGenerator`."""

    name: str
    factory: Callable[..., MaskGenerator]
    description: str = ""
    #: run-time settings the factory accepts and the segmenter fills in from the recipe when
    #: ``masks.settings`` does not give them: ``"precision"`` (fp32/bf16/fp16, for torch models).
    runtime_settings: tuple[str, ...] = ()


@dataclass(frozen=True)
class WeightingSpec:
    """A named weighting strategy for model composition; ``factory(**params)`` builds it."""

    name: str
    factory: Callable[..., Any]
    description: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """A named evaluation dataset; ``factory(root, **options)`` opens it."""

    name: str
    factory: Callable[..., Any]
    description: str = ""


@runtime_checkable
class DenseEncoder(Protocol):
    """What the segmenter needs from a model: text embeddings and per-patch image embeddings.

    open_clip models are wrapped into this by :mod:`resegzoo.methods.clip` (``MaskedClipEncoder``);
    a plugin may also return one directly from ``ClipVariant.build(device=...)`` (e.g. the
    synthetic ``oracle`` encoder of ``plugins/resegzoo-oracle``).

    Optional attributes the segmenter reads with ``getattr``:

    * ``prompt_templates``: a sequence of templates that replaces the recipe's (an encoder that
      is no language model, like the oracle, pins ``("{}",)``); None or absent: the recipe's.
    * ``raw_features``: True when ``encode_dense`` also takes ``normalize=False`` and then returns
      the embeddings before L2 normalisation; the clip method's ``readout: features`` upsamples those and
      normalises after, as the reference code does. Absent: the normalised ones are upsampled.
    * ``schedule``: the attention rules (``resegzoo.methods.clip.schedule.Rule``); when present,
      the mask generator only runs if a ``segment:K`` rule reads its levels. Absent: it always runs.
    """

    patch_size: int
    #: native window side in px (the default ``inference.window``)
    image_size: int
    mean: Sequence[float]
    std: Sequence[float]

    def encode_text(self, texts: Sequence[str]) -> Any:
        """(N, C) float tensor, rows L2-normalised."""
        ...

    def encode_dense(self, images: Any, token_ids: Any | None = None, return_cls: bool = False) -> Any:
        """images (B, 3, S, S) normalised with ``mean``/``std``; token_ids (B, L, S/p, S/p) int
        segment ids (majority per patch, 0 = uncovered) or None.

        Returns (B, S/p, S/p, C) L2-normalised patch embeddings; with ``return_cls`` a pair
        (patches, (B, C) L2-normalised global/CLS embedding), used by ``extras.cls_token_lambda``.
        """
        ...
