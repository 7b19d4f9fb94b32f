"""``resegzoo:segment``: segment a raster layer into named classes by running ``resegzoo segment``.

QGIS collects the parameters; :mod:`.runner` runs resegzoo in its own environment and moves its
files onto OUTPUT (a COG with class names in ``.aux.xml`` and a ``.qml`` style), VECTOR, PROBS and
OBJECTS (``--objects``: the method's objects, coloured by class and labelled with their score).
"""
import os
import shlex

from qgis.core import (
    Qgis,
    QgsCategorizedSymbolRenderer,
    QgsFillSymbol,
    QgsPalLayerSettings,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsProviderRegistry,
    QgsRendererCategory,
    QgsVectorLayerSimpleLabeling,
)

from qgis.PyQt.QtCore import QCoreApplication, QThread

from . import runner
from .settings import check_executable, executable

HELP = """Segments a raster into the classes you name, with no training (resegzoo, ReSeg-CLIP).

<b>Classes</b>: ";" between classes, "," between synonyms of one class, e.g. <i>building, roof; road, street; tree; water</i>. The first name of a class is its label.
<b>Model</b>: a zoo name (remoteclip-vit-l-14, ...), a checkpoint file, a folder written by <i>resegzoo compose</i>, local-dir:DIR or hf-hub:ORG/REPO. Empty: the recipe's. <i>example-tiny</i> is a random demo model.
<b>Masks</b>: the segments that restrict attention: slic, felzenszwalb, sam, sam2, none. Empty: the recipe's.

The labels are a Cloud-Optimized GeoTIFF on the input's grid and CRS, with the class names and a QGIS style beside it; nodata pixels get 255. Regions are polygons with their class and area. Probabilities: one band per class, 0-255. Objects: one polygon per object the method finds (segearth-ov3, proc-sam3) with its class, name, score, presence and area, labelled with its score; a method without objects (clip) is refused. With Regions too, both must be .gpkg or both .geojson.

resegzoo runs in its own Python environment (Settings > Options > Processing > Providers > resegzoo). Cancel stops it; nothing half-written is left."""

try:  # the enum names of QGIS >= 3.36 (the only ones in QGIS 4)
    ADVANCED = Qgis.ProcessingParameterFlag.Advanced
    POLYGONS = Qgis.ProcessingSourceType.VectorPolygon
    INTEGER = Qgis.ProcessingNumberParameterType.Integer
except AttributeError:  # QGIS 3.22 - 3.34
    ADVANCED = QgsProcessingParameterDefinition.FlagAdvanced
    POLYGONS = QgsProcessing.TypeVectorPolygon
    INTEGER = QgsProcessingParameterNumber.Integer
#: post-processors must outlive processAlgorithm (QGIS calls them afterwards, on the main thread)
_POST_PROCESSORS = []


