"""The masked-attention ViT: open_clip's VisionTransformer weights, our block forward.

Each residual block is re-run with ``scaled_dot_product_attention`` and a per-image boolean mask
built from the attention schedule, so a batch of windows can carry different segments. With an
all-``global`` schedule this reproduces open_clip's own forward. The readout keeps every token:
ln_post -> proj -> L2 normalisation.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from resegzoo.errors import ResegzooError
from resegzoo.methods.clip.schedule import Rule, UncoveredPolicy, block_masks, resolve_schedule

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class UnsupportedModelError(ResegzooError, ValueError):
    """The open_clip model is not a ViT flavour the masked encoder knows how to re-run."""


def check_supported(model: Any) -> None:
    """Raise UnsupportedModelError naming what is unsupported (CNN towers, attention pooling...)."""
    from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

    visual = getattr(model, "visual", None)
    if not isinstance(visual, VisionTransformer):
        raise UnsupportedModelError(
            f"the masked encoder needs an open_clip VisionTransformer image tower, got "
            f"{type(visual).__name__}: ResNet (e.g. RN50) and timm towers have no patch tokens to mask")
    if visual.attn_pool is not None:
        raise UnsupportedModelError("open_clip ViTs with attentional pooling (CoCa) are not supported")
    if visual.patch_size[0] != visual.patch_size[1]:
        raise UnsupportedModelError(f"non-square patches {visual.patch_size} are not supported")
    for i, blk in enumerate(visual.transformer.resblocks):
        if type(blk) is not ResidualAttentionBlock or hasattr(blk, "ln_1_kv"):
            raise UnsupportedModelError(f"block {i} is a {type(blk).__name__}; only open_clip's standard "
                                        "ResidualAttentionBlock is supported")
        if blk.attn.in_proj_weight is None:
            raise UnsupportedModelError(f"block {i} has separate q/k/v projections; not supported")


#: how positional embeddings are resized to another grid (the clip method's ``position_interpolation``)
POSITION_RULES = ("size", "scale-factor")


def _interpolate_pos(pos: torch.Tensor, old: tuple[int, int], new: tuple[int, int], rule: str = "size") -> torch.Tensor:
    """Resize the patch part of a (1+G, D) positional embedding to another grid, bicubic:
    ``size`` resizes to the grid's size; ``scale-factor`` scales by (new + 0.1) / old per axis
    (DINO's rule, used by SegEarth-OV's open_clip), which also maps source coordinates by that
    factor, so it differs slightly from ``size``."""
    if old == new:
        return pos
    cls, grid = pos[:1], pos[1:]
    d = grid.shape[-1]
    grid = grid.reshape(1, old[0], old[1], d).permute(0, 3, 1, 2).float()
    if rule == "scale-factor":
        factor = ((new[0] + 0.1) / old[0], (new[1] + 0.1) / old[1])
        grid = F.interpolate(grid, scale_factor=factor, mode="bicubic", align_corners=False)
        if tuple(grid.shape[-2:]) != tuple(new):  # the + 0.1 makes the floor land on the grid
            raise ValueError(f"positional embeddings scaled to {tuple(grid.shape[-2:])}, expected {new}")
    elif rule == "size":
        grid = F.interpolate(grid, size=new, mode="bicubic", align_corners=False)
    else:
        raise ValueError(f"unknown position interpolation {rule!r}; use one of {', '.join(POSITION_RULES)}")
    return torch.cat([cls, grid.to(pos.dtype).permute(0, 2, 3, 1).reshape(new[0] * new[1], d)], dim=0)


class ScheduleConflictError(ResegzooError, ValueError):
    """The schedule restricts the block a peer method's last-block attention replaces."""


