"""Issue 25 item 2: `resegzoo change BEFORE AFTER` on GeoTIFFs, through a method with known scores and
features (tests/method_plugin's colour-change: each name's score is a function of the pixel's colour,
its features are the colour itself). The result is checked against the rule applied to the whole
raster at once, written out here with scikit-image as the peer runs it; blocks, their borders, Otsu
over the whole raster, other grids, nodata, resuming and the outputs' georeferencing on top."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from resegzoo.cli import build_cli

COLOURS = {"red": (220, 30, 30), "blue": (20, 40, 230)}
GREEN, DARK_RED = (30, 200, 40), (81, 11, 11)
CLASSES = "red; blue"
H, W = 160, 200
TRANSFORM = (0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0)
#: the colour method's windows and a small halo: fast blocks (tile-size 64: 2 x 3 blocks)
RECIPE = "method: colour-change\ninference: {window: 64, tile_overlap: 16}\n"


def cli(*args: object):
    return CliRunner().invoke(build_cli(), [str(a) for a in args], catch_exceptions=False)


# -- the scene --------------------------------------------------------------------------------
def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(before, after, valid) of green ground with: Z, a blue square that is gone after; X, a red
    square that appears across the corner of four blocks; Y, a blue bar across a block border
    whose lower 45% disappears (its component is covered enough: unchanged as a whole, changed in
    the lower block alone); W, dark red turning red (a weak change: E below the whole raster's
    Otsu threshold, above a threshold of its block alone); nodata at the before date on the left, at
    the after date on the right."""
    a = np.empty((H, W, 3), np.uint8)
    a[:] = GREEN
    b = a.copy()
    a[5:17, 6:20] = COLOURS["blue"]                       # Z
    b[70:95, 55:80] = COLOURS["red"]                      # X (block cuts at row 80, column 67)
    a[60:100, 150:156] = COLOURS["blue"]                  # Y (row 80 cuts it)
    b[60:82, 150:156] = COLOURS["blue"]
    a[10:40, 140:170] = DARK_RED                          # W (in the upper right block, away from X)
    b[10:40, 140:170] = COLOURS["red"]
    return a, b, before_valid() & after_valid()


def before_valid() -> np.ndarray:
    """The first date has no data on its left 3 columns, the second on its right 12 (either date's
    nodata is the result's)."""
    valid = np.ones((H, W), bool)
    valid[:, :3] = False
    return valid


def after_valid() -> np.ndarray:
    valid = np.ones((H, W), bool)
    valid[:, 188:] = False
    return valid


def write_tif(path: Path, image: np.ndarray, valid: np.ndarray | None = None, crs: str = "EPSG:32632",
              transform: tuple = TRANSFORM) -> Path:
    import rasterio
    from affine import Affine

    data = image.transpose(2, 0, 1).copy()
    if valid is not None:
        data[:, ~valid] = 0
    with rasterio.open(path, "w", driver="GTiff", height=image.shape[0], width=image.shape[1], count=3,
                       dtype="uint8", crs=crs, transform=Affine(*transform), nodata=0) as dst:
        dst.write(data)
    return path


# -- the rule on the whole raster at once, as the peer writes it ------------------------------
def colour_scores(image: np.ndarray, width: float = 0.1) -> np.ndarray:
    x = image.astype(np.float32)
    return np.stack([np.exp(-((np.linalg.norm(x - np.float32(COLOURS[n]), axis=-1) / (255 * 3 ** 0.5)) / width) ** 2)
                     for n in ("red", "blue")]).astype(np.float32)


