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

#: kept instances are upsampled a few at a time, at most this many bytes of float32 maps at once:
#: full-size temporaries stay below the allocator's reuse limit (glibc maps and unmaps larger
#: blocks afresh each time, and the kernel zeroes every page of them: system time, not work)
CHUNK_BYTES = 16 * 2**20


@dataclass(frozen=True)
class FusionSwitches:
    """Which parts of SAM 3's output enter the score (SegEarth-OV3's ``use_transformer_decoder``,
    ``use_sem_seg``, ``use_presence_score``) and the instance threshold."""

    confidence_threshold: float = 0.5
    instances: bool = True
    semantic: bool = True
    presence: bool = True

    def fuse(self, raw: Any, size: tuple[int, int], masks: Callable[[int, Any], Any] | None = None,
             out: Any = None) -> Any:
        """The rule these switches belong to (:func:`fuse`; another method's switches bring theirs)."""
        return fuse(raw, size, self, masks, out)


def upsample(logits: Any, size: tuple[int, int]) -> Any:
    """(K, h, w) -> (K, H, W) bilinear, align_corners=False (the processor's interpolate)."""
    import torch.nn.functional as F

    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def probabilities(logits: Any, size: tuple[int, int]) -> Any:
    """(K, h, w) logits -> (K, H, W) float32 sigmoid(upsample(logits)), a new tensor."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits.float().sigmoid()
    return upsample(logits.float(), size).sigmoid_()


def instance_scores(pred_logits: Any, presence_logits: Any) -> Any:
    """(N, Q) sigmoid(class logit) x sigmoid(presence logit): what the threshold is applied to."""
    return pred_logits.sigmoid() * presence_logits.sigmoid()[:, None]


def _empty(raw: Any, size: tuple[int, int], out: Any) -> Any:
    import torch

    if out is not None:
        return out
    return torch.empty((raw.pred_logits.shape[0],) + tuple(size), dtype=torch.float32, device=raw.pred_logits.device)


def instance_map_into(dest: Any, raw: Any, index: int, scores: Any, threshold: float,
                      masks: Callable[[int, Any], Any] | None = None) -> Any:
    """``dest`` (H, W) := max(0, max over name ``index``'s queries scoring above ``threshold`` of
    the query's mask probability (logits upsampled, then the sigmoid) times its score).
    ``scores``: :func:`instance_scores`; ``masks(i, keep)`` gives name i's mask logits (K, h, w)
    of the kept queries (so a model can skip the masks nobody keeps); by default they are read
    from ``raw.pred_masks``."""
    import torch

    dest.zero_()
    keep = scores[index] > threshold
    if not bool(keep.any()):
        return dest
    logits = masks(index, keep) if masks is not None else raw.pred_masks[index][keep]
    kept = scores[index][keep]
    chunk = max(1, CHUNK_BYTES // (4 * dest.numel()))
    for s in range(0, len(kept), chunk):
        probs = probabilities(logits[s:s + chunk], tuple(dest.shape))
        for k in range(len(probs)):
            torch.maximum(dest, probs[k].mul_(kept[s + k]), out=dest)
    return dest


def semantic_probability(raw: Any, index: int, size: tuple[int, int]) -> Any:
    """(H, W) float32: name ``index``'s semantic probability (logits upsampled, then the sigmoid)."""
    return probabilities(raw.semantic_seg[index, :1], size)[0]

def semantic_map(raw: Any, size: tuple[int, int]) -> Any:
    """(N, H, W) float32: the semantic head's probability (logits upsampled, then the sigmoid)."""
    return probabilities(raw.semantic_seg[:, 0], size)


def kept_instances(raw: Any, names: list[str], size: tuple[int, int], threshold: float,
                   masks: Callable[[int, Any], Any] | None = None) -> list[Any]:
    """SAM 3's kept instances of one window as the method seam gives them: per name, each query
    scoring above ``threshold`` (:func:`instance_scores`, as :func:`instance_map_into` keeps them) with
    its mask where sigmoid(up(mask logits)) > 0.5 (logits upsampled to the window, as the fusion
    does), cropped to its box; the score, and the presence sigmoid(presence logit)."""
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
        chunk = max(1, CHUNK_BYTES // (4 * size[0] * size[1]))  # float32 upsampled logits
        for s in range(0, len(kept), chunk):
            inside = (upsample(logits[s:s + chunk].float(), size) > 0).cpu().numpy()
            for score, mask in zip(kept[s:s + chunk].tolist(), inside):
                rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
                if not len(rows):
                    continue
                box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
                found.append(Instance(name, float(score), float(presence[i]), mask[box[0]:box[2], box[1]:box[3]], box))
    return found


def fuse(raw: Any, size: tuple[int, int], switches: FusionSwitches,
         masks: Callable[[int, Any], Any] | None = None, out: Any = None) -> Any:
    """(N, H, W) float32 scores from :class:`~resegzoo.methods.segearth_ov3.model.RawOutputs`
    (``masks``: see :func:`instance_map_into`), written into ``out`` when given. Name by name, in
    place: one full-size map per name and a few for its instances, never N at once."""
    import torch

    out = _empty(raw, size, out)
    scores = instance_scores(raw.pred_logits.float(), raw.presence_logits.float()) if switches.instances else None
    presence = raw.presence_logits.float().sigmoid()
    for i in range(len(out)):
        dest = out[i]
        if switches.instances:
            instance_map_into(dest, raw, i, scores, switches.confidence_threshold, masks)
        else:
            dest.zero_()
        if switches.semantic:
            torch.maximum(dest, semantic_probability(raw, i, size), out=dest)
        if switches.presence:
            dest.mul_(presence[i])
    return out
