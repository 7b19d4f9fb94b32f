#!/usr/bin/env python
"""`segment --objects` on a large synthetic raster: objects per second and peak memory, against the
labels alone measured in the same run.

Writes a GeoTIFF of SIZE x SIZE px (strip by strip: the generator never holds the raster) with one
rectangle of 12-40 px in each SPACING x SPACING cell, in the four colours of the test suite's colour
method (tests/method_plugin: one instance per patch of a name's colour; fast, exact, no model:
SAM 3 would time SAM 3, not the objects), so the answer is known: (SIZE / SPACING)^2 objects, many
across window and block borders. Then runs `resegzoo segment` on it in a fresh process each:

- `labels`: the labels alone (the baseline);
- `objects`: `--objects` (the GeoPackage);
- `objects+raster`: `--objects --objects-raster` (and the uint32 id COG);

and prints wall seconds, objects found (and whether that is the painted count), objects per second,
and each process's peak RSS, with ratios to the baseline. Memory of the objects themselves is the
difference to the baseline: blocks are the budget (the probabilities of a block dominate).

    python benchmarks/bench_objects.py [--size 20000] [--spacing 80] [--tile 4096] [--window 512]

Times are wall-clock on whatever machine runs it; on a shared machine compare ratios, not seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "tests" / "method_plugin"
CLASSES = ["red", "green", "blue", "yellow"]


def painted_raster(path: Path, size: int, spacing: int, seed: int = 0) -> int:
    """The synthetic scene, written in strips of cells; returns the number of objects painted."""
    import rasterio
    from affine import Affine

    sys.path.insert(0, str(PLUGIN_DIR))
    from resegzoo_colour_method import COLOURS

    colours = np.array([COLOURS[c] for c in CLASSES], np.uint8)
    rng = np.random.default_rng(seed)
    cells = size // spacing
    count = 0
    with rasterio.open(path, "w", driver="GTiff", height=size, width=size, count=3, dtype="uint8",
                       crs="EPSG:32632", transform=Affine(0.5, 0, 500000, 0, -0.5, 5800000), tiled=True,
                       blockxsize=512, blockysize=512, compress="deflate", BIGTIFF="YES") as dst:
        for row in range(-(-size // spacing)):
            y0 = row * spacing
            rows = min(spacing, size - y0)
            strip = np.full((rows, size, 3), 250, np.uint8)
            if row < cells:
                h, w = rng.integers(12, 41, (2, cells))
                dy, dx = rng.integers(0, spacing - 40, (2, cells))
                kinds = rng.integers(0, len(CLASSES), cells)
                for col in range(cells):
                    x = col * spacing + dx[col]
                    strip[dy[col]:dy[col] + h[col], x:x + w[col]] = colours[kinds[col]]
                count += cells
            from rasterio.windows import Window

            dst.write(strip.transpose(2, 0, 1), window=Window(0, y0, size, rows))
    return count


CHILD = r"""
import json, resource, sys, time
from resegzoo.cli import build_cli
start = time.perf_counter()
try:
    build_cli()(sys.argv[1:], standalone_mode=False)
except SystemExit as exc:
    if exc.code:
        raise
print("BENCH " + json.dumps({"seconds": time.perf_counter() - start,
                             "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def plugin_site(folder: Path) -> str:
    info = folder / "resegzoo_colour_method-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: resegzoo-colour-method\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[resegzoo]\ncolour = resegzoo_colour_method\n")
    return os.pathsep.join([str(PLUGIN_DIR), str(folder)])


def run(name: str, src: Path, recipe: Path, out: Path, extra: list[str], env: dict[str, str]) -> dict:
    args = ["segment", str(src), "--classes", "; ".join(CLASSES), "--recipe", str(recipe), "--out", str(out / name),
            "--quiet", *extra]
    done = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    stats = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("BENCH "))[6:])
    side = json.loads(next((out / name).glob("*.json")).read_text())
    stats["objects"] = side.get("objects", {}).get("count")
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--spacing", type=int, default=80, help="one object per SPACING x SPACING px cell")
    parser.add_argument("--tile", type=int, default=4096, help="inference.tile_size (block core side)")
    parser.add_argument("--window", type=int, default=512, help="inference.window (stride: the same)")
    parser.add_argument("--keep", type=Path, help="write into this folder and keep it (default: a temporary one)")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="resegzoo-bench-objects-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([plugin_site(work / "site"), str(ROOT),
                                                        os.environ.get("PYTHONPATH", "")])}
    src = work / "scene.tif"
    start = time.perf_counter()
    painted = painted_raster(src, args.size, args.spacing)
    print(f"{args.size:,} x {args.size:,} px, {painted:,} objects painted ({time.perf_counter() - start:.0f} s to write)")
    recipe = work / "recipe.yaml"
    recipe.write_text(f"method: colour\ninference: {{window: {args.window}, stride: {args.window}, "
                      f"tile_size: {args.tile}, tile_overlap: 0}}\n")
    runs = {}
    for name, extra in (("labels", []), ("objects", ["--objects"]),
                        ("objects+raster", ["--objects", "--objects-raster"])):
        runs[name] = run(name, src, recipe, work / "out", extra, env)
        print(f"  {name}: {runs[name]['seconds']:.0f} s, {runs[name]['rss_mb']:.0f} MB", flush=True)
    base = runs["labels"]
    print(f"\n| run | seconds | x labels | objects | objects/s | peak RSS MB | x labels |")
    print("|---|---|---|---|---|---|---|")
    for name, r in runs.items():
        found = "-" if r["objects"] is None else f"{r['objects']:,}" + ("" if r["objects"] == painted else " (!)")
        rate = "-" if r["objects"] is None else f"{r['objects'] / r['seconds']:,.0f}"
        print(f"| {name} | {r['seconds']:.0f} | {r['seconds'] / base['seconds']:.2f} | {found} | {rate} | "
              f"{r['rss_mb']:.0f} | {r['rss_mb'] / base['rss_mb']:.2f} |")
    print(f"\n(!) marks a count other than the {painted:,} painted; the files are in {work}"
          if args.keep else "")


if __name__ == "__main__":
    main()
