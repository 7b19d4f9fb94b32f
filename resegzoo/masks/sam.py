"""SAM segments at several levels from ONE image embedding per crop.

segment-anything's ``SamAutomaticMaskGenerator`` embeds the image (and each of its crops) every
time it runs, so the reference code's "one generator per level" schedule pays the image encoder
once per level. The encoder only sees pixels, so :class:`SamMaskGenerator` embeds each crop once
and runs just the prompt decoder, filtering, NMS and small-region clean-up per level, with that
level's settings. Each step mirrors ``SamAutomaticMaskGenerator`` (segment-anything 1.0) line for
line, so the masks are the same as running the stock generator once per level (tested).

Differences from the stock generator, on purpose:
* when no mask survives the thresholds the result is an empty list (an all-zero id map); with
  crop layers on, segment-anything 1.0 raises IndexError there instead;
* levels may use different ``crop_n_layers``: the crops of fewer layers are a prefix of the crops
  of more layers, so the generator embeds the crops of the deepest level and each level uses its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from resegzoo.masks.painting import PAINT_ORDERS, Box, PaintOrder, check_image, paint_masks
from resegzoo.masks.windows import windows_from_regions

#: SAM's native input size; a region of this many pixels per side is embedded without downscaling.
SAM_NATIVE_SIZE = 1024


@dataclass(frozen=True)
class SamLevel:
    """One mask level: ``SamAutomaticMaskGenerator``'s filtering settings (same names and meaning)."""

    points_per_side: int = 4
    pred_iou_thresh: float = 0.5
    stability_score_thresh: float = 0.5
    min_mask_region_area: int = 500
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 1
    crop_nms_thresh: float = 0.7
    crop_n_points_downscale_factor: int = 2

    def __post_init__(self) -> None:
        if self.points_per_side < 1:
            raise ValueError(f"points_per_side must be at least 1, got {self.points_per_side}")
        if self.crop_n_layers < 0:
            raise ValueError(f"crop_n_layers must be 0 or more, got {self.crop_n_layers}")
        if self.crop_n_points_downscale_factor < 1:
            raise ValueError("crop_n_points_downscale_factor must be at least 1, "
                             f"got {self.crop_n_points_downscale_factor}")
        if self.min_mask_region_area < 0:
            raise ValueError(f"min_mask_region_area must be 0 or more, got {self.min_mask_region_area}")
        for name in ("box_nms_thresh", "crop_nms_thresh"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")

    def as_generator_kwargs(self) -> dict[str, Any]:
        """These settings as ``SamAutomaticMaskGenerator`` keyword arguments."""
        return dict(self.__dict__)


#: METHOD.md section 2: the reference code's four levels, finest first.
METHOD_LEVELS: tuple[SamLevel, ...] = (
    SamLevel(points_per_side=4, pred_iou_thresh=0.5, stability_score_thresh=0.5, min_mask_region_area=500),
    SamLevel(points_per_side=2, pred_iou_thresh=0.6, stability_score_thresh=0.6, min_mask_region_area=500),
    SamLevel(points_per_side=2, pred_iou_thresh=0.5, stability_score_thresh=0.5, min_mask_region_area=1000),
    SamLevel(points_per_side=2, pred_iou_thresh=0.5, stability_score_thresh=0.5, min_mask_region_area=2000),
)


class SamMaskGenerator:
    """L levels of SAM segments per image, the image encoder run once per crop.

    ``sam`` is a ``segment_anything.modeling.Sam`` (on the device it should run on). Settings
    shared by all levels: ``crop_overlap_ratio`` and ``points_per_batch`` (as in the stock
    generator), ``painting`` (see :mod:`resegzoo.masks.painting`) and ``region_size`` (windows are
    grouped into regions up to this many pixels per side for :meth:`generate_windows`).
    ``fingerprint`` names the weights for the on-disk cache.
    """

    def __init__(
        self,
        sam: Any,
        levels: Sequence[SamLevel] = METHOD_LEVELS,
        *,
        crop_overlap_ratio: float = 512 / 1500,
        points_per_batch: int = 64,
        painting: PaintOrder = "largest-first",
        region_size: int = SAM_NATIVE_SIZE,
        fingerprint: str | None = None,
    ) -> None:
        from segment_anything import SamPredictor

        if painting not in PAINT_ORDERS:
            raise ValueError(f"unknown painting {painting!r}; use one of {', '.join(PAINT_ORDERS)}")
        if points_per_batch < 1 or region_size < 1:
            raise ValueError("points_per_batch and region_size must be positive")
        if any(level.min_mask_region_area > 0 for level in levels):
            import cv2  # noqa: F401  (segment-anything's small-region clean-up needs OpenCV: fail now)
        self.predictor = SamPredictor(sam)
        self.levels = tuple(levels)
        self.level_count = len(self.levels)
        self.crop_overlap_ratio = crop_overlap_ratio
        self.points_per_batch = points_per_batch
        self.painting: PaintOrder = painting
        self.region_size = region_size
        self.fingerprint = fingerprint

    # -- the public interface --------------------------------------------------------------------

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(L, H, W) int32 id maps of an (H, W, 3) uint8 image, finest level first, 0 = uncovered."""
        image = check_image(image)
        shape = image.shape[:2]
        per_level = self.level_masks(image)
        maps = [paint_masks(masks, shape, self.painting) for masks in per_level]
        return np.stack(maps) if maps else np.zeros((0, *shape), dtype=np.int32)

    def generate_windows(self, image: np.ndarray, windows: Sequence[Box],
                         progress: Callable[[int], None] | None = None) -> list[np.ndarray]:
        """Each window's (L, h, w) id maps, SAM run once per region of up to ``region_size`` px.

        ``progress(n)`` is called after each region with its number of windows; without it a
        tqdm bar counts windows (shown on a terminal only).
        """
        if progress is not None:
            return windows_from_regions(self, image, windows, self.region_size, progress)
        from tqdm.auto import tqdm

        with tqdm(total=len(windows), desc="SAM segments", unit="window", leave=False, disable=None) as bar:
            return windows_from_regions(self, image, windows, self.region_size, bar.update)

    def level_masks(self, image: np.ndarray) -> list[list[np.ndarray]]:
        """For each level, its boolean (H, W) masks in the order the stock generator returns them."""
        import torch

        with torch.inference_mode():
            return self._level_masks(check_image(image))

    # -- the pipeline (mirrors SamAutomaticMaskGenerator._generate_masks and generate) -----------

    def _level_masks(self, image: np.ndarray) -> list[list[np.ndarray]]:
        from segment_anything.utils.amg import MaskData, build_all_layer_point_grids, generate_crop_boxes

        if not self.levels:
            return []
        orig_size = image.shape[:2]
        deepest = max(level.crop_n_layers for level in self.levels)
        crop_boxes, layer_idxs = generate_crop_boxes(orig_size, deepest, self.crop_overlap_ratio)
        grids = [
            build_all_layer_point_grids(lv.points_per_side, lv.crop_n_layers, lv.crop_n_points_downscale_factor)
            for lv in self.levels
        ]
        found = [MaskData() for _ in self.levels]
        crops_used = [0] * len(self.levels)
        for crop_box, layer_idx in zip(crop_boxes, layer_idxs):
            users = [k for k, lv in enumerate(self.levels) if layer_idx <= lv.crop_n_layers]
            x0, y0, x1, y1 = crop_box
            crop = image[y0:y1, x0:x1, :]
            self.predictor.set_image(crop)  # the one image-encoder pass for this crop
            for k in users:
                grid = grids[k][layer_idx] * np.array(crop.shape[:2])[None, ::-1]
                found[k].cat(self._process_crop(self.levels[k], grid, crop.shape[:2], crop_box, orig_size))
                crops_used[k] += 1
            self.predictor.reset_image()
        return [self._finish_level(lv, data, n) for lv, data, n in zip(self.levels, found, crops_used)]

    def _process_crop(self, level: SamLevel, points_for_image: np.ndarray, crop_size: tuple[int, int],
                      crop_box: list[int], orig_size: tuple[int, int]) -> Any:
        import torch
        from segment_anything.utils.amg import MaskData, batch_iterator, uncrop_boxes_xyxy, uncrop_points
        from torchvision.ops.boxes import batched_nms

        data = MaskData()
        for (points,) in batch_iterator(self.points_per_batch, points_for_image):
            data.cat(self._process_batch(level, points, crop_size, crop_box, orig_size))
        if _count(data) == 0:
            return MaskData()
        keep = batched_nms(data["boxes"].float(), data["iou_preds"],
                           torch.zeros(len(data["boxes"]), device=data["boxes"].device),
                           iou_threshold=level.box_nms_thresh)
        data.filter(keep)
        data["boxes"] = uncrop_boxes_xyxy(data["boxes"], crop_box)
        data["points"] = uncrop_points(data["points"], crop_box)
        # (n, 4) even for n == 0, unlike the stock generator's torch.tensor([])
        data["crop_boxes"] = torch.tensor(crop_box, dtype=torch.int64).repeat(len(data["rles"]), 1)
        return data

    def _process_batch(self, level: SamLevel, points: np.ndarray, crop_size: tuple[int, int],
                       crop_box: list[int], orig_size: tuple[int, int]) -> Any:
        import torch
        from segment_anything.utils.amg import (
            MaskData, batched_mask_to_box, calculate_stability_score, is_box_near_crop_edge,
            mask_to_rle_pytorch, uncrop_masks,
        )

        orig_h, orig_w = orig_size
        predictor = self.predictor
        in_points = torch.as_tensor(predictor.transform.apply_coords(points, crop_size), device=predictor.device)
        in_labels = torch.ones(in_points.shape[0], dtype=torch.int, device=in_points.device)
        masks, iou_preds, _ = predictor.predict_torch(in_points[:, None, :], in_labels[:, None],
                                                      multimask_output=True, return_logits=True)
        data = MaskData(masks=masks.flatten(0, 1), iou_preds=iou_preds.flatten(0, 1),
                        points=torch.as_tensor(points.repeat(masks.shape[1], axis=0)))
        del masks
        if level.pred_iou_thresh > 0.0:
            data.filter(data["iou_preds"] > level.pred_iou_thresh)
        threshold = predictor.model.mask_threshold
        data["stability_score"] = calculate_stability_score(data["masks"], threshold, level.stability_score_offset)
        if level.stability_score_thresh > 0.0:
            data.filter(data["stability_score"] >= level.stability_score_thresh)
        data["masks"] = data["masks"] > threshold
        data["boxes"] = batched_mask_to_box(data["masks"])
        keep = ~is_box_near_crop_edge(data["boxes"], crop_box, [0, 0, orig_w, orig_h])
        if not torch.all(keep):
            data.filter(keep)
        data["masks"] = uncrop_masks(data["masks"], crop_box, orig_h, orig_w)
        data["rles"] = mask_to_rle_pytorch(data["masks"])
        del data["masks"]
        return data

    def _finish_level(self, level: SamLevel, data: Any, n_crops: int) -> list[np.ndarray]:
        import torch
        from segment_anything import SamAutomaticMaskGenerator
        from segment_anything.utils.amg import rle_to_mask
        from torchvision.ops.boxes import batched_nms, box_area

        if _count(data) == 0:
            return []  # nothing survived the thresholds: an all-zero id map, not IndexError
        if n_crops > 1:
            # Remove duplicates between crops, preferring masks from smaller crops.
            scores = (1 / box_area(data["crop_boxes"])).to(data["boxes"].device)
            keep = batched_nms(data["boxes"].float(), scores,
                               torch.zeros(len(data["boxes"]), device=data["boxes"].device),
                               iou_threshold=level.crop_nms_thresh)
            data.filter(keep)
        data.to_numpy()
        if level.min_mask_region_area > 0:
            data = SamAutomaticMaskGenerator.postprocess_small_regions(
                data, level.min_mask_region_area, max(level.box_nms_thresh, level.crop_nms_thresh))
        return [rle_to_mask(rle) for rle in data["rles"]]


def _count(data: Any) -> int:
    """Number of masks in a segment-anything MaskData (0 for one that holds nothing yet)."""
    return len(data["rles"]) if "rles" in dict(data.items()) else 0