class SegmentAlgorithm(QgsProcessingAlgorithm):
    INPUT, CLASSES, MODEL, MASKS = "INPUT", "CLASSES", "MODEL", "MASKS"
    RECIPE, METHOD, BANDS, NODATA, TILE_SIZE, DEVICE = "RECIPE", "METHOD", "BANDS", "NODATA", "TILE_SIZE", "DEVICE"
    OUTPUT, VECTOR, PROBS, OBJECTS = "OUTPUT", "VECTOR", "PROBS", "OBJECTS"

    def name(self):
        return "segment"

    def displayName(self):  # noqa: N802 (QGIS's names)
        return "Segment into named classes"

    def shortDescription(self):  # noqa: N802
        return "Label every pixel with one of the classes you name (open-vocabulary, no training)."

    def shortHelpString(self):  # noqa: N802
        return HELP.replace("\n", "<br>")

    def createInstance(self):  # noqa: N802
        return SegmentAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Input raster"))
        self.addParameter(QgsProcessingParameterString(
            self.CLASSES, 'Classes (";" between classes, "," between synonyms)',
            defaultValue="building, roof; road, street; tree; low vegetation, grass; water"))
        self.addParameter(QgsProcessingParameterString(
            self.MODEL, "Model (zoo name, checkpoint, composed folder, local-dir:, hf-hub:)", optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.MASKS, "Mask generator (slic, felzenszwalb, sam, sam2, none)", optional=True))
        self.addParameter(QgsProcessingParameterString(self.BANDS, "Bands as R,G,B, e.g. 4,3,2", optional=True))
        self.addParameter(QgsProcessingParameterString(self.DEVICE, "Device (cpu, cuda, cuda:1, mps)",
                                                       defaultValue="cpu"))
        advanced = [
            QgsProcessingParameterFile(self.RECIPE, "Recipe (YAML)", optional=True,
                                       fileFilter="YAML files (*.yaml *.yml)"),
            QgsProcessingParameterString(self.METHOD, "Method (clip, or a plugin's: resegzoo list methods)",
                                         optional=True),
            QgsProcessingParameterString(self.NODATA, "Nodata value of the input (overrides the file's; e.g. 0, nan)",
                                         optional=True),
            QgsProcessingParameterNumber(self.TILE_SIZE, "Block size in pixels (memory)",
                                         type=INTEGER, optional=True, minValue=64),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | ADVANCED)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Labels"))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.VECTOR, "Regions (polygons)", type=POLYGONS, optional=True,
            createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.PROBS, "Class probabilities", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OBJECTS, "Objects (polygons; a method with instances: segearth-ov3, proc-sam3)", type=POLYGONS,
            optional=True, createByDefault=False))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        exe = executable()
        problem = check_executable(exe)
        if problem:
            raise QgsProcessingException(problem)
        source = self._input_path(parameters, context)
        classes = self.parameterAsString(parameters, self.CLASSES, context).strip()
        if not classes:
            raise QgsProcessingException('name the classes, e.g. "building; road, street; tree; water"')
        labels = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        vector = self._optional_output(parameters, self.VECTOR, context)
        probs = self._optional_output(parameters, self.PROBS, context)
        objects = self._optional_output(parameters, self.OBJECTS, context)
        self._check_extension(labels, (".tif", ".tiff"), "Labels")
        if probs:
            self._check_extension(probs, (".tif", ".tiff"), "Class probabilities")
        if vector:
            self._check_extension(vector, (".gpkg", ".geojson"), "Regions")
        if objects:
            self._check_extension(objects, (".gpkg", ".geojson"), "Objects")
        try:  # a folder in the way of an output: refused before resegzoo runs, not after it wrote the rest
            runner.vector_format_of(vector, objects)  # OBJECTS beside VECTOR: one format (runner's docstring)
            runner.check_destinations(runner.destinations(labels, vector, probs, objects))
        except runner.ResegzooFailed as exc:
            raise QgsProcessingException(str(exc)) from None
        tile = parameters.get(self.TILE_SIZE)
        work = runner.work_dir(labels)
        try:
            cmd = runner.segment_command(
                exe, source, work, classes,
                model=self._text(parameters, self.MODEL, context), masks=self._text(parameters, self.MASKS, context),
                recipe=self.parameterAsFile(parameters, self.RECIPE, context) or None,
                method=self._text(parameters, self.METHOD, context), bands=self._text(parameters, self.BANDS, context),
                nodata=self._text(parameters, self.NODATA, context),
                tile_size=None if tile in (None, "") else self.parameterAsInt(parameters, self.TILE_SIZE, context),
                device=self._text(parameters, self.DEVICE, context),
                vector_format=(os.path.splitext(vector)[1].lstrip(".").lower() if vector else None),
                probs=bool(probs), objects_format=(runner.vector_format_of(None, objects) if objects else None))
            feedback.pushCommandInfo(" ".join(shlex.quote(part) for part in cmd))
            try:
                # resegzoo's lines as an external tool's console output (monospace, spacing kept)
                runner.run_resegzoo(cmd, feedback.pushConsoleInfo, feedback.setProgress, feedback.isCanceled,
                                    on_idle=_process_events_on_main_thread)
            except runner.Cancelled as exc:
                raise QgsProcessingException(str(exc)) from None
            except runner.ResegzooFailed as exc:
                raise QgsProcessingException(f"resegzoo: {exc}") from None
            try:
                record = runner.read_sidecar(work)
                written = runner.place_outputs(work, record, labels, vector=vector, probs=probs, objects=objects)
            except runner.ResegzooFailed as exc:
                raise QgsProcessingException(str(exc)) from None
        finally:
            runner.remove_work_dir(work)
        self._style_on_load(context, labels, LabelStyle(runner.style_path(labels)))
        if vector:
            self._style_on_load(context, vector, RegionStyle(record["class_names"], record["palette"]))
        if objects:
            self._style_on_load(context, objects, ObjectStyle(record["class_names"], record["palette"]))
        for path in written.values():  # resegzoo's own lines name its work folder, not these
            feedback.pushInfo(f"wrote {path}")
        feedback.setProgress(100)
        return {self.OUTPUT: labels, self.VECTOR: vector or None, self.PROBS: probs or None,
                self.OBJECTS: objects or None}

    def _input_path(self, parameters, context):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException("the input raster could not be opened")
        path = layer.source()
        if layer.providerType() == "gdal":
            path = QgsProviderRegistry.instance().decodeUri("gdal", path).get("path") or path
        if not os.path.isfile(path):
            raise QgsProcessingException(f"{layer.name()}: resegzoo reads raster files, and {path} is not one; "
                                         "save the layer as a GeoTIFF first (Export > Save As...)")
        return os.path.abspath(path)

    def _optional_output(self, parameters, name, context):
        if parameters.get(name) in (None, ""):
            return None
        return self.parameterAsOutputLayer(parameters, name, context) or None

    def _text(self, parameters, name, context):
        return self.parameterAsString(parameters, name, context).strip() or None

    @staticmethod
    def _check_extension(path, extensions, what):
        if not path.lower().endswith(extensions):
            raise QgsProcessingException(f"{what}: {path} must end in {' or '.join(extensions)}")

    @staticmethod
    def _style_on_load(context, path, post_processor):
        if context.willLoadLayerOnCompletion(path):
            _POST_PROCESSORS.append(post_processor)
            context.layerToLoadOnCompletionDetails(path).setPostProcessor(post_processor)


