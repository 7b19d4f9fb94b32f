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

from resegzoo.methods.segearth_ov3.fusion import (
    FusionSwitches, instance_map_into, instance_scores, semantic_probability)

#: ProC-SAM3 clamps each prompt's fused probability into [EPS, 1 - EPS] before the presence factor
EPS = 1e-4


@dataclass(frozen=True)
class ProcSwitches(FusionSwitches):
    """SegEarth-OV3's switches and ProC-SAM3's own: the residual fusion (``semantic_instance_fusion``
    ``pgrf``; off: ``max``, SegEarth-OV3's rule)."""

    residual: bool = True

    def fuse(self, raw: Any, size: tuple[int, int], masks: Callable[[int, Any], Any] | None = None,
             out: Any = None) -> Any:
        """ProC-SAM3's rule (:func:`fuse`)."""
        return fuse(raw, size, self, masks, out)


def fuse(raw: Any, size: tuple[int, int], switches: ProcSwitches,
         masks: Callable[[int, Any], Any] | None = None, out: Any = None) -> Any:
    """(N, H, W) float32 ProC-SAM3 probabilities from SAM 3's raw outputs for N prompts
    (:class:`~resegzoo.methods.segearth_ov3.model.RawOutputs`; ``masks``: see
    :func:`~resegzoo.methods.segearth_ov3.fusion.instance_map_into`), written into ``out`` when
    given; prompt by prompt, in place.

    With S_base >= S_sem, D = S_base - S_sem is the advantage and 1 - D the agreement exactly
    (both in [0, 1], so their clamps change nothing, nor the gate's), and the arithmetic is the
    reference's operation for operation."""
    import torch

    n = raw.pred_logits.shape[0]
    if out is None:
        out = torch.empty((n,) + tuple(size), dtype=torch.float32, device=raw.pred_logits.device)
    rho = raw.presence_logits.float().sigmoid()
    if switches.instances:
        scores = instance_scores(raw.pred_logits.float(), raw.presence_logits.float())
        gate_scale = rho * scores.amax(dim=1)  # rho k, k the best query score (no threshold)
    else:
        scores, gate_scale = None, torch.zeros_like(rho)
    for i in range(n):
        dest = out[i]  # S_ins, then S_base, then D, then P
        if switches.instances:
            instance_map_into(dest, raw, i, scores, switches.confidence_threshold, masks)
        else:
            dest.zero_()
        semantic = semantic_probability(raw, i, size) if switches.semantic else torch.zeros_like(dest)
        torch.maximum(dest, semantic, out=dest)
        if switches.residual:
            dest.sub_(semantic)  # D = S_base - S_sem
            gated = torch.sub(1.0, dest).mul_(gate_scale[i]).mul_(dest)  # G D, G = (1 - D) rho k
            torch.add(semantic, gated, out=dest).clamp_(EPS, 1.0 - EPS)
        if switches.presence:
            dest.mul_(rho[i])
    return out
