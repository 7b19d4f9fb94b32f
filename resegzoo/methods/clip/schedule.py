"""Attention rules per ViT block (METHOD.md section 1) and the boolean masks they build.

Masks here follow the PyTorch ``nn.MultiheadAttention`` convention: **True = blocked**. Token 0 is
CLS, tokens 1..G are the patches in row-major order. ``scaled_dot_product_attention`` wants the
opposite (True = may attend), so the encoder passes ``~blocked``. Never turn these into a float
0/1 mask: added to the logits it would block nothing (the reference code's bug).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch

RuleKind = Literal["global", "segment", "neighbor"]
UncoveredPolicy = Literal["group", "self", "global"]


@dataclass(frozen=True)
class Rule:
    kind: RuleKind
    #: mask level for ``segment``, radius for ``neighbor``; 0 for ``global``.
    arg: int = 0

    def __str__(self) -> str:
        return self.kind if self.kind == "global" else f"{self.kind}:{self.arg}"


def parse_rule(text: str) -> Rule:
    """``"global"``, ``"segment:K"`` or ``"neighbor:R"`` (K, R >= 0)."""
    kind, _, arg = str(text).strip().partition(":")
    if kind == "global" and not arg:
        return Rule("global")
    if kind in ("segment", "neighbor") and arg.isdigit():
        return Rule(kind, int(arg))  # type: ignore[arg-type]
    raise ValueError(f"bad attention rule {text!r}: use 'global', 'segment:K' (mask level K) or "
                     "'neighbor:R' (patch radius R), e.g. segment:0 or neighbor:1")


def default_schedule(depth: int) -> list[Rule]:
    """METHOD.md's default: the rest global, then segment:0..3 and 2 x neighbor:0."""
    tail = [Rule("segment", k) for k in range(4)] + [Rule("neighbor", 0)] * 2
    if depth < len(tail):
        raise ValueError(f"the default schedule needs at least {len(tail)} blocks, the model has {depth}; "
                         "set schedule.rules in the recipe")
    return [Rule("global")] * (depth - len(tail)) + tail


#: a rule written with this suffix (``global*``) repeats to fill the blocks the others leave
FILL = "*"


def check_rules(rules: Sequence[str]) -> None:
    """Each rule parses, and at most one is starred (``global*``: as many blocks as needed)."""
    starred = [r for r in rules if str(r).strip().endswith(FILL)]
    if len(starred) > 1:
        raise ValueError(f"schedule.rules may star one rule (it fills the blocks the others leave), got {starred}")
    for r in rules:
        parse_rule(str(r).strip().removesuffix(FILL))


def resolve_schedule(rules: Sequence[str] | None, depth: int) -> list[Rule]:
    """Rules from a recipe (None: the default), checked against the model's depth. One rule may
    be starred (``[global*, segment:0, neighbor:0]``): it repeats so there is one rule per block,
    which lets one recipe serve models of any depth."""
    if rules is None:
        return default_schedule(depth)
    check_rules(rules)
    texts = [str(r).strip() for r in rules]
    star = next((i for i, r in enumerate(texts) if r.endswith(FILL)), None)
    if star is not None:
        fill = depth - (len(texts) - 1)
        if fill < 0:
            raise ValueError(f"schedule.rules has {len(texts) - 1} unstarred rules but the model has only "
                             f"{depth} blocks")
        texts = texts[:star] + [texts[star].removesuffix(FILL)] * fill + texts[star + 1:]
    parsed = [parse_rule(r) for r in texts]
    if len(parsed) != depth:
        raise ValueError(f"schedule.rules has {len(parsed)} rules but the model has {depth} blocks: "
                         "give exactly one rule per block")
    return parsed


def levels_needed(schedule: Sequence[Rule]) -> int:
    """How many mask levels the schedule reads (1 + the highest segment level)."""
    return max((r.arg + 1 for r in schedule if r.kind == "segment"), default=0)


