"""ProC-SAM3's Presence-Guided Residual Fusion (PGRF) of SAM 3's heads, per prompt.

From ``sam3_segmentor_cached.py`` (``_pgrf_prompt_fusion``) and ``core/result_reducer.py``
(``reduce_slot_outputs``) of YanghuiSong/ProC-SAM3 (commit 234c87e), for prompt q at the window's
size, with rho = sigmoid(presence logit) and s_j = sigmoid(class logit_j) x rho:

- k = max_j s_j over every query (no threshold);
- S_ins = max(0, max over j with s_j > tau of s_j x sigmoid(up(mask logits_j))), S_sem =
  sigmoid(up(semantic logits)), S_base = max(S_ins, S_sem) (SegEarth-OV3's rule before presence);
- D = max(S_base - S_sem, 0), A = clamp(1 - |S_sem - S_base|, 0, 1), G = clamp(rho k A, 0, 1);
- P = clamp(S_sem + G D, 1e-4, 1 - 1e-4), times rho.

``residual: false`` is SegEarth-OV3's rule (S_base times rho): ProC-SAM3's
``semantic_instance_fusion='max'``. The instance and semantic maps are SegEarth-OV3's
(:mod:`resegzoo.methods.segearth_ov3.fusion`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from resegzoo.methods.segearth_ov3.fusion import FusionSwitches, instance_map, instance_scores, semantic_map

#: ProC-SAM3 clamps each prompt's fused probability into [EPS, 1 - EPS] before the presence factor
EPS = 1e-4


@dataclass(frozen=True)
class ProcSwitches(FusionSwitches):
    """SegEarth-OV3's switches and ProC-SAM3's own: the residual fusion (``semantic_instance_fusion``
    ``pgrf``; off: ``max``, SegEarth-OV3's rule)."""

    residual: bool = True

    def fuse(self, raw: Any, size: tuple[int, int], masks: Callable[[int, Any], Any] | None = None) -> Any:
        """ProC-SAM3's rule (:func:`fuse`)."""
        return fuse(raw, size, self, masks)


def fuse(raw: Any, size: tuple[int, int], switches: ProcSwitches,
         masks: Callable[[int, Any], Any] | None = None) -> Any:
    """(N, H, W) float32 ProC-SAM3 probabilities from SAM 3's raw outputs for N prompts
    (:class:`~resegzoo.methods.segearth_ov3.model.RawOutputs`; ``masks``: see
    :func:`~resegzoo.methods.segearth_ov3.fusion.instance_map`)."""
    import torch

    n = raw.pred_logits.shape[0]
    rho = raw.presence_logits.float().sigmoid()
    zeros = torch.zeros((n,) + tuple(size), dtype=torch.float32, device=raw.pred_logits.device)
    semantic = semantic_map(raw, size) if switches.semantic else zeros
    if switches.instances:
        instances = instance_map(raw, size, switches.confidence_threshold, masks)
        confidence = instance_scores(raw.pred_logits.float(), raw.presence_logits.float()).amax(dim=1)
    else:
        instances, confidence = zeros, torch.zeros(n, device=zeros.device)
    base = torch.maximum(semantic, instances)
    if switches.residual:
        advantage = (base - semantic).clamp(min=0.0)
        agreement = (1.0 - (semantic - base).abs()).clamp(0.0, 1.0)
        gate = ((rho * confidence)[:, None, None] * agreement).clamp(0.0, 1.0)
        out = (semantic + gate * advantage).clamp(EPS, 1.0 - EPS)
    else:
        out = base
    if switches.presence:
        out = out * rho[:, None, None]
    return out