def method_schedule(schedule: list[Rule], given: Sequence[str] | None, last_block: str | None) -> list[Rule]:
    """The schedule with a peer method in the last block (METHOD.md section 7).

    The method defines the last block's attention, so that block's rule must be ``global``: a
    ``neighbor:0`` there would turn every method into MaskCLIP's identity attention (SegEarth-OV
    into out_proj(3 v)) and a ``segment`` rule would change the method, silently. An explicit
    schedule that restricts the last block is an error; the default schedule (``rules`` null)
    gives the last block to the method: segment:0..3, neighbor:0, then the method.
    """
    if last_block is None or schedule[-1].kind == "global":
        return schedule
    if given is None:
        return schedule[:-1] + [Rule("global")]
    raise ScheduleConflictError(
        f"schedule.rules puts {schedule[-1]} on the last block, which extras.last_block={last_block!r} "
        "replaces with its own attention; make the last rule 'global' (the method then runs there "
        "unrestricted) or drop extras.last_block")


class MaskedClipEncoder:
    """A :class:`resegzoo.plugins.interfaces.DenseEncoder` over an open_clip CLIP model."""

    def __init__(self, model: Any, tokenizer: Callable[[Sequence[str]], torch.Tensor], *,
                 rules: Sequence[str] | None = None, uncovered: UncoveredPolicy = "group",
                 segearth_last_block: bool = False, mean: Sequence[float] = OPENAI_MEAN,
                 std: Sequence[float] = OPENAI_STD, name: str = "", last_block: str | None = None,
                 last_block_residual: bool | None = None, naclip_std: float = 5.0,
                 position_interpolation: str = "size") -> None:
        check_supported(model)
        self.model = model.eval()
        self.tokenizer = tokenizer
        visual = model.visual
        self.visual = visual
        self.depth = len(visual.transformer.resblocks)
        from resegzoo.methods.clip.last_block import get_method

        if segearth_last_block:  # the earlier switch, kept for callers: the SegEarth-OV method
            last_block = last_block or "segearth-ov"
        self.last_block = None if last_block is None else get_method(last_block).name
        self.last_block_residual = last_block_residual
        self.naclip_std = float(naclip_std)
        if position_interpolation not in POSITION_RULES:
            raise ValueError(f"unknown position interpolation {position_interpolation!r}; "
                             f"use one of {', '.join(POSITION_RULES)}")
        self.position_interpolation = position_interpolation
        self.schedule: list[Rule] = method_schedule(resolve_schedule(rules, self.depth), rules, self.last_block)
        self.uncovered: UncoveredPolicy = uncovered
        self.segearth_last_block = self.last_block == "segearth-ov"
        self.patch_size = int(visual.patch_size[0])
        self.image_size = int(visual.image_size[0])
        #: the width of the image and text embeddings (what stored text embeddings are checked against)
        self.embed_dim = int(visual.output_dim)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.name = name
        self.prompt_templates = None  # a real text tower: the recipe's templates apply

    @classmethod
    def from_loaded(cls, loaded: Any, **kwargs: Any) -> "MaskedClipEncoder":
        """Wrap a ``resegzoo.weights.build.LoadedClip``."""
        return cls(loaded.model, loaded.tokenizer, mean=loaded.mean, std=loaded.std, name=loaded.name, **kwargs)

    @property
    def device(self) -> torch.device:
        return self.visual.conv1.weight.device

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        from resegzoo.methods.clip.text_tower import encode_tokens

        tokens = self.tokenizer(list(texts)).to(self.device)
        return F.normalize(encode_tokens(self.model, tokens).float(), dim=-1)

    def _embed(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        v = self.visual
        x = v.conv1(images.to(dtype=v.conv1.weight.dtype, device=self.device))
        # under autocast conv1 returns bf16/fp16; the residual stream stays in the weights' dtype
        # (fp32), only the matrix products run in the lower precision
        x = x.to(v.class_embedding.dtype)
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)  # (B, G, D), row-major patches
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        pos = _interpolate_pos(v.positional_embedding, tuple(v.grid_size), grid, self.position_interpolation)
        x = x + pos.to(x.dtype)
        return v.ln_pre(x), grid  # patch dropout is identity in eval mode

    @staticmethod
    def _attention(blk: Any, h: torch.Tensor, allowed: torch.Tensor | None, segearth: bool) -> torch.Tensor:
        attn = blk.attn
        b, t, d = h.shape
        heads = attn.num_heads
        qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)
        q, k, v = (z.reshape(b, t, heads, d // heads).transpose(1, 2) for z in qkv.chunk(3, dim=-1))
        sdpa = F.scaled_dot_product_attention
        if segearth:
            o = sdpa(q, q, v, attn_mask=allowed) + sdpa(k, k, v, attn_mask=allowed) + sdpa(v, v, v, attn_mask=allowed)
        else:
            o = sdpa(q, k, v, attn_mask=allowed)
        o = o.transpose(1, 2).reshape(b, t, d)
        return F.linear(o, attn.out_proj.weight, attn.out_proj.bias)

    @classmethod
    def masked_block(cls, blk: Any, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """open_clip's ResidualAttentionBlock forward with a (B, 1|heads, T, T) boolean mask."""
        x = x + blk.ls_1(cls._attention(blk, blk.ln_1(x), allowed, False))
        return x + blk.ls_2(blk.mlp(blk.ln_2(x)))

    @torch.no_grad()
    def encode_tokens(self, images: torch.Tensor, token_ids: torch.Tensor | None = None,
                      normalize: bool = True) -> torch.Tensor:
        """All tokens after ln_post and proj, L2-normalised unless ``normalize=False``:
        (B, 1+G, C), token 0 = CLS."""
        x, grid = self._embed(images)
        if token_ids is not None:
            token_ids = token_ids.to(x.device)
            if tuple(token_ids.shape[-2:]) != grid:
                raise ValueError(f"token ids of shape {tuple(token_ids.shape)} do not fit the {grid} patch grid")
        masks = block_masks(self.schedule, token_ids, grid, self.uncovered, device=x.device)
        blocks = self.visual.transformer.resblocks
        batch_first = getattr(self.visual.transformer, "batch_first", True)
        allowed_of = {id(m): ~m for m in masks if m is not None}  # SDPA: True = may attend
        for i, (blk, blocked) in enumerate(zip(blocks, masks)):
            allowed = None if blocked is None else allowed_of[id(blocked)]
            if self.last_block is not None and i == len(blocks) - 1:
                from resegzoo.methods.clip.last_block import run_last_block

                # the schedule's rule for this block is `global` (method_schedule checks it)
                x = run_last_block(blk, x, self.last_block, grid, self.last_block_residual, self.naclip_std)
            elif allowed is None:
                # a global block is open_clip's own block forward: same numbers, same kernels
                x = blk(x) if batch_first else blk(x.transpose(0, 1)).transpose(0, 1)
            else:
                x = self.masked_block(blk, x, allowed)
        x = self.visual.ln_post(x)
        if self.visual.proj is not None:
            x = x @ self.visual.proj
        return F.normalize(x.float(), dim=-1) if normalize else x.float()

    #: ``encode_dense(..., normalize=False)`` gives the tokens before L2 normalisation (the feature
    #: readout upsamples those, as the reference code does)
    raw_features = True

    def encode_dense(self, images: torch.Tensor, token_ids: torch.Tensor | None = None,
                     return_cls: bool = False, normalize: bool = True) -> Any:
        """(B, gh, gw, C) patch embeddings (L2-normalised unless ``normalize=False``); with
        ``return_cls`` also the (B, C) CLS embedding (normalised the same way)."""
        tokens = self.encode_tokens(images, token_ids, normalize)
        b, s = images.shape[0], images.shape[-2:]
        gh, gw = s[0] // self.patch_size, s[1] // self.patch_size
        patches = tokens[:, 1:].reshape(b, gh, gw, -1)
        return (patches, tokens[:, 0]) if return_cls else patches


def describe(encoder: Any) -> dict[str, Any]:
    """What the sidecar records about an encoder."""
    info: dict[str, Any] = {"patch_size": encoder.patch_size, "image_size": encoder.image_size}
    if isinstance(encoder, MaskedClipEncoder):
        info["schedule"] = [str(r) for r in encoder.schedule]
        info["uncovered"] = encoder.uncovered
        info["depth"] = encoder.depth
        if encoder.last_block is not None:
            info["last_block"] = encoder.last_block
    return info

