"""A tiny random-weight SAM for tests and plugin authors: segment-anything's real classes, ~1 MB."""
from __future__ import annotations

from functools import partial
from typing import Any


def make_tiny_sam(seed: int = 0, img_size: int = 256) -> Any:
    """A ``segment_anything.modeling.Sam`` with a 2-block image encoder, in eval mode.

    The prompt encoder and mask decoder are sized to match ``img_size`` (the image embedding is
    ``img_size / 16`` per side), so ``SamPredictor`` and ``SamAutomaticMaskGenerator`` work on it
    unchanged. Weights are random but reproducible from ``seed``.
    """
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    if img_size % 16:
        raise ValueError(f"img_size must be a multiple of SAM's patch size 16, got {img_size}")
    embed_side = img_size // 16
    prompt_dim = 32
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        sam = Sam(
            image_encoder=ImageEncoderViT(
                img_size=img_size, patch_size=16, embed_dim=64, depth=2, num_heads=2, mlp_ratio=2.0,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), qkv_bias=True, use_rel_pos=True,
                window_size=4, global_attn_indexes=(1,), out_chans=prompt_dim,
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=prompt_dim, image_embedding_size=(embed_side, embed_side),
                input_image_size=(img_size, img_size), mask_in_chans=4,
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(depth=1, embedding_dim=prompt_dim, mlp_dim=64, num_heads=2),
                transformer_dim=prompt_dim, iou_head_depth=2, iou_head_hidden_dim=32,
            ),
        )
    finally:
        torch.random.set_rng_state(state)
    return sam.eval()


def make_colour_sam(img_size: int = 256) -> Any:
    """A SAM whose masks are colour regions around each prompt point: structured masks, no weights.

    Random-weight SAMs give speckled masks that touch every crop edge, so the stock generator's
    crop-edge filter drops every mask of every crop but the full image. This stand-in (a real
    ``Sam`` with three small modules) returns, for a point, the pixels whose colour is close to the
    point's colour at three tolerances, so masks follow the image, crops keep their interior
    objects and every step of the automatic pipeline is exercised.
    """
    import torch
    from segment_anything.modeling import Sam

    class ColourEncoder(torch.nn.Module):
        """The normalised image averaged over 4x4 pixels: (B, 3, S/4, S/4), SAM's low-res mask grid."""

        def __init__(self) -> None:
            super().__init__()
            self.img_size = img_size

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.avg_pool2d(x, 4)

    class PointPassThrough(torch.nn.Module):
        """Hands the point coordinates (input frame, pixels) to the decoder as its sparse prompt."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("dummy", torch.zeros(1), persistent=False)

        def get_dense_pe(self) -> torch.Tensor:
            return self.dummy

        def forward(self, points: Any, boxes: Any, masks: Any) -> tuple[torch.Tensor, torch.Tensor]:
            coords, _labels = points
            return coords.float(), self.dummy

    class ColourRegionDecoder(torch.nn.Module):
        """Mask logits = tolerance - colour distance to the prompt point, for 3 tolerances."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("tolerances", torch.tensor([0.2, 0.6, 1.2, 2.0]), persistent=False)

        def forward(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                    multimask_output: bool):
            feats = image_embeddings[0]  # (3, h, w)
            h, w = feats.shape[-2:]
            cells = (sparse_prompt_embeddings[:, 0, :] / 4).long()
            xs, ys = cells[:, 0].clamp(0, w - 1), cells[:, 1].clamp(0, h - 1)
            at_point = feats[:, ys, xs].T[:, :, None, None]  # (B, 3, 1, 1)
            dist = (feats[None] - at_point).norm(dim=1, keepdim=True)  # (B, 1, h, w)
            logits = self.tolerances[None, :, None, None] - dist
            iou = torch.sigmoid(4 * logits).mean(dim=(-2, -1))  # smaller regions score lower
            if multimask_output:
                return logits[:, 1:], iou[:, 1:]
            return logits[:, :1], iou[:, :1]

    return Sam(image_encoder=ColourEncoder(), prompt_encoder=PointPassThrough(),
               mask_decoder=ColourRegionDecoder()).eval()


#: hydra overrides that shrink sam2's own Hiera-T config (sam2.1_hiera_t.yaml) to one block per
#: stage and 16 channels, so a random SAM 2 embeds a 1024 px input in seconds on a CPU; every
#: module type of the real model stays (Hiera trunk, FPN neck, prompt encoder, mask decoder).
TINY_SAM2_OVERRIDES = (
    "++model.image_encoder.trunk.stages=[1,1,1,1]",
    "++model.image_encoder.trunk.embed_dim=16",
    "++model.image_encoder.trunk.num_heads=1",
    "++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
)


def make_tiny_sam2(seed: int = 0, full_size: bool = False) -> Any:
    """A randomly initialised SAM 2.1 (``sam2.modeling.sam2_base.SAM2Base``) from sam2's own
    Hiera-T config, shrunk by :data:`TINY_SAM2_OVERRIDES` unless ``full_size``; eval mode, CPU.
    Needs the optional ``sam2`` package."""
    import torch
    from sam2.build_sam import build_sam2

    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        overrides = [] if full_size else list(TINY_SAM2_OVERRIDES)
        model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu", hydra_overrides_extra=overrides)
    finally:
        torch.random.set_rng_state(state)
    return model.eval()
