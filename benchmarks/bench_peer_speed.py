#!/usr/bin/env python
"""Every CLIP recipe against SegEarth-OV's own code: CPU and wall seconds per image, with time splits.

The baseline is SegEarth-OV's ``forward_slide`` + ``postprocess_result`` (SegEarth model type,
CLS lambda -0.3, no SimFeatUp), run from a checkout of likyoo/SegEarth-OV given with
``--segearth-ov PATH`` or ``$SEGEARTH_OV_ROOT`` (see peer_segearth_ov.py for what is stubbed: its
mmseg/BLIP/GEM/SimFeatUp imports, none of them on the measured path). Both sides hold the same
random ViT-B-16 (open_clip's architecture, seed 0) and segment the same PNGs with the same 224 px
windows at stride 112, mmseg's shifted last window, and the checkout's Vaihingen class names.

resegzoo runs each recipe the way ``resegzoo segment`` does (``segment_raster``: read the PNG,
resize rule, windows, masks, encoder, stitch, write the label raster), with the peers' protocol
(registry recipes, ``base: eval-default``) but no resize (``fit_scale: null``) so that both
sides see the same windows of the same pixels:

  vanilla, maskclip, sclip, clearclip, naclip, segearth-ov   registry/recipes/method-*.yaml
  reseg-clip-slic   eval-default (ReSeg-CLIP's default schedule, SLIC)
  reseg-clip-slic-regions   the same with slic region_size 1024 (an option, other segments)
  reseg-clip-sam    eval-default with SAM vit_b, random weights

Each side runs in its own process (the checkout's open_clip shadows the installed one); the
processes take turns, image by image, over ``--repeats`` interleaved rounds (each round in
another recipe order), so load changes hit every row alike. Columns: process CPU seconds and
wall seconds per image of the segmentation (reading and writing excluded: the peer's measured
code does neither), their ratio to the baseline (median over the rounds), the min-max spread
of the ratio over rounds, and the CPU split of resegzoo's whole pipeline per image (read,
masks, encoder, text, stitch = everything else in segment_raster, write), measured with thread
CPU clocks (exact with --threads 1; with more threads torch's worker threads are not in the
split, so the split is shown for --threads 1 only). The text pass (the prompts of every name,
once per vocabulary) is timed once per side on a fresh cache and not per image. With the
checkout's SegEarth model the segearth-ov row's logits are compared with the peer's (max |diff|).

    SEGEARTH_OV_ROOT=/path/to/SegEarth-OV python benchmarks/bench_peer_speed.py --threads 1
    python benchmarks/bench_peer_speed.py --segearth-ov /path/to/SegEarth-OV --threads 2 --sizes 448x448
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WINDOW, STRIDE = 224, 112
PEER = "segearth-ov (peer's code)"
#: recipe key -> (registry recipe, overrides)
RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    "vanilla": ("method-vanilla", {}),
    "maskclip": ("method-maskclip", {}),
    "sclip": ("method-sclip", {}),
    "clearclip": ("method-clearclip", {}),
    "naclip": ("method-naclip", {}),
    "segearth-ov": ("method-segearth-ov", {}),
    "reseg-clip-slic": ("eval-default", {}),
    "reseg-clip-slic-regions": ("eval-default", {"masks": {"generator": "slic", "settings": {"region_size": 1024}}}),
    "reseg-clip-sam": ("eval-default", {"masks": {"generator": "sam"}}),
}
SPLIT = ("read", "masks", "encoder", "text", "stitch", "write")


# -- the images ---------------------------------------------------------------------------------

def aerial_like(height: int, width: int, seed: int) -> Any:
    """Fields, roofs and roads with texture: SLIC and SAM find segments as on real imagery."""
    import numpy as np

    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.float32)
    image[:] = rng.uniform(70, 130, 3)
    for _ in range(height * width // 6000):
        y, x = rng.integers(0, height), rng.integers(0, width)
        h, w = rng.integers(6, max(7, height // 5)), rng.integers(6, max(7, width // 5))
        image[y:y + h, x:x + w] = rng.uniform(30, 250, 3)
    for _ in range(3):
        if rng.random() < 0.5:
            y = rng.integers(0, height)
            image[y:y + 10] = 90
        else:
            x = rng.integers(0, width)
            image[:, x:x + 10] = 90
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


# -- the workers (each in its own process; one JSON line per request and per answer) -----------

def _serve(handle) -> None:
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            return
        print(json.dumps(handle(request)), flush=True)


def _clock() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def peer_worker(args: argparse.Namespace) -> None:
    import cv2
    import numpy as np
    import torch
    from safetensors.torch import load_file

    sys.path.insert(0, str(HERE))
    from peer_segearth_ov import load_segmentor, to_input

    torch.set_num_threads(args.threads)
    state = load_file(str(Path(args.work) / "model" / "open_clip_model.safetensors"))
    cpu, wall = _clock()
    segmentor = load_segmentor(args.segearth_ov, state, args.names)
    text = (time.process_time() - cpu, time.perf_counter() - wall)

    def handle(request: dict) -> dict:
        bgr = cv2.imread(request["image"], cv2.IMREAD_COLOR)  # as mmcv's LoadImageFromFile (cv2 backend)
        x = to_input(bgr)
        metas = [{"ori_shape": x.shape[2:]}]
        with torch.no_grad():
            cpu, wall = _clock()
            logits = segmentor.forward_slide(x, metas, STRIDE, WINDOW)
            labels = segmentor.postprocess_result(logits, None)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        out: dict[str, Any] = {"cpu": cpu, "wall": wall, "text": text}
        if request.get("logits"):
            np.save(request["logits"], logits[0].numpy())
            np.save(request["logits"] + ".labels.npy", labels[0].numpy())
        return out

    _serve(handle)


class _Splits:
    """Thread-CPU and wall seconds of the stages of one segment_raster call, by wrapping the
    functions that do each stage (the library is not changed; this is the benchmark's own
    instrumentation)."""

    def __init__(self) -> None:
        self.cpu = dict.fromkeys(SPLIT, 0.0)

    def wrap(self, stage: str, fn):
        def timed(*a, **k):
            start = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                spent = time.thread_time() - start
                self.cpu[stage] += spent
                if stage == "text":  # text runs inside window_scores: not the encoder's
                    self.cpu["encoder"] -= spent
        return timed


def resegzoo_worker(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    import resegzoo.batch.job as job
    import resegzoo.weights.loading as loading
    from resegzoo.api import Segmenter, load_recipe
    from resegzoo.raster.opening import Raster
    from resegzoo.vocabulary import Vocabulary

    torch.set_num_threads(args.threads)
    # one loaded CLIP shared by every recipe's segmenter (memory: the encoders only read it)
    cache: dict[str, Any] = {}
    real_load = loading.load_clip

    def load_once(spec: Any, **kwargs: Any) -> Any:
        key = repr((spec, sorted(kwargs.items())))  # a spec, or a ResolvedModel (not hashable)
        if key not in cache:
            cache[key] = real_load(spec, **kwargs)
        return cache[key]

    loading.load_clip = load_once
    names = [line.strip().split(",") for line in Path(args.names).read_text().splitlines() if line.strip()]
    vocab = Vocabulary(classes=names)
    model = str(Path(args.work) / "model")
    splits = _Splits()
    segmenters: dict[str, Any] = {}
    text: dict[str, tuple[float, float]] = {}
    for key in args.recipes:
        base, overrides = RECIPES[key]
        overrides = json.loads(json.dumps(overrides))
        if key == "reseg-clip-sam":
            overrides["masks"]["settings"] = {"model": "vit_b", "checkpoint": str(Path(args.work) / "sam_vit_b.pth"),
                                              "device": "cpu"}
        recipe = load_recipe(REPO / "registry" / "recipes" / f"{base}.yaml", inference={"fit_scale": None}, **overrides)
        seg = Segmenter.from_recipe(recipe, model=model)
        cpu, wall = _clock()
        seg.method.text_embeddings(vocab)  # the text pass: a fresh cache for the first recipe, the disk cache after
        text[key] = (time.process_time() - cpu, time.perf_counter() - wall)
        method = seg.method
        method.window_scores = splits.wrap("encoder", method.window_scores)
        method.text_embeddings = splits.wrap("text", method.text_embeddings)
        generator = seg.mask_generator
        if generator is not None and hasattr(generator, "generate_windows"):
            generator.generate_windows = splits.wrap("masks", generator.generate_windows)
        segmenters[key] = seg
    Raster.read_rgb = splits.wrap("read", Raster.read_rgb)
    job.plan_raster = splits.wrap("read", job.plan_raster)
    for name in ("__enter__", "write", "__exit__"):
        setattr(job.RasterWriter, name, splits.wrap("write", getattr(job.RasterWriter, name)))

    def handle(request: dict) -> dict:
        seg = segmenters[request["recipe"]]
        splits.cpu = dict.fromkeys(SPLIT, 0.0)
        out_path = Path(request["out"])
        cpu, wall = _clock()
        job.segment_raster(seg, vocab, request["image"], out_path)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        parts = dict(splits.cpu)
        parts["stitch"] = cpu - sum(v for k, v in parts.items() if k != "stitch")
        result: dict[str, Any] = {"cpu_total": cpu, "wall_total": wall, "split": parts, "text": text[request["recipe"]]}
        # the segmentation alone, as the peer's measured code: reading and writing left out
        result["cpu"] = cpu - parts["read"] - parts["write"]
        result["wall"] = wall - parts["read"] - parts["write"]  # (thread CPU ~ wall for these I/O stages)
        if request.get("logits"):
            from resegzoo.raster.opening import read_image

            rgb, _, _ = read_image(request["image"])
            rows, _ = seg.scores(rgb, vocab)
            np.save(request["logits"], rows.float().numpy())
        return result

    _serve(handle)


# -- the driver ---------------------------------------------------------------------------------

class Worker:
    def __init__(self, kind: str, args: argparse.Namespace, recipes: list[str]) -> None:
        # a fresh resegzoo cache: the first recipe's text pass is a first run's
        self.cache = tempfile.TemporaryDirectory(prefix=f"bench-{kind}-cache-")
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
               "RESEGZOO_CACHE": self.cache.name}
        command = [sys.executable, __file__, "--worker", kind, "--work", args.work, "--threads", str(args.threads),
                   "--names", args.names, "--recipes", ",".join(recipes)]
        if args.segearth_ov:
            command += ["--segearth-ov", args.segearth_ov]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.ask(None)

    def ask(self, request: dict | None) -> dict:
        if request is not None:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"a worker stopped (exit {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.process.stdin.write(json.dumps({"quit": True}) + "\n")
            self.process.stdin.close()
        finally:
            self.process.wait()
            self.cache.cleanup()


def prepare(args: argparse.Namespace, sizes: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
    import open_clip
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    folder = Path(args.work) / "model"
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16", pretrained=None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": open_clip.get_model_config("ViT-B-16")}))
    if "reseg-clip-sam" in args.recipes:
        from segment_anything import sam_model_registry

        torch.manual_seed(0)
        torch.save(sam_model_registry["vit_b"]().state_dict(), Path(args.work) / "sam_vit_b.pth")
    images = {}
    for n, (h, w) in enumerate(sizes):
        path = Path(args.work) / f"image-{h}x{w}.png"
        Image.fromarray(aerial_like(h, w, seed=n)).save(path)
        images[(h, w)] = str(path)
    return images


def adjusted_rand(a: Any, b: Any) -> float:
    """Adjusted Rand index of two id maps of the same pixels (1: the same partition)."""
    import numpy as np

    _, ia = np.unique(a.ravel(), return_inverse=True)
    _, ib = np.unique(b.ravel(), return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1), np.int64)
    np.add.at(table, (ia, ib), 1)
    pairs = lambda n: (n * (n - 1) / 2).sum()  # noqa: E731
    both, rows, cols, total = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), pairs(np.array([ia.size]))
    expected = rows * cols / total
    top = (rows + cols) / 2 - expected
    return 1.0 if top == 0 else float((both - expected) / top)


def region_agreement(images: dict, sizes: list) -> list[str]:
    """What slic's region_size 1024 does to the segments (mean adjusted Rand index over windows,
    per level) and to the labels of reseg-clip-slic (share of pixels with the same label)."""
    import numpy as np
    from PIL import Image

    from resegzoo.masks.superpixels import build_slic
    from resegzoo.masks.windows import generate_for_windows
    from resegzoo.segmenter.windows import WindowPlan

    lines = []
    for size in sizes:
        image = np.asarray(Image.open(images[size]).convert("RGB"))
        windows = list(WindowPlan.make(size[0], size[1], WINDOW, STRIDE, "shift").windows)
        default = generate_for_windows(build_slic(), image, windows)
        regions = generate_for_windows(build_slic(region_size=1024), image, windows)
        ari = [np.mean([adjusted_rand(d[level], r[level]) for d, r in zip(default, regions)])
               for level in range(default[0].shape[0])]
        line = f"{size[0]}x{size[1]}: segments vs the default, mean adjusted Rand index per level " + \
               ", ".join(f"{v:.3f}" for v in ari)
        outputs = [Path(images[size]).with_name(f"out-{key}-{size[0]}x{size[1]}.png")
                   for key in ("reseg-clip-slic", "reseg-clip-slic-regions")]
        if all(p.exists() for p in outputs):
            a, b = (np.asarray(Image.open(p)) for p in outputs)
            line += f"; labels of reseg-clip-slic equal on {np.mean(a == b):.1%} of the pixels"
        lines.append(line)
    return lines


def load_line() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1/5/15 min), {os.cpu_count()} CPUs"
    except OSError:
        return "load average unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segearth-ov", default=os.environ.get("SEGEARTH_OV_ROOT"),
                        help="a checkout of likyoo/SegEarth-OV (default: $SEGEARTH_OV_ROOT)")
    parser.add_argument("--sizes", default="448x448,672x896", help="HxW of the test images, comma-separated")
    parser.add_argument("--recipes", default=",".join(k for k in RECIPES if k != "reseg-clip-sam"),
                        help=f"comma-separated, from: {', '.join(RECIPES)} (reseg-clip-sam is slow on a CPU: "
                             "add it by name)")
    parser.add_argument("--sam-sizes", default=None, help="sizes reseg-clip-sam runs on (default: the first)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per side")
    parser.add_argument("--work", default=None, help="a folder for the model and images (default: a temporary one)")
    parser.add_argument("--json", default=None, help="write every measurement here too")
    parser.add_argument("--worker", choices=("peer", "resegzoo"), help=argparse.SUPPRESS)
    parser.add_argument("--names", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.recipes = [r for r in args.recipes.split(",") if r]
    unknown = sorted(set(args.recipes) - set(RECIPES))
    if unknown:
        parser.error(f"unknown recipes {unknown}; choose from {', '.join(RECIPES)}")
    if args.worker == "peer":
        peer_worker(args)
        return 0
    if args.worker == "resegzoo":
        resegzoo_worker(args)
        return 0
    if not args.segearth_ov:
        parser.error("give --segearth-ov PATH or set SEGEARTH_OV_ROOT (a checkout of likyoo/SegEarth-OV)")
    args.names = str(Path(args.segearth_ov) / "configs" / "cls_vaihingen.txt")
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    sam_sizes = sizes[:1] if args.sam_sizes is None else [tuple(int(v) for v in s.split("x")) for s in args.sam_sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        args.work = args.work or tmp
        images = prepare(args, sizes)
        start_load = load_line()
        peer = Worker("peer", args, [])
        ours = Worker("resegzoo", args, args.recipes)
        rows: dict[tuple[str, tuple[int, int]], list[dict]] = {}
        parity = {}
        try:
            for round_ in range(args.repeats):
                for size in sizes:
                    order = [PEER] + args.recipes
                    shift = round_ % len(order)
                    order = order[shift:] + order[:shift]
                    for key in order:
                        if key == "reseg-clip-sam" and size not in sam_sizes:
                            continue
                        check = round_ == 0 and key in (PEER, "segearth-ov")
                        side = "peer" if key == PEER else "ours"
                        logits = str(Path(args.work) / f"logits-{side}-{size[0]}x{size[1]}.npy") if check else None
                        if key == PEER:
                            answer = peer.ask({"image": images[size], "logits": logits})
                        else:
                            answer = ours.ask({"recipe": key, "image": images[size], "logits": logits,
                                               "out": str(Path(args.work) / f"out-{key}-{size[0]}x{size[1]}.png")})
                        rows.setdefault((key, size), []).append(answer)
                        print(f"round {round_ + 1}/{args.repeats} {size[0]}x{size[1]} {key}: "
                              f"{answer['cpu']:.2f} CPU-s {answer['wall']:.2f} s", file=sys.stderr, flush=True)
            for size in sizes:
                a = Path(args.work) / f"logits-peer-{size[0]}x{size[1]}.npy"
                b = Path(args.work) / f"logits-ours-{size[0]}x{size[1]}.npy"
                if a.exists() and b.exists():
                    import numpy as np

                    parity[size] = float(np.abs(np.load(a) - np.load(b)).max())
        finally:
            peer.close()
            ours.close()
        end_load = load_line()
        agreement = region_agreement(images, sizes) if "reseg-clip-slic-regions" in args.recipes else []
        report(args, sizes, rows, parity, start_load, end_load)
        if agreement:
            print("\nslic region_size 1024 (an option) against the default (each window on its own):")
            for line in agreement:
                print("  " + line)
    return 0


def report(args, sizes, rows, parity, start_load, end_load) -> None:
    import torch

    print(f"ViT-B-16 (random weights, seed 0), CPU, torch threads {args.threads} per side, {args.repeats} "
          f"interleaved rounds; windows {WINDOW} px, stride {STRIDE}; torch {torch.__version__}")
    print(f"start: {start_load}; end: {end_load}")
    print("Per image: CPU s and wall s of the segmentation (read/write excluded), median over rounds; ratio = "
          "median of the per-round ratios to the baseline of the same round [min-max].")
    for size in sizes:
        base = rows[(PEER, size)]
        print(f"\n{size[0]}x{size[1]}" + (f" (segearth-ov vs the peer's logits: max |diff| {parity[size]:.1e})"
                                           if size in parity else ""))
        head = "| recipe | CPU s | CPU ratio | wall s | wall ratio |"
        line = "|---|---|---|---|---|"
        if args.threads == 1:
            head += " " + " | ".join(f"{s} CPU s" for s in SPLIT) + " |"
            line += "---|" * len(SPLIT)
        print(head)
        print(line)
        for key in [PEER] + args.recipes:
            got = rows.get((key, size))
            if not got:
                continue
            n = min(len(got), len(base))
            cpu_r = [got[i]["cpu"] / base[i]["cpu"] for i in range(n)]
            wall_r = [got[i]["wall"] / base[i]["wall"] for i in range(n)]
            cells = [key, f"{statistics.median(g['cpu'] for g in got):.2f}",
                     f"{statistics.median(cpu_r):.2f}x [{min(cpu_r):.2f}-{max(cpu_r):.2f}]",
                     f"{statistics.median(g['wall'] for g in got):.2f}",
                     f"{statistics.median(wall_r):.2f}x [{min(wall_r):.2f}-{max(wall_r):.2f}]"]
            if args.threads == 1:
                cells += (["-"] * len(SPLIT) if key == PEER else
                          [f"{statistics.median(g['split'][s] for g in got):.2f}" for s in SPLIT])
            print("| " + " | ".join(cells) + " |")
    text_peer = rows[(PEER, sizes[0])][0]["text"]
    first = rows[(args.recipes[0], sizes[0])][0]["text"] if args.recipes else (0.0, 0.0)
    print(f"\nText pass on a fresh cache (once per vocabulary, not per image): the peer's __init__ "
          f"{text_peer[0]:.2f} CPU-s ({text_peer[1]:.2f} s), resegzoo {first[0]:.2f} CPU-s ({first[1]:.2f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "threads": args.threads, "repeats": args.repeats, "load": [start_load, end_load],
            "parity": {f"{h}x{w}": v for (h, w), v in parity.items()},
            "rows": [{"recipe": k, "size": f"{s[0]}x{s[1]}", "runs": v} for (k, s), v in rows.items()]}, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
