"""SAM 3's pixel decoder (transformers' ``Sam3PixelDecoder``) for many prompts on one image.

Each stage of the decoder is ``relu(norm(conv3x3(nearest_up(prev) + feature)))``, where
``feature`` is the image's FPN level (the same for every prompt) and ``prev`` the prompt's own
coarser map. The 3 x 3 convolution is linear, so it splits into ``conv(feature)`` (bias included),
made once per image, and ``conv(nearest_up(prev))`` without bias, per prompt. A 3 x 3 convolution
of a map upsampled 2 x by nearest neighbour is a transposed convolution of the small map with a
4 x 4 kernel at stride 2 (each output pixel reads 2 x 2 input pixels instead of 3 x 3 upsampled
ones: 2.25 x fewer multiplications), whose kernel sums the 3 x 3 kernel's rows and columns that
fall on the same input pixel. Same function as transformers' module (the sums are taken in
another order: differences of float rounding, about 1e-6 relative); tests compare the two.
"""
from __future__ import annotations

from typing import Any


def _combined(weight: Any, axis: int) -> Any:
    """3 taps along ``axis`` -> the 4 taps of the transposed convolution (stride 2, padding 1):
    output offsets -1, 0, +1, +2 from 2i read the upsampled taps (+1), (0, +1), (-1, 0), (-1)."""
    import torch

    before, middle, after = weight.unbind(axis)
    return torch.stack([after, middle + after, before + middle, before], dim=axis)


def upsampled_conv_kernel(weight: Any) -> Any:
    """(C_out, C_in, 3, 3) convolution weights -> (C_in, C_out, 4, 4) transposed-convolution
    weights with ``conv2d(nearest_up2(x), weight, padding=1) == conv_transpose2d(x, kernel,
    stride=2, padding=1)``."""
    return _combined(_combined(weight, 2), 3).transpose(0, 1).contiguous()


def lateral_features(pixel_decoder: Any, fpn: list[Any]) -> list[Any]:
    """Each stage's convolution of the image's own FPN level (bias included), finest last:
    shared by every prompt of the image."""
    levels = list(reversed(fpn[:-1]))
    return [pixel_decoder.conv_layers[i](feature) for i, feature in enumerate(levels)]


def pixel_embed(pixel_decoder: Any, coarsest: Any, laterals: list[Any], kernels: list[Any] | None = None) -> Any:
    """(N, C, H, W) pixel embeddings of N prompts from their (N, C, h, w) coarsest maps (the
    encoder's output) and the image's :func:`lateral_features`; ``kernels``: the stages'
    :func:`upsampled_conv_kernel` (made here when not given)."""
    import torch.nn.functional as F

    prev = coarsest
    for i, lateral in enumerate(laterals):
        conv = pixel_decoder.conv_layers[i]
        size = tuple(lateral.shape[-2:])
        if size == (2 * prev.shape[-2], 2 * prev.shape[-1]) and conv.kernel_size == (3, 3) \
                and conv.padding == (1, 1) and conv.stride == (1, 1):
            kernel = kernels[i] if kernels is not None else upsampled_conv_kernel(conv.weight)
            up = F.conv_transpose2d(prev, kernel.to(prev.dtype), stride=2, padding=1)
        else:  # not a 2 x upsampling: the module's own steps, without the shared part
            up = F.conv2d(F.interpolate(prev, size=size, mode="nearest"), conv.weight, None, conv.stride, conv.padding)
        prev = F.relu(pixel_decoder.norms[i](up + lateral))
    return prev
