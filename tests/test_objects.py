"""Objects, not only pixels (issue 24): a method's instances kept whole across windows and blocks,
written as GIS layers with their counts. The known answer: the test method plugin
(tests/method_plugin: one instance per patch of a name's colour that a window sees) on a GeoTIFF
painted with objects straddling window and block borders, a long bar no window or block sees whole,
two objects that touch at a corner, a disc and an object cut by nodata. Every object must come out
as one feature with the painted pixels exactly, on both engines, after a resume, with its area."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from resegzoo.cli import build_cli

PLUGIN_DIR = Path(__file__).parent / "method_plugin"
sys.path.insert(0, str(PLUGIN_DIR))
from resegzoo_colour_method import COLOURS  # noqa: E402

sys.path.remove(str(PLUGIN_DIR))

CLASSES = "red; green; blue; yellow"
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0)
H, W = 150, 200
#: the painted objects: class, and the pixels (a box, or a disc (cy, cx, r))
BOXES = [
    ("red", (5, 10, 15, 24)),  # inside one window
    ("red", (15, 24, 25, 34)),  # touches the first at a corner only: two objects
    ("green", (40, 5, 52, 185)),  # a bar across every window and block column: no view sees it whole
    ("blue", (88, 92, 112, 112)),  # on the corner of four blocks
    ("red", (66, 118, 80, 136)),  # partly nodata
]
DISC = ("yellow", (122, 150, 12))  # across the block border at x = 150
NODATA = (72, 128, 78, 142)


def painted() -> tuple[np.ndarray, list[tuple[str, np.ndarray]], np.ndarray]:
    """The image, each object's pixels (nodata taken out), the valid mask."""
    image = np.full((H, W, 3), 250, np.uint8)
    objects = []
    for name, (y0, x0, y1, x1) in BOXES:
        mask = np.zeros((H, W), bool)
        mask[y0:y1, x0:x1] = True
        objects.append((name, mask))
    yy, xx = np.mgrid[:H, :W]
    cy, cx, r = DISC[1]
    objects.append((DISC[0], (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r))
    for name, mask in objects:
        image[mask] = COLOURS[name]
    valid = np.ones((H, W), bool)
    y0, x0, y1, x1 = NODATA
    valid[y0:y1, x0:x1] = False
    return image, [(name, mask & valid) for name, mask in objects], valid


def _geotiff(path: Path) -> Path:
    image, _, valid = painted()
    data = image.transpose(2, 0, 1).copy()
    data[:, ~valid] = 0
    with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=3, dtype="uint8", nodata=0,
                       crs="EPSG:32632", transform=TRANSFORM) as dst:
        dst.write(data)
    return path


def _recipe(tmp_path: Path) -> Path:
    """The colour method, 32 px windows at stride 16, blocks of 64 px with a 32 px halo (tile_overlap
    16, raised to a window): read boxes that do not hold the bar or the disc whole."""
    path = tmp_path / "objects.yaml"
    path.write_text("method: colour\ninference: {tile_size: 64, tile_overlap: 16}\n")
    return path


def cli(*args):
    return CliRunner().invoke(build_cli(), [str(a) for a in args], catch_exceptions=False)


def _rasterized(geometry, transform=TRANSFORM) -> np.ndarray:
    """GDAL's rasterizer (pixel centres inside): the pixels a written polygon covers."""
    from rasterio.features import rasterize

    return rasterize([(geometry, 1)], out_shape=(H, W), transform=transform, fill=0, dtype="uint8").astype(bool)


def _features(path: Path, layer: str = "objects") -> list[dict]:
    import pyogrio
    import shapely

    meta, _, geometries, fields = pyogrio.raw.read(str(path), layer=layer)
    rows = [dict(zip(meta["fields"], values)) for values in zip(*fields)] if len(fields) else []
    for row, wkb in zip(rows, geometries):
        row["geometry"] = shapely.from_wkb(wkb)
    return sorted(rows, key=lambda r: r["object_id"])


