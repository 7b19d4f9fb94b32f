"""SegEarth-OV's own segmentor, loaded from a checkout of likyoo/SegEarth-OV (never copied here).

``segearth_segmentor.py`` imports mmsegmentation, mmengine, BLIP, GEM and SimFeatUp at the top.
None of them is on the path this benchmark measures (``clip_type='CLIP'``, a model type of the
vendored open_clip, ``feature_up=False``, ``forward_slide`` and ``postprocess_result`` called
directly), and mmcv (which mmsegmentation needs) does not install here without compiling it. So
only these names are stubbed, and the measured code -- ``SegEarthSegmentation.__init__``'s text
pass, ``forward_slide``, ``forward_feature``, ``postprocess_result`` and the checkout's own
``open_clip`` (its ``VisionTransformer.custom_attn``) -- is the peer's, unchanged:

  mmseg.models.segmentors.BaseSegmentor       -> torch.nn.Module (a base class; its __init__ takes
                                                 data_preprocessor and keeps nothing)
  mmseg.models.data_preprocessor.SegDataPreProcessor -> records mean/std/bgr_to_rgb (never called:
                                                 the benchmark normalises with the same constants)
  mmseg.registry.MODELS.register_module       -> a decorator returning the class unchanged
  mmengine.structures.PixelData               -> dict (only used with data samples, never here)
  BLIP.models.blip_retrieval.blip_retrieval   -> None (only for clip_type='BLIP')
  gem                                         -> an empty module (only for model_type='GEM')
  simfeatup_dev.upsamplers.get_upsampler      -> None (only with feature_up=True)

``create_model`` in the segmentor's namespace is replaced by a function returning the checkout's
own open_clip ``ViT-B-16`` (``create_model(name)`` without pretrained weights) with a given state
dict loaded strictly, in fp32 on the CPU: the same random weights as resegzoo's side.

The checkout's ``open_clip`` package shadows the installed one, so load this in its own process.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

#: SegDataPreProcessor's settings in SegEarthSegmentation.__init__ (0-255 scale, BGR input)
MEAN = (122.771, 116.746, 104.094)
STD = (68.501, 66.632, 70.323)


def _stub(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def install_stubs() -> None:
    import torch

    class BaseSegmentor(torch.nn.Module):
        def __init__(self, data_preprocessor: Any = None, init_cfg: Any = None) -> None:
            super().__init__()

    class Registry:
        def register_module(self, *args: Any, **kwargs: Any) -> Any:
            return lambda cls: cls

    def seg_data_preprocessor(**settings: Any) -> dict:
        return settings

    for name in ("mmseg", "mmseg.models", "mmengine", "BLIP", "BLIP.models", "gem", "simfeatup_dev"):
        _stub(name)
    _stub("mmseg.models.segmentors", BaseSegmentor=BaseSegmentor)
    _stub("mmseg.models.data_preprocessor", SegDataPreProcessor=seg_data_preprocessor)
    _stub("mmseg.registry", MODELS=Registry())
    _stub("mmengine.structures", PixelData=dict)
    _stub("BLIP.models.blip_retrieval", blip_retrieval=None)
    _stub("simfeatup_dev.upsamplers", get_upsampler=None)


def load_segmentor(checkout: str | Path, state_dict: dict, name_path: str | Path, model_type: str = "SegEarth",
                   cls_token_lambda: float = -0.3, ignore_residual: bool = True) -> Any:
    """The peer's ``SegEarthSegmentation`` (SegEarth-OV's settings: base_config.py without
    SimFeatUp) over the checkout's ViT-B-16 holding ``state_dict``; its text pass runs here."""
    checkout = Path(checkout).resolve()
    if not (checkout / "segearth_segmentor.py").is_file() or not (checkout / "open_clip").is_dir():
        raise SystemExit(f"{checkout} is not a checkout of likyoo/SegEarth-OV (no segearth_segmentor.py / open_clip)")
    if "open_clip" in sys.modules and not str(getattr(sys.modules["open_clip"], "__file__", "")).startswith(str(checkout)):
        raise RuntimeError("the installed open_clip is already imported: load the peer in its own process")
    install_stubs()
    sys.path.insert(0, str(checkout))
    import segearth_segmentor as peer  # noqa: E402  (the checkout's module)
    from open_clip import create_model as checkout_create_model  # the checkout's open_clip

    def create_model(name: str, pretrained: Any = None, precision: str = "fp32", **kwargs: Any) -> Any:
        model = checkout_create_model("ViT-B-16")
        model.load_state_dict(state_dict, strict=True)
        return model.float()

    peer.create_model = create_model
    return peer.SegEarthSegmentation(
        clip_type="CLIP", vit_type="ViT-B/16", model_type=model_type, name_path=str(name_path), device="cpu",
        ignore_residual=ignore_residual, prob_thd=0.0, logit_scale=50, slide_stride=112, slide_crop=224,
        cls_token_lambda=cls_token_lambda, feature_up=False)


def to_input(bgr: Any) -> Any:
    """An (H, W, 3) uint8 BGR image (as mmcv reads it) -> the (1, 3, H, W) float tensor
    SegDataPreProcessor gives the segmentor (BGR to RGB, then (x - mean) / std)."""
    import numpy as np
    import torch

    rgb = np.ascontiguousarray(bgr[..., ::-1]).astype(np.float32)
    x = (rgb - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return torch.from_numpy(x).permute(2, 0, 1)[None].contiguous()