def _process_events_on_main_thread():
    """Let Qt deliver events while resegzoo runs, when the algorithm runs on the main thread:
    qgis_process's Ctrl-C reaches the feedback as an event (as in its own progress bar), and QGIS's
    window stays alive for processing.run() from the Python console. The dialog runs algorithms in
    a worker thread, whose Cancel needs no events."""
    app = QCoreApplication.instance()
    if app is not None and QThread.currentThread() == app.thread():
        app.processEvents()


class LabelStyle(QgsProcessingLayerPostProcessorInterface):
    """Loads resegzoo's .qml (class names and colours) onto the label layer QGIS adds."""

    def __init__(self, qml):
        super().__init__()
        self.qml = qml

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        if os.path.isfile(self.qml):
            message, ok = layer.loadNamedStyle(self.qml)
            if not ok:
                feedback.reportError(f"{self.qml}: style not loaded ({message})")
            layer.triggerRepaint()


class RegionStyle(QgsProcessingLayerPostProcessorInterface):
    """Colours the polygons by their ``class`` with the label raster's colours."""

    def __init__(self, class_names, palette):
        super().__init__()
        self.classes = list(zip(class_names, palette))

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        categories = []
        for name, rgb in self.classes:
            symbol = QgsFillSymbol.createSimple({"color": ",".join(str(int(c)) for c in rgb[:3]),
                                                 "outline_style": "no"})
            categories.append(QgsRendererCategory(name, symbol, name))
        layer.setRenderer(QgsCategorizedSymbolRenderer("class", categories))
        layer.triggerRepaint()


class ObjectStyle(RegionStyle):
    """The objects: coloured by ``class`` like the regions, each labelled with its score (2 decimals)."""

    #: the label's expression (QgsPalLayerSettings.fieldName with isExpression)
    LABEL = "round(score, 2)"

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        settings = QgsPalLayerSettings()
        settings.fieldName = self.LABEL
        settings.isExpression = True
        layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
        layer.setLabelsEnabled(True)
        super().postProcessLayer(layer, context, feedback)
