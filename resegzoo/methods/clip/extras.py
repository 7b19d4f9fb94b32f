"""Peer methods' optional tricks (METHOD.md section 3), all off by default.

The SegEarth-OV last block lives in the encoder (it changes the forward); the other two act on
logits and labels and live here.
"""
from __future__ import annotations

import numpy as np
import torch


def add_cls_bias(logits: torch.Tensor, cls_logits: torch.Tensor, lam: float) -> torch.Tensor:
    """logits (B, K, h, w) + lam x cls_logits (B, K): SegEarth-OV's global-bias removal (lam=-0.3)."""
    return logits + lam * cls_logits[:, :, None, None]


def majority_vote(labels: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Each segment (id > 0) takes the label most of its pixels have (ties: the smaller label).

    labels, segments: (H, W) integer arrays. Pixels with segment id 0 keep their label.
    """
    if labels.shape != segments.shape:
        raise ValueError(f"labels {labels.shape} and segments {segments.shape} differ in shape")
    out = labels.copy()
    covered = segments > 0
    if not covered.any():
        return out
    seg_ids, seg_index = np.unique(segments[covered], return_inverse=True)
    lab = labels[covered].astype(np.int64)
    num_labels = int(lab.max()) + 1
    counts = np.bincount(seg_index * num_labels + lab, minlength=len(seg_ids) * num_labels)
    winner = counts.reshape(len(seg_ids), num_labels).argmax(axis=1)  # first max = smaller label
    out[covered] = winner[seg_index].astype(labels.dtype)
    return out
