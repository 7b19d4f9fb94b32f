"""SegEarth-OV3's fusion of SAM 3's heads into one score map per name.

From ``segearthov3_segmentor.py`` and ``sam3/model/sam3_image_processor.py`` (SegEarth-OV-3):
instance scores are sigmoid(class logit) x sigmoid(presence logit); instances scoring above
``confidence_threshold`` are kept; each kept instance's mask probability (logits upsampled to
the window, then the sigmoid) times its score, the max over instances (0 without any); the max
with the semantic head's probability (upsampled, then the sigmoid); times the presence score.
Each part is a switch, so the paper's ablation is a set of recipes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

#: kept instances are upsampled this many at a time (bounds memory on big windows)
INSTANCE_CHUNK = 32


@dataclass(frozen=True)
class FusionSwitches:
    """Which parts of SAM 3's output enter the score (SegEarth-OV3's ``use_transformer_decoder``,
    ``use_sem_seg``, ``use_presence_score``) and the instance threshold."""

    confidence_threshold: float = 0.5
    instances: bool = True
    semantic: bool = True
    presence: bool = True

    def fuse(self, raw: Any, size: tuple[int, int], masks: Callable[[int, Any], Any] | None = None) -> Any:
        """The rule these switches belong to (:func:`fuse`; another method's switches bring theirs)."""
        return fuse(raw, size, self, masks)


def upsample(logits: Any, size: tuple[int, int]) -> Any:
    """(K, h, w) -> (K, H, W) bilinear, align_corners=False (the processor's interpolate)."""
    import torch.nn.functional as F

    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def instance_scores(pred_logits: Any, presence_logits: Any) -> Any:
    """(N, Q) sigmoid(class logit) x sigmoid(presence logit): what the threshold is applied to."""
    return pred_logits.sigmoid() * presence_logits.sigmoid()[:, None]


def instance_map(raw: Any, size: tuple[int, int], threshold: float,
                 masks: Callable[[int, Any], Any] | None = None) -> Any:
    """(N, H, W) float32: per name, the max over its queries scoring above ``threshold`` of the
    query's mask probability (logits upsampled, then the sigmoid) times its score; 0 where none
    is kept. ``masks(i, keep)`` gives name i's mask logits (K, h, w) of the kept queries (so a
    model can skip the masks nobody keeps); by default they are read from ``raw.pred_masks``."""
    import torch

    n = raw.pred_logits.shape[0]
    out = torch.zeros((n,) + tuple(size), dtype=torch.float32, device=raw.pred_logits.device)
    scores = instance_scores(raw.pred_logits.float(), raw.presence_logits.float())
    for i in range(n):
        keep = scores[i] > threshold
        if not bool(keep.any()):
            continue
        logits = masks(i, keep) if masks is not None else raw.pred_masks[i][keep]
        kept = scores[i][keep]
        for s in range(0, len(kept), INSTANCE_CHUNK):
            probs = upsample(logits[s:s + INSTANCE_CHUNK].float(), size).sigmoid()
            best = (probs * kept[s:s + INSTANCE_CHUNK, None, None]).amax(dim=0)
            out[i] = torch.maximum(out[i], best)
    return out


def kept_instances(raw: Any, names: list[str], size: tuple[int, int], threshold: float,
                   masks: Callable[[int, Any], Any] | None = None) -> list[Any]:
    """SAM 3's kept instances of one window as the method seam gives them: per name, each query
    scoring above ``threshold`` (:func:`instance_scores`, as :func:`instance_map` keeps them) with its
    mask where sigmoid(up(mask logits)) > 0.5 (logits upsampled to the window, as the fusion does),
    cropped to its box; the score, and the presence sigmoid(presence logit)."""
    import numpy as np

    from resegzoo.objects.instances import Instance

    scores = instance_scores(raw.pred_logits.float(), raw.presence_logits.float())
    presence = raw.presence_logits.float().sigmoid()
    found = []
    for i, name in enumerate(names):
        keep = scores[i] > threshold
        if not bool(keep.any()):
            continue
        logits = masks(i, keep) if masks is not None else raw.pred_masks[i][keep]
        kept = scores[i][keep]
        for s in range(0, len(kept), INSTANCE_CHUNK):
            inside = (upsample(logits[s:s + INSTANCE_CHUNK].float(), size) > 0).cpu().numpy()
            for score, mask in zip(kept[s:s + INSTANCE_CHUNK].tolist(), inside):
                rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
                if not len(rows):
                    continue
                box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
                found.append(Instance(name, float(score), float(presence[i]), mask[box[0]:box[2], box[1]:box[3]], box))
    return found


def semantic_map(raw: Any, size: tuple[int, int]) -> Any:
    """(N, H, W) float32: the semantic head's probability (logits upsampled, then the sigmoid)."""
    return upsample(raw.semantic_seg.float()[:, 0], size).sigmoid()


def fuse(raw: Any, size: tuple[int, int], switches: FusionSwitches,
         masks: Callable[[int, Any], Any] | None = None) -> Any:
    """(N, H, W) float32 scores from :class:`~resegzoo.methods.segearth_ov3.model.RawOutputs`
    (``masks``: see :func:`instance_map`)."""
    import torch

    n = raw.pred_logits.shape[0]
    if switches.instances:
        out = instance_map(raw, size, switches.confidence_threshold, masks)
    else:
        out = torch.zeros((n,) + tuple(size), dtype=torch.float32, device=raw.pred_logits.device)
    if switches.semantic:
        out = torch.maximum(out, semantic_map(raw, size))
    if switches.presence:
        out = out * raw.presence_logits.float().sigmoid()[:, None, None]
    return out