def _check_known_answer(features: list[dict], transform=TRANSFORM, pixel_area: float = 0.25) -> None:
    """Every painted object is exactly one feature: its pixels, its class, its area."""
    import shapely

    _, objects, _ = painted()
    assert len(features) == len(objects), [(f["class"], f["geometry"].bounds) for f in features]
    unmatched = list(range(len(objects)))
    for feature in features:
        covered = _rasterized(feature["geometry"], transform)
        match = [k for k in unmatched if np.array_equal(objects[k][1], covered)]
        assert len(match) == 1, (feature["class"], feature["geometry"].bounds)
        name, mask = objects[match[0]]
        unmatched.remove(match[0])
        assert feature["class"] == name and feature["name"] == name
        assert feature["area"] == pytest.approx(mask.sum() * pixel_area)
        assert feature["score"] == pytest.approx(1.0) and 0 < feature["presence"] <= 1
        assert shapely.area(feature["geometry"]) == pytest.approx(mask.sum() * pixel_area)
    assert [f["object_id"] for f in features] == list(range(1, len(features) + 1))
    # the boxes' outlines, against shapely's own boxes in map coordinates
    box = next(f for f in features if f["class"] == "green")["geometry"]
    y0, x0, y1, x1 = BOXES[2][1]
    (left, top), (right, bottom) = TRANSFORM @ (x0, y0), TRANSFORM @ (x1, y1)
    assert box.normalize().equals(shapely.multipolygons([shapely.box(left, bottom, right, top)]).normalize())


def _counts() -> dict[str, int]:
    names = [n for n, _ in BOXES] + [DISC[0]]
    return {c: names.count(c) for c in ("red", "green", "blue", "yellow")}


# -- the rule, in numbers ----------------------------------------------------------------------------
def test_within_a_window_the_better_of_two_overlapping_objects_stays():
    from resegzoo.objects.instances import Instance, Objects
    from resegzoo.objects.merge import nms

    a = np.zeros((10, 10), bool)
    a[2:8, 2:8] = True
    b = np.zeros((10, 10), bool)
    b[2:8, 3:8] = True  # IoU 30/36 with a
    c = np.zeros((10, 10), bool)
    c[0:2, 0:2] = True
    objects = Objects.from_instances([Instance("road", 0.6, 1, a), Instance("street", 0.9, 1, b),
                                      Instance("road", 0.5, 1, c)], (0, 0, 10, 10), {"road": 0, "street": 0})
    kept = nms(objects)
    assert kept.names == ["street", "road"] and kept.scores.tolist() == pytest.approx([0.9, 0.5])
    other_class = Objects.from_instances([Instance("road", 0.6, 1, a), Instance("tree", 0.9, 1, b)],
                                         (0, 0, 10, 10), {"road": 0, "tree": 1})
    assert len(nms(other_class)) == 2  # classes never suppress each other


def test_pieces_of_one_object_in_overlapping_views_merge_and_neighbours_do_not():
    from resegzoo.objects.instances import Instance, Objects
    from resegzoo.objects.merge import merge

    truth = np.zeros((20, 40), bool)
    truth[5:15, 10:30] = True  # cut by both windows' edges
    touching = np.zeros((20, 40), bool)
    touching[15:20, 10:30] = True  # shares an edge with it, same class
    views = [(0, 0, 20, 24), (0, 16, 20, 40)]
    parts = []
    for score, (y0, x0, y1, x1) in zip((0.7, 0.8), views):
        seen = [Instance("car", score, 0.9, truth[y0:y1, x0:x1])]
        if x0 == 0:
            seen.append(Instance("car", 0.6, 0.9, touching[y0:y1, x0:x1]))
        parts.append(Objects.from_instances(seen, (y0, x0, y1, x1), {"car": 0}))
    merged = merge(Objects.concat(parts))
    assert len(merged) == 2
    whole = [o for o in merged if o.box == (5, 10, 15, 30)]
    assert len(whole) == 1 and whole[0].mask.all() and whole[0].score == pytest.approx(0.8)


