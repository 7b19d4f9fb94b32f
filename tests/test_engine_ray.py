"""--engine ray against --engine local: identical tables and label maps, a worker that dies mid-item,
an interrupted driver that resumes. One embedded Ray (2 CPUs) for the whole module: starting Ray
and its actors is slow, so each test runs as few Ray jobs as it can."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from resegzoo.cli import build_cli
from resegzoo.engines.ray_runtime import FAULT_ENV
from resegzoo.eval.datasets.generic import load_classes_file
from resegzoo.eval.synthetic import write_dataset
from resegzoo_oracle import color_of

# The ray extra is part of the test install (README's set-up command and .ci/run): a missing Ray is a
# broken install and must fail here, not skip.
import ray  # noqa: E402,F401


@pytest.fixture(scope="module")
def ray_here():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tiny_clip):
    """The tiny random CLIP as an open_clip folder: context-sensitive, so any difference in what a
    block or image sees would change labels (the oracle would not notice)."""
    from safetensors.torch import save_file

    from resegzoo.testing import TINY_MODEL_CONFIG

    folder = tmp_path_factory.mktemp("tiny-clip")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_MODEL_CONFIG, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in tiny_clip.state_dict().items()}, folder / "open_clip_model.safetensors")
    return folder


def cli(*args: str):
    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


# -- options, without Ray ------------------------------------------------------------------------
@pytest.mark.parametrize("args,message", [
    (["--address", "auto"], "go with --engine ray"),
    (["--actors", "2"], "go with --engine ray"),
    (["--engine", "ray", "--actors", "0"], "--actors 0: give at least 1"),
    (["--engine", "ray", "--cpus-per-actor", "0"], "--cpus-per-actor > 0"),
])
def test_engine_options_are_checked(tmp_path, args, message):
    result = cli("eval", "--dataset", "generic", "--root", str(tmp_path), *args)
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output


def test_engine_ray_without_ray_says_how_to_install(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes: [red, green, blue]\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=1, height=32, width=32)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when it is not installed
    result = cli("eval", "--dataset", "generic", "--root", str(root), "--model", "oracle", "--quiet",
                 "--out", str(tmp_path / "out"), "--engine", "ray")
    assert result.exit_code == 1
    assert result.output.strip().endswith('--engine ray needs Ray with Ray Data: pip install "resegzoo[ray]"')


# -- placing the actors (issue 17 item 12) -------------------------------------------------------------
@pytest.mark.parametrize("args,missing", [
    (["--actors", "2", "--gpus-per-actor", "1"], "missing 2 GPU(s)"),
    (["--actors", "3", "--cpus-per-actor", "2"], "missing 4 CPU(s)"),
])
def test_actors_the_cluster_cannot_place_are_refused_before_any_work(ray_here, tmp_path, args, missing):
    # the module's Ray has 2 CPUs and no GPU: Ray would wait forever for these actors at 0 %
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes: [red, green, blue]\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=3, height=32, width=32)
    result = CliRunner().invoke(build_cli(), ["eval", "--dataset", "generic", "--root", str(root), "--model", "oracle",
                                              "--masks", "none", "--quiet", "--out", str(tmp_path / "out"),
                                              "--engine", "ray", *args])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert "cannot be placed on the Ray cluster" in errors[0] and missing in errors[0]
    assert "2 CPU, 0 GPU" in errors[0]  # what the node has
    assert not list(tmp_path.glob("out/runs/*/confusion/*.npy"))


# -- eval ------------------------------------------------------------------------------------------
def test_eval_on_ray_with_a_dying_worker_matches_local_and_resumes(ray_here, tiny_model_dir, tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes:\n  - [building, house]\n  - road\n  - tree\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=5, height=40, width=56)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("inference: {window: 32, stride: 16}\nmasks: {generator: slic}\n")
    args = ["eval", "--dataset", "generic", "--root", str(root), "--recipe", str(recipe), "--quiet",
            "--model", f"local-dir:{tiny_model_dir}", "--overlays", "1"]

    local = cli(*args, "--out", str(tmp_path / "local"))
    assert local.exit_code == 0, local.output
    # resumable like the local runner: two images done locally, the Ray run does the other three
    partial = cli(*args, "--out", str(tmp_path / "ray"), "--limit", "2")
    assert partial.exit_code == 0, partial.output
    marker = tmp_path / "killed"
    monkeypatch.setenv(FAULT_ENV, f"2:{marker}")  # the first actor to reach its 2nd image dies mid-image
    on_ray = cli(*args, "--out", str(tmp_path / "ray"), "--engine", "ray", "--actors", "2")
    assert on_ray.exit_code == 0, on_ray.output
    assert marker.exists()  # a worker really died
    assert "3 image(s) in" in on_ray.output  # only the three missing images went to Ray
    for name in ("results.md", "per_class.csv"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    runs = [json.loads((tmp_path / where / "results.json").read_text())["runs"][0] for where in ("local", "ray")]
    assert runs[0]["confusion"] == runs[1]["confusion"] and runs[0]["key"] == runs[1]["key"]
    assert 0 < runs[0]["miou"] < 100  # a random tiny model: a table that could differ
    assert len(list((tmp_path / "ray").glob("runs/*/overlays/*.png"))) == 1


def test_an_actor_that_cannot_build_its_model_reports_it_on_every_row():
    # the driver checks the model first (a one-line error before Ray starts); an actor that still
    # cannot build it (e.g. weights missing on a worker node) must not be restarted forever by
    # Ray: every row it returns carries the message, and stream() stops at the first one
    import pickle

    from resegzoo.batch.job import block_task
    from resegzoo.engines import SegmenterSpec
    from resegzoo.engines.ray_engine import TaskActor

    task = block_task(None, None, [], SegmenterSpec(None, "no-such-model", "none", "cpu"))
    worker = TaskActor({"task": task})
    rows = worker({"key": np.array(["0/0"], dtype=object), "item": np.array([pickle.dumps((0, None))], dtype=object)})
    assert list(rows["fatal"]) == [True] and list(rows["ok"]) == [False]
    assert "unknown CLIP model 'no-such-model'" in pickle.loads(rows["payload"][0])


# -- segment -----------------------------------------------------------------------------------------
SEGMENT = ["--classes", "building; road, street; tree; water", "--masks", "slic", "--window", "32", "--stride", "16",
           "--tile-size", "64"]


def _geotiffs(folder, sizes, seed=0):
    import rasterio
    from affine import Affine

    from segment_helpers import block_labels, paint

    folder.mkdir(parents=True, exist_ok=True)
    for k, (name, (h, w)) in enumerate(sizes.items()):
        rgb = paint(block_labels(h, w, cell=9, seed=seed + k)).transpose(2, 0, 1)
        with rasterio.open(folder / f"{name}.tif", "w", driver="GTiff", height=h, width=w, count=3, dtype="uint8",
                           crs="EPSG:32632", transform=Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0 + k)) as dst:
            dst.write(rgb)
    return folder


def _corrupt_tiff(path):
    """A tiled GeoTIFF whose top-right tile holds garbage: reading that region fails, the rest reads."""
    import rasterio

    rng = np.random.default_rng(3)
    with rasterio.open(path, "w", driver="GTiff", height=64, width=160, count=3, dtype="uint8", tiled=True,
                       blockxsize=32, blockysize=32, compress="deflate") as dst:
        dst.write(rng.integers(0, 255, size=(3, 64, 160), dtype=np.uint8))
    with rasterio.open(path) as src:
        offset = int(src.get_tag_item("BLOCK_OFFSET_4_0", "TIFF", bidx=1))
        size = int(src.get_tag_item("BLOCK_SIZE_4_0", "TIFF", bidx=1))
    data = bytearray(path.read_bytes())
    data[offset:offset + size] = b"\xff" * size
    path.write_bytes(bytes(data))
    return path


def _labels(path):
    import rasterio

    with rasterio.open(path) as src:
        return src.read(), src.profile, src.transform


def test_segment_on_ray_matches_local_despite_a_dying_worker_and_a_corrupt_raster(
        ray_here, tiny_model_dir, tmp_path, monkeypatch):
    folder = _geotiffs(tmp_path / "in", {"big": (100, 130), "small": (40, 48), "wide": (36, 100)})
    bad = _corrupt_tiff(tmp_path / "bad" / "corrupt.tif") if (tmp_path / "bad").mkdir() is None else None
    model = ["--model", f"local-dir:{tiny_model_dir}"]
    local = cli("segment", str(folder), *SEGMENT, *model, "--vector", "--out", str(tmp_path / "local"))
    assert local.exit_code == 0, local.output
    marker = tmp_path / "killed"
    monkeypatch.setenv(FAULT_ENV, f"3:{marker}")  # the first actor to reach its 3rd block dies mid-block
    on_ray = cli("segment", str(folder), str(bad), *SEGMENT, *model, "--vector", "--out", str(tmp_path / "ray"),
                 "--engine", "ray", "--actors", "2")
    assert marker.exists()  # a worker really died
    # the corrupt raster: reported with its window, not written; the exit code says so
    assert on_ray.exit_code == 1, on_ray.output
    assert f"failed: {bad}: block" in on_ray.output and "(rows 0:64, cols" in on_ray.output
    assert "1 of 4 input(s) failed" in on_ray.output
    assert not (tmp_path / "ray" / "corrupt.labels.tif").exists()
    # the others: bit-identical labels, same grid and georeferencing, same sidecar facts
    sidecar = json.loads((tmp_path / "ray" / "big.json").read_text())
    assert sidecar["blocks"] > 1  # the big raster really was split
    for name in ("big", "small", "wide"):
        labels, profile, transform = _labels(tmp_path / "ray" / f"{name}.labels.tif")
        want_labels, want_profile, want_transform = _labels(tmp_path / "local" / f"{name}.labels.tif")
        np.testing.assert_array_equal(labels, want_labels)
        assert profile == want_profile and transform == want_transform
        ray_side, local_side = (json.loads((tmp_path / where / f"{name}.json").read_text()) for where in ("ray", "local"))
        for key in ("pixel_fraction", "nodata", "blocks", "class_names", "palette", "recipe"):
            assert ray_side[key] == local_side[key], key
        assert (tmp_path / "ray" / f"{name}.overlay.png").is_file()
        assert (tmp_path / "ray" / f"{name}.regions.gpkg").read_bytes() != b""  # vectors from the assembled raster
    assert len(set(np.unique(_labels(tmp_path / "local" / "big.labels.tif")[0]))) > 1  # not a constant map


def test_interrupted_segment_on_ray_resumes_and_finishes_identically(ray_here, tiny_model_dir, tmp_path, monkeypatch):
    from resegzoo.batch import job

    folder = _geotiffs(tmp_path / "in", {"big": (100, 130), "small": (40, 48)}, seed=5)
    args = ["segment", str(folder), *SEGMENT, "--model", f"local-dir:{tiny_model_dir}", "--out", str(tmp_path / "ray")]
    local = cli("segment", str(folder), *SEGMENT, "--model", f"local-dir:{tiny_model_dir}",
                "--out", str(tmp_path / "local"))
    assert local.exit_code == 0, local.output

    original, written = job.RasterWriter.write, []

    def interrupted(self, block, result):
        written.append(block.index)
        if len(written) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the driver writes the third block
        return original(self, block, result)

    monkeypatch.setattr(job.RasterWriter, "write", interrupted)
    first = cli(*args, "--engine", "ray", "--actors", "2")
    assert first.exit_code != 0
    spooled = list((tmp_path / "ray" / ".resegzoo-blocks").glob("*/*.npz"))
    assert len(spooled) >= 3  # finished blocks are on disk, not lost
    assert not (tmp_path / "ray" / "big.labels.tif").exists()  # no half-written output

    monkeypatch.setattr(job.RasterWriter, "write", original)
    total = sum(json.loads((tmp_path / "local" / f"{n}.json").read_text())["blocks"] for n in ("big", "small"))
    second = cli(*args, "--engine", "ray", "--actors", "2", "--overwrite")
    assert second.exit_code == 0, second.output
    assert "resuming" in second.output
    assert f"{total - len(spooled)} block(s) in" in second.output  # only the missing blocks were computed
    for name in ("big", "small"):
        np.testing.assert_array_equal(_labels(tmp_path / "ray" / f"{name}.labels.tif")[0],
                                      _labels(tmp_path / "local" / f"{name}.labels.tif")[0])
    assert not (tmp_path / "ray" / ".resegzoo-blocks").exists()  # the spool is gone once assembled
