"""Turning names into parts: a model spec into a DenseEncoder, a generator name into a generator."""
from __future__ import annotations

from typing import Any, Mapping

from resegzoo.errors import ResegzooError
from resegzoo.segmenter.recipe import SegmentRecipe


class ModelLoadError(ResegzooError, RuntimeError):
    """The model or the mask generator could not be set up (unknown name, missing file, a
    download that failed offline, bad generator settings); the message says which and why."""


def _resolved_clip(model: Any, architecture: str | None = None) -> Any:
    """``model`` as a resolved CLIP (a ``ResolvedModel`` as it is; a spec string resolved now, for
    callers outside the API)."""
    from resegzoo.weights.loading import resolve_model
    from resegzoo.weights.zoo import ResolvedModel

    return model if isinstance(model, ResolvedModel) else resolve_model(model, "clip", architecture=architecture)


def build_encoder(model: Any, recipe: SegmentRecipe, device: str = "cpu", architecture: str | None = None) -> Any:
    """A DenseEncoder for ``model`` (a ``ResolvedModel`` of kind clip, or a spec).

    A record with a ``build`` callable (e.g. the oracle plugin) builds its own encoder; anything
    else takes the model route (``resegzoo.weights.loading.load_clip``) and is wrapped in the
    masked-attention encoder configured by the recipe's schedule and extras.
    """
    from resegzoo.segmenter.encoder import MaskedClipEncoder, ScheduleConflictError, UnsupportedModelError
    from resegzoo.weights.loading import load_clip
    from resegzoo.weights.zoo import FetchError

    spec = getattr(model, "spec", model)
    try:
        resolved = _resolved_clip(model, architecture)
        if resolved.record is not None and resolved.record.build is not None:
            return resolved.record.build(device=device)
        loaded = load_clip(resolved, device=device)
    except (LookupError, OSError, ValueError, FetchError) as exc:
        raise ModelLoadError(f"cannot load model {spec!r}: {exc}") from exc
    try:
        return MaskedClipEncoder.from_loaded(
            loaded, rules=recipe.schedule.rules, uncovered=recipe.schedule.uncovered,
            last_block=recipe.extras.last_block, last_block_residual=recipe.extras.last_block_residual,
            naclip_std=recipe.extras.naclip_std, position_interpolation=recipe.inference.position_interpolation)
    except (UnsupportedModelError, ScheduleConflictError) as exc:
        raise ModelLoadError(f"model {spec!r}: {exc}") from exc


#: side of the test image a generator that does not declare ``level_count`` is probed with
PROBE_SIDE = 32


def mask_level_count(generator: Any, name: str) -> int:
    """How many segment levels ``generator`` returns: its ``level_count`` attribute, else the
    number of maps it gives for a small test image (asked once, at setup, never per image)."""
    import numpy as np


    declared = getattr(generator, "level_count", None)
    if declared is not None:
        return int(declared)
    ramp = np.linspace(0, 255, PROBE_SIDE, dtype=np.float32)
    probe = np.stack([ramp[None, :].repeat(PROBE_SIDE, 0), ramp[:, None].repeat(PROBE_SIDE, 1),
                      np.full((PROBE_SIDE, PROBE_SIDE), 128, np.float32)], axis=-1).astype(np.uint8)
    try:
        maps = np.asarray(generator(probe))
    except Exception as exc:  # a plugin's generator: any failure here is a setup error to report
        raise ModelLoadError(f"mask generator {name!r} failed on a {PROBE_SIDE}x{PROBE_SIDE} test image "
                             f"({type(exc).__name__}: {exc}); it cannot be used") from exc
    if maps.ndim != 3:
        raise ModelLoadError(f"mask generator {name!r} returned shape {maps.shape} for a {PROBE_SIDE}x{PROBE_SIDE} "
                             "image; a generator returns (levels, H, W) segment ids")
    return int(maps.shape[0])


