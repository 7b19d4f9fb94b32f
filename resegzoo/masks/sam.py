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

Batching (results identical to one crop and one level at a time, tested): the image encoder takes
up to ``image_batch`` crops per call, crops of several regions together; the prompt decoder takes
the points of all levels of a crop in batches of ``points_per_batch``, and each level filters its
own rows. The model-specific steps (embedding, decoding) sit behind a small backend, so SAM 2
(:mod:`resegzoo.masks.sam2`) shares this pipeline.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from resegzoo.masks.painting import PAINT_ORDERS, Box, PaintOrder, check_image, paint_masks
from resegzoo.masks.windows import REGIONS_PER_CALL, region_groups, windows_from_regions
from resegzoo.schema import check_limits, limit

#: SAM's native input size; a region of this many pixels per side is embedded without downscaling.
SAM_NATIVE_SIZE = 1024
#: limits of the settings that size memory: prompt points per side (SAM's own default: 32; scaled
#: up with the region/window ratio), crop layers (4 layers: 85 crops per level)
MAX_POINTS_PER_SIDE, MAX_CROP_LAYERS = 256, 4


@dataclass(frozen=True)
class SamLevel:
    """One mask level: ``SamAutomaticMaskGenerator``'s filtering settings (same names and meaning)."""

    points_per_side: int = field(default=4, metadata=limit(MAX_POINTS_PER_SIDE))
    pred_iou_thresh: float = 0.5
    stability_score_thresh: float = 0.5
    min_mask_region_area: int = 500
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = field(default=1, metadata=limit(MAX_CROP_LAYERS))
    crop_nms_thresh: float = 0.7
    crop_n_points_downscale_factor: int = 2

    def __post_init__(self) -> None:
        check_limits(self)
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


class SamBackend:
    """segment-anything's model behind the pipeline: embed a batch of crops, decode points."""

    #: SamAutomaticMaskGenerator removes small regions and holes of the final masks (OpenCV)
    cleans_small_regions = True

    def __init__(self, sam: Any, precision: str = "fp32") -> None:
        from segment_anything import SamPredictor

        from resegzoo.runtime.precision import autocast_dtype

        self.predictor = SamPredictor(sam)
        self.precision = precision
        autocast_dtype(precision, self.device)  # fp16 on a CPU is refused here
        self._features: Any = None
        self._sizes: list[tuple[tuple[int, int], tuple[int, int]]] = []

    @property
    def device(self) -> Any:
        return self.predictor.device

    def group(self, level: SamLevel) -> Hashable:
        """Levels of one group share their decoder runs (SAM: all levels)."""
        return ()

    def mask_threshold(self, level: SamLevel) -> float:
        return float(self.predictor.model.mask_threshold)

    def embed(self, crops: Sequence[np.ndarray]) -> None:
        """One image-encoder call for all ``crops`` (as SamPredictor.set_image does for one)."""
        import torch

        from resegzoo.runtime.precision import autocast

        predictor = self.predictor
        batch, self._sizes = [], []
        for crop in crops:
            if predictor.model.image_format != "RGB":
                crop = crop[..., ::-1]
            resized = torch.as_tensor(predictor.transform.apply_image(crop), device=self.device)
            resized = resized.permute(2, 0, 1).contiguous()[None]
            self._sizes.append((crop.shape[:2], tuple(resized.shape[-2:])))
            batch.append(predictor.model.preprocess(resized))  # normalised, padded to a square
        with autocast(self.precision, self.device):
            self._features = predictor.model.image_encoder(torch.cat(batch))

    def decode(self, index: int, points: np.ndarray, crop_size: tuple[int, int],
               group: Hashable) -> tuple[Any, Any]:
        """Mask logits (n, 3, h, w) and predicted IoUs (n, 3) of crop ``index`` for n points."""
        import torch

        from resegzoo.runtime.precision import autocast

        predictor = self.predictor
        predictor.features = self._features[index:index + 1]
        predictor.original_size, predictor.input_size = self._sizes[index]
        predictor.is_image_set = True
        in_points = torch.as_tensor(predictor.transform.apply_coords(points, crop_size), device=self.device)
        in_labels = torch.ones(in_points.shape[0], dtype=torch.int, device=self.device)
        with autocast(self.precision, self.device):
            masks, iou_preds, _ = predictor.predict_torch(in_points[:, None, :], in_labels[:, None],
                                                          multimask_output=True, return_logits=True)
        return masks.float(), iou_preds.float()

    def release(self) -> None:
        self.predictor.reset_image()
        self._features = None


