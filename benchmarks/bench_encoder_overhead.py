"""Masked-attention encoder vs plain open_clip ``encode_image`` on the same windows.

ViT-B-16 architecture with random weights (no download), a batch of windows, the default
schedule (10 x global, segment:0..3, 2 x neighbor:0) with random segment ids. Prints a table of
seconds per batch and the ratio against open_clip measured in the same run (goal: <= 1.05x),
all under torch.inference_mode as the segmenter runs it.

    python benchmarks/bench_encoder_overhead.py [--batch 8] [--repeats 3] [--arch ViT-B-16] [--device cpu]
"""
from __future__ import annotations

import argparse
import time

import torch


def best_times(variants: dict, repeats: int) -> dict:
    """Min wall time per variant; variants run in turns so background load hits all alike."""
    for fn in variants.values():
        fn()  # warm-up (allocations, kernel selection)
    best = {name: float("inf") for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-16")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--segments", type=int, default=30, help="segment ids per level (random)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import open_clip

    from resegzoo.methods.clip.encoder import MaskedClipEncoder
    from resegzoo.methods.clip.schedule import token_ids_from_pixels

    torch.manual_seed(0)
    model = open_clip.create_model(args.arch, pretrained=None).eval().to(args.device)
    tokenizer = open_clip.get_tokenizer(args.arch)
    size = model.visual.image_size[0]
    x = torch.randn(args.batch, 3, size, size, device=args.device)
    ids = torch.randint(1, args.segments + 1, (args.batch, args.levels, size, size))
    depth = len(model.visual.transformer.resblocks)

    def token_ids():
        return token_ids_from_pixels(ids, model.visual.patch_size[0])

    masked = MaskedClipEncoder(model, tokenizer)
    plain_ours = MaskedClipEncoder(model, tokenizer, rules=["global"] * depth)
    tids = token_ids()
    with torch.inference_mode():
        best = best_times({
            "open_clip encode_image": lambda: model.encode_image(x),
            "resegzoo, all-global schedule": lambda: plain_ours.encode_tokens(x),
            "resegzoo, default masked schedule": lambda: masked.encode_tokens(x, tids),
            "  + token ids from pixel maps": lambda: masked.encode_tokens(x, token_ids()),
        }, args.repeats)
    base = best["open_clip encode_image"]
    rows = list(best.items())
    print(f"{args.arch}, batch {args.batch} windows of {size} px, {depth} blocks, device {args.device}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'variant':<36} {'s/batch':>9} {'ratio':>7}")
    for name, secs in rows:
        print(f"{name:<36} {secs:>9.3f} {secs / base:>6.2f}x")


if __name__ == "__main__":
    main()
