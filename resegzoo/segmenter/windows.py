"""Resizing, padding, sliding windows and stitching their logits back together."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


Window = tuple[int, int, int, int]  # (y0, x0, y1, x1), end exclusive

#: the most pixels one image (or one block of a raster) may have once resized and padded: the
#: resized copy, the stitcher's per-class sums and the probabilities all scale with it (16384^2:
#: a few GB per class already). Rasters larger than this are segmented block by block.
MAX_WORK_PIXELS = 1 << 28


def check_work_size(height: int, width: int, window: int, why: str, fix: str) -> None:
    """ValueError when an image resized to ``height`` x ``width`` and padded to whole windows
    would hold more than :data:`MAX_WORK_PIXELS` (``why``: what sized it; ``fix``: what to do)."""
    padded = (height + window) * (width + window)  # padding adds less than a window per side
    if padded > MAX_WORK_PIXELS:
        raise ValueError(f"{why} gives {height:,} x {width:,} px to work on at once, above the limit of "
                         f"{MAX_WORK_PIXELS:,} px; {fix}")


def short_side_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """The (h, w) that gives the short side ``short_side``, keeping the aspect ratio."""
    if short_side is None:
        return height, width
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def fit_size(height: int, width: int, scale: tuple[int, int] | list[int] | None) -> tuple[int, int]:
    """mmcv's keep-ratio rescale (``Resize(scale=(long, short), keep_ratio=True)``): the factor
    is min(long / long side, short / short side), so the image fits inside the scale; each side
    becomes int(side x factor + 0.5). 333 x 517 with (448, 448) gives 289 x 448."""
    if scale is None:
        return height, width
    long_edge, short_edge = max(scale), min(scale)
    factor = min(long_edge / max(height, width), short_edge / min(height, width))
    return max(1, int(height * factor + 0.5)), max(1, int(width * factor + 0.5))


#: how images are resized: torch bilinear with antialiasing, or OpenCV's bilinear (what mmcv
#: and so the peers' pipeline use: no antialiasing, OpenCV's fixed-point rounding)
RESIZE_FILTERS = ("antialias", "opencv-bilinear")


def resize_image(image: np.ndarray, size: tuple[int, int], filter: str = "antialias") -> np.ndarray:
    """(H, W, 3) uint8 -> resized uint8, bilinear: antialiased when shrinking (``antialias``),
    or ``cv2.resize(INTER_LINEAR)`` itself (``opencv-bilinear``)."""
    if filter not in RESIZE_FILTERS:
        raise ValueError(f"unknown resize filter {filter!r}; use one of {', '.join(RESIZE_FILTERS)}")
    if image.shape[:2] == size:
        return image
    if filter == "opencv-bilinear":
        import cv2

        return cv2.resize(np.ascontiguousarray(image), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _padded_length(length: int, window: int, stride: int) -> int:
    if length <= window:
        return window
    return window + math.ceil((length - window) / stride) * stride


#: ``pad``: windows at multiples of the stride, the image padded at the bottom/right to fit them;
#: ``shift``: mmseg's slide inference, the last window moved back to end at the image border;
#: ``image``: one window, the whole image whatever its shape (for methods that resize every
#: window to their own input, e.g. SegEarth-OV3 without sliding)
WINDOW_PLACEMENTS = ("pad", "shift", "image")
#: how the padding is filled: ``edge`` repeats the border pixels, ``zero`` is black (the
#: reference code's ImageOps.expand)
PAD_MODES = ("edge", "zero")


def window_starts(length: int, window: int, stride: int, placement: str = "pad") -> list[int]:
    """Origins of the windows along one axis of ``length`` pixels.

    ``pad``: 0, stride, 2 x stride ... until the windows cover the axis (the last may overhang:
    the image is padded). ``shift``: as mmseg's slide inference, ceil((length - window) / stride)
    + 1 windows at multiples of the stride, each moved back to min(start, length - window), so
    none overhangs; an axis shorter than the window gets one window at 0, as long as the axis
    (:meth:`WindowPlan.make`: no padding)."""
    if placement not in WINDOW_PLACEMENTS:
        raise ValueError(f"unknown window placement {placement!r}; use one of {', '.join(WINDOW_PLACEMENTS)}")
    if placement == "shift" and length > window:
        count = (length - window + stride - 1) // stride + 1
        return [min(i * stride, length - window) for i in range(count)]
    return list(range(0, _padded_length(length, window, stride) - window + 1, stride))


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
    def make(cls, height: int, width: int, window: int, stride: int, placement: str = "pad") -> "WindowPlan":
        """Windows in row-major order; ``placement`` as in :func:`window_starts`, or ``image``:
        one window covering the whole image (``window`` and ``stride`` then unused)."""
        if placement == "image":
            return cls(height, width, window, stride, (height, width), ((0, 0, height, width),))
        if not 0 < stride <= window:
            raise ValueError(f"stride must be in [1, window={window}], got {stride}")
        ys = window_starts(height, window, stride, placement)
        xs = window_starts(width, window, stride, placement)
        # shift (mmseg's slide inference): an axis shorter than the window gets one crop of its
        # own length, never padding; the segmenter pads that crop to a patch multiple itself
        wh, ww = (min(window, height), min(window, width)) if placement == "shift" else (window, window)
        ph, pw = max(height, ys[-1] + wh), max(width, xs[-1] + ww)
        wins = tuple((y, x, y + wh, x + ww) for y in ys for x in xs)
        return cls(height, width, window, stride, (ph, pw), wins)

    def pad(self, image: np.ndarray, mode: str = "edge") -> np.ndarray:
        """Pad (H, W, ...) at the bottom and right to the padded size: ``edge`` repeats the edge
        pixels (zeros would bleed a dark border into the bilinearly upsampled patch logits),
        ``zero`` fills black as the reference code does."""
        if mode not in PAD_MODES:
            raise ValueError(f"unknown pad mode {mode!r}; use one of {', '.join(PAD_MODES)}")
        ph, pw = self.padded
        pad = [(0, ph - image.shape[0]), (0, pw - image.shape[1])] + [(0, 0)] * (image.ndim - 2)
        if mode == "zero":
            return np.pad(image, pad, mode="constant")
        return np.pad(image, pad, mode="edge")


class Stitcher:
    """Averages (K, h, w) logits of overlapping windows (each its box's size) into one (K, H, W) map.

    A window covering the whole padded frame, added first, is kept as it is (no accumulator, no
    division: the average of one window is the window, exactly); a later window starts the sums."""

    def __init__(self, plan: WindowPlan, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.plan = plan
        self.num_classes = num_classes
        self.device = device
        self.sum: torch.Tensor | None = None
        self.count: torch.Tensor | None = None
        self._whole: torch.Tensor | None = None

    def _accumulators(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.sum is None or self.count is None:
            ph, pw = self.plan.padded
            self.sum = torch.zeros((self.num_classes, ph, pw), dtype=torch.float32, device=self.device)
            self.count = torch.zeros((1, ph, pw), dtype=torch.float32, device=self.device)
            if self._whole is not None:
                self.sum += self._whole
                self.count += 1
                self._whole = None
        return self.sum, self.count

    def add(self, window: Window, logits: torch.Tensor) -> None:
        y0, x0, y1, x1 = window
        logits = logits.to(self.device, torch.float32)
        if self.sum is None and self._whole is None and (y0, x0, (y1, x1)) == (0, 0, self.plan.padded):
            self._whole = logits
            return
        total, count = self._accumulators()
        total[:, y0:y1, x0:x1] += logits
        count[:, y0:y1, x0:x1] += 1

    def result(self) -> torch.Tensor:
        """The averaged logits with the padding cropped off: (K, H, W)."""
        if self._whole is not None:
            return self._whole[:, : self.plan.height, : self.plan.width]
        total, count = self._accumulators()
        if bool((count == 0).any()):
            raise RuntimeError("some pixels were covered by no window (a bug in the window plan)")
        return total.div_(count)[:, : self.plan.height, : self.plan.width]


def __getattr__(name: str) -> Any:
    """Names that moved away from here still work, with a DeprecationWarning (resegzoo.moved.LEFT)."""
    from resegzoo.moved import left_module_attribute

    return left_module_attribute(__name__, name)
