"""SAM 3's text tokens without the network: the folder's own tokenizer files when it has them,
else open_clip's shipped CLIP BPE (the same 49408-token vocabulary SAM 3 was trained with)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

#: SAM 3 reads 32 text tokens (its text encoder's position table; transformers' Sam3Processor
#: pads to this length)
CONTEXT_LENGTH = 32
#: files transformers' CLIPTokenizer is made from; a folder with either set uses them
TOKENIZER_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"))

Tokenize = Callable[[Sequence[str]], tuple[Any, Any]]


def has_tokenizer_files(folder: str | Path) -> bool:
    folder = Path(folder)
    return any(all((folder / name).is_file() for name in group) for group in TOKENIZER_FILES)


def open_clip_tokenize(names: Sequence[str], context_length: int = CONTEXT_LENGTH) -> tuple[Any, Any]:
    """(input_ids, attention_mask), both (N, context_length) int64, from open_clip's CLIP BPE.

    Truncation is SAM 3's own (its tokenizer is open_clip's): the first ``context_length`` ids
    with the last replaced by end-of-text. Padding is transformers' CLIPTokenizer's (the
    end-of-text id) so the ids equal what Sam3Processor gives; padded positions are masked out
    and SAM 3's text encoder is causal, so the pad id never reaches a real token either way."""
    import torch
    from open_clip.tokenizer import SimpleTokenizer

    tok = _simple_tokenizer(SimpleTokenizer)
    ids = torch.full((len(names), context_length), tok.eot_token_id, dtype=torch.long)
    mask = torch.zeros((len(names), context_length), dtype=torch.long)
    for i, name in enumerate(names):
        row = [tok.sot_token_id] + tok.encode(name) + [tok.eot_token_id]
        if len(row) > context_length:
            row = row[:context_length]
            row[-1] = tok.eot_token_id
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    return ids, mask


_SIMPLE: list[Any] = []


def _simple_tokenizer(cls: Any) -> Any:
    # reading and merging the 16e6 BPE file takes ~0.3 s: once per process
    if not _SIMPLE:
        _SIMPLE.append(cls())
    return _SIMPLE[0]


def folder_tokenize(folder: str | Path) -> Tokenize:
    """A tokenizer from the folder's own files (transformers' CLIPTokenizer, offline); files it
    cannot read are a LoadError naming them (and what went wrong), in one line."""
    from transformers import CLIPTokenizer

    from resegzoo.weights.zoo import LoadError

    try:
        tok = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
        tok(["a"], padding="max_length", max_length=CONTEXT_LENGTH, truncation=True)  # a vocabulary that works
    except Exception as exc:  # the tokenizers library and transformers raise many kinds for a bad file
        files = next(group for group in TOKENIZER_FILES if all((Path(folder) / n).is_file() for n in group))
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise LoadError(f"{', '.join(str(Path(folder) / n) for n in files)}: not a CLIP tokenizer transformers can "
                        f"read ({type(exc).__name__}: {detail}); remove the file(s) to use open_clip's CLIP BPE, "
                        "or fix them") from None

    def tokenize(names: Sequence[str]) -> tuple[Any, Any]:
        out = tok(list(names), padding="max_length", max_length=CONTEXT_LENGTH, truncation=True,
                  return_tensors="pt")
        return out["input_ids"], out["attention_mask"]

    return tokenize


def tokenizer_for(folder: str | Path | None) -> tuple[Tokenize, str]:
    """The tokenizer for a model folder and where it comes from, in words."""
    if folder is not None and has_tokenizer_files(folder):
        return folder_tokenize(folder), f"tokenizer files in {folder}"
    return open_clip_tokenize, "open_clip's CLIP BPE (bpe_simple_vocab_16e6)"


def clip_bpe_vocab_and_merges(bpe_path: str | None = None) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The vocabulary and merges of a CLIP BPE file as transformers' CLIPTokenizer takes them,
    built as open_clip builds its own (byte symbols, the same with ``</w>``, the merges, the two
    special tokens), so both tokenizers can be compared without downloading anything."""
    import gzip

    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    with gzip.open(bpe_path or default_bpe(), "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(vocab)}, merges
