"""SAM 2 (``sam2`` on PyPI) segments at several levels from ONE image embedding per crop.

The same pipeline as :mod:`resegzoo.masks.sam` (crops, point grids, per-level filtering, NMS,
small-region clean-up), with a backend that runs SAM 2's Hiera image encoder and its prompt
decoder the way ``SAM2AutomaticMaskGenerator`` (sam2 1.1) does, so each level's masks are the
ones that generator gives with that level's settings (tested). ``sam2`` is an optional extra:
``pip install "resegzoo[sam2]"`` (see :data:`INSTALL_HINT`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np

from resegzoo.masks.sam import METHOD_LEVELS, SamLevel

#: how to install the optional extra; the sdist builds a CUDA extension unless told not to
INSTALL_HINT = ('the sam2 mask generator needs the optional package sam2: pip install "resegzoo[sam2]" '
                '(on machines without a CUDA toolkit: SAM2_BUILD_CUDA=0 pip install --no-build-isolation '
                '"resegzoo[sam2]", with torch installed first)')


@dataclass(frozen=True)
class Sam2Level(SamLevel):
    """One mask level: ``SAM2AutomaticMaskGenerator``'s filtering settings (same names and meaning)."""

    mask_threshold: float = 0.0

    def as_generator_kwargs(self) -> dict[str, Any]:
        return dict(self.__dict__)


#: METHOD.md's four levels, for SAM 2
SAM2_METHOD_LEVELS: tuple[Sam2Level, ...] = tuple(Sam2Level(**lv.__dict__) for lv in METHOD_LEVELS)


class Sam2Backend:
    """SAM 2's model behind the shared pipeline.

    ``set_image_batch`` embeds a batch of crops in one call; the decoder runs through the
    predictor's ``_predict`` and ``_transforms`` exactly as ``SAM2AutomaticMaskGenerator`` calls
    them (sam2 1.1 offers no public batched-points call). The predictor's mask post-processing
    (hole and sprinkle filling) depends on ``min_mask_region_area``, so levels are grouped by it.
    """

    #: SAM2AutomaticMaskGenerator uses min_mask_region_area only for that post-processing (which
    #: needs sam2's CUDA extension; without it sam2 warns and skips it), not for a final clean-up
    cleans_small_regions = False

    def __init__(self, model: Any, precision: str = "fp32") -> None:
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        from resegzoo.runtime.precision import autocast_dtype

        self.predictor = SAM2ImagePredictor(model)
        self.precision = precision
        autocast_dtype(precision, self.device)  # fp16 on a CPU is refused here
        self._transforms: dict[Hashable, Any] = {}

    @property
    def device(self) -> Any:
        return self.predictor.device

    def group(self, level: SamLevel) -> Hashable:
        return level.min_mask_region_area

    def mask_threshold(self, level: SamLevel) -> float:
        return float(getattr(level, "mask_threshold", 0.0))

    def _transforms_for(self, area: int) -> Any:
        """The predictor transforms of ``SAM2ImagePredictor(model, max_hole_area=area, max_sprinkle_area=area)``."""
        if area not in self._transforms:
            from sam2.utils.transforms import SAM2Transforms

            self._transforms[area] = SAM2Transforms(resolution=self.predictor.model.image_size, mask_threshold=0.0,
                                                    max_hole_area=area, max_sprinkle_area=area)
        return self._transforms[area]

    def embed(self, crops: Sequence[np.ndarray]) -> None:
        from resegzoo.runtime.precision import autocast

        with autocast(self.precision, self.device):
            self.predictor.set_image_batch([np.ascontiguousarray(c) for c in crops])

    def decode(self, index: int, points: np.ndarray, crop_size: tuple[int, int], group: Hashable) -> tuple[Any, Any]:
        import torch

        from resegzoo.runtime.precision import autocast

        predictor = self.predictor
        predictor._transforms = self._transforms_for(int(group))  # type: ignore[arg-type]
        coords = torch.as_tensor(points, dtype=torch.float32, device=self.device)
        in_points = predictor._transforms.transform_coords(coords, normalize=True, orig_hw=crop_size)
        in_labels = torch.ones(in_points.shape[0], dtype=torch.int, device=self.device)
        with autocast(self.precision, self.device):
            masks, iou_preds, _ = predictor._predict(in_points[:, None, :], in_labels[:, None], multimask_output=True,
                                                     return_logits=True, img_idx=index)
        return masks.float(), iou_preds.float()

    def release(self) -> None:
        self.predictor.reset_predictor()


def make_sam2_generator(model: Any, levels: Sequence[Sam2Level] = SAM2_METHOD_LEVELS, *,
                        precision: str = "fp32", **kwargs: Any) -> Any:
    """A :class:`resegzoo.masks.sam.SamMaskGenerator` running SAM 2 ``model`` (a ``SAM2Base``);
    ``kwargs`` as for that class (points_per_batch, painting, region_size, image_batch, ...)."""
    from resegzoo.masks.sam import SamMaskGenerator

    return SamMaskGenerator(None, levels, backend=Sam2Backend(model, precision), **kwargs)
