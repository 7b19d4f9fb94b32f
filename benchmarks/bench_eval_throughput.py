#!/usr/bin/env python
"""Evaluation throughput: seconds per image under the benchmark protocol, and projected run times.

Runs the full `resegzoo eval` pipeline (resize the short side to 448, 224 px windows, stride 112)
with a random-weight open_clip model of the given architecture, once as plain CLIP (all-global
schedule, no masks: the baseline) and once as ReSeg-CLIP (default schedule + a mask generator),
on the same images, and prints seconds per image, the ratio to the baseline, and the projected
time for each benchmark's evaluation split (window counts from --root, or approximate split
sizes). Random weights give representative encoder times; SAM with random weights finds fewer
masks than real SAM, so treat SAM timings as a lower bound.

    python benchmarks/bench_eval_throughput.py [--arch ViT-B-16] [--masks slic] [--device cpu]
    python benchmarks/bench_eval_throughput.py --arch ViT-L-14-quickgelu --masks sam --device cuda \
        --sam-checkpoint sam-vit-h --dataset vaihingen --root data/vaihingen
"""
from __future__ import annotations

import argparse
import time

import numpy as np

#: Approximate evaluation splits (images, height, width) of the peers' converted layouts, from
#: mmsegmentation's dataset docs and the datasets' papers; --root counts a real copy instead.
APPROX_SPLITS = {
    "openearthmap": (500, 1024, 1024),
    "loveda": (1669, 1024, 1024),
    "isaid": (11644, 896, 896),
    "potsdam": (2016, 512, 512),
    "vaihingen": (398, 512, 512),
    "vdd": (80, 3000, 4000),
}
FIT, WINDOW, STRIDE = (448, 448), 224, 112  # the peers' protocol (registry/recipes/eval-default.yaml)


def windows_for(height: int, width: int) -> int:
    """Windows per image under the peers' protocol: mmcv's keep-ratio fit, shifted windows."""
    from resegzoo.segmenter.windows import fit_size, window_starts

    h, w = fit_size(height, width, FIT)
    return len(window_starts(h, WINDOW, STRIDE, "shift")) * len(window_starts(w, WINDOW, STRIDE, "shift"))


def count_windows(dataset: str, root: str) -> tuple[int, int]:
    from PIL import Image

    from resegzoo.plugins.registry import get_registry

    ds = get_registry().datasets.get(dataset).factory(root)
    total = 0
    for sample in ds:
        if sample.image.suffix.lower() in (".tif", ".tiff"):
            import rasterio

            with rasterio.open(sample.image) as src:
                size = (src.height, src.width)
        else:
            with Image.open(sample.image) as img:
                size = (img.height, img.width)
        total += windows_for(*size)
    return len(ds), total


def time_segmenter(segmenter, images, vocab) -> float:
    segmenter.segment(images[0], vocab)  # warm-up: text embeddings, kernels
    start = time.perf_counter()
    for image in images:
        segmenter.segment(image, vocab)
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    except ImportError:
        pass
    return (time.perf_counter() - start) / len(images)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="ViT-B-16", help="open_clip architecture (random weights)")
    parser.add_argument("--masks", default="slic", help="mask generator for the ReSeg-CLIP row")
    parser.add_argument("--sam-checkpoint", default=None, help="SAM checkpoint (path or zoo name) for --masks sam")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=2, help="test images (random textures)")
    parser.add_argument("--size", type=int, default=512, help="test image side in pixels")
    parser.add_argument("--dataset", default=None, help="count windows of this dataset at --root")
    parser.add_argument("--root", default=None)
    args = parser.parse_args()

    import open_clip
    import torch

    from resegzoo.api import Segmenter, Vocabulary, load_recipe
    from resegzoo.methods.clip.encoder import MaskedClipEncoder
    from resegzoo.segmenter.models import build_mask_generator

    torch.manual_seed(0)
    model = open_clip.create_model(args.arch, pretrained=None).eval().to(args.device)
    tokenizer = open_clip.get_tokenizer(args.arch)
    depth = len(model.visual.transformer.resblocks)
    rng = np.random.default_rng(0)
    # blocky random textures: mask generators find segments, as on real imagery
    blocks = args.size // 16
    images = [np.kron(rng.integers(0, 256, (blocks, blocks, 3)), np.ones((16, 16, 1))).astype(np.uint8)
              for _ in range(args.images)]
    vocab = Vocabulary(classes=[["building"], ["road"], ["tree"], ["low vegetation"], ["car"], ["water"]])
    settings = {"checkpoint": args.sam_checkpoint, "device": args.device} if args.masks == "sam" else {}
    from resegzoo.weights.zoo import registry_dir

    eval_default = registry_dir() / "recipes" / "eval-default.yaml"

    rows = []
    for label, rules, masks in (("plain CLIP (baseline)", ["global"] * depth, "none"),
                                (f"ReSeg-CLIP + {args.masks}", None, args.masks)):
        mask_settings = {"generator": masks, "settings": settings if masks == args.masks else {}}
        recipe = load_recipe(eval_default, schedule={"rules": rules}, masks=mask_settings)
        encoder = MaskedClipEncoder(model, tokenizer, rules=rules)
        generator = build_mask_generator(masks, recipe.masks.settings)
        seg = Segmenter(encoder, generator, recipe, model_name=args.arch, masks_name=masks)
        rows.append((label, time_segmenter(seg, images, vocab)))

    per_image_windows = windows_for(args.size, args.size)
    base = rows[0][1]
    print(f"{args.arch}, random weights, device {args.device}, {args.images} images of {args.size}x{args.size} "
          f"({per_image_windows} windows each)\n")
    print("| setting | s / image | s / window | ratio to baseline |")
    print("|---|---|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.3f} | {seconds / per_image_windows:.4f} | {seconds / base:.2f}x |")

    splits = {}
    if args.dataset and args.root:
        splits[args.dataset] = count_windows(args.dataset, args.root)
    else:
        splits = {name: (n, n * windows_for(h, w)) for name, (n, h, w) in APPROX_SPLITS.items()}
    per_window = rows[1][1] / per_image_windows
    source = "" if args.root else " (approximate split sizes)"
    print(f"\nProjected ReSeg-CLIP evaluation time per split{source}:\n")
    print("| dataset | images | windows | hours |")
    print("|---|---|---|---|")
    for name, (n, windows) in splits.items():
        print(f"| {name} | {n} | {windows} | {windows * per_window / 3600:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
