"""Peak memory and speed of `segment_raster` as rasters grow (issue 9): GeoTIFF and VRT inputs.

Each size runs in a fresh Python process (so its peak RSS is its own), segmenting a generated
raster block by block with a tiny model (the colour oracle by default: the cost measured is the
reader/planner/writer and window machinery, not a big CLIP). Peak RSS should stay flat (within
10 %) across sizes: memory is bounded by the block, not the raster. Ratios are against the
smallest size measured in the same run.

    PYTHONPATH=$PWD python benchmarks/bench_raster.py --sizes 1024,2048,4096 --block 512
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    from resegzoo.api import RasterOptions, Segmenter, Vocabulary, load_recipe, segment_raster
    from resegzoo_oracle import build

    src, dst, block, window = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    seg = Segmenter(build(), None, load_recipe(None, window=window, stride=window))
    vocab = Vocabulary.parse("red; blue; green; yellow")
    seg.method.text_embeddings(vocab)
    start = time.perf_counter()
    run = segment_raster(seg, vocab, src, dst, RasterOptions(block=block))
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "blocks": len(run.plan.blocks),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


def make_geotiff(path: Path, size: int) -> None:
    """A painted block mosaic, written window by window (the generator's memory stays small)."""
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    colours = np.array([(255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 0)], np.uint8)
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", driver="GTiff", height=size, width=size, count=3, dtype="uint8", tiled=True,
                       blockxsize=256, blockysize=256, compress="deflate", crs="EPSG:32632",
                       transform=Affine(0.5, 0, 500000, 0, -0.5, 5800000)) as dst:
        step = 1024
        for y in range(0, size, step):
            for x in range(0, size, step):
                h, w = min(step, size - y), min(step, size - x)
                cells = rng.integers(0, 4, size=(-(-h // 32), -(-w // 32)))
                labels = cells.repeat(32, 0).repeat(32, 1)[:h, :w]
                dst.write(np.moveaxis(colours[labels], -1, 0), window=Window(x, y, w, h))


def make_vrt(path: Path, tif: Path) -> None:
    import rasterio

    with rasterio.open(tif) as src:
        gt = ", ".join(repr(v) for v in src.transform.to_gdal())
        srs, h, w = src.crs.to_wkt(), src.height, src.width
    bands = "".join(f'<VRTRasterBand dataType="Byte" band="{b}"><SimpleSource><SourceFilename relativeToVRT="1">'
                    f'{tif.name}</SourceFilename><SourceBand>{b}</SourceBand></SimpleSource></VRTRasterBand>'
                    for b in (1, 2, 3))
    path.write_text(f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><SRS>{srs}</SRS>'
                    f'<GeoTransform>{gt}</GeoTransform>{bands}</VRTDataset>')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1024,2048,4096", help="raster sides in px (the issue asks 2k, 8k, 16k; "
                    "on a shared 2-core machine smaller sizes keep the run short)")
    ap.add_argument("--block", type=int, default=512)
    ap.add_argument("--window", type=int, default=64)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            tif = Path(tmp) / f"r{size}.tif"
            make_geotiff(tif, size)
            vrt = Path(tmp) / f"r{size}.vrt"
            make_vrt(vrt, tif)
            for fmt, src in (("GeoTIFF", tif), ("VRT", vrt)):
                out = Path(tmp) / f"r{size}.{fmt}.labels.tif"
                res = subprocess.run([sys.executable, "-c", CHILD, str(src), str(out), str(args.block), str(args.window)],
                                     capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
                if res.returncode:
                    sys.exit(res.stderr)
                row = json.loads(res.stdout.strip().splitlines()[-1])
                rows.append({"format": fmt, "size": size, **row})
                out.unlink()
    print(f"block {args.block} px, window {args.window} px, oracle model; ratios vs the smallest size, same format")
    print(f"{'format':<8} {'size':>7} {'MP':>7} {'blocks':>6} {'s/MP':>7} {'peak RSS MB':>12} {'RSS ratio':>10}")
    for r in rows:
        base = next(b for b in rows if b["format"] == r["format"])
        mp = r["size"] ** 2 / 1e6
        print(f"{r['format']:<8} {r['size']:>7} {mp:>7.1f} {r['blocks']:>6} {r['seconds'] / mp:>7.2f} "
              f"{r['peak_rss_mb']:>12.0f} {r['peak_rss_mb'] / base['peak_rss_mb']:>10.3f}")


if __name__ == "__main__":
    main()
