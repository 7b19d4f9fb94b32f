"""One command that checks resegzoo on a CUDA GPU and prints one table (random weights, offline).

  (a) numbers: fp32 on CUDA against fp32 on the CPU, and bf16 / fp16 autocast against fp32 on
      CUDA (ViT-B-16 logits over a smooth image: max |d logit| and label agreement);
  (b) attention kernels: which SDPA backends (flash, memory-efficient, cuDNN, math) accept the
      masked blocks' boolean mask at ViT-B-16's shapes, whether the boolean mask forces the math
      kernel, and the time of each backend that runs;
  (c) speed per megapixel: plain CLIP (all-global schedule, no masks), ReSeg-CLIP (resegzoo's
      masked schedule, SAM vit_b masks once per region) and the reference schedule (a fresh
      SamAutomaticMaskGenerator per level per window, as the reference code), for ViT-B-16 and
      ViT-L-14; plus ReSeg-CLIP with SAM 2.1 Hiera-T masks (needs resegzoo[sam2]); plus SAM 3
      (SegEarth-OV3, full-size random Sam3Config, 8 names, 512 px windows each resized to 1008 px
      as its OpenEarthMap protocol; ProC-SAM3, the same model, the whole image as one window as its
      protocol, the image encoder alone in bf16; needs resegzoo[sam3]);
  (d) peak GPU memory of every row of (c).

All models have random weights at their real sizes (timing does not depend on the weights), so
the check needs no download. The reference schedule is slow, so it runs on the first
--reference-windows windows and is scaled to the whole image (the work per window is the same).
On one H100 the default settings finish in under 8 minutes.

  python benchmarks/gpu_check.py                   # on a CUDA machine
  python benchmarks/gpu_check.py --cpu-dry-run     # tiny models on the CPU: checks that every
                                                   # section runs; the numbers mean nothing

Put the table in benchmarks/README.md with the card named (the script prints the card).
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch


@dataclass
class Setup:
    device: str
    dry_run: bool
    image_side: int
    reference_windows: int
    archs: tuple[str, ...]


ROWS: list[tuple[str, str, str]] = []


def row(check: str, setting: str, result: str) -> None:
    ROWS.append((check, setting, result))
    print(f"  {check} | {setting} | {result}", flush=True)


def smooth_image(side: int) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side] / side
    rgb = np.stack([np.sin(3 * x + 1) * 0.5 + 0.5, np.cos(2 * y) * 0.5 + 0.5, x * y], axis=-1)
    return (rgb * 255).astype(np.uint8)


def scene(side: int, seed: int = 0) -> np.ndarray:
    """Flat fields, roofs and roads with texture noise: structure for the mask generators."""
    rng = np.random.default_rng(seed)
    image = np.empty((side, side, 3), np.float32)
    image[:] = rng.uniform(60, 140, 3)
    for _ in range(max(4, side // 60)):
        y, x = rng.integers(0, side, 2)
        h, w = rng.integers(side // 20 + 2, side // 5 + 4, 2)
        image[y:y + h, x:x + w] = rng.uniform(40, 255, 3)
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str) -> tuple[float, Any]:
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def clip_model(arch: str, setup: Setup, device: str) -> tuple[Any, Any, int]:
    """(model, tokenizer, window) with random weights."""
    import open_clip

    if setup.dry_run:
        from resegzoo.testing import make_tiny_clip

        return make_tiny_clip().to(device), open_clip.get_tokenizer("ViT-B-16"), 64
    torch.manual_seed(0)
    model = open_clip.create_model(arch, pretrained=None).eval().to(device)
    return model, open_clip.get_tokenizer(arch), int(model.visual.image_size[0])


def segmenter(model: Any, tokenizer: Any, window: int, generator: Any, precision: str = "fp32",
              rules: list[str] | None = None) -> Any:
    from resegzoo.api import Segmenter, load_recipe
    from resegzoo.methods.clip.encoder import MaskedClipEncoder

    encoder = MaskedClipEncoder(model, tokenizer, rules=rules)
    return Segmenter(encoder, generator, load_recipe(None, window=window, stride=window // 2, precision=precision))


def vocabulary() -> Any:
    from resegzoo.api import Vocabulary

    return Vocabulary.parse("building; road; tree; water; low vegetation; car")


# -- (a) numbers -------------------------------------------------------------------------------

def check_precision(setup: Setup) -> None:
    from resegzoo.masks.superpixels import build_slic

    arch = setup.archs[0]
    image = smooth_image(2 * (64 if setup.dry_run else 224))
    vocab = vocabulary()

    def logits(device: str, precision: str) -> torch.Tensor:
        model, tokenizer, window = clip_model(arch, setup, device)
        out, _ = segmenter(model, tokenizer, window, build_slic(), precision).logits(image, vocab)
        return out.float().cpu()

    def compare(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
        agree = (a.argmax(0) == b.argmax(0)).float().mean().item()
        row("(a) numbers", name, f"max |d logit| {(a - b).abs().max().item():.2e}, label agreement {agree:.2%}")

    reference = logits(setup.device, "fp32")
    if setup.device != "cpu":
        compare(f"{arch} fp32 {setup.device} vs fp32 cpu", reference, logits("cpu", "fp32"))
    for precision in ("bf16", "fp16"):
        if precision == "fp16" and setup.device == "cpu":
            row("(a) numbers", f"{arch} fp16 cpu", "refused by design (fp16 needs CUDA)")
            continue
        compare(f"{arch} {precision} vs fp32 ({setup.device})", reference, logits(setup.device, precision))


# -- (b) attention kernels ---------------------------------------------------------------------

def check_kernels(setup: Setup) -> None:
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from resegzoo.methods.clip.schedule import segment_mask

    heads, tokens, dim = (4, 17, 16) if setup.dry_run else (12, 197, 64)  # ViT-B-16 at 224 px
    batch = 8
    dtype = torch.float32 if setup.device == "cpu" else torch.float16
    q, k, v = (torch.randn(batch, heads, tokens, dim, device=setup.device, dtype=dtype) for _ in range(3))
    grid = int(math.isqrt(tokens - 1))
    ids = torch.randint(1, 9, (batch, grid, grid), device=setup.device)
    allowed = ~segment_mask(ids)  # exactly what a masked block gives SDPA
    additive = torch.zeros(allowed.shape, dtype=dtype, device=setup.device).masked_fill(~allowed, float("-inf"))
    backends = [b for b in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH")
                if hasattr(SDPBackend, b)]
    runs: dict[str, list[str]] = {"boolean mask": [], "additive float mask": [], "no mask": []}
    for mask_name, mask in (("boolean mask", allowed), ("additive float mask", additive), ("no mask", None)):
        for name in backends:
            try:
                with sdpa_kernel([getattr(SDPBackend, name)]):
                    seconds = min(timed(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                                        setup.device)[0] for _ in range(5))
            except RuntimeError:
                continue
            runs[mask_name].append(name)
            row("(b) SDPA", f"{mask_name}, {name.lower()}, {str(dtype)[6:]}", f"{seconds * 1e3:.3f} ms")
        if not runs[mask_name]:
            row("(b) SDPA", mask_name, "no backend ran")
    forced = runs["boolean mask"] == ["MATH"]
    row("(b) SDPA", "boolean mask forces the math kernel", f"{'yes' if forced else 'no'} "
        f"(backends that accept it: {', '.join(b.lower() for b in runs['boolean mask']) or 'none'})")


# -- (c, d) speed and memory -------------------------------------------------------------------

def sam_model(setup: Setup, device: str) -> Any:
    if setup.dry_run:
        from resegzoo.masks.testing import make_tiny_sam

        return make_tiny_sam().to(device)
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    return sam_model_registry["vit_b"]().eval().to(device)


def sam2_model(setup: Setup, device: str) -> Any:
    from resegzoo.masks.testing import make_tiny_sam2

    return make_tiny_sam2(full_size=not setup.dry_run).to(device)


class ReferenceSchedule:
    """The reference code's masks: a fresh SamAutomaticMaskGenerator per level, per window."""

    def __init__(self, sam: Any, levels: Any, limit: int) -> None:
        self.sam, self.levels, self.limit = sam, levels, limit
        self.windows = 0

    def __call__(self, window: np.ndarray) -> np.ndarray:
        from segment_anything import SamAutomaticMaskGenerator

        from resegzoo.masks.painting import paint_masks

        self.windows += 1
        if self.windows > self.limit:  # timed on the first windows only; the caller scales
            return np.zeros((len(self.levels), *window.shape[:2]), np.int32)
        maps = []
        for level in self.levels:
            try:
                records = SamAutomaticMaskGenerator(self.sam, **level.as_generator_kwargs()).generate(window)
            except IndexError:  # segment-anything 1.0 raises when nothing survives with crop layers
                records = []
            maps.append(paint_masks([r["segmentation"] for r in records], window.shape[:2], "sam-order"))
        return np.stack(maps)


