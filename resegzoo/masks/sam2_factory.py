"""The ``sam2`` mask generator's settings and loading SAM 2.1 weights safely (weights_only)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from resegzoo.errors import ResegzooError
from resegzoo.masks.sam_factory import SamSettings, file_fingerprint, resolve_checkpoint, state_differences
from resegzoo.schema import from_mapping

Sam2ModelType = Literal["hiera_t", "hiera_s", "hiera_b+", "hiera_l"]

#: sam2's own model configs (inside the sam2 package) for each SAM 2.1 model type
SAM2_CONFIGS: dict[str, str] = {
    "hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "hiera_s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "hiera_b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "hiera_l": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
#: Hiera blocks per model type (1+2+7+2, 1+2+11+2, 2+3+16+3, 2+6+36+4): tells checkpoints apart
_BLOCKS_TO_TYPE = {12: "hiera_t", 16: "hiera_s", 24: "hiera_b+", 48: "hiera_l"}


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


def load_sam2(path: str | Path, model: str | None = None, device: str = "cpu") -> tuple[Any, str]:
    """Build SAM 2.1 from sam2's own config and load a checkpoint with ``weights_only=True``.

    ``model`` None: the type is read from the checkpoint's number of Hiera blocks."""
    import torch
    from sam2.build_sam import build_sam2

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types; all mean "not a usable file"
        raise ValueError(f"{path} could not be read as a SAM 2 checkpoint ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a SAM 2 state dict (a mapping of parameter names to tensors)")
    blocks = {k.split(".")[3] for k in state if k.startswith("image_encoder.trunk.blocks.")}
    found = _BLOCKS_TO_TYPE.get(len(blocks))
    if model is None:
        if found is None:
            raise ValueError(f"{path} does not look like a SAM 2.1 checkpoint (no Hiera trunk of a known depth); "
                             "give model: hiera_t, hiera_s, hiera_b+ or hiera_l if it is one")
        model = found
    elif found is not None and found != model:
        raise ValueError(f"{path} holds a SAM 2.1 {found} checkpoint, but model: {model} was asked for")
    net = build_sam2(SAM2_CONFIGS[model], None, device="cpu")  # no checkpoint: loaded below, weights_only
    problems = state_differences(net.state_dict(), state)
    if problems:
        raise ValueError(f"{path} does not fit SAM 2.1 {model}: {'; '.join(problems)}")
    net.load_state_dict(state, strict=True)
    return net.to(device).eval(), model


def build_sam2_generator(**settings: Any) -> Any:
    """The ``sam2`` factory: ``masks.settings`` of a recipe as keyword arguments."""
    from resegzoo.masks.sam2 import make_sam2_generator
    from resegzoo.masks.sam_factory import resolve_device

    parsed = from_mapping(Sam2Settings, settings, "sam2 settings")
    levels = parsed.resolved_levels()  # validate the levels now, not at the first image
    require_sam2()
    path, sha256 = resolve_checkpoint(parsed.checkpoint, parsed.model, default="hiera_t",
                                      family=tuple(SAM2_CONFIGS))
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
