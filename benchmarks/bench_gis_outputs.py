#!/usr/bin/env python
"""Cost of the GIS outputs (`segment --cog`, `--vector`) relative to the labels alone.

For each size, writes a GeoTIFF of irregular class regions (smoothed noise) painted in the
oracle plugin's colours, runs `resegzoo segment` on it with the oracle model (the cheapest
"model" there is, so the ratios are upper bounds: a real CLIP makes the labels far dearer), then
times each GIS product made from the label raster it wrote, and prints seconds and the ratio to
the labels-only run measured in the same process. It also compares the strip-wise vectorisation
with rasterio.features.shapes over the whole array (no merging, all in memory).

    python benchmarks/bench_gis_outputs.py [--sizes 1024 2048 4096] [--smooth 6]

Needs the oracle plugin (pip install -e plugins/resegzoo-oracle). Times are wall-clock on whatever
machine runs it; on a shared machine, compare ratios, not seconds.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = ["red", "blue", "green", "yellow"]


def painted_scene(path: Path, size: int, smooth: float, seed: int = 0) -> None:
    import rasterio
    from affine import Affine
    from skimage.filters import gaussian

    from resegzoo_oracle import color_of

    rng = np.random.default_rng(seed)
    small = max(8, size // 4)  # smooth at a quarter of the size, then upsample: cheap big regions
    noise = np.stack([gaussian(rng.random((small, small)), smooth) for _ in CLASSES])
    labels = np.argmax(noise, axis=0).repeat(size // small + 1, 0).repeat(size // small + 1, 1)[:size, :size]
    image = np.zeros((3, size, size), np.uint8)
    for k, name in enumerate(CLASSES):
        image[:, labels == k] = np.array(color_of(name), np.uint8)[:, None]
    with rasterio.open(path, "w", driver="GTiff", height=size, width=size, count=3, dtype="uint8",
                       crs="EPSG:32632", transform=Affine(0.5, 0, 500000, 0, -0.5, 5800000),
                       tiled=True, blockxsize=256, blockysize=256, compress="deflate") as dst:
        dst.write(image)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--smooth", type=float, default=2.0, help="noise smoothing (px at a quarter size)")
    args = parser.parse_args()

    import rasterio
    from click.testing import CliRunner
    from rasterio.features import shapes

    from resegzoo.cli import build_cli
    from resegzoo.outputs.colours import palette_for_names
    from resegzoo.outputs.gis.cog import write_cog
    from resegzoo.outputs.gis.style import write_qml
    from resegzoo.outputs.gis.vector import vectorize, write_regions

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-gis-") as work:
        warm = Path(work) / "warm.tif"  # imports (skimage, pyogrio, GDAL drivers) outside the timings
        with rasterio.open(warm, "w", driver="GTiff", height=64, width=64, count=1, dtype="uint8") as dst:
            dst.write(np.arange(64 * 64, dtype=np.uint8).reshape(64, 64) % 3, 1)
        write_regions(Path(work) / "warm.gpkg", vectorize(warm, ["a", "b", "c"]))
        for size in args.sizes:
            folder = Path(work) / str(size)
            folder.mkdir()
            scene = folder / "scene.tif"
            painted_scene(scene, size, args.smooth)
            out = folder / "out"
            cli = ["segment", str(scene), "--model", "oracle", "--masks", "none", "--classes", "; ".join(CLASSES),
                   "--out", str(out)]
            t_labels, res = timed(lambda: CliRunner().invoke(build_cli(), cli, catch_exceptions=False))
            assert res.exit_code == 0, res.output
            labels = out / "scene.labels.tif"
            palette = palette_for_names(CLASSES)
            t_vec, regions = timed(lambda: vectorize(labels, CLASSES))
            t_gpkg, _ = timed(lambda: write_regions(folder / "r.gpkg", regions))
            t_geojson, _ = timed(lambda: write_regions(folder / "r.geojson", regions, "geojson"))
            t_simplify, _ = timed(lambda: vectorize(labels, CLASSES, simplify=1.0))
            with rasterio.open(labels) as src:
                array = src.read(1)
            t_whole, whole = timed(lambda: sum(1 for _ in shapes(array, mask=array != 255)))
            t_cog, _ = timed(lambda: (write_cog(labels, folder / "cog.tif", CLASSES, palette),
                                      write_qml(folder / "cog.qml", CLASSES, palette)))
            assert whole == len(regions), (whole, len(regions))
            rows.append((size, len(regions), t_labels, t_vec + t_gpkg, t_geojson, t_simplify, t_cog, t_whole, t_vec))

    print("\nGIS outputs vs labels alone (oracle model; ratios are upper bounds for real models)\n")
    print("| size | regions | labels s | --vector (gpkg) s | ratio | +geojson s | --simplify 1 s | --cog s | ratio "
          "| strips vs whole-array shapes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size, n, t_labels, t_vector, t_geojson, t_simplify, t_cog, t_whole, t_vec in rows:
        print(f"| {size}² | {n} | {t_labels:.2f} | {t_vector:.2f} | {t_vector / t_labels:.3f} | {t_geojson:.2f} | "
              f"{t_simplify:.2f} | {t_cog:.2f} | {t_cog / t_labels:.3f} | {t_vec / t_whole:.2f} |")


if __name__ == "__main__":
    main()
