"""``resegzoo change`` on a real-sized pair of GeoTIFFs on different grids: time and peak memory,
against ``resegzoo segment`` of the first date alone in the same run (same method, recipe, blocks).

The pair is generated: BEFORE in UTM (EPSG:32632, 0.5 m), AFTER the same place in WGS 84 at another
resolution (GDAL's reprojection), with squares ("buildings") that appear and disappear and nodata at
the edges. Both commands run the test suite's colour-change method (tests/method_plugin: scores from
colours, features the colours; no model), so the numbers are the pipeline's own cost (reading, the
warp, blocks, spool, the whole-raster steps, the outputs), not a model's. The change found is
checked against the squares painted (IoU), and the outputs' georeferencing against BEFORE's.

    python benchmarks/bench_change.py --size 4096 --tile-size 1024 --out /tmp/bench-change

Prints one table: seconds and peak RSS of each command, the ratio change / segment.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RED, BLUE, GREEN = (220, 30, 30), (20, 40, 230), (30, 200, 40)


def plugin_env(site: Path) -> dict[str, str]:
    """The environment in which resegzoo finds the test suite's colour methods (as conftest does)."""
    info = site / "resegzoo_colour_method-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: resegzoo-colour-method\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[resegzoo]\ncolour = resegzoo_colour_method\n")
    paths = [str(ROOT), str(ROOT / "tests" / "method_plugin"), str(site), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "HF_HUB_OFFLINE": "1"}


def make_pair(folder: Path, size: int, seed: int = 0) -> tuple[Path, Path, np.ndarray]:
    """BEFORE (UTM) and AFTER (WGS 84, another resolution), and the truth: 1 where a square appears
    or disappears (on BEFORE's grid)."""
    import rasterio
    from affine import Affine
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    rng = np.random.default_rng(seed)
    a = np.empty((size, size, 3), np.uint8)
    a[:] = GREEN
    a += rng.integers(0, 12, a.shape, dtype=np.uint8)
    b = a.copy()
    truth = np.zeros((size, size), np.uint8)
    count = max(4, (size // 128) ** 2 // 4)
    for k in range(count):
        y, x = rng.integers(8, size - 72, 2)
        h, w = rng.integers(16, 64, 2)
        colour = RED if k % 2 else BLUE
        kind = k % 3  # 0: appears, 1: disappears, 2: stays
        if kind != 0:
            a[y:y + h, x:x + w] = colour
        if kind != 1:
            b[y:y + h, x:x + w] = colour
        if kind != 2:
            truth[y:y + h, x:x + w] = 1
    transform = Affine(0.5, 0, 500000.0, 0, -0.5, 5800000.0)
    before = folder / "before.tif"
    profile = dict(driver="GTiff", height=size, width=size, count=3, dtype="uint8", crs="EPSG:32632",
                   transform=transform, nodata=0, tiled=True, blockxsize=512, blockysize=512, compress="deflate")
    with rasterio.open(before, "w", **profile) as dst:
        dst.write(a.transpose(2, 0, 1))
    dst_transform, width, height = calculate_default_transform(
        "EPSG:32632", "EPSG:4326", size, size, *rasterio.transform.array_bounds(size, size, transform),
        resolution=(5.5e-6, 5.5e-6))
    data = np.zeros((3, height, width), np.uint8)
    reproject(b.transpose(2, 0, 1), data, src_transform=transform, src_crs="EPSG:32632", dst_transform=dst_transform,
              dst_crs="EPSG:4326", resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
    after = folder / "after.tif"
    with rasterio.open(after, "w", **{**profile, "height": height, "width": width, "crs": "EPSG:4326",
                                      "transform": dst_transform}) as dst:
        dst.write(data)
    return before, after, truth


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the child's peak RSS (MiB) of one command run in a fresh process."""
    wrapper = ("import resource, subprocess, sys, json\n"
               "rc = subprocess.call(sys.argv[1:])\n"
               "print(json.dumps([rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))\n")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, *command], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    rc, rss = json.loads(done.stdout.strip().splitlines()[-1])
    if rc != 0:
        sys.exit(f"{' '.join(command[:3])}: exit {rc}\n{done.stderr[-3000:]}")
    return seconds, rss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--tile-size", type=int, default=1024)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-change-"))
    out.mkdir(parents=True, exist_ok=True)
    env = plugin_env(out / "site")
    before, after, truth = make_pair(out, args.size)
    recipe = out / "colour.yaml"
    recipe.write_text(f"method: colour-change\ninference: {{window: {args.window}, tile_overlap: 32}}\n")
    cli = [sys.executable, "-c", "from resegzoo.cli import main; main()"]
    common = ["--classes", "red; blue", "--recipe", str(recipe), "--tile-size", str(args.tile_size), "-q"]
    seg_s, seg_rss = timed([*cli, "segment", str(before), "--out", str(out / "segment"), "--overwrite", *common], env)
    chg_s, chg_rss = timed([*cli, "change", str(before), str(after), "--out", str(out / "change"), "--overwrite",
                            *common], env)

    import rasterio

    with rasterio.open(out / "change" / "change.tif") as src, rasterio.open(before) as ref:
        assert src.crs == ref.crs and src.transform == ref.transform and src.shape == ref.shape
        found = src.read(1)
    valid = found != 255
    got, want = (found == 1) & valid, (truth == 1) & valid
    iou = (got & want).sum() / max(1, (got | want).sum())
    record = json.loads((out / "change" / "change.json").read_text())
    print(f"pair: {args.size} x {args.size} px BEFORE (EPSG:32632, 0.5 m); AFTER in EPSG:4326 at 5.5e-6 deg, "
          f"read onto BEFORE's grid; {record['blocks']} block(s) of {args.tile_size} px; colour-change method, "
          f"window {args.window}")
    print(f"outputs on BEFORE's grid and CRS: yes; changed pixels {record['pixels']['changed']:,}, "
          f"{record['polygons']} polygon(s); IoU with the painted change {iou:.4f}")
    print()
    print("| command | seconds | peak RSS (MiB) | ratio to segment |")
    print("|---|---|---|---|")
    print(f"| segment BEFORE | {seg_s:.1f} | {seg_rss:.0f} | 1.00 |")
    print(f"| change BEFORE AFTER | {chg_s:.1f} | {chg_rss:.0f} | {chg_s / seg_s:.2f} |")


if __name__ == "__main__":
    main()
