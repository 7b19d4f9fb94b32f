"""Run ``resegzoo segment`` as a subprocess for the Processing algorithm: the command line, its
progress and log lines, cancelling, and moving the results onto the paths the user chose.

Plain Python (no qgis import), so resegzoo's tests exercise it without QGIS. The algorithm passes
callbacks to QGIS's feedback object.

Progress: resegzoo draws tqdm bars on stderr. tqdm takes default arguments from ``TQDM_*``
environment variables, so the subprocess gets a bar format that prints ``@resegzoo-progress
DESC|N|TOTAL@`` instead of a bar; nested bars (blocks, then windows inside a block) combine into one
fraction. Everything else resegzoo prints goes to the log as it comes.

Outputs: resegzoo writes ``STEM.labels.tif`` and friends into a folder; the algorithm gives it a
fresh hidden folder beside the chosen OUTPUT and, only after it finished, renames its files onto
OUTPUT (and OUTPUT's ``.aux.xml`` class names and ``.qml`` style), VECTOR, PROBS and OBJECTS. A
cancelled or failed run removes that folder: nothing half-written reaches the chosen paths.

OBJECTS beside VECTOR: resegzoo has one ``--vector-format`` and, in a GeoPackage, writes the objects
as a layer ``objects`` of the regions file. The plugin wants two plain files, so (decision) OBJECTS
must have VECTOR's format when both are set (a one-line error otherwise, before anything runs), and
with ``.gpkg`` the ``objects`` layer is moved out of the regions GeoPackage into its own file with
GDAL (:func:`split_gpkg_layer`, QGIS's own GDAL) in the work folder, before anything is renamed.
"""
import codecs
import errno
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading

PROGRESS_MARK = "@resegzoo-progress "
_PROGRESS = re.compile(re.escape(PROGRESS_MARK) + r"(?P<desc>[^|@]*)\|(?P<n>\d+)\|(?P<total>[^|@]*)@")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: the exit status of resegzoo stopped by SIGINT (resegzoo.cli.INTERRUPTED_EXIT)
INTERRUPTED = 130
#: how long a cancelled resegzoo gets to clean up after SIGINT before it is killed
CANCEL_GRACE_S = 20.0


class ResegzooFailed(Exception):
    """resegzoo exited with an error; ``str(exc)`` is its one-line message."""


class Cancelled(Exception):
    """The user cancelled; resegzoo was stopped and its files removed."""


def subprocess_env(base=None):
    """The environment of the resegzoo subprocess: QGIS's, minus what points Python at QGIS's own
    interpreter (PYTHONHOME would break another environment's Python), plus the progress format."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONHOME", None)
    env["TQDM_BAR_FORMAT"] = PROGRESS_MARK + "{desc}|{n}|{total}@"
    env["TQDM_MININTERVAL"] = "0.5"  # progress twice a second is plenty for a dialog's bar
    env["PYTHONUNBUFFERED"] = "1"  # log lines as they happen, not when a pipe buffer fills
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def vector_format_of(vector=None, objects=None):
    """resegzoo's ``--vector-format`` for the VECTOR and OBJECTS destinations (None: neither set);
    ResegzooFailed when they differ (resegzoo writes both in one format)."""
    formats = {os.path.splitext(path)[1].lstrip(".").lower() for path in (vector, objects) if path}
    if len(formats) > 1:
        raise ResegzooFailed(f"Objects ({objects}) and Regions ({vector}) must both be .gpkg or both .geojson "
                             "(resegzoo writes them in one format); nothing was written")
    return formats.pop() if formats else None


def segment_command(executable, input_path, out_dir, classes, model=None, masks=None, recipe=None, method=None,
                    bands=None, nodata=None, tile_size=None, device=None, vector_format=None, probs=False,
                    objects_format=None):
    """The ``resegzoo segment`` command line; empty optional values are left to resegzoo's defaults.
    ``vector_format``: regions in that format; ``objects_format``: objects in that format."""
    cmd = [executable, "segment", input_path, "--classes", classes, "--out", out_dir, "--cog"]
    for flag, value in (("--model", model), ("--masks", masks), ("--recipe", recipe), ("--method", method),
                        ("--bands", bands), ("--nodata", nodata), ("--tile-size", tile_size),
                        ("--device", device)):
        if value not in (None, ""):
            cmd += [flag, str(value)]
    if vector_format:
        cmd += ["--vector", "--vector-format", vector_format]
    if objects_format:  # both set: the same format (vector_format_of)
        cmd += ["--objects"] + ([] if vector_format else ["--vector-format", objects_format])
    if probs:
        cmd += ["--probs", "uint8"]
    return cmd


class ProgressTracker:
    """Nested tqdm bars -> one fraction. A bar seen after another is inside it (windows inside a
    block); when an outer bar moves, the bars inside it are done or about to restart."""

    def __init__(self):
        self.bars = []  # [desc, n, total], outermost first

    def update(self, desc, n, total):
        for i, bar in enumerate(self.bars):
            if bar[0] == desc:
                del self.bars[i:]
                break
        self.bars.append([desc, n, total])
        return self.fraction()

    def fraction(self):
        done = 0.0
        for _, n, total in reversed(self.bars):
            done = min(1.0, (n + done) / total) if total else done
        return done


class OutputParser:
    """Splits resegzoo's output (bytes, as they arrive) into progress updates and log lines."""

    def __init__(self, on_line, on_progress):
        self.on_line, self.on_progress = on_line, on_progress
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        self.tracker = ProgressTracker()
        self.error = None  # resegzoo's one-line message ("Error: ..." from click)
        self.last_line = None

    def feed(self, data, final=False):
        text = self.pending + self.decoder.decode(data, final)
        pieces = re.split(r"[\r\n]", text)
        self.pending = "" if final else pieces.pop()
        for piece in pieces:
            self._piece(piece)

    def _piece(self, piece):
        piece = _ANSI.sub("", piece)
        for match in _PROGRESS.finditer(piece):
            total = match["total"].strip()
            if total.isdigit() and int(total) > 0:
                self.on_progress(100.0 * self.tracker.update(match["desc"].strip(), int(match["n"]), int(total)))
        line = _PROGRESS.sub("", piece).rstrip()
        if not line.strip():
            return
        if line.startswith("Error: "):  # click's one-line message: raised, not logged twice
            self.error = line[len("Error: "):]
            return
        self.last_line = line
        self.on_line(line)