def test_a_piece_inside_another_object_merges_but_close_neighbours_stay_apart():
    """Two views sharing the strip of columns 16..24. A piece wholly inside the other view's object
    (a concave object cut in two by a view's edge) merges with it, though their IoU there is small;
    two objects of one class close together stay two, whether a gap parts them or the next view's
    mask of one bleeds a pixel onto the sliver of the other that reaches into the strip."""
    from resegzoo.objects.instances import Instance, Objects
    from resegzoo.objects.merge import merge

    views = [(0, 0, 20, 24), (0, 16, 20, 40)]

    def seen(per_view):
        return list(merge(Objects.concat([
            Objects.from_instances([Instance("car", 0.9 - 0.1 * k, 0.9, m[y0:y1, x0:x1]) for k, m in enumerate(masks)],
                                   (y0, x0, y1, x1), {"car": 0})
            for (y0, x0, y1, x1), masks in zip(views, per_view)])))

    def box(y0, x0, y1, x1):
        mask = np.zeros((20, 40), bool)
        mask[y0:y1, x0:x1] = True
        return mask

    c_shape = box(2, 18, 18, 30) & ~box(4, 18, 12, 26)  # opens to the left: view 1 sees two arms,
    # the thin one (12 px) with an IoU of 12/48 with the whole C in the strip
    one = seen([[c_shape & box(0, 0, 4, 40), c_shape & box(12, 0, 20, 40)], [c_shape]])
    assert len(one) == 1 and one[0].box == (2, 18, 18, 30) and one[0].mask.sum() == c_shape.sum()
    assert one[0].score == pytest.approx(0.9)  # the best member's
    gap = seen([[box(4, 4, 16, 19)], [box(4, 4, 16, 19), box(4, 20, 16, 36)]])  # one column apart
    assert sorted(o.box for o in gap) == [(4, 4, 16, 19), (4, 20, 16, 36)]
    left, right = box(4, 4, 16, 17), box(4, 17, 16, 36)  # the left one reaches a column into the strip
    bleeding = seen([[left], [right | box(4, 16, 16, 17)]])  # the next view's right one covers that column
    assert sorted(o.box for o in bleeding) == [(4, 4, 16, 17), (4, 16, 16, 36)]


def test_blocks_in_any_order_give_the_same_objects():
    from itertools import permutations

    from resegzoo.objects.instances import Objects
    from resegzoo.objects.merge import ObjectAssembler
    from resegzoo.objects.store import ObjectStore, area_function

    _, objects, _ = painted()
    reads = [(0, 0, 80, 110), (0, 90, 80, 200), (60, 0, 150, 110), (60, 90, 150, 200)]
    seen = []
    for read in reads:
        y0, x0, y1, x1 = read
        parts = []
        for k, (name, mask) in enumerate(objects):
            part = np.zeros_like(mask)
            part[y0:y1, x0:x1] = mask[y0:y1, x0:x1]
            if part.any():
                ys, xs = np.nonzero(part)
                box = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
                parts.append(Objects(np.array([k], np.int32), [name], np.array([0.5 + k / 10], np.float32),
                                     np.ones(1, np.float32), np.array([box], np.int64),
                                     [part[box[0]:box[2], box[1]:box[3]]], np.array([read], np.int64)))
        seen.append(Objects.concat(parts))
    results = set()
    for order in list(permutations(range(4)))[::5]:
        store = ObjectStore([str(k) for k in range(len(objects))], *area_function(None, None))
        assembler = ObjectAssembler(reads, store.add)
        for index in order:
            assembler.add(index, seen[index])
        assembler.close()
        store.finish()
        painted_ids = store.paint((0, 0, H, W))
        results.add(painted_ids.tobytes())
        assert len(store) == len(objects)
        for ids, found, _ in store.chunks(2):
            for object_id, obj in zip(ids, found):
                np.testing.assert_array_equal(painted_ids == object_id, objects[obj.class_id][1])
    assert len(results) == 1


def test_objects_survive_the_spool_round_trip(tmp_path):
    from resegzoo.objects.instances import Instance, Objects
    from resegzoo.outputs.reading import load_npz

    mask = np.zeros((9, 13), bool)
    mask[1:7, 2:11] = np.random.default_rng(0).random((6, 9)) > 0.4
    objects = Objects.from_instances([Instance("a", 0.5, 0.7, mask), Instance("b b", 0.25, 1.0, mask[:, ::-1])],
                                     (3, 4, 12, 17), {"a": 0, "b b": 1})
    np.savez(tmp_path / "x.npz", **objects.to_arrays())
    back = Objects.from_arrays(load_npz(tmp_path / "x.npz", 1 << 20))
    assert back.names == objects.names and np.array_equal(back.boxes, objects.boxes)
    for m, n in zip(back.masks, objects.masks):
        np.testing.assert_array_equal(m, n)
    broken = {**objects.to_arrays(), "objects_mask_ends": np.array([1, 2], np.int64)}
    with pytest.raises(ValueError, match="do not fit"):
        Objects.from_arrays(broken)