def density_levels(levels: Sequence[SamLevel], ratio: float) -> tuple[SamLevel, ...]:
    """The levels for a region ``ratio`` times a window's side, with the reference's point
    density per window (METHOD.md section 2).

    The reference runs each level on every window: points_per_side x points_per_side prompts
    over the window. Over a region ``ratio`` times larger per side the same density needs
    round(points_per_side x ratio) points per side. Crop layers halve the crop side per layer
    (and, with crop_n_points_downscale_factor 2, keep that density), so round(log2(ratio)) more
    layers give the region crops as small as the reference's smallest; a level without crop
    layers keeps none. Ratios up to 1 change nothing.
    """
    import math

    if ratio <= 1.0:
        return tuple(levels)
    extra = round(math.log2(ratio))
    return tuple(dataclasses.replace(
        lv, points_per_side=max(1, round(lv.points_per_side * ratio)),
        crop_n_layers=lv.crop_n_layers + extra if lv.crop_n_layers > 0 else 0) for lv in levels)


class SamMaskGenerator:
    """L levels of SAM segments per image, the image encoder run once per crop.

    ``sam`` is a ``segment_anything.modeling.Sam`` (on the device it should run on). Settings
    shared by all levels: ``crop_overlap_ratio`` and ``points_per_batch`` (as in the stock
    generator), ``painting`` (see :mod:`resegzoo.masks.painting`) and ``region_size`` (windows are
    grouped into regions up to this many pixels per side for :meth:`generate_windows`; None: each
    window alone, the reference's exact mode). With ``scale_points`` a region's levels get the
    reference's point density per window (:func:`density_levels`).
    ``image_batch``: crops per image-encoder call (None: 4 on CUDA, 1 on a CPU, where a batch
    only costs memory). ``precision``: fp32, bf16 or fp16 (CUDA) autocast for the encoder and
    decoder. ``fingerprint`` names the weights for the on-disk cache.
    """

    def __init__(
        self,
        sam: Any,
        levels: Sequence[SamLevel] = METHOD_LEVELS,
        *,
        crop_overlap_ratio: float = 512 / 1500,
        points_per_batch: int = 64,
        painting: PaintOrder = "largest-first",
        region_size: int | None = SAM_NATIVE_SIZE,
        fingerprint: str | None = None,
        scale_points: bool = True,
        image_batch: int | None = None,
        precision: str = "fp32",
        backend: Any = None,
    ) -> None:
        if painting not in PAINT_ORDERS:
            raise ValueError(f"unknown painting {painting!r}; use one of {', '.join(PAINT_ORDERS)}")
        if points_per_batch < 1 or (region_size is not None and region_size < 1) or (
                image_batch is not None and image_batch < 1):
            raise ValueError("points_per_batch, region_size and image_batch must be positive")
        if any(level.min_mask_region_area > 0 for level in levels):
            import cv2  # noqa: F401  (segment-anything's small-region clean-up needs OpenCV: fail now)
        self.backend = backend if backend is not None else SamBackend(sam, precision)
        self.levels = tuple(levels)
        self.level_count = len(self.levels)
        self.crop_overlap_ratio = crop_overlap_ratio
        self.points_per_batch = points_per_batch
        self.painting: PaintOrder = painting
        self.region_size = region_size
        self.scale_points = scale_points
        self.fingerprint = fingerprint
        if image_batch is None:
            import torch

            image_batch = 4 if torch.device(self.backend.device).type == "cuda" else 1
        self.image_batch = image_batch

    @property
    def predictor(self) -> Any:
        """The backend's predictor (segment-anything's SamPredictor for SAM)."""
        return self.backend.predictor

    # -- the public interface --------------------------------------------------------------------

    def __call__(self, image: np.ndarray, levels: Sequence[SamLevel] | None = None) -> np.ndarray:
        """(L, H, W) int32 id maps of an (H, W, 3) uint8 image, finest level first, 0 = uncovered
        (``levels``: other settings than the generator's own, e.g. a region's)."""
        return self.generate_many([image], None if levels is None else [levels])[0]

    def generate_many(self, images: Sequence[np.ndarray],
                      levels: Sequence[Sequence[SamLevel]] | None = None) -> list[np.ndarray]:
        """:meth:`__call__` for several images, their crops sharing image-encoder batches
        (``levels``: one level list per image, as many levels as the generator's)."""
        images = [check_image(image) for image in images]
        out = []
        for image, per_level in zip(images, self.level_masks_many(images, levels)):
            shape = image.shape[:2]
            maps = [paint_masks(masks, shape, self.painting) for masks in per_level]
            out.append(np.stack(maps) if maps else np.zeros((0, *shape), dtype=np.int32))
        return out

    def generate_windows(self, image: np.ndarray, windows: Sequence[Box],
                         progress: Callable[[int], None] | None = None) -> list[np.ndarray]:
        """Each window's (L, h, w) id maps, SAM run once per region of up to ``region_size`` px
        (each window alone when ``region_size`` is None); the crops of several regions share
        image-encoder batches. With ``scale_points`` each region's levels keep the reference's
        prompt-point density per window (:func:`density_levels`).

        ``progress(n)`` is called after each group of regions with its number of windows;
        without it a tqdm bar counts windows (shown on a terminal only).
        """
        boxes = [tuple(int(v) for v in w) for w in windows]
        side, region_size = self._region_size(boxes)

        def region_levels(region: np.ndarray) -> tuple[SamLevel, ...]:
            ratio = max(region.shape[:2]) / side
            return density_levels(self.levels, ratio) if self.scale_points else self.levels

        def many(regions: list[np.ndarray]) -> list[np.ndarray]:
            return self.generate_many(regions, [region_levels(r) for r in regions])

        if progress is not None:
            return windows_from_regions(self, image, boxes, region_size, progress, many=many)
        from tqdm.auto import tqdm

        with tqdm(total=len(windows), desc="SAM segments", unit="window", leave=False, disable=None) as bar:
            return windows_from_regions(self, image, boxes, region_size, bar.update, many=many)

    def window_groups(self, windows: Sequence[Box]) -> list[list[int]]:
        """The windows whose maps :meth:`generate_windows` makes together: its regions, as many at
        a time as share image-encoder batches (:func:`resegzoo.masks.windows.region_groups`)."""
        boxes = [tuple(int(v) for v in w) for w in windows]
        return region_groups(boxes, self._region_size(boxes)[1], REGIONS_PER_CALL)

    def _region_size(self, boxes: Sequence[Box]) -> tuple[int, int]:
        """(the largest window side, the region size) for these windows."""
        side = max((max(y1 - y0, x1 - x0) for y0, x0, y1, x1 in boxes), default=1)
        return side, side if self.region_size is None else self.region_size

    def level_masks(self, image: np.ndarray, levels: Sequence[SamLevel] | None = None) -> list[list[np.ndarray]]:
        """For each level, its boolean (H, W) masks in the order the stock generator returns them."""
        return self.level_masks_many([image], None if levels is None else [levels])[0]

    def level_masks_many(self, images: Sequence[np.ndarray],
                         levels: Sequence[Sequence[SamLevel]] | None = None) -> list[list[list[np.ndarray]]]:
        """:meth:`level_masks` of each image (``levels``: one level list per image)."""
        import torch

        images = [check_image(image) for image in images]
        per_image = [self.levels] * len(images) if levels is None else [tuple(lv) for lv in levels]
        if len(per_image) != len(images) or any(len(lv) != len(self.levels) for lv in per_image):
            raise ValueError("give one level list per image, each as long as the generator's levels")
        with torch.inference_mode():
            return self._level_masks(images, per_image)

    # -- the pipeline (mirrors SamAutomaticMaskGenerator._generate_masks and generate) -----------

    def _level_masks(self, images: list[np.ndarray],
                     levels: list[tuple[SamLevel, ...]]) -> list[list[list[np.ndarray]]]:
        from segment_anything.utils.amg import MaskData, build_all_layer_point_grids, generate_crop_boxes

        if not self.levels:
            return [[] for _ in images]
        grids = [[
            build_all_layer_point_grids(lv.points_per_side, lv.crop_n_layers, lv.crop_n_points_downscale_factor)
            for lv in image_levels] for image_levels in levels]
        jobs = []  # (image index, crop box, crop layer) of every crop of every image
        for n, image in enumerate(images):
            deepest = max(level.crop_n_layers for level in levels[n])
            crop_boxes, layer_idxs = generate_crop_boxes(image.shape[:2], deepest, self.crop_overlap_ratio)
            jobs.extend((n, box, layer) for box, layer in zip(crop_boxes, layer_idxs))
        found = [[MaskData() for _ in self.levels] for _ in images]
        crops_used = [[0] * len(self.levels) for _ in images]
        for start in range(0, len(jobs), self.image_batch):
            batch = jobs[start:start + self.image_batch]
            crops = [images[n][y0:y1, x0:x1, :] for n, (x0, y0, x1, y1), _ in batch]
            self.backend.embed(crops)  # the one image-encoder pass for these crops
            for index, ((n, crop_box, layer_idx), crop) in enumerate(zip(batch, crops)):
                users = [k for k, lv in enumerate(levels[n]) if layer_idx <= lv.crop_n_layers]
                points = {k: grids[n][k][layer_idx] * np.array(crop.shape[:2])[None, ::-1] for k in users}
                per_level = self._decode_crop(index, points, crop.shape[:2], crop_box, images[n].shape[:2],
                                              levels[n])
                for k in users:
                    found[n][k].cat(per_level[k])
                    crops_used[n][k] += 1
            self.backend.release()
        return [[self._finish_level(lv, data, c) for lv, data, c in zip(image_levels, fd, cu)]
                for image_levels, fd, cu in zip(levels, found, crops_used)]

    def _decode_crop(self, index: int, points: dict[int, np.ndarray], crop_size: tuple[int, int],
                     crop_box: list[int], orig_size: tuple[int, int],
                     levels: Sequence[SamLevel] | None = None) -> dict[int, Any]:
        """Each level's masks of one crop: the points of all levels of a decoder group go through
        the prompt decoder together, ``points_per_batch`` at a time; each level keeps its rows."""
        from segment_anything.utils.amg import MaskData

        levels = self.levels if levels is None else levels
        data = {k: MaskData() for k in points}
        groups: dict[Hashable, list[int]] = {}
        for k in points:
            groups.setdefault(self.backend.group(levels[k]), []).append(k)
        for group, members in groups.items():
            all_points = np.concatenate([points[k] for k in members])
            owner = np.concatenate([np.full(len(points[k]), k) for k in members])
            for s in range(0, len(all_points), self.points_per_batch):
                batch_points, batch_owner = all_points[s:s + self.points_per_batch], owner[s:s + self.points_per_batch]
                masks, iou_preds = self.backend.decode(index, batch_points, crop_size, group)
                for k in members:
                    rows = np.flatnonzero(batch_owner == k)
                    if len(rows):
                        data[k].cat(self._filter_batch(levels[k], batch_points[rows], masks[rows],
                                                       iou_preds[rows], crop_box, orig_size))
        return {k: self._finish_crop(levels[k], data[k], crop_box) for k in points}

    def _finish_crop(self, level: SamLevel, data: Any, crop_box: list[int]) -> Any:
        import torch
        from segment_anything.utils.amg import MaskData, uncrop_boxes_xyxy, uncrop_points
        from torchvision.ops.boxes import batched_nms

        if _count(data) == 0:
            return MaskData()
        keep = batched_nms(data["boxes"].float(), data["iou_preds"],
                           torch.zeros(len(data["boxes"]), device=data["boxes"].device),
                           iou_threshold=level.box_nms_thresh)
        data.filter(keep)
        data["boxes"] = uncrop_boxes_xyxy(data["boxes"], crop_box)
        data["points"] = uncrop_points(data["points"], crop_box)
        # (n, 4) even for n == 0, unlike the stock generator's torch.tensor([])
        data["crop_boxes"] = torch.tensor(crop_box, dtype=torch.int64,
                                          device=data["boxes"].device).repeat(len(data["rles"]), 1)
        return data

    def _filter_batch(self, level: SamLevel, points: np.ndarray, masks: Any, iou_preds: Any,
                      crop_box: list[int], orig_size: tuple[int, int]) -> Any:
        """One level's filtering of decoded masks (SamAutomaticMaskGenerator._process_batch)."""
        import torch
        from segment_anything.utils.amg import (
            MaskData, batched_mask_to_box, calculate_stability_score, is_box_near_crop_edge,
            mask_to_rle_pytorch, uncrop_masks,
        )

        orig_h, orig_w = orig_size
        data = MaskData(masks=masks.flatten(0, 1), iou_preds=iou_preds.flatten(0, 1),
                        points=torch.as_tensor(points.repeat(masks.shape[1], axis=0)))
        if level.pred_iou_thresh > 0.0:
            data.filter(data["iou_preds"] > level.pred_iou_thresh)
        threshold = self.backend.mask_threshold(level)
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
        if level.min_mask_region_area > 0 and self.backend.cleans_small_regions:
            data = SamAutomaticMaskGenerator.postprocess_small_regions(
                data, level.min_mask_region_area, max(level.box_nms_thresh, level.crop_nms_thresh))
        return [rle_to_mask(rle) for rle in data["rles"]]


def _count(data: Any) -> int:
    """Number of masks in a segment-anything MaskData (0 for one that holds nothing yet)."""
    return len(data["rles"]) if "rles" in dict(data.items()) else 0