def token_ids_from_pixels(id_maps: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Per-patch segment ids: the majority id over the patch's pixels, ties to the smaller id.

    id_maps: (B, L, H, W) integer, H and W multiples of ``patch_size``. Returns (B, L, H/p, W/p).
    Vectorised: sort each patch's pixels, measure the runs of equal ids, take the longest run
    (argmax returns the first maximum, i.e. the smallest id among ties).
    """
    b, levels, h, w = id_maps.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"id maps of {h}x{w} px are not a multiple of the patch size {p}")
    gh, gw = h // p, w // p
    if b * levels == 0:
        return id_maps.new_zeros((b, levels, gh, gw))
    patches = id_maps.reshape(b, levels, gh, p, gw, p).permute(0, 1, 2, 4, 3, 5).reshape(-1, p * p)
    values, _ = torch.sort(patches, dim=1)
    starts = torch.ones_like(values, dtype=torch.bool)
    starts[:, 1:] = values[:, 1:] != values[:, :-1]
    run = torch.cumsum(starts.to(torch.int64), dim=1) - 1
    counts = torch.zeros_like(run).scatter_add_(1, run, torch.ones_like(run))
    best = counts.argmax(dim=1, keepdim=True)
    first_pos = (run == best).to(torch.int8).argmax(dim=1, keepdim=True)
    return values.gather(1, first_pos).reshape(b, levels, gh, gw)


def _with_cls(patch_blocked: torch.Tensor) -> torch.Tensor:
    """Add the CLS row/column: CLS attends only to itself, patches do not attend to CLS."""
    *lead, g, _ = patch_blocked.shape
    full = patch_blocked.new_ones((*lead, g + 1, g + 1))
    full[..., 1:, 1:] = patch_blocked
    full[..., 0, 0] = False
    return full


def _allow_diagonal(blocked: torch.Tensor) -> torch.Tensor:
    t = blocked.shape[-1]
    eye = torch.eye(t, dtype=torch.bool, device=blocked.device)
    return blocked & ~eye


def segment_mask(ids: torch.Tensor, uncovered: UncoveredPolicy = "group") -> torch.Tensor:
    """ids (B, gh, gw) for one level -> blocked (B, 1, 1+G, 1+G): i attends j iff same segment."""
    z = ids.reshape(ids.shape[0], -1)
    allowed = z[:, :, None] == z[:, None, :]
    if uncovered == "self":
        uncov = z == 0
        allowed &= ~(uncov[:, :, None] | uncov[:, None, :])
    elif uncovered == "global":
        # an uncovered patch's row is open to every patch; covered rows keep their segment
        allowed |= (z == 0)[:, :, None]
    elif uncovered != "group":
        raise ValueError(f"unknown uncovered policy {uncovered!r}: use group, self or global")
    return _allow_diagonal(_with_cls(~allowed)).unsqueeze(1)


def neighbor_mask(grid: tuple[int, int], radius: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """blocked (1, 1, 1+G, 1+G): i attends j iff Chebyshev distance on the patch grid <= radius."""
    gh, gw = grid
    yy, xx = torch.meshgrid(torch.arange(gh, device=device), torch.arange(gw, device=device), indexing="ij")
    y, x = yy.reshape(-1), xx.reshape(-1)
    near = ((y[:, None] - y[None, :]).abs() <= radius) & ((x[:, None] - x[None, :]).abs() <= radius)
    return _allow_diagonal(_with_cls(~near)).reshape(1, 1, gh * gw + 1, gh * gw + 1)


def block_masks(schedule: Sequence[Rule], token_ids: torch.Tensor | None, grid: tuple[int, int],
                uncovered: UncoveredPolicy = "group",
                device: torch.device | str | None = None) -> list[torch.Tensor | None]:
    """One blocked-mask (or None for ``global``) per block; masks are shared between blocks
    with the same rule. token_ids: (B, L, gh, gw) or None when the schedule reads no level."""
    need = levels_needed(schedule)
    have = 0 if token_ids is None else token_ids.shape[1]
    if need > have:
        raise ValueError(f"the attention schedule reads segment levels 0..{need - 1} but the mask "
                         f"generator gave {have} level(s); use a generator with more levels or a "
                         "schedule without those segment rules (e.g. all 'global' for masks 'none')")
    if device is None:
        device = token_ids.device if token_ids is not None else "cpu"
    if token_ids is not None:
        token_ids = token_ids.to(device)
    cache: dict[Rule, torch.Tensor | None] = {}
    out: list[torch.Tensor | None] = []
    for rule in schedule:
        if rule not in cache:
            if rule.kind == "global":
                cache[rule] = None
            elif rule.kind == "segment":
                assert token_ids is not None
                cache[rule] = segment_mask(token_ids[:, rule.arg], uncovered)
            else:
                cache[rule] = neighbor_mask(grid, rule.arg, device)
        out.append(cache[rule])
    return out