def reference_change(a: np.ndarray, b: np.ndarray, valid: np.ndarray, prob_thd: float = 0.4,
                     coverage: float = 0.3) -> tuple[np.ndarray, list[float], list[np.ndarray]]:
    from scipy.ndimage import maximum_filter
    from skimage import measure
    from skimage.filters import threshold_otsu

    la, lb = colour_scores(a), colour_scores(b)
    fa = np.concatenate([a / 255.0, np.ones(a.shape[:2] + (1,))], -1)
    fb = np.concatenate([b / 255.0, np.ones(b.shape[:2] + (1,))], -1)
    cos = (fa * fb).sum(-1) / np.sqrt((fa * fa).sum(-1) * (fb * fb).sum(-1))
    dist = (1.0 - (cos * 0.5 + 0.5)).astype(np.float32)
    fg_a = (la.max(0) >= prob_thd) & valid
    fg_b = (lb.max(0) >= prob_thd) & valid

    def one_way(source, target):
        lbl = measure.label(source, connectivity=2)
        area = np.bincount(lbl.ravel())
        cover = np.bincount(lbl.ravel(), weights=target.ravel().astype(np.float64))
        ids = np.where(cover / np.maximum(area, 1) < coverage)[0]
        return np.isin(lbl, ids[ids != 0])

    dil_a = maximum_filter(fg_a.astype(np.uint8), size=5, mode="constant") > 0
    dil_b = maximum_filter(fg_b.astype(np.uint8), size=5, mode="constant") > 0
    objects = one_way(fg_a, dil_b) | one_way(fg_b, dil_a)
    pixels = np.zeros_like(valid)
    thresholds, energies = [], []
    for k in range(2):
        energy = (np.maximum(la[k], lb[k]) * np.abs(la[k] - lb[k]) * dist).astype(np.float32)
        values = energy[valid]
        t = max(float(threshold_otsu(values)), 0.01) if np.ptp(values) > 1e-4 else 0.01
        thresholds.append(t)
        energies.append(energy)
        pixels |= energy > t
    return np.where(valid, (objects & pixels).astype(np.uint8), 255).astype(np.uint8), thresholds, energies


