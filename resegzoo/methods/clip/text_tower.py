"""open_clip's text tower run on as many token positions as the prompts need, not all 77.

``CLIP.encode_text`` runs every prompt through the whole context (77 positions for OpenAI's
models) although prompts rarely pass 20 tokens. Under the causal mask a position only sees the
ones before it, and the embedding is read at one position (the end-of-text token: ``argmax`` or
``eos`` pooling; ``first``: position 0), so the positions after the pooled one change nothing.
:func:`encode_tokens` sorts the prompts by that position, runs them in chunks each cut just after
its last pooled position, and puts the rows back in order: the same embeddings as
``encode_text`` (up to float rounding of the shorter sums, ~1e-6), several times faster. A
model whose text tower is not open_clip's causal transformer with such pooling (no causal mask,
``last`` or no pooling, a Hugging Face text tower) runs ``encode_text`` as it is.
"""
from __future__ import annotations

from typing import Any

import torch

#: prompts per chunk, sorted by length: each chunk is cut after its own longest prompt (64: 8.2x fewer
#: positions than 77 on eval-default's 640 prompts, 7.5x with 256), and the activations stay small
CHUNK = 64
_POOLED_AT = ("argmax", "eos", "first")


def pooled_positions(model: Any, tokens: torch.Tensor) -> torch.Tensor | None:
    """The position each prompt's embedding is read at, or None when the tower cannot be cut
    (not open_clip's own causal text transformer with argmax/eos/first pooling)."""
    needed = ("token_embedding", "positional_embedding", "transformer", "ln_final")
    mask = getattr(model, "attn_mask", None)
    pool = getattr(model, "text_pool_type", "argmax")
    if pool not in _POOLED_AT or not all(hasattr(model, name) for name in needed) or not _is_causal(mask):
        return None
    if tokens.ndim != 2 or tokens.shape[1] != mask.shape[0]:
        return None
    if pool == "first":
        return torch.zeros(tokens.shape[0], dtype=torch.long, device=tokens.device)
    if pool == "eos":
        eos = getattr(model, "text_eos_id", None)
        if eos is None:
            return None
        return (tokens == eos).int().argmax(dim=-1)
    return tokens.argmax(dim=-1)


def _is_causal(mask: Any) -> bool:
    """Whether ``mask`` is an additive (L, L) causal mask: -inf above the diagonal, 0 elsewhere."""
    if not isinstance(mask, torch.Tensor) or mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
        return False
    above = torch.ones(mask.shape, dtype=torch.bool, device=mask.device).triu(1)
    return bool(torch.isneginf(mask[above]).all()) and bool((mask[~above] == 0).all())


def encode_tokens(model: Any, tokens: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """``model.encode_text(tokens)`` (not normalised), each chunk of prompts cut after the last
    position its embeddings are read at."""
    positions = pooled_positions(model, tokens)
    if positions is None:
        return model.encode_text(tokens)
    order = torch.argsort(positions, stable=True)
    out: torch.Tensor | None = None
    for start in range(0, tokens.shape[0], chunk):
        rows = order[start:start + chunk]
        emb = _encode_cut(model, tokens[rows], positions[rows])
        if out is None:
            out = emb.new_empty((tokens.shape[0], emb.shape[-1]))
        out[rows] = emb
    if out is None:  # no prompts
        return model.encode_text(tokens)
    return out


def _encode_cut(model: Any, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """encode_text's steps on the first max(positions) + 1 positions of ``tokens``."""
    n = int(positions.max()) + 1
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens[:, :n]).to(cast)
    x = x + model.positional_embedding[:n].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:n, :n])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), positions]
    projection = model.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection
