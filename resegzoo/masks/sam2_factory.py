"""The ``sam2`` mask generator's settings and its factory (SAM 2.1 comes through the model route,
:mod:`resegzoo.weights.loading`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Optional

from resegzoo.errors import ResegzooError
from resegzoo.masks.sam_factory import SamSettings, file_fingerprint
from resegzoo.schema import from_mapping
from resegzoo.weights.build import SAM2_CONFIGS

Sam2ModelType = Literal["hiera_t", "hiera_s", "hiera_b+", "hiera_l"]

class Sam2MissingError(ResegzooError, LookupError):
    """``--masks sam2`` without the optional sam2 package installed."""


@dataclass(frozen=True)
class Sam2Settings(SamSettings):
    """Settings of the ``sam2`` mask generator: those of ``sam`` (see SamSettings), with SAM 2.1
    model types, and levels that also take ``mask_threshold`` (as SAM2AutomaticMaskGenerator)."""

    #: hiera_t, hiera_s, hiera_b+ or hiera_l; None: read from the checkpoint (hiera_t without one).
    model: Optional[Sam2ModelType] = None  # type: ignore[assignment]

    def level_defaults(self) -> tuple[str, type, tuple[Any, ...]]:
        from resegzoo.masks.sam2 import SAM2_METHOD_LEVELS, Sam2Level

        return "sam2", Sam2Level, SAM2_METHOD_LEVELS


def require_sam2() -> None:
    """Raise Sam2MissingError (saying how to install it) when the sam2 package is missing."""
    import importlib.util

    from resegzoo.masks.sam2 import INSTALL_HINT

    if importlib.util.find_spec("sam2") is None:
        raise Sam2MissingError(INSTALL_HINT)


def build_sam2_generator(**settings: Any) -> Any:
    """The ``sam2`` factory: ``masks.settings`` of a recipe as keyword arguments."""
    from resegzoo.masks.sam2 import make_sam2_generator
    from resegzoo.masks.sam_factory import resolve_device
    from resegzoo.weights.loading import load_sam2, sam_checkpoint

    parsed = from_mapping(Sam2Settings, settings, "sam2 settings")
    levels = parsed.resolved_levels()  # validate the levels now, not at the first image
    require_sam2()
    path, sha256 = sam_checkpoint(parsed.checkpoint, parsed.model, default="hiera_t", family=tuple(SAM2_CONFIGS))
    model, model_type = load_sam2(path, parsed.model, resolve_device(parsed.device))
    generator = make_sam2_generator(
        model, levels, precision=parsed.precision or "fp32", crop_overlap_ratio=parsed.crop_overlap_ratio,
        points_per_batch=parsed.points_per_batch, painting=parsed.painting, region_size=parsed.region_size,
        fingerprint=file_fingerprint(path, sha256), image_batch=parsed.image_batch)
    if parsed.cache_dir is None:
        return generator
    from resegzoo.masks.cache import CachedMaskGenerator

    key = dataclasses.asdict(parsed)
    for local_only in ("checkpoint", "device", "cache_dir", "image_batch"):
        key.pop(local_only)
    key.update(model=model_type, precision=parsed.precision or "fp32",
               levels=[dataclasses.asdict(lv) for lv in levels])
    return CachedMaskGenerator(generator, parsed.cache_dir,
                               {"generator": "sam2", "weights": generator.fingerprint, "settings": key})