def run_resegzoo(cmd, on_line, on_progress, is_cancelled, env=None, cwd=None, poll_s=0.2, on_idle=None):
    """Run ``cmd``, passing its lines and progress on, until it ends or ``is_cancelled()``;
    ``on_idle()`` is called between polls (QGIS's events, where a cancel may be waiting).

    Raises :class:`Cancelled` (after SIGINT, then a kill if it does not stop) or
    :class:`ResegzooFailed` with resegzoo's one-line message."""
    parser = OutputParser(on_line, on_progress)
    chunks = queue.Queue()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=subprocess_env(env), cwd=cwd)
    except OSError as exc:
        raise ResegzooFailed(f"cannot run {cmd[0]}: {exc}") from exc

    def pump():  # a thread: reading a pipe blocks, and the caller must keep checking for Cancel
        fd = proc.stdout.fileno()
        while True:
            data = os.read(fd, 65536)
            chunks.put(data)
            if not data:
                return

    reader = threading.Thread(target=pump, name="resegzoo-output", daemon=True)
    reader.start()
    cancelled = False
    finished = False
    try:
        while not finished:
            try:
                data = chunks.get(timeout=poll_s)
            except queue.Empty:
                data = None
            if data == b"":
                finished = True
            elif data:
                parser.feed(data)
            if on_idle is not None:
                on_idle()
            if not cancelled and is_cancelled():
                cancelled = True
                _stop(proc)
        parser.feed(b"", final=True)
        code = proc.wait()
    finally:
        if proc.poll() is None:  # an error in a callback: never leave resegzoo running
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if cancelled or code == INTERRUPTED:  # INTERRUPTED: Ctrl-C reached resegzoo (qgis_process in a terminal)
        raise Cancelled("cancelled: resegzoo was stopped and nothing was written")
    if code != 0:
        message = parser.error or parser.last_line or f"resegzoo exited with status {code}"
        raise ResegzooFailed(message)


