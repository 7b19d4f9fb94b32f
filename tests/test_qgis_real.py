"""resegzoo:segment in real QGIS, headless: `resegzoo qgis install` into a fresh profile, then
qgis_process lists and runs the algorithm; its errors, QGIS's Cancel and Ctrl-C leave nothing behind.

Needs QGIS (Debian: apt-get install qgis python3-qgis). `.ci/run` installs it wherever apt-get
exists and sets RESEGZOO_REQUIRE_QGIS=1, so there a missing QGIS fails these tests; elsewhere
(no QGIS, not required) they are skipped with the reason, listed by pytest -ra.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

from gdal_helpers import category_names_and_rat

from resegzoo.qgis.detect import QGIS_PACKAGES

DATA = Path(__file__).parent / "data"
CLASSES = "roof; grass, lawn; water"
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0)
#: Debian's qgis_process wrapper adds --noversioncheck, which qgis_process 3.22 refuses: call the binary
QGIS_PROCESS = shutil.which("qgis_process.bin") or shutil.which("qgis_process")


def _qgis_python() -> str | None:
    """A Python that imports QGIS's bindings (the system one on Debian, not resegzoo's venv)."""
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and subprocess.run([candidate, "-c", "import qgis.core"], capture_output=True).returncode == 0:
            return candidate
    return None


def _require_qgis() -> tuple[str, str]:
    python = _qgis_python() if QGIS_PROCESS else None
    if QGIS_PROCESS and python:
        return QGIS_PROCESS, python
    missing = "qgis_process" if not QGIS_PROCESS else "a Python with QGIS's bindings (python3-qgis)"
    if os.environ.get("RESEGZOO_REQUIRE_QGIS") == "1":
        pytest.fail(f"RESEGZOO_REQUIRE_QGIS=1 but {missing} is not installed (apt-get install {QGIS_PACKAGES})")
    pytest.skip(f"{missing} not installed (apt-get install {QGIS_PACKAGES}; .ci/run does it)")


def _resegzoo_executable() -> str:
    exe = Path(sys.executable).parent / "resegzoo"
    assert exe.is_file(), f"no resegzoo script beside {sys.executable}"
    return str(exe)


@pytest.fixture(scope="module")
def qgis(tmp_path_factory):
    """A home folder whose default QGIS profile has the plugin installed by the real CLI, the
    environment QGIS runs in, and a small georeferenced scene."""
    qgis_process, python = _require_qgis()
    root = tmp_path_factory.mktemp("qgis")
    home = root / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("QGIS_CUSTOM_CONFIG_PATH", "XDG_DATA_HOME", "XDG_CONFIG_HOME")}
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(root / "run"), HF_HUB_OFFLINE="1")
    (root / "run").mkdir(mode=0o700)
    done = subprocess.run([_resegzoo_executable(), "qgis", "install"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "installed and enabled" in done.stdout
    tile = np.asarray(Image.open(DATA / "demo_tile.png").convert("RGB"))
    scene = _geotiff(root / "scene.tif", tile[:96, :80])
    big = _geotiff(root / "big.tif", np.tile(tile, (2, 2, 1)))  # tens of seconds of work: time to cancel it
    return {"process": qgis_process, "python": python, "env": env, "root": root, "scene": scene, "big": big}


def _geotiff(path: Path, image: np.ndarray) -> Path:
    with rasterio.open(path, "w", driver="GTiff", height=image.shape[0], width=image.shape[1], count=3,
                       dtype="uint8", crs="EPSG:32632", transform=TRANSFORM) as dst:
        dst.write(np.moveaxis(image, -1, 0))
    return path


def _run(qgis, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([qgis["process"], *args], env=qgis["env"], cwd=qgis["root"], capture_output=True,
                          text=True, timeout=timeout)


def _segment_args(out: Path, model: str = "example-tiny", *extra: str, scene: str = "scene.tif") -> list[str]:
    return ["run", "resegzoo:segment", "--", f"INPUT={scene}", f"CLASSES={CLASSES}", f"MODEL={model}",
            "MASKS=slic", f"OUTPUT={out / 'scene.labels.tif'}", *extra]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []


def _resegzoo_processes(out: Path) -> list[int]:
    """Live resegzoo processes writing into the algorithm's work folder under ``out``."""
    marker = f"{out}{os.sep}.resegzoo-qgis-"
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                pids.append(int(proc.name))
    return pids