def read_band(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    a, b, _ = scene()
    recipe = tmp_path / "colour.yaml"
    recipe.write_text(RECIPE)
    return write_tif(tmp_path / "2019.tif", a, before_valid()), write_tif(tmp_path / "2023.tif", b, after_valid()), recipe


# -- the tests -----------------------------------------------------------------------------------
def test_blocks_give_the_whole_raster_rule_exactly(colour_plugin, pair, tmp_path, monkeypatch):
    from resegzoo.change import assemble

    # the whole-raster steps run in strips of 40 rows here: a strip edge at row 80 cuts X and Y as
    # the block border does (Y's piece below it alone would be changed), so both kinds are crossed
    monkeypatch.setattr(assemble, "STRIP_PIXELS", 40 * W)
    before, after, recipe = pair
    a, b, valid = scene()
    from skimage.filters import threshold_otsu

    want, thresholds, energies = reference_change(a, b, valid)
    # the scene tells the rule's whole-raster parts from per-block ones
    assert want[5:17, 6:20].all() and want[70:95, 55:80].all()  # Z and X
    assert not want[60:100, 150:156].any()  # Y: its component judged whole ...
    assert reference_change(a[80:], b[80:], valid[80:])[0][:20, 150:156].any()  # ... not its lower block's piece
    assert not want[10:40, 140:170].any()  # W: below the whole raster's threshold ...
    energy_w, its_block = energies[0][20, 150], energies[0][:80, 133:][valid[:80, 133:]]
    assert energy_w < thresholds[0] and energy_w > max(float(threshold_otsu(its_block)), 0.01)  # ... not its block's
    assert set(np.unique(want)) == {0, 1, 255}

    done = cli("change", before, after, "--classes", CLASSES, "--recipe", recipe, "--tile-size", 64,
               "--out", tmp_path / "blocks", "-q")
    assert done.exit_code == 0, done.output
    record = json.loads((tmp_path / "blocks" / "change.json").read_text())
    assert record["blocks"] == 6  # 2 x 3: cuts at row 80, columns 67 and 133
    got = read_band(tmp_path / "blocks" / "change.tif")
    np.testing.assert_array_equal(got, want)
    assert [record["thresholds"][n] for n in ("red", "blue")] == pytest.approx(thresholds, rel=1e-5)
    one = cli("change", before, after, "--classes", CLASSES, "--recipe", recipe, "--tile-size", 4096,
              "--out", tmp_path / "one", "-q")
    assert one.exit_code == 0, one.output
    assert json.loads((tmp_path / "one" / "change.json").read_text())["blocks"] == 1
    np.testing.assert_array_equal(read_band(tmp_path / "one" / "change.tif"), got)


def test_outputs_from_to_polygons_overlay_and_sidecar(colour_plugin, pair, tmp_path):
    import pyogrio.raw
    import rasterio

    before, after, recipe = pair
    out = tmp_path / "out"
    done = cli("change", before, after, "--classes", CLASSES, "--recipe", recipe, "--tile-size", 64, "--out", out)
    assert done.exit_code == 0, done.output
    assert "background -> red" in done.output and "blue -> background" in done.output
    with rasterio.open(out / "change.tif") as src:
        assert src.crs.to_epsg() == 32632 and tuple(src.transform)[:6] == TRANSFORM
        assert src.nodata == 255 and src.overviews(1) is not None
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    change = read_band(out / "change.tif")
    before_labels, after_labels = read_band(out / "change.from.tif"), read_band(out / "change.to.tif")
    changed = change == 1
    assert ((before_labels != 255) == changed).all() and ((after_labels != 255) == changed).all()
    assert (before_labels[5:17, 6:20] == 1).all() and (after_labels[5:17, 6:20] == 2).all()  # blue -> background
    assert (before_labels[70:95, 55:80] == 2).all() and (after_labels[70:95, 55:80] == 0).all()  # background -> red
    assert "blue" in (out / "change.from.tif.aux.xml").read_text()
    meta, _, _, fields = pyogrio.raw.read(out / "change.gpkg")
    columns = dict(zip(meta["fields"], fields))
    rows = sorted(zip(columns["before"], columns["after"], columns["pixels"], columns["area"]))
    assert rows == [("background", "red", 625, 625 * 0.25), ("blue", "background", 168, 168 * 0.25)]
    assert (columns["energy_ratio"] > 1).all() and (columns["coverage"] < 0.3).all()
    assert "32632" in meta["crs"]
    record = json.loads((out / "change.json").read_text())
    assert record["pixels"]["changed"] == 625 + 168 and record["pixels"]["nodata"] == (3 + 12) * H
    assert record["settings"]["change"]["background_threshold"] == 0.4
    assert {(t["before"], t["after"]) for t in record["transitions"]} == {("background", "red"), ("blue", "background")}
    from PIL import Image

    with Image.open(out / "change.overlay.png") as overlay:
        assert overlay.width > 2 * W
    assert not list(out.glob(".*part*")) and not (out / ".resegzoo-blocks").exists()


def test_identical_dates_give_no_change(colour_plugin, pair, tmp_path):
    before, _, recipe = pair
    done = cli("change", before, before, "--classes", CLASSES, "--recipe", recipe, "--out", tmp_path / "same", "-q")
    assert done.exit_code == 0, done.output
    assert not (read_band(tmp_path / "same" / "change.tif") == 1).any()


def test_after_on_another_grid_and_crs_is_read_onto_befores(colour_plugin, pair, tmp_path):
    """AFTER in WGS 84 at another resolution: read onto BEFORE's grid by GDAL's warper; the outputs
    are on BEFORE's grid, the note says so; the change is the same up to the resampled edges."""
    import rasterio
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    before, _, recipe = pair
    a, b, valid = scene()
    src_path = write_tif(tmp_path / "b-utm.tif", b)
    with rasterio.open(src_path) as src:
        transform, width, height = calculate_default_transform(src.crs, "EPSG:4326", src.width, src.height,
                                                               *src.bounds, resolution=(4e-6, 4e-6))
        data = np.zeros((3, height, width), np.uint8)
        reproject(src.read(), data, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs="EPSG:4326", resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
    after = write_tif(tmp_path / "b-wgs84.tif", data.transpose(1, 2, 0), crs="EPSG:4326", transform=tuple(transform)[:6])
    done = cli("change", before, after, "--classes", CLASSES, "--recipe", recipe, "--resampling", "nearest",
               "--out", tmp_path / "warped")
    assert done.exit_code == 0, done.output
    assert "read onto the grid" in done.output and "EPSG:4326" in done.output
    with rasterio.open(tmp_path / "warped" / "change.tif") as out:
        assert out.crs.to_epsg() == 32632 and tuple(out.transform)[:6] == TRANSFORM and out.shape == (H, W)
    got = read_band(tmp_path / "warped" / "change.tif") == 1
    want = reference_change(a, b, valid)[0] == 1
    assert (got & want).sum() / (got | want).sum() > 0.9


def test_no_overlap_and_a_method_without_features_are_one_line_errors(colour_plugin, pair, tmp_path):
    before, after, recipe = pair
    far = write_tif(tmp_path / "far.tif", scene()[1], transform=(0.5, 0.0, 900000.0, 0.0, -0.5, 5800000.0))
    done = cli("change", before, far, "--classes", CLASSES, "--recipe", recipe, "--out", tmp_path / "x")
    assert done.exit_code == 2 and "do not overlap" in done.output and "Traceback" not in done.output
    done = cli("change", before, after, "--classes", CLASSES, "--method", "colour", "--out", tmp_path / "y")
    assert done.exit_code == 2 and "cannot detect change" in done.output
    assert not (tmp_path / "x" / "change.json").exists()


def test_an_interrupted_run_resumes_from_its_finished_blocks(colour_plugin, pair, tmp_path, monkeypatch):
    from resegzoo.change import blocks

    before, after, recipe = pair
    real = blocks.change_block
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(blocks, "change_block", failing)
    out = tmp_path / "r"
    stopped = cli("change", before, after, "--classes", CLASSES, "--recipe", recipe, "--tile-size", 64, "--out", out,
                  "-q")
    assert stopped.exit_code == 130  # Ctrl-C
    assert not (out / "change.tif").exists() and not (out / "change.json").exists()
    assert len(list((out / ".resegzoo-blocks").rglob("*.npz"))) == 4
    monkeypatch.setattr(blocks, "change_block", real)
    calls.clear()
    counted = []
    monkeypatch.setattr(blocks, "change_block", lambda *a, **k: counted.append(1) or real(*a, **k))
    done = cli("change", before, after, "--classes", CLASSES, "--recipe", recipe, "--tile-size", 64, "--out", out)
    assert done.exit_code == 0, done.output
    assert "resuming, 4 of 6 block(s)" in done.output and len(counted) == 2
    a, b, valid = scene()
    np.testing.assert_array_equal(read_band(out / "change.tif"), reference_change(a, b, valid)[0])
    again = cli("change", before, after, "--classes", CLASSES, "--recipe", recipe, "--tile-size", 64, "--out", out)
    assert again.exit_code == 0 and "done already" in again.output
    other = cli("change", before, after, "--classes", CLASSES, "--recipe", recipe, "--tile-size", 64, "--out", out,
                "--coverage", 0.5)
    assert other.exit_code == 2 and "--overwrite" in other.output


def test_the_python_api_on_files_and_on_arrays(colour_plugin, pair, tmp_path):
    """resegzoo.api.detect_change does what the command does (files in, the same outputs); the
    ChangeDetector on two arrays gives the whole-raster rule's answer, each date's nodata its own."""
    from resegzoo.api import ChangeDetector, ChangeSettings, Segmenter, Vocabulary, detect_change, load_recipe
    from resegzoo.change.run import ChangeOptionError

    before, after, recipe = pair
    a, b, valid = scene()
    want = reference_change(a, b, valid)[0]
    notes = []
    run = detect_change(before, after, CLASSES, tmp_path / "api", recipe=recipe, say=notes.append)
    assert not run.skipped and run.record["blocks"] == 1 and run.record["pixels"]["changed"] == 625 + 168
    assert {p.name for p in run.files} >= {"change.tif", "change.from.tif", "change.to.tif", "change.gpkg",
                                           "change.overlay.png", "change.json"}
    np.testing.assert_array_equal(read_band(tmp_path / "api" / "change.tif"), want)
    assert detect_change(before, after, CLASSES, tmp_path / "api", recipe=recipe).skipped
    with pytest.raises(ChangeOptionError, match="coverage"):
        detect_change(before, after, CLASSES, tmp_path / "bad", recipe=recipe, coverage=1.5)
    assert not (tmp_path / "bad").exists()

    segmenter = Segmenter.from_recipe(load_recipe(recipe))
    detector = ChangeDetector(segmenter, Vocabulary.parse(CLASSES), ChangeSettings())
    maps = detector.detect(a, b, before_valid(), after_valid())
    np.testing.assert_array_equal(maps.change, want)


def test_precision_and_geojson_polygons(colour_plugin, pair, tmp_path):
    """--precision bf16 runs the method under bf16 autocast (recorded in the sidecar) and gives the
    colour method's answer; fp16 on a CPU is refused in one line before any block is computed. --vector-format
    geojson writes the polygons in longitude/latitude (RFC 7946) where BEFORE's UTM grid puts them."""
    import pyogrio.raw
    import shapely

    before, after, recipe = pair
    a, b, valid = scene()
    out = tmp_path / "bf16"
    done = cli("change", before, after, "--classes", CLASSES, "--recipe", recipe, "--precision", "bf16",
               "--vector-format", "geojson", "--out", out, "-q")
    assert done.exit_code == 0, done.output
    record = json.loads((out / "change.json").read_text())
    assert record["settings"]["recipe"]["inference"]["precision"] == "bf16"
    np.testing.assert_array_equal(read_band(out / "change.tif"), reference_change(a, b, valid)[0])
    meta, _, geometry, fields = pyogrio.raw.read(out / "change.geojson")
    assert "4326" in meta["crs"] and len(geometry) == 2
    from pyproj import Transformer

    # X's square (rows 70:95, cols 55:80 of a 0.5 m grid): its centre in lon/lat
    x, y = TRANSFORM[2] + 0.5 * 67.5, TRANSFORM[5] - 0.5 * 82.5
    lon, lat = Transformer.from_crs("EPSG:32632", "EPSG:4326", always_xy=True).transform(x, y)
    assert any(shapely.contains_xy(g, lon, lat) for g in shapely.from_wkb(geometry))
    refused = cli("change", before, after, "--classes", CLASSES, "--recipe", recipe, "--precision", "fp16",
                  "--out", tmp_path / "fp16")
    assert refused.exit_code == 1 and "Traceback" not in refused.output  # as segment: the device cannot run it
    assert "fp16 is not supported on the CPU" in refused.output and len(refused.output.strip().splitlines()) == 1
    assert not (tmp_path / "fp16" / "change.json").exists()


def test_a_block_that_fails_on_a_worker_is_reported_and_the_rest_kept(colour_plugin, pair, tmp_path):
    """A worker's failure (a message, as Ray returns it) stops no other block: the run ends with one
    line naming the block (exit 1), no output is written, the finished blocks stay spooled, and the
    rerun computes only the failed block."""
    from resegzoo.change.run import ChangeOptions, ChangeRunError, detect_change_files
    from resegzoo.engines.local import LocalEngine

    class OneBlockFails(LocalEngine):
        def run(self, task, items, segmenter=None, skip=None):
            for outcome in super().run(task, items, segmenter, skip):
                if outcome.item.index == 2:
                    outcome.value, outcome.error = None, "OSError: disk on fire"
                yield outcome

    before, after, recipe = pair
    out = tmp_path / "failing"
    blocks = tmp_path / "blocks.yaml"
    blocks.write_text(RECIPE.replace("tile_overlap: 16", "tile_overlap: 16, tile_size: 64"))
    options = ChangeOptions.check(before, after, CLASSES, out, recipe=blocks)
    with pytest.raises(ChangeRunError, match=r"block 2 \(rows 0:\d+, cols \d+:200\): OSError: disk on fire") as failed:
        detect_change_files(options, engine=OneBlockFails())
    assert failed.value.exit_code == 1
    assert not (out / "change.tif").exists() and not (out / "change.json").exists()
    assert sorted(p.name for p in (out / ".resegzoo-blocks").rglob("*.npz")) == ["0.npz", "1.npz", "3.npz", "4.npz",
                                                                               "5.npz"]
    done = cli("change", before, after, "--classes", CLASSES, "--recipe", blocks, "--out", out)
    assert done.exit_code == 0, done.output
    assert "resuming, 5 of 6 block(s)" in done.output
    a, b, valid = scene()
    np.testing.assert_array_equal(read_band(out / "change.tif"), reference_change(a, b, valid)[0])


def test_the_ray_engine_gives_what_the_local_engine_gives(plugin_paths, pair, tmp_path):
    """Ray actors are other processes: they find the colour-change method through its entry point,
    build it from the recipe and score blocks; the driver spools and assembles them. `resegzoo eval`
    on a change folder gives the same confusion matrix on both engines too."""
    from PIL import Image

    before, after, recipe = pair
    a, b, _ = scene()
    folder = tmp_path / "pairs"
    for name, image in (("A", a), ("B", b), ("label", reference_change(a, b, np.ones((H, W), bool))[0])):
        (folder / name).mkdir(parents=True)
        Image.fromarray(image).save(folder / name / "p1.png")
    (folder / "classes.yaml").write_text("classes: [red, blue]\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*plugin_paths, os.environ.get("PYTHONPATH", "")]),
           "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    script = (
        "import sys, ray\n"
        "from resegzoo.cli import build_cli\n"
        "ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)\n"
        "for engine in ('local', 'ray'):\n"
        f"    args = ['change', '{before}', '{after}', '--classes', '{CLASSES}', '--recipe', '{recipe}',\n"
        f"            '--tile-size', '64', '--out', '{tmp_path}/' + engine, '--engine', engine, '-q']\n"
        "    if engine == 'ray':\n"
        "        args += ['--actors', '2']\n"
        f"    evaluate = ['eval', '--dataset', 'change-generic', '--root', '{folder}', '--method', 'colour-change',\n"
        f"                '--out', '{tmp_path}/eval-' + engine, '--engine', engine, '--quiet']\n"
        "    try:\n"
        "        build_cli()(args, standalone_mode=False)\n"
        "        build_cli()(evaluate, standalone_mode=False)\n"
        "    except SystemExit as exc:\n"
        "        sys.exit(f'{engine}: exit {exc.code}')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in ("change.tif", "change.from.tif", "change.to.tif"):
        np.testing.assert_array_equal(read_band(tmp_path / "ray" / name), read_band(tmp_path / "local" / name))
    confusion = [json.loads((tmp_path / f"eval-{e}" / "results.json").read_text())["runs"][0]["confusion"]
                 for e in ("local", "ray")]
    # eval's own recipe (eval-default's windows, not the test recipe's): X and Z found, not all their pixels
    assert confusion[0] == confusion[1] and sum(map(sum, confusion[0])) == H * W
    assert confusion[0][1][1] > 0.9 * (625 + 168) and confusion[0][0][1] == 0


def test_change_checks_once_and_runs_on_the_one_engine_interface(colour_plugin, pair, tmp_path, monkeypatch):
    """Issue 22 section 5 for `resegzoo change`: the method and the device are checked once (its
    options carry the checked spec the segmenter is built from), and its blocks go through the
    engine interface segment and eval use (the task of ChangeBlockWork on LocalEngine)."""
    import resegzoo.methods.base as base
    import resegzoo.runtime.preflight as preflight
    from resegzoo.change.blocks import ChangeBlockWork
    from resegzoo.engines.local import LocalEngine

    calls = {"check_method": 0, "check_device": 0}
    for module, name in ((base, "check_method"), (preflight, "check_device")):
        def counting(*args, _original=getattr(module, name), _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)
    tasks, original_run = [], LocalEngine.run

    def engine_spy(self, task, items, segmenter=None, skip=None):
        tasks.append((task, list(items)))
        return original_run(self, task, items, segmenter, skip)

    monkeypatch.setattr(LocalEngine, "run", engine_spy)
    before, after, recipe = pair
    done = cli("change", before, after, "--classes", CLASSES, "--recipe", recipe, "--tile-size", 64,
               "--out", tmp_path / "out", "-q")
    assert done.exit_code == 0, done.output
    assert calls == {"check_method": 1, "check_device": 1}
    [(task, items)] = tasks
    assert task.work is ChangeBlockWork and len(items) == 6 and task.segmenter.checked