def _stop(proc):
    """SIGINT first (resegzoo removes its partial files and exits 130), a kill if it lingers."""
    if os.name == "nt":
        proc.terminate()  # no SIGINT for a child on Windows; its work folder is removed anyway
    else:
        proc.send_signal(signal.SIGINT)

    def kill_later():
        try:
            proc.wait(timeout=CANCEL_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()

    threading.Thread(target=kill_later, name="resegzoo-stop", daemon=True).start()


def work_dir(destination):
    """A fresh hidden folder beside ``destination`` (same filesystem: its files are renamed into place)."""
    folder = os.path.dirname(os.path.abspath(destination))
    os.makedirs(folder, exist_ok=True)
    return tempfile.mkdtemp(prefix=".resegzoo-qgis-", dir=folder)


def remove_work_dir(path):
    if os.path.isdir(path):
        shutil.rmtree(path)


def read_sidecar(out_dir):
    """The JSON sidecar resegzoo wrote (its record of the outputs, class names and palette)."""
    sidecars = [n for n in os.listdir(out_dir) if n.endswith(".json")]
    if len(sidecars) != 1:
        raise ResegzooFailed(f"resegzoo finished but wrote {len(sidecars)} result records into {out_dir}, not one")
    with open(os.path.join(out_dir, sidecars[0]), encoding="utf-8") as fh:
        return json.load(fh)


def style_path(labels_destination):
    """Where QGIS looks for a raster's default style: the same name with ``.qml``."""
    return os.path.splitext(labels_destination)[0] + ".qml"


def destinations(labels, vector=None, probs=None, objects=None):
    """Every path the outputs are renamed onto: the labels' class names and style beside it, the
    vectors, the probabilities and the objects."""
    return [path for path in (labels + ".aux.xml", style_path(labels), vector, probs, objects, labels) if path]


def check_destinations(paths):
    """Refuse, before anything is run or written, a destination that cannot be replaced by a
    file: a folder in the way (or a folder's place taken by a file). ResegzooFailed naming it."""
    for path in paths:
        if os.path.isdir(path):
            raise ResegzooFailed(f"{path} is a folder; choose another output path (nothing was written)")
        parent = os.path.dirname(os.path.abspath(path))
        while parent and not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if parent and not os.path.isdir(parent):
            raise ResegzooFailed(f"{path}: {parent} is a file, not a folder; choose another output path "
                                 "(nothing was written)")


def place_outputs(out_dir, record, labels, vector=None, probs=None, objects=None, split_layer=None):
    """Rename resegzoo's files from ``out_dir`` onto the chosen paths; the label raster last, so
    that its class names and style are in place when it appears. Every destination is checked
    first (:func:`check_destinations`): nothing is moved when one cannot be written. Objects that
    resegzoo wrote as a layer of the regions GeoPackage are first moved into a file of their own
    by ``split_layer(gpkg, layer, new_gpkg)`` (default :func:`split_gpkg_layer`). Returns the paths
    written."""
    written = {}
    outputs = record["outputs"]
    check_destinations(destinations(labels, vector, probs, objects))
    objects_name = outputs.get("objects") if objects else None
    if objects and not objects_name:
        raise ResegzooFailed("resegzoo finished but wrote no objects file; nothing was written")
    if objects_name and objects_name == outputs.get("vector"):  # one GeoPackage, two layers: split it
        own = os.path.splitext(objects_name)[0] + ".objects-only.gpkg"
        (split_layer or split_gpkg_layer)(os.path.join(out_dir, objects_name), OBJECTS_LAYER,
                                          os.path.join(out_dir, own))
        objects_name = own
    moves = [(outputs.get("attribute_table"), labels + ".aux.xml"), (outputs.get("qgis_style"), style_path(labels))]
    if vector:
        moves.append((outputs["vector"], vector))
    if probs:
        moves.append((outputs["probs"], probs))
    if objects_name:
        moves.append((objects_name, objects))
    moves.append((outputs.get("cog") or outputs["labels"], labels))
    for name, destination in moves:
        if name:
            _move(os.path.join(out_dir, name), destination)
            written[name] = destination
    return written


#: the layer resegzoo writes its objects into (resegzoo.outputs.gis.objects.LAYER_NAME; not imported:
#: the plugin runs in QGIS's Python, without resegzoo)
OBJECTS_LAYER = "objects"


def split_gpkg_layer(source, layer, destination):
    """Move ``layer`` of the GeoPackage ``source`` into a new GeoPackage ``destination`` (same layer
    name, fields, CRS) and drop it from ``source``, with GDAL's Python bindings (QGIS ships them)."""
    from osgeo import gdal

    gdal.UseExceptions()
    try:
        copied = gdal.VectorTranslate(destination, source, format="GPKG", layers=[layer])
        if copied is None:
            raise ResegzooFailed(f"{source}: could not copy its layer '{layer}' into {destination}")
        copied = None  # closed: written
        dataset = gdal.OpenEx(source, gdal.OF_VECTOR | gdal.OF_UPDATE)
        index = next(i for i in range(dataset.GetLayerCount()) if dataset.GetLayer(i).GetName() == layer)
        dataset.DeleteLayer(index)
        dataset.ExecuteSQL("VACUUM")
        dataset = None
    except (RuntimeError, StopIteration) as exc:
        raise ResegzooFailed(f"{source}: could not move its layer '{layer}' into {destination} ({exc})") from None


def _move(source, destination):
    """Rename, or copy beside the destination and rename where it is on another filesystem."""
    os.makedirs(os.path.dirname(os.path.abspath(destination)), exist_ok=True)
    try:
        os.replace(source, destination)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:  # only another filesystem is worked around
            raise
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(destination) + ".part-",
                               dir=os.path.dirname(os.path.abspath(destination)))
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, destination)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
