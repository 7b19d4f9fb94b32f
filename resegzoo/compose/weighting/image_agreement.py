"""``image-agreement``: weigh models by how stable their dense predictions stay as prompts vary.

On unlabelled images chosen by the user, each model labels every patch with the class of highest
cosine similarity, once per prompt template. A model whose patch labels agree across templates is
less sensitive to wording. Score g_m = mean over images and template pairs t != t' of the fraction
of patches whose labels agree; weights w = softmax(g / tau).

Patch features are those of the plain model (last block's patch tokens through ln_post and proj,
no attention masking): scoring must not depend on the segmenter's settings, and it keeps the
strategy usable with any ViT checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from resegzoo.compose.weighting import (
    WeightingContext,
    WeightingError,
    WeightingResult,
    softmax,
)


def find_images(paths: list[str], limit: int) -> list[Path]:
    from resegzoo.raster.discovery import find_rasters

    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += find_rasters(p)
        elif p.is_file():
            found.append(p)
        else:
            raise WeightingError(f"image-agreement: {p} is neither an image file nor a folder")
    if not found:
        raise WeightingError("image-agreement: no images found; give image files or folders in `images`")
    return found[:limit]


def load_image(path: Path, size: int, mean, std) -> torch.Tensor:
    """The image as ``resegzoo segment`` reads it (bands 1-3, palette colours, 16-bit stretched,
    nodata filled from the nearest valid pixels), resized and normalised."""
    from PIL import Image

    from resegzoo.raster.errors import ImageError
    from resegzoo.raster.opening import fill_invalid, read_image

    try:
        rgb, valid, _ = read_image(path)
        rgb = fill_invalid(rgb, valid) if valid.any() else rgb
    except ImageError as exc:
        raise WeightingError(f"image-agreement: cannot read image {path}: {exc}") from exc
    rgb = Image.fromarray(rgb).resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def template_agreement(patches: torch.Tensor, text: torch.Tensor) -> float:
    """patches (P, D); text (T, C, D). Mean fraction of patches labelled alike by two templates."""
    labels = torch.einsum("pd,tcd->tpc", patches, text).argmax(dim=-1)  # (T, P)
    pairs = [float((labels[i] == labels[j]).float().mean()) for i, j in combinations(range(len(labels)), 2)]
    return sum(pairs) / len(pairs)


@dataclass
class ImageAgreement:
    """softmax(agreement / tau), agreement measured on the user's unlabelled ``images``."""

    images: list[str]
    tau: float = 0.05
    max_images: int = 32

    def __post_init__(self) -> None:
        if not self.tau > 0:
            raise WeightingError(f"image-agreement: tau must be > 0, got {self.tau}")

    def __call__(self, ctx: WeightingContext) -> WeightingResult:
        classes, templates = ctx.vocabulary.classes, ctx.vocabulary.templates
        if len(classes) < 2 or len(templates) < 2:
            raise WeightingError("image-agreement needs at least 2 classes and 2 templates in the vocabulary")
        files = find_images(self.images, self.max_images)
        prompts = [t.replace("{}", c) for t in templates for c in classes]
        scores = []
        for i in tqdm(range(len(ctx.labels)), desc="image-agreement", unit="model"):
            scoring = ctx.load_model(i)
            text = scoring.encode_text(prompts).reshape(len(templates), len(classes), -1)
            per_image = []
            for f in files:
                x = load_image(f, scoring.image_size, scoring.mean, scoring.std).unsqueeze(0)
                per_image.append(template_agreement(scoring.encode_patches(x)[0], text))
            del scoring
            scores.append(sum(per_image) / len(per_image))
        return WeightingResult(weights=softmax(scores, self.tau), scores={"agreement": scores})