def test_qgis_process_lists_and_runs_segment(qgis):
    listed = _run(qgis, "list")
    assert listed.returncode == 0, listed.stderr
    assert "resegzoo:segment" in listed.stdout

    out = qgis["root"] / "out"
    done = _run(qgis, *_segment_args(out, "example-tiny", f"VECTOR={out / 'regions.gpkg'}",
                                     f"PROBS={out / 'probs.tif'}"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resegzoo segment" in done.stdout  # the command line is logged
    assert "RANDOM weights" in done.stdout  # resegzoo's own lines reach QGIS's log
    assert f"wrote {out / 'scene.labels.tif'}" in done.stdout
    labels = out / "scene.labels.tif"
    with rasterio.open(qgis["scene"]) as src, rasterio.open(labels) as got:
        assert got.crs == src.crs and got.transform == src.transform and got.shape == src.shape
        assert got.count == 1 and got.nodata == 255
        assert set(np.unique(got.read(1))) <= {0, 1, 2}
    names, _, _, _ = category_names_and_rat(labels)
    assert names[:3] == ["roof", "grass", "water"]  # class names in the .aux.xml GDAL (and QGIS) reads
    assert "roof" in (out / "scene.labels.qml").read_text()  # QGIS's default style for the layer
    with rasterio.open(out / "probs.tif") as probs:
        assert probs.count == 3 and probs.crs.to_epsg() == 32632
    import pyogrio

    info = pyogrio.read_info(out / "regions.gpkg")
    assert info["crs"] == "EPSG:32632" and info["features"] > 0 and "class" in list(info["fields"])
    assert sorted(p.name for p in out.iterdir()) == ["probs.tif", "regions.gpkg", "scene.labels.qml",
                                                     "scene.labels.tif", "scene.labels.tif.aux.xml"]


def test_a_resegzoo_error_is_its_one_line_message_and_writes_nothing(qgis):
    out = qgis["root"] / "out-error"
    done = _run(qgis, *_segment_args(out, "no-such-model"))
    assert done.returncode != 0
    # QGIS repeats an algorithm's error (log, "ERROR:" line); each time it is resegzoo's one line
    errors = {line.removeprefix("ERROR:").strip() for line in (done.stdout + done.stderr).splitlines()
              if "resegzoo: " in line}
    assert len(errors) == 1, done.stdout + done.stderr
    assert errors.pop().startswith("resegzoo: cannot load model 'no-such-model': unknown CLIP model")
    assert "Traceback" not in done.stdout + done.stderr
    assert list(out.iterdir()) == []  # not even the work folder


#: a standalone PyQGIS script's start: QGIS with the default profile, Processing, the installed plugin
PYQGIS_START = """
import json, sys, time
from qgis.core import QgsApplication, QgsProcessingFeedback, QgsSettings
QgsApplication.setOrganizationName("QGIS")  # QGIS's own names: its profiles folder, QGIS/QGIS3/profiles
QgsApplication.setApplicationName("QGIS3")
app = QgsApplication([], False)
app.initQgis()
sys.path.append(QgsApplication.pkgDataPath() + "/python/plugins")
sys.path.append(QgsApplication.qgisSettingsDirPath() + "python/plugins")
from processing.core.Processing import Processing
Processing.initialize()
import processing
import resegzoo_qgis
"""

CANCEL_SCRIPT = PYQGIS_START + """
plugin = resegzoo_qgis.classFactory(None)  # kept, as QGIS keeps its plugins: the provider lives with it
plugin.initProcessing()

class CancelMidway(QgsProcessingFeedback):
    # what QGIS's Cancel button does (feedback.cancel()), once resegzoo's progress reached QGIS
    lines, progress, cancelled_at = [], [], None

    def pushConsoleInfo(self, info):
        super().pushConsoleInfo(info)
        self.lines.append(info)

    def record(self, value):
        self.progress.append(value)
        if 0 < value < 100 and not self.isCanceled():
            self.cancelled_at = time.monotonic()
            self.cancel()

feedback = CancelMidway()
feedback.progressChanged.connect(feedback.record)
params = json.loads(sys.argv[1])
try:
    processing.run("resegzoo:segment", params, feedback=feedback)
    error = None
except Exception as exc:
    error = str(exc)
print(json.dumps({"error": error, "lines": feedback.lines, "progress": feedback.progress,
                  "stopped_after_s": feedback.cancelled_at and time.monotonic() - feedback.cancelled_at}))
"""


def test_cancel_in_qgis_stops_resegzoo_and_leaves_nothing(qgis):
    out = qgis["root"] / "out-cancel"
    script = qgis["root"] / "cancel.py"
    script.write_text(textwrap.dedent(CANCEL_SCRIPT))
    params = {"INPUT": str(qgis["big"]), "CLASSES": CLASSES, "MODEL": "example-tiny", "MASKS": "slic",
              "OUTPUT": str(out / "scene.labels.tif"), "VECTOR": str(out / "regions.gpkg"),
              "TILE_SIZE": 128}  # 16 blocks: progress after each, the first one soon
    done = subprocess.run([qgis["python"], str(script), json.dumps(params)], env=qgis["env"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["error"] and "cancelled" in result["error"], result  # not finished: cancelled midway
    assert 0 < result["progress"][0] < 100  # resegzoo's blocks bar reached QGIS's feedback
    assert result["stopped_after_s"] < 30
    assert result["lines"][-1] == "interrupted"  # SIGINT, not a kill: resegzoo stopped itself
    assert list(out.iterdir()) == []
    assert _resegzoo_processes(out) == []


SETTING_SCRIPT = PYQGIS_START + """
from processing.core.ProcessingConfig import ProcessingConfig
from resegzoo_qgis.settings import EXECUTABLE_SETTING
plugin = resegzoo_qgis.classFactory(None)
plugin.initProcessing()
recorded = ProcessingConfig.getSetting(EXECUTABLE_SETTING)
ProcessingConfig.setSettingValue(EXECUTABLE_SETTING, sys.argv[1])  # as the provider's settings page saves it
try:
    processing.run("resegzoo:segment", json.loads(sys.argv[2]))
    error = None
except Exception as exc:
    error = str(exc)
print(json.dumps({"recorded": recorded, "error": error,
                  "saved": QgsSettings().value("Processing/Configuration/" + EXECUTABLE_SETTING)}))
"""


def test_the_executable_is_a_setting_of_the_provider(qgis):
    out = qgis["root"] / "out-setting"
    script = qgis["root"] / "setting.py"
    script.write_text(textwrap.dedent(SETTING_SCRIPT))
    other = qgis["root"] / "elsewhere" / "resegzoo"  # a file (the setting's own check), but not a program
    other.parent.mkdir()
    other.write_text("not a program\n")
    other = str(other)
    params = {"INPUT": str(qgis["scene"]), "CLASSES": CLASSES, "OUTPUT": str(out / "scene.labels.tif")}
    done = subprocess.run([qgis["python"], str(script), other, json.dumps(params)], env=qgis["env"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["recorded"] == _resegzoo_executable()  # the default: what `resegzoo qgis install` recorded
    assert result["saved"] == other
    assert result["error"].startswith(f"the resegzoo executable {other} does not exist or cannot be run"), result
    assert not out.exists() or list(out.iterdir()) == []
    # installing again puts the environment's executable back (the saved value would hide it)
    done = subprocess.run([_resegzoo_executable(), "qgis", "install"], env=qgis["env"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ini = Path(qgis["env"]["HOME"]) / ".local/share/QGIS/QGIS3/profiles/default/QGIS/QGIS3.ini"
    assert "RESEGZOO_EXECUTABLE" not in ini.read_text()


def test_ctrl_c_of_qgis_process_stops_resegzoo_and_leaves_nothing(qgis):
    out = qgis["root"] / "out-ctrl-c"
    # a terminal's Ctrl-C: SIGINT to the foreground process group (qgis_process and resegzoo)
    proc = subprocess.Popen([qgis["process"], *_segment_args(out, scene="big.tif")], env=qgis["env"], cwd=qgis["root"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _resegzoo_processes(out) and time.monotonic() < deadline:  # resegzoo has started
            time.sleep(0.2)
        assert _resegzoo_processes(out) and proc.poll() is None
        time.sleep(2)
        os.killpg(proc.pid, signal.SIGINT)
        start = time.monotonic()
        output = proc.communicate(timeout=60)[0]  # (qgis_process's stdout is a pipe: buffered till the end)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0
    assert "cancelled: resegzoo was stopped and nothing was written" in output, output
    assert time.monotonic() - start < 30
    assert list(out.iterdir()) == []
    assert _resegzoo_processes(out) == []


#: the objects' scene for the colour test method (tests/method_plugin): three red boxes, one green
OBJECT_BOXES = [("red", (4, 4, 14, 20)), ("red", (30, 8, 44, 18)), ("red", (50, 40, 60, 60)),
                ("green", (20, 30, 36, 56))]

STYLE_SCRIPT = PYQGIS_START + """
from qgis.core import QgsVectorLayer
from resegzoo_qgis.algorithm import ObjectStyle, RegionStyle
names, palette = json.loads(sys.argv[3]), json.loads(sys.argv[4])
styled = {}
for path, style in ((sys.argv[1], ObjectStyle), (sys.argv[2], RegionStyle)):
    # what QGIS runs on the layer it loads at the end of the algorithm (the post-processor)
    layer = QgsVectorLayer(path, "layer", "ogr")
    assert layer.isValid(), path
    style(names, palette).postProcessLayer(layer, None, QgsProcessingFeedback())
    renderer = layer.renderer()
    labeling = layer.labeling() if layer.labelsEnabled() else None
    styled[style.__name__] = {
        "renderer": renderer.type(), "attribute": renderer.classAttribute(),
        "categories": [[c.value(), c.label(), c.symbol().color().name()] for c in renderer.categories()],
        "label": labeling and [labeling.settings().fieldName, labeling.settings().isExpression],
        "features": layer.featureCount()}
print(json.dumps(styled))
"""


def test_objects_are_their_own_file_coloured_by_class_and_labelled_with_score(qgis, plugin_paths, colour_plugin):
    from resegzoo_colour_method import COLOURS

    image = np.full((64, 64, 3), 250, np.uint8)
    for name, (y0, x0, y1, x1) in OBJECT_BOXES:
        image[y0:y1, x0:x1] = COLOURS[name]
    _geotiff(qgis["root"] / "objects.tif", image)
    env = dict(qgis["env"])  # the resegzoo subprocess finds the colour method (an installed plugin)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [*plugin_paths, env.get("PYTHONPATH", "")] if p)
    out = qgis["root"] / "out-objects"
    args = ["run", "resegzoo:segment", "--", "INPUT=objects.tif", "CLASSES=red; green; blue", "METHOD=colour",
            f"OUTPUT={out / 'scene.labels.tif'}", f"VECTOR={out / 'regions.gpkg'}", f"OBJECTS={out / 'cars.gpkg'}"]
    done = subprocess.run([qgis["process"], *args], env=env, cwd=qgis["root"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--objects" in done.stdout and f"wrote {out / 'cars.gpkg'}" in done.stdout
    import pyogrio

    # two plain files: the objects alone in theirs, the regions alone in theirs
    assert [name for name, _ in pyogrio.list_layers(out / "cars.gpkg")] == ["objects"]
    assert [name for name, _ in pyogrio.list_layers(out / "regions.gpkg")] == ["regions"]
    meta, _, _, fields = pyogrio.raw.read(str(out / "cars.gpkg"))
    assert list(meta["fields"]) == ["object_id", "class", "class_id", "name", "score", "presence", "area"]
    rows = [dict(zip(meta["fields"], values)) for values in zip(*fields)]
    assert sorted(r["class"] for r in rows) == ["green", "red", "red", "red"]
    painted_areas = [(y1 - y0) * (x1 - x0) * 0.25 for _, (y0, x0, y1, x1) in OBJECT_BOXES]  # m² (0.5 m pixels)
    assert sorted(r["area"] for r in rows) == sorted(painted_areas)
    assert all(0 < r["score"] <= 1 for r in rows) and meta["crs"] == "EPSG:32632"
    assert sorted(p.name for p in out.iterdir()) == ["cars.gpkg", "regions.gpkg", "scene.labels.qml",
                                                     "scene.labels.tif", "scene.labels.tif.aux.xml"]
    # the style the algorithm puts on both layers when QGIS loads them
    names, palette = ["red", "green", "blue"], [[200, 0, 0], [0, 150, 0], [0, 0, 220]]
    script = qgis["root"] / "style.py"
    script.write_text(textwrap.dedent(STYLE_SCRIPT))
    done = subprocess.run([qgis["python"], str(script), str(out / "cars.gpkg"), str(out / "regions.gpkg"),
                           json.dumps(names), json.dumps(palette)], env=qgis["env"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    styled = json.loads(done.stdout.strip().splitlines()[-1])
    colours = [[n, n, "#%02x%02x%02x" % tuple(rgb)] for n, rgb in zip(names, palette)]
    for which in ("ObjectStyle", "RegionStyle"):
        assert styled[which]["renderer"] == "categorizedSymbol" and styled[which]["attribute"] == "class"
        assert styled[which]["categories"] == colours  # the same palette for objects and regions
    assert styled["ObjectStyle"]["label"] == ["round(score, 2)", True] and styled["ObjectStyle"]["features"] == 4
    assert styled["RegionStyle"]["label"] is None


def test_objects_from_a_method_without_them_is_resegzoos_one_line_and_writes_nothing(qgis):
    out = qgis["root"] / "out-no-objects"
    done = _run(qgis, *_segment_args(out, "example-tiny", f"OBJECTS={out / 'objects.gpkg'}"))
    assert done.returncode != 0
    errors = {line.removeprefix("ERROR:").strip() for line in (done.stdout + done.stderr).splitlines()
              if "resegzoo: " in line}
    assert len(errors) == 1, done.stdout + done.stderr
    assert errors.pop().startswith("resegzoo: --objects: method 'clip' gives no objects"), done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert list(out.iterdir()) == []