def warm_up(seg: Any, image: np.ndarray, vocab: Any) -> None:
    """One window through the whole pipeline first: CUDA context, kernel choice, allocator."""
    seg.logits(image[:seg.window, :seg.window], vocab)


def peak_mib(device: str) -> str:
    if not device.startswith("cuda"):
        return "n/a (cpu)"
    return f"{torch.cuda.max_memory_allocated() / 2 ** 20:.0f} MiB"


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def check_speed(setup: Setup) -> None:
    import dataclasses

    from resegzoo.masks.none import build_none
    from resegzoo.masks.sam import METHOD_LEVELS, SamMaskGenerator
    from resegzoo.masks.sam2 import SAM2_METHOD_LEVELS
    from resegzoo.masks.windows import group_windows
    from resegzoo.segmenter.windows import WindowPlan

    device = setup.device
    image = scene(setup.image_side)
    megapixels = setup.image_side ** 2 / 1e6
    vocab = vocabulary()
    precisions = ["fp32"] if device == "cpu" else ["fp32", "bf16"]
    sam = sam_model(setup, device)
    levels, levels2 = METHOD_LEVELS, SAM2_METHOD_LEVELS
    if setup.dry_run:  # no crops, 4 points per level: the dry run checks the code paths, not speed
        levels = tuple(dataclasses.replace(lv, crop_n_layers=0, points_per_side=2) for lv in levels)
        levels2 = tuple(dataclasses.replace(lv, crop_n_layers=0, points_per_side=2) for lv in levels2)
    for arch in setup.archs:
        model, tokenizer, window = clip_model(arch, setup, device)
        depth = len(model.visual.transformer.resblocks)
        n_windows = len(WindowPlan.make(setup.image_side, setup.image_side, window, window // 2).windows)
        for precision in precisions:
            reset_peak(device)
            plain = segmenter(model, tokenizer, window, build_none(), precision, rules=["global"] * depth)
            warm_up(plain, image, vocab)
            reset_peak(device)
            seconds, _ = timed(lambda: plain.logits(image, vocab), device)
            row("(c, d) speed", f"{arch} plain CLIP, {precision}", f"{seconds / megapixels:.2f} s/MP, "
                f"peak {peak_mib(device)}")

            reset_peak(device)
            generator = SamMaskGenerator(sam, levels, precision=precision)
            reseg = segmenter(model, tokenizer, window, generator, precision)
            warm_up(reseg, image, vocab)
            reset_peak(device)
            seconds, _ = timed(lambda: reseg.logits(image, vocab), device)
            regions = len(group_windows(list(WindowPlan.make(setup.image_side, setup.image_side, window,
                                                              window // 2).windows), generator.region_size))
            row("(c, d) speed", f"{arch} ReSeg-CLIP + SAM vit_b, {precision}", f"{seconds / megapixels:.2f} s/MP "
                f"({regions} SAM region(s)), peak {peak_mib(device)}")

        # the reference: CLIP on every window, SAM timed on the first windows and scaled to all
        reset_peak(device)
        with_sam, _ = timed(lambda: segmenter(model, tokenizer, window, ReferenceSchedule(
            sam, levels, setup.reference_windows), "fp32").logits(image, vocab), device)
        clip_only, _ = timed(lambda: segmenter(model, tokenizer, window, ReferenceSchedule(
            sam, levels, 0), "fp32").logits(image, vocab), device)
        timed_windows = min(setup.reference_windows, n_windows)
        projected = clip_only + max(0.0, with_sam - clip_only) * n_windows / max(1, timed_windows)
        row("(c, d) speed", f"{arch} reference schedule (SAM per level per window), fp32",
            f"{projected / megapixels:.2f} s/MP (SAM timed on {timed_windows} of {n_windows} windows, scaled), "
            f"peak {peak_mib(device)}")

    model, tokenizer, window = clip_model(setup.archs[0], setup, device)
    try:
        sam2 = sam2_model(setup, device)
    except ImportError:
        row("(c, d) speed", f"{setup.archs[0]} ReSeg-CLIP + SAM 2.1 Hiera-T", 'skipped: pip install "resegzoo[sam2]"')
        return
    from resegzoo.masks.sam2 import make_sam2_generator

    for precision in precisions:
        reset_peak(device)
        seg2 = segmenter(model, tokenizer, window, make_sam2_generator(sam2, levels2, precision=precision), precision)
        warm_up(seg2, image, vocab)
        reset_peak(device)
        seconds, _ = timed(lambda: seg2.logits(image, vocab), device)
        row("(c, d) speed", f"{setup.archs[0]} ReSeg-CLIP + SAM 2.1 Hiera-T, {precision}",
            f"{seconds / megapixels:.2f} s/MP, peak {peak_mib(device)}")


SAM3_NAMES = ["building", "road", "tree", "water", "low vegetation", "car", "bare soil", "background"]


def check_sam3_speed(setup: Setup) -> None:
    """SegEarth-OV3 and ProC-SAM3 seconds per megapixel: a random SAM 3 at its real size (the dry
    run: the test model), 8 names; SegEarth-OV3 on 512 px windows, fp32 and bf16 autocast;
    ProC-SAM3 on the whole image, fp32 and its bf16 image encoder."""
    try:
        from resegzoo.methods.segearth_ov3.fusion import FusionSwitches
        from resegzoo.methods.segearth_ov3.model import Sam3Scorer
        from resegzoo.methods.segearth_ov3.tokenizer import open_clip_tokenize
        from resegzoo.testing import make_tiny_sam3
    except ImportError:
        row("(c, d) speed", "SegEarth-OV3 (SAM 3)", 'skipped: pip install "resegzoo[sam3]"')
        return
    from resegzoo.segmenter.windows import WindowPlan

    device = setup.device
    model = make_tiny_sam3(seed=0, config=None if setup.dry_run else {}).to(device)
    side = setup.image_side
    window = min(512, side)
    image = torch.from_numpy(scene(side)).permute(2, 0, 1)
    windows = WindowPlan.make(side, side, window, window, "shift").windows
    megapixels = side ** 2 / 1e6
    switches = FusionSwitches(confidence_threshold=0.5)
    for precision in (["fp32"] if device == "cpu" else ["fp32", "bf16"]):
        scorer = Sam3Scorer(model, open_clip_tokenize, device=device, precision=precision, name_batch=8)

        def run() -> None:
            scorer._text.clear()  # text is encoded once per image (vocabulary), included in the time
            for y0, x0, y1, x1 in windows:
                scorer.score_window(image[:, y0:y1, x0:x1], SAM3_NAMES, switches)

        run()  # warm-up
        reset_peak(device)
        seconds, _ = timed(run, device)
        row("(c, d) speed", f"SegEarth-OV3, SAM 3 {'tiny' if setup.dry_run else 'full size'}, {precision}",
            f"{seconds / megapixels:.2f} s/MP ({len(windows)} windows of {window} px, {len(SAM3_NAMES)} names), "
            f"peak {peak_mib(device)}")
    # ProC-SAM3: the whole image as one window (its protocol), its residual fusion; under bf16 only
    # the image encoder (ProC-SAM3's image_encoder_dtype bf16, inference_dtype fp32)
    from resegzoo.methods.proc_sam3.fusion import ProcSwitches

    proc = ProcSwitches(confidence_threshold=0.5)
    for precision in (["fp32"] if device == "cpu" else ["fp32", "bf16"]):
        scorer = Sam3Scorer(model, open_clip_tokenize, device=device, precision=precision, name_batch=8,
                            decoder_precision="fp32")

        def run_proc() -> None:
            scorer._text.clear()
            scorer.score_window(image, SAM3_NAMES, proc)

        run_proc()  # warm-up
        reset_peak(device)
        seconds, _ = timed(run_proc, device)
        row("(c, d) speed", f"ProC-SAM3, SAM 3 {'tiny' if setup.dry_run else 'full size'}, {precision} image encoder",
            f"{seconds / megapixels:.2f} s/MP (the whole image, one window of {side} px, {len(SAM3_NAMES)} names), "
            f"peak {peak_mib(device)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="tiny models and a small image on the CPU: every section runs, numbers mean nothing")
    parser.add_argument("--device", default="cuda", help="CUDA device to check (default cuda)")
    parser.add_argument("--image-side", type=int, default=1024, help="test image side in px (default 1024: 1 MP)")
    parser.add_argument("--reference-windows", type=int, default=4,
                        help="windows of the reference schedule that are timed and scaled (default 4)")
    parser.add_argument("--sections", default="a,b,c", help="comma-separated subset of a,b,c (c includes d)")
    args = parser.parse_args()
    if args.cpu_dry_run:
        setup = Setup("cpu", True, min(args.image_side, 128), min(args.reference_windows, 1), ("tiny",))
    else:
        if not torch.cuda.is_available():
            parser.error("no CUDA device; use --cpu-dry-run to check that the script runs")
        setup = Setup(args.device, False, args.image_side, args.reference_windows, ("ViT-B-16", "ViT-L-14"))
    card = torch.cuda.get_device_name(setup.device) if setup.device != "cpu" else "CPU (dry run)"
    print(f"resegzoo GPU check on {card}, torch {torch.__version__}, image {setup.image_side} px", flush=True)
    start = time.perf_counter()
    sections = set(args.sections.split(","))
    if "a" in sections:
        check_precision(setup)
    if "b" in sections:
        check_kernels(setup)
    if "c" in sections:
        check_speed(setup)
        check_sam3_speed(setup)
    print(f"\n### resegzoo GPU check: {card}, torch {torch.__version__} ({time.perf_counter() - start:.0f} s)\n")
    print("| check | setting | result |\n|---|---|---|")
    for check, setting, result in ROWS:
        print(f"| {check} | {setting} | {result} |")


if __name__ == "__main__":
    main()
