"""Peer methods' last ViT block (METHOD.md section 7): the attention each method puts there, and
whether it keeps the block's residual connection and FFN.

With q, k, v one head's projections of ln_1(x) and s = 1/sqrt(head_dim), the attention weights are

=============  ==========================================  ===================
method         weights A (output: out_proj(A v))           residual + FFN
=============  ==========================================  ===================
vanilla        softmax(q k^T s)                            kept
maskclip       identity (each token attends to itself)     kept
sclip          softmax(q q^T s) + softmax(k k^T s)         kept
clearclip      softmax(q q^T s)                            dropped
naclip         softmax(k k^T s + omega)                    dropped
segearth-ov    softmax(q q^T s) + softmax(k k^T s)         dropped
               + softmax(v v^T s)
=============  ==========================================  ===================

omega (NACLIP) is a Gaussian of the distance between two patches on the grid, exp(-d^2 / (2
std^2)), and 0 in the CLS token's row and column. Every token, the CLS token included, takes
part in the method's attention (as in the methods' code), so the CLS logits SegEarth-OV
subtracts come from the same block. Written from the papers' formulas; SegEarth-OV's
``custom_attn`` and the methods' public code were read to settle residual/FFN handling.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LastBlockMethod:
    name: str
    #: keep the residual connection and the FFN (the method's own choice; a recipe may override)
    residual: bool


METHODS: dict[str, LastBlockMethod] = {m.name: m for m in (
    LastBlockMethod("vanilla", True),
    LastBlockMethod("maskclip", True),
    LastBlockMethod("sclip", True),
    LastBlockMethod("clearclip", False),
    LastBlockMethod("naclip", False),
    LastBlockMethod("segearth-ov", False),
)}


def get_method(name: str) -> LastBlockMethod:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown last-block method {name!r}; use one of {', '.join(METHODS)}") from None


def gaussian_bias(grid: tuple[int, int], std: float, device: Any = None, dtype: Any = None) -> torch.Tensor:
    """NACLIP's omega: (1+G, 1+G), exp(-d^2 / (2 std^2)) between patches, 0 for the CLS token."""
    gh, gw = grid
    yy, xx = torch.meshgrid(torch.arange(gh, device=device), torch.arange(gw, device=device), indexing="ij")
    y, x = yy.reshape(-1).double(), xx.reshape(-1).double()
    d2 = (y[:, None] - y[None, :]) ** 2 + (x[:, None] - x[None, :]) ** 2
    omega = torch.zeros((gh * gw + 1, gh * gw + 1), dtype=torch.float64, device=device)
    omega[1:, 1:] = torch.exp(-d2 / (2.0 * std * std))
    return omega.to(dtype or torch.float32)


def attention_weights(method: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      grid: tuple[int, int], naclip_std: float = 5.0) -> torch.Tensor:
    """(..., T, T) weights of ``method`` from per-head q, k, v of shape (..., T, head_dim)."""
    scale = q.shape[-1] ** -0.5

    def soft(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.softmax((a @ b.transpose(-1, -2)) * scale, dim=-1)

    if method == "vanilla":
        return soft(q, k)
    if method == "maskclip":
        t = q.shape[-2]
        return torch.eye(t, dtype=q.dtype, device=q.device).expand(*q.shape[:-2], t, t)
    if method == "sclip":
        return soft(q, q) + soft(k, k)
    if method == "clearclip":
        return soft(q, q)
    if method == "naclip":
        omega = gaussian_bias(grid, naclip_std, q.device, q.dtype)
        return torch.softmax((k @ k.transpose(-1, -2)) * scale + omega, dim=-1)
    if method == "segearth-ov":
        return soft(q, q) + soft(k, k) + soft(v, v)
    raise ValueError(f"unknown last-block method {method!r}; use one of {', '.join(METHODS)}")


def method_attention(blk: Any, h: torch.Tensor, method: str, grid: tuple[int, int],
                     naclip_std: float = 5.0) -> torch.Tensor:
    """out_proj(A v) for the normalised tokens ``h`` (B, T, D) of open_clip block ``blk``."""
    attn = blk.attn
    b, t, d = h.shape
    heads = attn.num_heads
    qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = (z.reshape(b, t, heads, d // heads).transpose(1, 2) for z in qkv.chunk(3, dim=-1))
    o = attention_weights(method, q, k, v, grid, naclip_std) @ v
    return F.linear(o.transpose(1, 2).reshape(b, t, d), attn.out_proj.weight, attn.out_proj.bias)


def run_last_block(blk: Any, x: torch.Tensor, method: str, grid: tuple[int, int], residual: bool | None = None,
                   naclip_std: float = 5.0) -> torch.Tensor:
    """The last block as ``method`` defines it; ``residual`` None: the method's own choice."""
    keep = get_method(method).residual if residual is None else residual
    out = method_attention(blk, blk.ln_1(x), method, grid, naclip_std)
    if not keep:
        return out  # no residual, no FFN
    x = x + blk.ls_1(out)
    return x + blk.ls_2(blk.mlp(blk.ln_2(x)))