# -- the pipeline ------------------------------------------------------------------------------------
def test_the_api_gives_whole_objects_across_windows(colour_plugin):
    from resegzoo.api import Segmenter, Vocabulary, load_recipe

    image, objects, valid = painted()
    seg = Segmenter.from_recipe(load_recipe(None, method="colour"))
    assert seg.window == 32 and seg.stride == 16 and seg.gives_objects
    result = seg.segment(image, Vocabulary.parse(CLASSES), valid=valid, objects=True)
    assert len(result.objects) == len(objects)
    found = {(o.class_id, o.box): o.mask for o in result.objects}
    for name, mask in objects:
        ys, xs = np.nonzero(mask)
        box = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
        np.testing.assert_array_equal(found[(CLASSES.split("; ").index(name), box)], mask[box[0]:box[2], box[1]:box[3]])
    assert seg.segment(image, Vocabulary.parse(CLASSES)).objects is None  # not asked: not made


def test_segment_objects_gpkg_raster_and_sidecar_agree_with_the_known_answer(colour_plugin, tmp_path):
    src = _geotiff(tmp_path / "scene.tif")
    out = tmp_path / "out"
    result = cli("segment", src, "--classes", CLASSES, "--recipe", _recipe(tmp_path), "--objects",
                 "--objects-raster", "--vector", "--cog", "--out", out)
    assert result.exit_code == 0, result.output
    side = json.loads((out / "scene.json").read_text())
    assert side["blocks"] == 12
    assert side["objects"]["per_class"] == _counts() and side["objects"]["count"] == 6
    assert side["objects"]["area_unit"] == "m2"
    assert side["outputs"]["objects"] == "scene.regions.gpkg" and side["outputs"]["objects_raster"] == "scene.objects.tif"
    import pyogrio

    assert sorted(name for name, _ in pyogrio.list_layers(out / "scene.regions.gpkg")) == ["objects", "regions"]
    features = _features(out / "scene.regions.gpkg")
    _check_known_answer(features)
    # the id raster: each object's pixels carry its object_id, 0 elsewhere, nodata where the input has none
    from rio_cogeo.cogeo import cog_validate

    assert cog_validate(str(out / "scene.objects.tif"))[0]
    with rasterio.open(out / "scene.objects.tif") as ids_src:
        ids = ids_src.read(1)
        assert ids_src.dtypes[0] == "uint32" and ids_src.transform == TRANSFORM and ids_src.nodata == 2 ** 32 - 1
    _, _, valid = painted()
    assert (ids[~valid] == 2 ** 32 - 1).all()
    for feature in features:
        np.testing.assert_array_equal(ids == feature["object_id"], _rasterized(feature["geometry"]))
    assert ((ids == 0) == (valid & ~np.isin(ids, [f["object_id"] for f in features]))).all()
    # the summary table counts them
    assert "objects" in result.output.splitlines()[0] or any(
        line.startswith("objects: red 3, green 1, blue 1, yellow 1") for line in result.output.splitlines())


def test_objects_alone_geojson_and_the_area_filters(colour_plugin, tmp_path):
    src = _geotiff(tmp_path / "scene.tif")
    recipe = _recipe(tmp_path)
    out = tmp_path / "gj"
    result = cli("segment", src, "--classes", CLASSES, "--recipe", recipe, "--objects", "--vector-format", "geojson",
                 "--out", out)
    assert result.exit_code == 0, result.output
    assert not (out / "scene.regions.geojson").exists()
    features = _features(out / "scene.objects.geojson", layer=None)
    assert len(features) == 6 and {f["class"] for f in features} == {"red", "green", "blue", "yellow"}
    # GeoJSON is longitude/latitude: the green bar's area is still given in m² (from the raster's CRS)
    green = next(f for f in features if f["class"] == "green")
    assert green["area"] == pytest.approx(12 * 180 * 0.25)
    # areas: the small red boxes are 35 and 25 m², the red one cut by nodata 51 m² (204 px), the blue
    # 120 m², the disc 110.25 m² (441 px), the green bar 540 m²
    out2 = tmp_path / "filtered"
    result = cli("segment", src, "--classes", CLASSES, "--recipe", recipe, "--objects", "--min-object-area", "40",
                 "--max-object-area", "500", "--out", out2)
    assert result.exit_code == 0, result.output
    kept = _features(out2 / "scene.objects.gpkg")
    assert sorted((f["class"], f["area"]) for f in kept) == [("blue", 120), ("red", 51), ("yellow", 110.25)]
    side = json.loads((out2 / "scene.json").read_text())
    assert side["objects"]["count"] == 3 and side["objects"]["dropped_by_area"] == 3
    assert side["objects"]["per_class"] == {"red": 1, "green": 0, "blue": 1, "yellow": 1}