def fit_schedule(encoder: Any, generator: Any, masks_name: str, recipe: SegmentRecipe) -> list[str]:
    """Check, before any image is read, that ``generator`` gives every level the attention
    schedule reads; returns notes for the user.

    With no levels at all (``none``) and the recipe's default schedule, every block turns global
    (plain CLIP) and a note says so. Any other shortfall raises ModelLoadError saying what to change.
    """
    from resegzoo.segmenter.encoder import MaskedClipEncoder
    from resegzoo.segmenter.schedule import Rule, levels_needed

    schedule = getattr(encoder, "schedule", None)
    need = 0 if schedule is None else levels_needed(schedule)
    vote = recipe.extras.majority_vote
    if need == 0 and not vote:
        return []
    have = mask_level_count(generator, masks_name)
    if vote and have == 0:
        raise ModelLoadError(f"extras.majority_vote needs segments, but mask generator {masks_name!r} gives none; "
                             "use e.g. --masks slic or turn majority_vote off in the recipe")
    if have >= need:
        return []
    if have == 0 and recipe.schedule.rules is None and isinstance(encoder, MaskedClipEncoder):
        encoder.schedule = [Rule("global")] * encoder.depth
        return [f"mask generator {masks_name!r} gives no segment levels, so every attention block is global "
                "(plain CLIP, no segment-masked attention); use --masks slic, felzenszwalb or sam for ReSeg-CLIP"]
    if recipe.schedule.rules is None:
        fix = (f"the default schedule reads levels 0..{need - 1}: use a generator with {need} levels "
               f"(--masks slic, felzenszwalb or sam) or set schedule.rules in a --recipe that reads ")
    else:
        fix = "change schedule.rules in the recipe to read "
    fix += (f"levels 0..{have - 1} only" if have else "no segment level (e.g. only 'global' and 'neighbor:R')")
    raise ModelLoadError(f"the attention schedule reads segment levels 0..{need - 1}, but mask generator "
                         f"{masks_name!r} gives {have} level(s); {fix}")


def text_tower_key(model: Any, encoder: Any, architecture: str | None = None) -> dict[str, Any] | None:
    """What the cached text embeddings of ``encoder`` (built from ``model``, a ``ResolvedModel`` or
    a spec) are keyed by besides the prompts: the weights' content fingerprint, the architecture
    asked for, the device type and the weights' dtype (text runs in fp32 outside autocast, but fp32
    on CPU and on CUDA differ in the last bits). None for encoders without a tokenizer (a plugin's
    own): nothing is stored."""
    from resegzoo.weights.zoo import FetchError

    net = getattr(encoder, "model", None)
    if not callable(getattr(encoder, "tokenizer", None)) or net is None:
        return None
    try:
        weights = _resolved_clip(model, architecture).fingerprint
    except (LookupError, OSError, ValueError, FetchError) as exc:
        raise ModelLoadError(f"cannot load model {getattr(model, 'spec', model)!r}: {exc}") from exc
    parameter = next(net.parameters())
    return {"weights": weights, "architecture": architecture, "device": parameter.device.type,
            "dtype": str(parameter.dtype)}


def random_weights_note(model: Any) -> str | None:
    """A warning for a model whose record says its weights are random by design (``random_weights``);
    ``model``: a ``ResolvedModel`` (or, for callers outside the API, a spec looked up in the registry)."""
    from resegzoo.weights.zoo import ResolvedModel

    if isinstance(model, ResolvedModel):
        random, spec = model.random_weights, model.spec
    else:
        from resegzoo.weights.resolve import is_path_like
        from resegzoo.weights.zoo import model_records

        record = None if not model or is_path_like(model) else model_records().get(model)
        random, spec = bool(record is not None and record.random_weights), model
    if not random:
        return None
    return (f"model {spec!r} has RANDOM weights by design (a demo/test model): its labels are not a "
            "segmentation result; use a real model (`resegzoo list models`)")


def build_mask_generator(name: str, settings: Mapping[str, Any], precision: str | None = None) -> Any:
    """The registered mask generator ``name`` built with ``settings`` (the recipe's masks.settings).

    ``precision`` (the recipe's ``inference.precision``) is passed on to generators that declare
    it in ``runtime_settings`` and whose settings do not set it themselves.
    Raises ModelLoadError (unknown name, bad settings, a checkpoint that cannot be fetched)."""
    from resegzoo.plugins.registry import get_registry
    from resegzoo.weights.zoo import FetchError

    try:
        spec = get_registry().mask_generators.get(name)
        settings = dict(settings)
        if precision is not None and "precision" in spec.runtime_settings:
            settings.setdefault("precision", precision)
        return spec.factory(**settings)
    except (LookupError, OSError, ValueError, TypeError, FetchError) as exc:
        raise ModelLoadError(f"cannot build mask generator {name!r}: {exc}") from exc
