"""Renders docs/images/objects.png: `resegzoo segment --objects` on a synthetic scene, each object's
outline in its class colour with its score, over the image, with the block grid (objects cross it
and stay whole).

The method is the test suite's colour plugin (tests/method_plugin: one instance per patch of a
name's colour a window sees), installed here for this process as the tests install it; the scene is
painted with rectangles and discs, many of them across the 32 px windows and the 160 px blocks.

    PYTHONPATH=. python docs/images/objects_picture.py [OUT.png]
"""
from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = ROOT / "tests" / "method_plugin"
H, W, TILE = 360, 560, 160


def install_plugin(site: Path) -> None:
    info = site / "resegzoo_colour_method-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: resegzoo-colour-method\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[resegzoo]\ncolour = resegzoo_colour_method\n")
    sys.path[:0] = [str(PLUGIN_DIR), str(site)]
    importlib.invalidate_caches()
    from resegzoo.plugins.registry import get_registry

    get_registry(refresh=True)


def scene(seed: int = 3) -> np.ndarray:
    from resegzoo_colour_method import COLOURS

    rng = np.random.default_rng(seed)
    image = np.full((H, W, 3), 250, np.uint8)
    image[150:172, :] = (200, 200, 200)  # a road (no class)
    yy, xx = np.mgrid[:H, :W]
    for _ in range(22):  # roofs
        h, w = rng.integers(18, 46, 2)
        y, x = rng.integers(0, H - h), rng.integers(0, W - w)
        image[y:y + h, x:x + w] = COLOURS["red"]
    for _ in range(14):  # trees
        cy, cx, r = rng.integers(10, H - 10), rng.integers(10, W - 10), rng.integers(7, 16)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = COLOURS["green"]
    for k in range(12):  # cars on the road
        x = 10 + k * 46 + int(rng.integers(0, 12))
        image[154 + (k % 2) * 8:161 + (k % 2) * 8, x:x + 14] = COLOURS["blue"]
    image[230:300, 380:520] = COLOURS["yellow"]  # a field across two blocks
    return image


def main(out_png: Path) -> None:
    import rasterio
    from affine import Affine
    from PIL import Image, ImageDraw

    from resegzoo.api import GisOutputs, segment_files

    work = Path(tempfile.mkdtemp(prefix="resegzoo-objects-picture-"))
    install_plugin(work / "site")
    image = scene()
    src = work / "scene.tif"
    with rasterio.open(src, "w", driver="GTiff", height=H, width=W, count=3, dtype="uint8", crs="EPSG:32632",
                       transform=Affine(0.5, 0, 500000.0, 0, -0.5, 5800000.0)) as dst:
        dst.write(image.transpose(2, 0, 1))
    recipe = work / "recipe.yaml"
    recipe.write_text(f"method: colour\ninference: {{tile_size: {TILE}, tile_overlap: 16}}\n")
    classes = ["red", "green", "blue", "yellow"]
    result = segment_files([src], "; ".join(classes), work / "out", recipe=recipe,
                           gis=GisOutputs(objects=True, objects_raster=True))
    record = result.records[0]
    with rasterio.open(work / "out" / "scene.objects.tif") as ids_src:
        ids = ids_src.read(1).astype(np.int64)
    import pyogrio

    meta, _, _, fields = pyogrio.raw.read(str(work / "out" / "scene.objects.gpkg"), layer="objects")
    rows = [dict(zip(meta["fields"], values)) for values in zip(*fields)]
    from resegzoo.raster.blocks import plan_blocks

    # each object its own colour (a qualitative palette, in id order), to tell touching objects apart
    tones = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207),
             (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34)]
    scale = 2
    canvas = (image.astype(np.float32) * 0.5 + 255 * 0.5).astype(np.uint8)  # the image, faded
    outline = np.zeros((H, W), bool)
    outline[:-1] |= ids[:-1] != ids[1:]
    outline[1:] |= ids[1:] != ids[:-1]
    outline[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    outline[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    by_id = {int(r["object_id"]): r for r in rows}
    for object_id in by_id:
        canvas[outline & (ids == object_id)] = tones[object_id % len(tones)]
    picture = Image.fromarray(canvas).resize((W * scale, H * scale), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    blocks = plan_blocks(H, W, block=TILE, halo=32, window=32, stride=16)  # the run's blocks (cores)
    for x in sorted({b.core[1] for b in blocks} - {0}):
        for y in range(0, H * scale, 12):
            draw.line([(x * scale, y), (x * scale, y + 6)], fill=(60, 60, 60), width=1)
    for y in sorted({b.core[0] for b in blocks} - {0}):
        for x in range(0, W * scale, 12):
            draw.line([(x, y * scale), (x + 6, y * scale)], fill=(60, 60, 60), width=1)
    for object_id, row in by_id.items():
        ys, xs = np.nonzero(ids == object_id)
        draw.text((int(xs.min()) * scale + 3, int(ys.min()) * scale + 2), f"{object_id} {row['class']} {row['score']:.2f}",
                  fill=(0, 0, 0))
    counts = ", ".join(f"{n} {c}" for c, n in record["objects"]["per_class"].items())
    draw.text((6, H * scale - 14), f"{record['objects']['count']} objects ({counts}); dashed: block borders",
              fill=(0, 0, 0))
    out_png.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out_png, optimize=True)
    print(f"wrote {out_png}: {record['objects']['count']} objects, {record['blocks']} blocks")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images" / "objects.png")