def test_objects_of_a_plain_picture_are_in_pixels(colour_plugin, tmp_path):
    from PIL import Image

    image, objects, _ = painted()
    Image.fromarray(image).save(tmp_path / "pic.png")
    result = cli("segment", tmp_path / "pic.png", "--classes", CLASSES, "--method", "colour", "--objects",
                 "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    features = _features(tmp_path / "o" / "pic.objects.gpkg")
    side = json.loads((tmp_path / "o" / "pic.json").read_text())
    assert side["objects"]["area_unit"] == "px" and len(features) == 6
    disc = next(f for f in features if f["class"] == "yellow")
    yy, xx = np.mgrid[:H, :W]
    assert disc["area"] == ((yy - 122) ** 2 + (xx - 150) ** 2 <= 144).sum()


@pytest.mark.parametrize("args,message", [
    (["--method", "colour-table", "--model", "table:TABLE"], "--objects: method 'colour-table' gives no objects"),
    (["--model", "oracle", "--masks", "none"], "--objects: method 'clip' gives no objects (instances), only class "
                                                "scores; use a method that does ("),
])
def test_objects_from_a_method_without_them_is_one_line_before_any_work(colour_plugin, tmp_path, monkeypatch, args,
                                                                          message):
    from resegzoo.segmenter.core import Segmenter

    def no_loading(*a, **k):
        raise AssertionError("the model was built before --objects was checked")

    monkeypatch.setattr(Segmenter, "from_recipe", no_loading)
    table = tmp_path / "t.yaml"
    table.write_text("{}")
    args = [a.replace("TABLE", str(table)) for a in args]
    result = cli("segment", _geotiff(tmp_path / "s.tif"), "--classes", CLASSES, "--objects", *args,
                 "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert not (tmp_path / "out").exists()


def test_object_options_without_objects_are_usage_errors(colour_plugin, tmp_path):
    src = _geotiff(tmp_path / "s.tif")
    for extra in (["--objects-raster"], ["--min-object-area", "3"], ["--max-object-area", "3"]):
        result = cli("segment", src, "--classes", CLASSES, "--method", "colour", *extra, "--out", tmp_path / "o")
        assert result.exit_code == 2 and "go with --objects" in result.output, result.output
    result = cli("segment", src, "--classes", CLASSES, "--method", "colour", "--objects", "--min-object-area", "9",
                 "--max-object-area", "3", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "below --min-object-area" in result.output


def test_a_killed_run_resumes_with_its_objects_and_skip_existing_skips(colour_plugin, tmp_path, monkeypatch):
    from resegzoo.segmenter.core import Segmenter

    src = _geotiff(tmp_path / "scene.tif")
    recipe = _recipe(tmp_path)
    out = tmp_path / "out"
    original, calls = Segmenter.segment, []

    def counted(self, *args, **kwargs):
        calls.append(1)
        if stop_at and len(calls) == stop_at:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Segmenter, "segment", counted)
    stop_at = 7
    assert cli("segment", src, "--classes", CLASSES, "--recipe", recipe, "--objects", "--out", out).exit_code == 130
    assert not (out / "scene.objects.gpkg").exists() and len(list((out / ".resegzoo-blocks").rglob("*.npz"))) == 6
    calls.clear()
    stop_at = 0
    resumed = cli("segment", src, "--classes", CLASSES, "--recipe", recipe, "--objects", "--skip-existing",
                  "--out", out)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming, 6 of 12" in resumed.output and len(calls) == 6
    _check_known_answer(_features(out / "scene.objects.gpkg"))
    again = cli("segment", src, "--classes", CLASSES, "--recipe", recipe, "--objects", "--skip-existing", "--out", out)
    assert "skipped" in again.output and len(calls) == 6
    # other object settings are another result: not skipped
    other = cli("segment", src, "--classes", CLASSES, "--recipe", recipe, "--objects", "--min-object-area", "1",
                "--skip-existing", "--out", out)
    assert other.exit_code == 0 and (out / "scene-2.objects.gpkg").exists()


def test_objects_on_ray_equal_local(plugin_paths, tmp_path):
    """Ray actors compute the blocks; the driver's writer makes the objects whole: the same features."""
    src = _geotiff(tmp_path / "scene.tif")
    recipe = _recipe(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*plugin_paths, os.environ.get("PYTHONPATH", "")]),
           "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    script = (
        "import sys\n"
        "import ray\n"
        "from resegzoo.cli import build_cli\n"
        "ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)\n"
        "for engine in ('local', 'ray'):\n"
        f"    args = ['segment', '{src}', '--classes', '{CLASSES}', '--recipe', '{recipe}', '--objects',\n"
        f"            '--objects-raster', '--out', '{tmp_path}/' + engine, '--engine', engine]\n"
        "    if engine == 'ray':\n"
        "        args += ['--actors', '2']\n"
        "    try:\n"
        "        build_cli()(args, standalone_mode=False)\n"
        "    except SystemExit as exc:\n"
        "        sys.exit(f'{engine}: exit {exc.code}')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    local, ray = (_features(tmp_path / e / "scene.objects.gpkg") for e in ("local", "ray"))
    _check_known_answer(ray)
    assert [(f["object_id"], f["class"], f["geometry"].wkb) for f in local] == \
        [(f["object_id"], f["class"], f["geometry"].wkb) for f in ray]
    with rasterio.open(tmp_path / "local" / "scene.objects.tif") as a, rasterio.open(tmp_path / "ray" / "scene.objects.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())
    sides = [json.loads((tmp_path / e / "scene.json").read_text())["objects"] for e in ("local", "ray")]
    assert sides[0] == sides[1] and sides[1]["per_class"] == _counts()


def test_windows_that_touch_without_overlap_merge_across_their_edge(colour_plugin):
    """stride = window: no strip is shared, so the pieces are compared on either side of the edge."""
    from resegzoo.api import Segmenter, Vocabulary, load_recipe

    image, objects, valid = painted()
    seg = Segmenter.from_recipe(load_recipe(None, method="colour", window=32, stride=32))
    result = seg.segment(image, Vocabulary.parse(CLASSES), valid=valid, objects=True)
    assert sorted((int(o.class_id), o.box) for o in result.objects) == sorted(
        (CLASSES.split("; ").index(name), _box(mask)) for name, mask in objects)
    for o in result.objects:
        name, mask = next((n, m) for n, m in objects if _box(m) == o.box)
        np.testing.assert_array_equal(o.mask, mask[o.box[0]:o.box[2], o.box[1]:o.box[3]])


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def test_a_concave_object_a_window_sees_as_two_pieces_is_one_object(colour_plugin, tmp_path):
    """QA's case (issue 24): the scene as a plain PNG with its nodata rectangle painted black (ground,
    not nodata), blocks of 64 px with tile_overlap 16. The red box becomes a C (204 px) whose lower arm
    (rows 78..80, columns 128..136, 16 px) a window sees apart from the rest: that piece lies inside the
    whole C the next window sees, with an IoU of 16/64 in their shared strip, and must merge with it."""
    from PIL import Image

    image, objects, valid = painted()
    image[~valid] = 0
    Image.fromarray(image).save(tmp_path / "c.png")
    result = cli("segment", tmp_path / "c.png", "--classes", CLASSES, "--recipe", _recipe(tmp_path), "--objects",
                 "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    c_shape = objects[4][1]
    assert c_shape.sum() == 204 and c_shape[78:80, 128:136].all()
    features = _features(tmp_path / "o" / "c.objects.gpkg")
    assert len(features) == len(objects), [(f["class"], f["geometry"].bounds, f["area"]) for f in features]
    unmatched = list(objects)
    for feature in features:  # pixel coordinates: each feature is one painted object, exactly
        covered = _rasterized(feature["geometry"], Affine.identity())
        match = [k for k, (_, mask) in enumerate(unmatched) if np.array_equal(mask, covered)]
        assert len(match) == 1, (feature["class"], feature["geometry"].bounds, feature["area"])
        name, mask = unmatched.pop(match[0])
        assert feature["class"] == name and feature["area"] == mask.sum()
