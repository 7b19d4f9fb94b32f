"""SAM segments for ReSeg-CLIP: the reference code's schedule against resegzoo's. Prints a table.

Same images, same SAM backbone (random weights at the real size: timing does not depend on the
weights), METHOD.md's four levels (points 4/2/2/2, crop_n_layers 1, min areas 500/500/1000/2000):

  reference   a fresh SamAutomaticMaskGenerator per level per CLIP window (the reference code):
              4 levels x (1 + 4 crops) = 20 image-encoder passes per window
  shared      resegzoo on each window alone: one encoder pass per crop shared by the 4 levels
              (5 per window); its id maps must equal the reference's exactly
  region      resegzoo as the segmenter runs it: SAM once per region of up to 1024 px holding many
              windows, id maps cut per window, each level's points_per_side (and crop layers)
              scaled with the region/window ratio so the prompt points per window are the
              reference's (scale_points, the default)
  unscaled    the same regions with the levels' settings applied to the whole region
              (scale_points: false; the earlier behaviour: fewer points per window)

Agreement with the reference (the exact per-window mode) is the Rand index of each level's id
map on the compared windows, and the segments found per window and level.

The reference and shared runs are slow on a CPU, so by default they run on the first
``--reference-windows`` windows of each image and their time is scaled to all windows of the
image (the work per window is the same for every window). Seconds per megapixel count the
image's pixels once (overlapping windows are not counted twice).

Times are wall-clock and this process's CPU time (user + system): on a shared machine other
processes slow the wall clock unevenly, the CPU time much less so.
With ``--with-clip`` the whole segment pipeline (SAM regions + resegzoo's masked-attention CLIP
ViT-B/16, random weights) is timed through resegzoo's public API as one more row.

Run: python benchmarks/bench_sam_pipeline.py [--images 1] [--reference-windows 1] [--model vit_b]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def synthetic_image(seed: int, size: int) -> np.ndarray:
    """Fields, roofs and roads: flat coloured shapes with texture noise."""
    rng = np.random.default_rng(seed)
    image = np.empty((size, size, 3), np.float32)
    image[:] = rng.uniform(60, 140, 3)
    for _ in range(8):  # fields
        y, x = rng.integers(0, size, 2)
        image[y:y + rng.integers(60, 200), x:x + rng.integers(60, 200)] = rng.uniform(40, 200, 3)
    for _ in range(25):  # roofs
        y, x = rng.integers(0, size, 2)
        image[y:y + rng.integers(10, 40), x:x + rng.integers(10, 40)] = rng.uniform(120, 255, 3)
    for _ in range(3):  # roads
        if rng.random() < 0.5:
            y = rng.integers(0, size)
            image[y:y + 8] = 90
        else:
            x = rng.integers(0, size)
            image[:, x:x + 8] = 90
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def sliding_windows(size: int, window: int, stride: int) -> list[tuple[int, int, int, int]]:
    starts = list(range(0, size - window + 1, stride))
    return [(y, x, y + window, x + window) for y in starts for x in starts]


def partition_agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(pixels whose segments are mutual best matches, Rand index) of two id maps of one level.

    A pixel agrees when its segment in ``a`` and its segment in ``b`` overlap each other more
    than any other segment (both ways). The Rand index is the fraction of pixel pairs that both
    maps group the same way (together in both, or apart in both). Ids themselves may differ.
    """
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    ai, bi = ai.ravel(), bi.ravel()
    table = np.zeros((ai.max() + 1, bi.max() + 1), np.int64)
    np.add.at(table, (ai, bi), 1)
    mutual = (table.argmax(axis=1)[ai] == bi) & (table.argmax(axis=0)[bi] == ai)
    n = ai.size

    def pairs(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) // 2).sum())

    total = n * (n - 1) / 2
    same_both = pairs(table)
    rand = (total + 2 * same_both - pairs(table.sum(axis=1)) - pairs(table.sum(axis=0))) / total
    return float(mutual.mean()), rand


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1, help="number of synthetic images (default 1)")
    parser.add_argument("--size", type=int, default=448, help="image side in pixels (default 448)")
    parser.add_argument("--window", type=int, default=224, help="CLIP window (default 224)")
    parser.add_argument("--stride", type=int, default=112, help="window stride (default 112)")
    parser.add_argument("--reference-windows", type=int, default=1,
                        help="windows per image run through the reference and shared schedules (default 1)")
    parser.add_argument("--model", default="vit_b", choices=["vit_b", "vit_l", "vit_h", "tiny", "colour"],
                        help="SAM backbone (default vit_b); tiny: resegzoo.masks.testing's, to try the script; "
                             "colour: resegzoo.masks.testing's colour-region SAM (masks follow the image, fast: "
                             "for the agreement columns, not the timings)")
    parser.add_argument("--thresholds", default="permissive", choices=["permissive", "method"],
                        help="permissive (default): pred_iou/stability thresholds 0 so a random-weight SAM "
                             "still yields masks to compare; method: METHOD.md's 0.5/0.6 thresholds")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--with-clip", action="store_true",
                        help="also time the whole segment pipeline with a masked CLIP ViT-B/16")
    args = parser.parse_args()

    import torch
    from segment_anything import SamAutomaticMaskGenerator, sam_model_registry

    from resegzoo.masks.painting import paint_masks
    from resegzoo.masks.sam import METHOD_LEVELS, SamLevel, SamMaskGenerator

    levels = METHOD_LEVELS
    if args.thresholds == "permissive":
        levels = tuple(SamLevel(**{**lv.as_generator_kwargs(), "pred_iou_thresh": 0.0,
                                   "stability_score_thresh": 0.0}) for lv in METHOD_LEVELS)
    torch.manual_seed(0)
    if args.model == "tiny":
        from resegzoo.masks.testing import make_tiny_sam

        sam = make_tiny_sam().to(args.device)
    elif args.model == "colour":
        from resegzoo.masks.testing import make_colour_sam

        sam = make_colour_sam().to(args.device)
    else:
        sam = sam_model_registry[args.model]().to(args.device).eval()
    passes = [0]
    sam.image_encoder.register_forward_hook(lambda *_: passes.__setitem__(0, passes[0] + 1))

    images = [synthetic_image(seed, args.size) for seed in range(args.images)]
    windows = sliding_windows(args.size, args.window, args.stride)
    ref_windows = windows[: max(1, min(args.reference_windows, len(windows)))]
    megapixels = args.images * args.size * args.size / 1e6
    scale = len(windows) / len(ref_windows)  # from the measured windows to every window
    print(f"{args.images} image(s) of {args.size}x{args.size}, {len(windows)} windows of {args.window} "
          f"(stride {args.stride}) each; reference and shared measured on {len(ref_windows)} window(s) per "
          f"image and scaled x{scale:g}; SAM {args.model} (random weights) on {args.device}, "
          f"torch threads {torch.get_num_threads()}, thresholds {args.thresholds}", flush=True)

    def timed(fn):
        passes[0] = 0
        start, cpu_start = time.perf_counter(), time.process_time()
        out = fn()
        return out, (time.perf_counter() - start, time.process_time() - cpu_start), passes[0]

    def reference(image):
        out = []
        for y0, x0, y1, x1 in ref_windows:
            crop = np.ascontiguousarray(image[y0:y1, x0:x1])
            maps = []
            for lv in levels:
                records = SamAutomaticMaskGenerator(sam, **lv.as_generator_kwargs()).generate(crop)
                maps.append(paint_masks([r["segmentation"] for r in records], crop.shape[:2]))
            out.append(np.stack(maps))
        return out

    ours = SamMaskGenerator(sam, levels, region_size=1024)
    unscaled = SamMaskGenerator(sam, levels, region_size=1024, scale_points=False)
    exact, masks_found = True, 0
    mutual: dict[str, list[float]] = {"region": [], "unscaled": []}
    rand: dict[str, list[float]] = {"region": [], "unscaled": []}
    segments: dict[str, list[int]] = {"reference": [], "region": [], "unscaled": []}
    names = ["reference", "shared", "region", "unscaled"] + (["pipeline"] if args.with_clip else [])
    totals = {name: [0.0, 0.0, 0] for name in names}  # wall s, CPU s, encoder passes (all windows)
    segment = build_pipeline(ours) if args.with_clip else None
    for image in images:
        ref_maps, t_ref, p_ref = timed(lambda im=image: reference(im))
        shared_maps, t_shared, p_shared = timed(
            lambda im=image: [ours(np.ascontiguousarray(im[y0:y1, x0:x1])) for y0, x0, y1, x1 in ref_windows])
        region_maps, t_region, p_region = timed(lambda im=image: ours.generate_windows(im, windows))
        unscaled_maps, t_unscaled, p_unscaled = timed(lambda im=image: unscaled.generate_windows(im, windows))
        runs = [("reference", t_ref, p_ref, scale), ("shared", t_shared, p_shared, scale),
                ("region", t_region, p_region, 1.0), ("unscaled", t_unscaled, p_unscaled, 1.0)]
        if segment is not None:
            _, t_pipe, p_pipe = timed(lambda im=image: segment(im))
            runs.append(("pipeline", t_pipe, p_pipe, 1.0))
        for name, (wall, cpu), p, k in runs:
            totals[name][0] += wall * k
            totals[name][1] += cpu * k
            totals[name][2] += round(p * k)
        for r, s_, g, u in zip(ref_maps, shared_maps, region_maps, unscaled_maps):
            exact &= bool(np.array_equal(r, s_))
            masks_found += sum(len(np.unique(level)) - 1 for level in r)
            for name, maps in (("reference", r), ("region", g), ("unscaled", u)):
                segments[name] += [len(np.unique(level[level > 0])) for level in maps]
            for name, maps in (("region", g), ("unscaled", u)):
                for level_r, level_g in zip(r, maps):
                    m, ri = partition_agreement(level_r, level_g)
                    mutual[name].append(m)
                    rand[name].append(ri)
        print("  image done: " + ", ".join(f"{name} {wall:.1f} s wall / {cpu:.1f} s CPU ({p} passes)"
                                          for name, (wall, cpu), p, _ in runs), flush=True)

    def agreement(name: str) -> str:
        return (f"{np.mean(mutual[name]):.1%} pixels, Rand {np.mean(rand[name]):.3f}, "
                f"{np.mean(segments[name]):.1f} segments / window / level")

    labels = {
        "reference": ("reference: generator per level per window",
                      f"{np.mean(segments['reference']):.1f} segments / window / level"),
        "shared": ("resegzoo shared embedding, per window (region_size: window)",
                   "identical" if exact else "DIFFERENT"),
        "region": ("resegzoo regions <= 1024 px, points scaled (default)", agreement("region")),
        "unscaled": ("resegzoo regions <= 1024 px, points not scaled", agreement("unscaled")),
        "pipeline": ("resegzoo segment: SAM regions + masked CLIP ViT-B/16", "-"),
    }
    base_wall, base_cpu = totals["reference"][0], totals["reference"][1]
    print()
    print("| schedule | encoder passes / image | wall s / MP | CPU s / MP | speed-up (wall) | speed-up (CPU) "
          "| id maps vs reference |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        wall, cpu, n_passes = totals[name]
        label, agreement = labels[name]
        print(f"| {label} | {n_passes / args.images:g} | {wall / megapixels:.1f} | {cpu / megapixels:.1f} | "
              f"{base_wall / wall:.1f}x | {base_cpu / cpu:.1f}x | {agreement} |")
    print(f"\nsegments painted by the reference on the compared windows: {masks_found} "
          f"(over {len(ref_windows) * args.images} window(s) x {len(levels)} levels)")


def build_pipeline(generator):
    """resegzoo's segmenter (public API) with a random ViT-B/16 CLIP and ``generator``'s SAM masks."""
    import open_clip

    from resegzoo.api import Segmenter, SegmentRecipe, Vocabulary
    from resegzoo.methods.clip.encoder import MaskedClipEncoder

    model = open_clip.create_model("ViT-B-16")
    encoder = MaskedClipEncoder(model, open_clip.get_tokenizer("ViT-B-16"))
    segmenter = Segmenter(encoder, generator, SegmentRecipe())
    vocab = Vocabulary(["building", "road", "tree", "low vegetation", "water", "car"])
    segmenter.method.text_embeddings(vocab)  # once per vocabulary, not per image: keep it out of the timing
    return lambda image: segmenter.logits(image, vocab)


if __name__ == "__main__":
    main()
