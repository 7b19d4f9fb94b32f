"""The ``sam`` mask generator's settings (strictly validated) and its factory (SAM comes through the
model route, :mod:`resegzoo.weights.loading`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from resegzoo.masks.painting import MAX_MASK_LEVELS, MAX_REGION_SIZE, PaintOrder
from resegzoo.runtime.precision import Precision
from resegzoo.masks.sam import METHOD_LEVELS, SAM_NATIVE_SIZE, SamLevel, SamMaskGenerator
from resegzoo.schema import SchemaError, check_limits, from_mapping, limit

#: limits of the settings that size memory: points per decoder batch, crops per encoder batch
#: (the region side's: painting.MAX_REGION_SIZE)
MAX_POINTS_PER_BATCH, MAX_IMAGE_BATCH = 4096, 64

SamModelType = Literal["vit_b", "vit_l", "vit_h"]


@dataclass(frozen=True)
class SamSettings:
    """Settings of the ``sam`` mask generator (a recipe's ``masks.settings``)."""

    #: vit_b, vit_l or vit_h; None: read from the checkpoint (or vit_b when no checkpoint is given).
    model: Optional[SamModelType] = None
    #: a .pth file, or a SAM record of the zoo (``sam-vit-b``; ``resegzoo list`` / registry/sam.yaml),
    #: fetched into the cache. None: the zoo's checkpoint for ``model``.
    checkpoint: Optional[str] = None
    #: one mapping per level, finest first; keys as in SamAutomaticMaskGenerator
    #: (points_per_side, pred_iou_thresh, stability_score_thresh, min_mask_region_area,
    #: stability_score_offset, box_nms_thresh, crop_n_layers, crop_nms_thresh,
    #: crop_n_points_downscale_factor). A key left out takes METHOD.md's value for that level
    #: (levels past the fourth: the fourth's). None: METHOD.md's four levels.
    levels: Optional[list[dict[str, Any]]] = field(default=None, metadata=limit(items=MAX_MASK_LEVELS))
    #: as in SamAutomaticMaskGenerator; shared by all levels (they share the crops' embeddings).
    crop_overlap_ratio: float = 512 / 1500
    points_per_batch: int = field(default=64, metadata=limit(MAX_POINTS_PER_BATCH))
    #: largest-first (finer masks win) or sam-order (the reference code's painting).
    painting: PaintOrder = "largest-first"
    #: windows are grouped into regions of up to this many pixels per side; SAM runs once per
    #: region. ``window``: SAM runs on each window alone, exactly as the reference code.
    region_size: Union[int, Literal["window"]] = field(default=SAM_NATIVE_SIZE, metadata=limit(MAX_REGION_SIZE))
    #: on a region larger than a window, scale each level's points_per_side (and crop layers) with
    #: the region/window ratio, so the prompt points per window are the reference's (METHOD.md
    #: section 2). False: the level settings apply to the whole region (fewer points per window).
    scale_points: bool = True
    #: torch device for SAM: auto (CUDA when available), cpu, cuda, cuda:1, ...
    device: str = "auto"
    #: folder for cached id maps (keyed by image hash and these settings); None: no cache.
    cache_dir: Optional[str] = None
    #: crops per image-encoder call (crops of several regions share a call); None: 4 on CUDA,
    #: 1 on a CPU. Does not change the masks.
    image_batch: Optional[int] = field(default=None, metadata=limit(MAX_IMAGE_BATCH))
    #: fp32, or bf16 / fp16 (CUDA) autocast for SAM; None: the recipe's inference.precision.
    precision: Optional[Precision] = None

    def __post_init__(self) -> None:
        check_limits(self)

    def level_defaults(self) -> tuple[str, type, tuple[Any, ...]]:
        """(generator name, level class, the method's levels); SAM 2's settings override this."""
        return "sam", SamLevel, METHOD_LEVELS

    def resolved_levels(self) -> tuple[Any, ...]:
        """The levels to run: the method's, or the given ones, each completed from the method's level
        at the same position (the last one beyond)."""
        name, level_class, defaults = self.level_defaults()
        if self.levels is None:
            return defaults
        if not self.levels:
            raise SchemaError(f"{name} settings: levels is empty; give at least one level or leave it out")
        out = []
        for i, given in enumerate(self.levels):
            base = dataclasses.asdict(defaults[min(i, len(defaults) - 1)])
            out.append(from_mapping(level_class, {**base, **given}, f"{name} settings: levels[{i}]"))
        return tuple(out)


def parse_sam_settings(settings: dict[str, Any]) -> SamSettings:
    """Validate a settings mapping; unknown keys are errors that name the key."""
    parsed = from_mapping(SamSettings, settings, "sam settings")
    parsed.resolved_levels()  # validate the levels now, not at the first image
    return parsed


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def file_fingerprint(path: Path, sha256: str | None) -> str:
    """Names the weights for the cache: the sha256 when known, else path, size and mtime."""
    if sha256:
        return f"sha256:{sha256}"
    stat = path.stat()
    return f"file:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def build_sam_generator(**settings: Any) -> Any:
    """The ``sam`` factory: ``masks.settings`` of a recipe as keyword arguments."""
    from resegzoo.weights.loading import load_sam, sam_checkpoint

    parsed = parse_sam_settings(settings)
    path, sha256 = sam_checkpoint(parsed.checkpoint, parsed.model)
    sam, model_type = load_sam(path, parsed.model, resolve_device(parsed.device))
    generator = SamMaskGenerator(
        sam, parsed.resolved_levels(), crop_overlap_ratio=parsed.crop_overlap_ratio,
        points_per_batch=parsed.points_per_batch, painting=parsed.painting,
        region_size=None if parsed.region_size == "window" else parsed.region_size,
        scale_points=parsed.scale_points, fingerprint=file_fingerprint(path, sha256),
        image_batch=parsed.image_batch, precision=parsed.precision or "fp32",
    )
    if parsed.cache_dir is None:
        return generator
    from resegzoo.masks.cache import CachedMaskGenerator

    return CachedMaskGenerator(generator, parsed.cache_dir, cache_settings(parsed, model_type, generator.fingerprint))


def cache_settings(parsed: SamSettings, model_type: str, fingerprint: str | None) -> dict[str, Any]:
    """Everything SAM's id maps depend on, for the cache key (the weights by their fingerprint)."""
    key = dataclasses.asdict(parsed)
    for local_only in ("checkpoint", "device", "cache_dir", "image_batch"):
        key.pop(local_only)
    key.update(model=model_type, precision=parsed.precision or "fp32", levels=[dataclasses.asdict(lv) for lv in parsed.resolved_levels()])
    return {"generator": "sam", "weights": fingerprint, "settings": key}
