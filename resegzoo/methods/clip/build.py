"""The CLIP method's model: the resolved CLIP (``MethodContext.resolved``) into a masked-attention
DenseEncoder configured by the recipe, the schedule checked against the mask generator, and the key
its text embeddings are stored under."""
from __future__ import annotations

from typing import Any

from resegzoo.methods.base import ModelLoadError, mask_level_count


def resolved_clip(model: Any, architecture: str | None = None) -> Any:
    """``model`` as a resolved CLIP: a ``ResolvedModel`` as it is; a spec (a caller outside the API)
    resolved now, by the model route."""
    from resegzoo.weights.loading import resolve_model
    from resegzoo.weights.zoo import ResolvedModel

    return model if isinstance(model, ResolvedModel) else resolve_model(model, "clip", architecture=architecture)


def build_encoder(model: Any, settings: Any, device: str = "cpu", architecture: str | None = None) -> Any:
    """A DenseEncoder for ``model`` (a ``ResolvedModel`` of kind clip, or a spec).

    A record with a ``build`` callable (e.g. the oracle plugin) builds its own encoder; anything
    else takes the model route (``resegzoo.weights.loading.load_clip``) and is wrapped in the
    masked-attention encoder configured by the method's settings (``settings``: ClipSettings, or a
    recipe, whose clip settings are read): its schedule, extras and position interpolation.
    """
    settings = _clip_settings(settings)
    from resegzoo.methods.clip.encoder import MaskedClipEncoder, ScheduleConflictError, UnsupportedModelError
    from resegzoo.weights.loading import load_clip
    from resegzoo.weights.zoo import FetchError

    spec = getattr(model, "spec", model)
    try:
        resolved = resolved_clip(model, architecture)
        if resolved.record is not None and resolved.record.build is not None:
            return resolved.record.build(device=device)
        loaded = load_clip(resolved, device=device)
    except (LookupError, OSError, ValueError, FetchError) as exc:
        raise ModelLoadError(f"cannot load model {spec!r}: {exc}") from exc
    try:
        return MaskedClipEncoder.from_loaded(
            loaded, rules=settings.schedule.rules, uncovered=settings.schedule.uncovered,
            last_block=settings.extras.last_block, last_block_residual=settings.extras.last_block_residual,
            naclip_std=settings.extras.naclip_std, position_interpolation=settings.position_interpolation)
    except (UnsupportedModelError, ScheduleConflictError) as exc:
        raise ModelLoadError(f"model {spec!r}: {exc}") from exc


def fit_schedule(encoder: Any, generator: Any, masks_name: str, settings: Any) -> list[str]:
    """Check, before any image is read, that ``generator`` gives every level the attention
    schedule reads; returns notes for the user.

    With no levels at all (``none``) and the recipe's default schedule, every block turns global
    (plain CLIP) and a note says so. Any other shortfall raises ModelLoadError saying what to change.
    """
    from resegzoo.methods.clip.encoder import MaskedClipEncoder
    from resegzoo.methods.clip.schedule import Rule, levels_needed

    settings = _clip_settings(settings)
    schedule = getattr(encoder, "schedule", None)
    need = 0 if schedule is None else levels_needed(schedule)
    vote = settings.extras.majority_vote
    if need == 0 and not vote:
        return []
    have = mask_level_count(generator, masks_name)
    if vote and have == 0:
        raise ModelLoadError(f"extras.majority_vote needs segments, but mask generator {masks_name!r} gives none; "
                             "use e.g. --masks slic or turn majority_vote off in the recipe")
    if have >= need:
        return []
    if have == 0 and settings.schedule.rules is None and isinstance(encoder, MaskedClipEncoder):
        encoder.schedule = [Rule("global")] * encoder.depth
        return [f"mask generator {masks_name!r} gives no segment levels, so every attention block is global "
                "(plain CLIP, no segment-masked attention); use --masks slic, felzenszwalb or sam for ReSeg-CLIP"]
    if settings.schedule.rules is None:
        fix = (f"the default schedule reads levels 0..{need - 1}: use a generator with {need} levels "
               f"(--masks slic, felzenszwalb or sam) or set schedule.rules in a --recipe that reads ")
    else:
        fix = "change schedule.rules in the recipe to read "
    fix += (f"levels 0..{have - 1} only" if have else "no segment level (e.g. only 'global' and 'neighbor:R')")
    raise ModelLoadError(f"the attention schedule reads segment levels 0..{need - 1}, but mask generator "
                         f"{masks_name!r} gives {have} level(s); {fix}")


def text_tower_key(model: Any, encoder: Any, architecture: str | None = None) -> dict[str, Any] | None:
    """What the cached text embeddings of ``encoder`` (built from ``model``, a ``ResolvedModel`` or a
    spec) are keyed by besides the prompts: the weights' content fingerprint (the one the model was
    resolved with), the architecture asked for, the device type and the weights' dtype (text runs in
    fp32 outside autocast, but fp32 on CPU and on CUDA differ in the last bits). None for encoders
    without a tokenizer (a plugin's own): nothing is stored."""
    from resegzoo.weights.zoo import FetchError

    net = getattr(encoder, "model", None)
    if not callable(getattr(encoder, "tokenizer", None)) or net is None:
        return None
    try:
        weights = resolved_clip(model, architecture).fingerprint
    except (LookupError, OSError, ValueError, FetchError) as exc:
        raise ModelLoadError(f"cannot load model {getattr(model, 'spec', model)!r}: {exc}") from exc
    parameter = next(net.parameters())
    return {"weights": weights, "architecture": architecture, "device": parameter.device.type,
            "dtype": str(parameter.dtype)}


def _clip_settings(settings: Any) -> Any:
    """ClipSettings from ClipSettings, a mapping, or a recipe (callers before the settings moved passed one)."""
    from resegzoo.methods.clip.settings import parse_settings, settings_of

    return settings_of(settings) if hasattr(settings, "method") else parse_settings(settings)
