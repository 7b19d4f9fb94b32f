"""Resizing, padding, sliding windows and stitching their logits back together."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

Window = tuple[int, int, int, int]  # (y0, x0, y1, x1), end exclusive


def short_side_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """The (h, w) that gives the short side ``short_side``, keeping the aspect ratio."""
    if short_side is None:
        return height, width
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> resized uint8, bilinear (antialiased when shrinking)."""
    if image.shape[:2] == size:
        return image
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _padded_length(length: int, window: int, stride: int) -> int:
    if length <= window:
        return window
    return window + math.ceil((length - window) / stride) * stride


@dataclass(frozen=True)
class WindowPlan:
    """Windows covering an image of ``height`` x ``width`` padded to ``padded``."""

    height: int
    width: int
    window: int
    stride: int
    padded: tuple[int, int]
    windows: tuple[Window, ...]

    @classmethod
    def make(cls, height: int, width: int, window: int, stride: int) -> "WindowPlan":
        if not 0 < stride <= window:
            raise ValueError(f"stride must be in [1, window={window}], got {stride}")
        ph, pw = _padded_length(height, window, stride), _padded_length(width, window, stride)
        wins = tuple((y, x, y + window, x + window)
                     for y in range(0, ph - window + 1, stride)
                     for x in range(0, pw - window + 1, stride))
        return cls(height, width, window, stride, (ph, pw), wins)

    def pad(self, image: np.ndarray) -> np.ndarray:
        """Pad (H, W, ...) at the bottom and right to the padded size by repeating the edge
        pixels (zeros would bleed a dark border into the bilinearly upsampled patch logits)."""
        ph, pw = self.padded
        pad = [(0, ph - image.shape[0]), (0, pw - image.shape[1])] + [(0, 0)] * (image.ndim - 2)
        return np.pad(image, pad, mode="edge")


class Stitcher:
    """Averages (K, window, window) logits of overlapping windows into one (K, H, W) map."""

    def __init__(self, plan: WindowPlan, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.plan = plan
        ph, pw = plan.padded
        self.sum = torch.zeros((num_classes, ph, pw), dtype=torch.float32, device=device)
        self.count = torch.zeros((1, ph, pw), dtype=torch.float32, device=device)

    def add(self, window: Window, logits: torch.Tensor) -> None:
        y0, x0, y1, x1 = window
        self.sum[:, y0:y1, x0:x1] += logits.to(self.sum.device, torch.float32)
        self.count[:, y0:y1, x0:x1] += 1

    def result(self) -> torch.Tensor:
        """The averaged logits with the padding cropped off: (K, H, W)."""
        if bool((self.count == 0).any()):
            raise RuntimeError("some pixels were covered by no window (a bug in the window plan)")
        avg = self.sum / self.count
        return avg[:, : self.plan.height, : self.plan.width]


def upsample_patch_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, K, gh, gw) patch logits -> (B, K, h, w), bilinear as in the reference code."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
