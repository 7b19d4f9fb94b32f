"""docs/change.md's pictures: a pair of dates made from tests/data/demo_tile.png, run through
``resegzoo change`` with the test suite's colour-change method (tests/method_plugin: each class's
score is its colour's closeness, its features are the colours; no model), the second date in
another CRS and resolution, then the outputs drawn.

    PYTHONPATH=$PWD python docs/images/change_pictures.py     # writes docs/images/change-*.png

SAM 3 (the real method, ``--model sam3``) is gated and was not available where this was written:
these pictures show what the command does with the data, not SAM 3's quality.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: the demo tile's colours (measured) as the classes' colours of the colour-change method
COLOURS = {"building": [189, 90, 72], "tree": [29, 88, 34], "water": [39, 82, 150]}
GRASS = (111, 139, 81)


def make_pair(folder: Path) -> tuple[Path, Path]:
    """2019: the demo tile (4x, 0.25 m, EPSG:32632). 2023: a roof demolished (grass now), a new one
    built, a tree felled, the light a little warmer; delivered in WGS 84 at another resolution."""
    import rasterio
    from affine import Affine
    from PIL import Image
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    tile = np.asarray(Image.open(REPO / "tests" / "data" / "demo_tile.png").convert("RGB"))
    before = np.kron(tile, np.ones((4, 4, 1), np.uint8))
    rng = np.random.default_rng(0)
    after = before.astype(np.int16)
    noise = rng.normal(0, 5, after.shape[:2] + (3,))
    after[80:280, 80:320] = np.add(GRASS, noise[80:280, 80:320])                # the top-left roof demolished
    after[600:688, 320:456] = np.add(COLOURS["building"], noise[600:688, 320:456])  # a new roof on the lawn
    yy, xx = np.mgrid[:1024, :1024]
    felled = (yy - 342) ** 2 + (xx - 382) ** 2 < 60 ** 2  # the tree beside the old roof
    after[felled] = np.add(GRASS, noise[felled])
    after = np.clip(after * np.array([1.04, 1.02, 0.98]), 0, 255).astype(np.uint8)
    transform = Affine(0.25, 0, 500000, 0, -0.25, 5800000)
    profile = dict(driver="GTiff", height=1024, width=1024, count=3, dtype="uint8", crs="EPSG:32632",
                   transform=transform)
    first = folder / "2019.tif"
    with rasterio.open(first, "w", **profile) as dst:
        dst.write(before.transpose(2, 0, 1))
    dst_transform, width, height = calculate_default_transform("EPSG:32632", "EPSG:4326", 1024, 1024,
                                                               *rasterio.transform.array_bounds(1024, 1024, transform),
                                                               resolution=(3.5e-6, 3.5e-6))
    warped = np.zeros((3, height, width), np.uint8)
    reproject(after.transpose(2, 0, 1), warped, src_transform=transform, src_crs="EPSG:32632",
              dst_transform=dst_transform, dst_crs="EPSG:4326", resampling=Resampling.bilinear)
    second = folder / "2023.tif"
    with rasterio.open(second, "w", **{**profile, "height": height, "width": width, "crs": "EPSG:4326",
                                       "transform": dst_transform, "nodata": 0}) as dst:
        dst.write(warped)
    return first, second


def main() -> None:
    from PIL import Image

    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        first, second = make_pair(folder)
        recipe = folder / "colours.yaml"
        # features: the colours centred on grey (their angle tells colours apart)
        settings = {"colours": COLOURS, "feature_offset": 0.5, "feature_bias": 0.1}
        recipe.write_text("method: {name: colour-change, settings: " + json.dumps(settings) + "}\n"
                          "inference: {window: 256}\n")
        site = folder / "site" / "resegzoo_colour_method-0.1.dist-info"
        site.mkdir(parents=True)
        (site / "METADATA").write_text("Metadata-Version: 2.1\nName: resegzoo-colour-method\nVersion: 0.1\n")
        (site / "entry_points.txt").write_text("[resegzoo]\ncolour = resegzoo_colour_method\n")
        env_path = f"{REPO}:{REPO / 'tests' / 'method_plugin'}:{site.parent}"
        out = folder / "out"
        command = [sys.executable, "-c", "from resegzoo.cli import main; main()", "change", str(first), str(second),
                   "--classes", "building; tree; water", "--recipe", str(recipe), "--tile-size", "512",
                   "--out", str(out)]
        done = subprocess.run(command, env={"PYTHONPATH": env_path, "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True)
        print(done.stdout, done.stderr[-2000:])
        done.check_returncode()
        overlay = Image.open(out / "change.overlay.png")  # half size, 128 colours: small enough to ship
        overlay = overlay.resize((overlay.width // 2, overlay.height // 2), Image.LANCZOS)
        overlay.quantize(128).save(HERE / "change-overlay.png", optimize=True)
        _from_to(out, HERE / "change-from-to.png")
        print((out / "change.json").read_text())


def _from_to(out: Path, path: Path) -> None:
    """What each changed pixel was (left) and became (right), in the classes' colours."""
    import rasterio
    from PIL import Image

    from resegzoo.outputs.imageio import draw_legend, make_palette

    names = ["building", "tree", "water", "background"]
    palette = np.array(make_palette(names), np.uint8)
    panels = []
    for name in ("change.from.tif", "change.to.tif"):
        with rasterio.open(out / name) as src:
            labels = src.read(1, out_shape=(512, 512))
        rgb = np.full(labels.shape + (3,), 235, np.uint8)
        known = labels < len(names)
        rgb[known] = palette[labels[known]]
        panels.append(rgb)
    gap = np.full((512, 8, 3), 255, np.uint8)
    image = Image.fromarray(np.concatenate([panels[0], gap, panels[1]], axis=1))
    legend = draw_legend([tuple(c) for c in palette], names, 512)
    canvas = Image.new("RGB", (image.width + legend.width, 512), (255, 255, 255))
    canvas.paste(image, (0, 0))
    canvas.paste(legend, (image.width, 0))
    canvas.save(path)


if __name__ == "__main__":
    main()
