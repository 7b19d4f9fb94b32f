"""Overlapped stages on the CPU: SLIC segments made in a background thread while CLIP encodes.

Times, on the same image and model (random weights, no download), measured in one run:

  masks only     every band's SLIC segments, one after another (the mask stage alone)
  encoder only   every batch of windows through the masked encoder, segments made beforehand
  sum of stages  masks only + encoder only: what running the stages in turn costs
  sequential     Segmenter.logits with inference.prefetch 0
  overlapped     Segmenter.logits with inference.prefetch 1 (the default) and 2

and each one's ratio to the sum of stages (below 1.0: the stages overlapped). The best possible
is max(masks, encoder) / sum. Both stages compete for the same cores, so the gain is largest
when torch leaves cores idle (small batches, few threads) and on GPU machines, where the
encoder does not use the CPU at all. On a shared machine, note the other load.

    python benchmarks/bench_pipeline_overlap.py [--arch ViT-B-16] [--side 672] [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def scene(side: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.empty((side, side, 3), np.float32)
    image[:] = rng.uniform(60, 140, 3)
    for _ in range(side // 20):
        y, x = rng.integers(0, side, 2)
        h, w = rng.integers(8, side // 6, 2)
        image[y:y + h, x:x + w] = rng.uniform(40, 255, 3)
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="ViT-B-16", help="open_clip architecture, or 'tiny' (resegzoo.testing)")
    parser.add_argument("--side", type=int, default=672, help="image side in px")
    parser.add_argument("--band", type=int, default=None, help="rows of windows per mask band in px "
                        "(default: the segmenter's 1024; smaller gives more bands to overlap)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import open_clip

    from resegzoo.api import Segmenter, Vocabulary, load_recipe
    from resegzoo.masks.superpixels import build_slic
    from resegzoo.segmenter import core
    from resegzoo.methods.clip.encoder import MaskedClipEncoder
    from resegzoo.testing import make_tiny_clip

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.arch == "tiny":
        model, window = make_tiny_clip(), 64
    else:
        torch.manual_seed(0)
        model = open_clip.create_model(args.arch, pretrained=None).eval()
        window = int(model.visual.image_size[0])
    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    if args.band:
        core.MASK_BAND_PX = args.band
    image = scene(args.side)
    vocab = Vocabulary.parse("building; road; tree; water; grass")

    def make(prefetch: int) -> Segmenter:
        return Segmenter(MaskedClipEncoder(model, tokenizer), build_slic(),
                         load_recipe(None, window=window, prefetch=prefetch))

    seg = make(0)
    seg.logits(image[:window, :window], vocab)  # warm-up: text embeddings, allocations
    prep = seg.prepare(image, masks=False)
    text = seg.method.text_embeddings(vocab)
    batch = seg.recipe.inference.batch_size

    def masks_only() -> list:
        return [seg._band_masks(prep, i) for i in range(len(prep.bands))]

    band_maps = masks_only()

    def encoder_only() -> None:
        for band, maps in zip(prep.bands, band_maps):
            for s in range(0, len(band), batch):
                crops = np.stack([prep.padded[y0:y1, x0:x1] for (y0, x0, y1, x1) in band[s:s + batch]])
                seg.method.window_logits(crops, maps[s:s + batch], text, 0.0, per_name=False)

    variants = {
        "masks only": masks_only,
        "encoder only": encoder_only,
        "sequential (prefetch 0)": lambda: make(0).logits(image, vocab),
        "overlapped (prefetch 1)": lambda: make(1).logits(image, vocab),
        "overlapped (prefetch 2)": lambda: make(2).logits(image, vocab),
    }
    best = {name: float("inf") for name in variants}
    for _ in range(args.repeats):  # in turns, so background load hits all alike
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    total = best["masks only"] + best["encoder only"]
    print(f"{args.arch}, image {args.side} px, {len(prep.plan.windows)} windows of {window} px in "
          f"{len(prep.bands)} band(s), SLIC, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'stage / pipeline':<28} {'seconds':>8} {'vs sum':>7}")
    rows = [("masks only", best["masks only"]), ("encoder only", best["encoder only"]), ("sum of stages", total)]
    rows += [(name, best[name]) for name in variants if name.startswith(("sequential", "overlapped"))]
    for name, secs in rows:
        print(f"{name:<28} {secs:>8.2f} {secs / total:>6.2f}x")
    print(f"{'best possible':<28} {max(best['masks only'], best['encoder only']):>8.2f} "
          f"{max(best['masks only'], best['encoder only']) / total:>6.2f}x")


if __name__ == "__main__":
    main()
