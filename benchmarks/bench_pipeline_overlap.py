"""Overlapped stages on the CPU: segments made in a background thread while CLIP encodes.

Times, on the same image and model (random weights, no download), measured in one run:

  masks only        every window's segments, one group after another (the mask stage alone)
  encoder only      every batch of windows through the masked encoder, segments made beforehand
  sum of stages     masks only + encoder only: what running the stages in turn costs
  sequential        Segmenter.logits with inference.prefetch 0
  band grain        prefetch 1 with the segments of a whole band of windows (1024 px of rows)
                    made before its first batch: how resegzoo overlapped the stages before
  batch grain       prefetch 1 (the default) and 2: the next encoder batch's segments are made
                    while the encoder runs this one

and each one's ratio to the sum of stages (below 1.0: the stages overlapped) and to the
sequential run. The best possible is max(masks, encoder) / sum. Both stages compete for the same
cores, so the gain is largest when torch leaves cores idle (small batches, few threads) and on
GPU machines, where the encoder does not use the CPU at all. On a shared machine, note the
other load (printed before and after); the variants run in turns, so load hits them alike.

--masks sam / sam2 use segment-anything's and sam2's pipelines on tiny random models
(resegzoo.masks.testing: the real code paths, a stand-in's cost) with regions of --region px, so
that an image has several regions; slic and felzenszwalb are resegzoo's defaults.

    python benchmarks/bench_pipeline_overlap.py [--arch ViT-B-16] [--side 672] [--threads 2,4] [--masks slic]
"""
from __future__ import annotations

import argparse
import os
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


class BandGrain:
    """A generator whose windows are one group per band: their segments are all made before the
    band's first encoder batch (resegzoo's grain before the batch grain)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.level_count = inner.level_count

    def __call__(self, image):
        return self.inner(image)

    def generate_windows(self, image, windows):
        from resegzoo.masks.windows import generate_for_windows

        return generate_for_windows(self.inner, image, windows)

    def window_groups(self, windows):
        return [list(range(len(windows)))]


def make_generator(name: str, region: int):
    from resegzoo.masks.superpixels import build_felzenszwalb, build_slic

    if name == "slic":
        return build_slic()
    if name == "felzenszwalb":
        return build_felzenszwalb()
    from resegzoo.masks.sam import SamLevel

    level = dict(points_per_side=8, pred_iou_thresh=0.0, stability_score_thresh=0.0, min_mask_region_area=0)
    if name == "sam":
        from resegzoo.masks.sam import SamMaskGenerator
        from resegzoo.masks.testing import make_tiny_sam

        return SamMaskGenerator(make_tiny_sam(), [SamLevel(**level)] * 4, region_size=region)
    from resegzoo.masks.sam2 import Sam2Level, make_sam2_generator
    from resegzoo.masks.testing import make_tiny_sam2

    return make_sam2_generator(make_tiny_sam2(), [Sam2Level(**level)] * 4, region_size=region)


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="ViT-B-16", help="open_clip architecture, or 'tiny' (resegzoo.testing)")
    parser.add_argument("--side", type=int, default=672, help="image side in px")
    parser.add_argument("--masks", default="slic", choices=("slic", "felzenszwalb", "sam", "sam2"))
    parser.add_argument("--region", type=int, default=448, help="region size of --masks sam/sam2, px")
    parser.add_argument("--threads", default="2", help="torch thread counts to run, comma-separated (e.g. 2,4)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import open_clip

    from resegzoo.api import Segmenter, Vocabulary, load_recipe
    from resegzoo.methods.clip.encoder import MaskedClipEncoder
    from resegzoo.segmenter.core import BatchMasks
    from resegzoo.testing import make_tiny_clip

    if args.arch == "tiny":
        model, window = make_tiny_clip(), 64
    else:
        torch.manual_seed(0)
        model = open_clip.create_model(args.arch, pretrained=None).eval()
        window = int(model.visual.image_size[0])
    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    image = scene(args.side)
    vocab = Vocabulary.parse("building; road; tree; water; grass")
    generator = make_generator(args.masks, args.region)
    band_grain = BandGrain(generator)

    def make(prefetch: int, gen=generator) -> Segmenter:
        return Segmenter(MaskedClipEncoder(model, tokenizer), gen, load_recipe(None, window=window, prefetch=prefetch),
                         masks_name=args.masks)

    seg = make(0)
    seg.logits(image[:window, :window], vocab)  # warm-up: text embeddings, allocations
    prep = seg.prepare(image, masks=False)
    text = seg.method.text_embeddings(vocab)
    batch = seg.recipe.inference.batch_size
    batches = BatchMasks(seg, prep.padded, prep.bands, batch)

    def masks_only() -> list:
        fresh = BatchMasks(seg, prep.padded, prep.bands, batch)
        return [fresh(k) for k in range(len(fresh.batches))]

    batch_maps = masks_only()

    def encoder_only() -> None:
        for k, maps in enumerate(batch_maps):
            crops = np.stack([prep.padded[y0:y1, x0:x1] for (y0, x0, y1, x1) in batches.windows(k)])
            seg.method.window_logits(crops, maps, text, 0.0, per_name=False)

    variants = {
        "masks only": masks_only,
        "encoder only": encoder_only,
        "sequential (prefetch 0)": lambda: make(0).logits(image, vocab),
        "band grain (before), prefetch 1": lambda: make(1, band_grain).logits(image, vocab),
        "batch grain, prefetch 1": lambda: make(1).logits(image, vocab),
        "batch grain, prefetch 2": lambda: make(2).logits(image, vocab),
    }
    threads = [int(t) for t in args.threads.split(",")]
    best = {(t, name): float("inf") for t in threads for name in variants}
    start_load = load_line()
    for _ in range(args.repeats):  # in turns, so background load hits all alike
        for t in threads:
            torch.set_num_threads(t)
            for name, fn in variants.items():
                start = time.perf_counter()
                fn()
                best[(t, name)] = min(best[(t, name)], time.perf_counter() - start)
    print(f"{args.arch}, image {args.side} px, {len(prep.plan.windows)} windows of {window} px, "
          f"{len(batches.batches)} batches of up to {batch} in {len(prep.bands)} band(s), masks {args.masks}, "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs; best of {args.repeats} wall times")
    print(f"start: {start_load}; end: {load_line()}")
    for t in threads:
        total = best[(t, "masks only")] + best[(t, "encoder only")]
        sequential = best[(t, "sequential (prefetch 0)")]
        print(f"\ntorch threads {t}")
        print("| stage / pipeline | wall s | vs sum of stages | vs sequential |")
        print("|---|---|---|---|")
        rows = [("masks only", best[(t, "masks only")]), ("encoder only", best[(t, "encoder only")]),
                ("sum of stages", total)]
        rows += [(name, best[(t, name)]) for name in variants if name not in ("masks only", "encoder only")]
        rows.append(("best possible", max(best[(t, "masks only")], best[(t, "encoder only")])))
        for name, secs in rows:
            print(f"| {name} | {secs:.2f} | {secs / total:.2f}x | {secs / sequential:.2f}x |")


if __name__ == "__main__":
    main()
