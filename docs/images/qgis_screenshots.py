"""docs/qgis.md's screenshots, taken in real QGIS under Xvfb: open resegzoo:segment's dialog on a
scene, grab it, press Run, grab the log, grab the main window with the loaded results, quit.

    resegzoo qgis install        # into the profile of the HOME used below
    mkdir /tmp/shots && SHOTS=/tmp/shots SCENE=scene.tif \
        CLASSES="building, roof; road, street; tree; low vegetation, grass; water" \
        xvfb-run -a -s "-screen 0 1280x860x24" qgis.bin --nologo --noversioncheck --code docs/images/qgis_screenshots.py
    cp /tmp/shots/qgis-*.png docs/images/

(scene.tif: tests/data/demo_tile.png as a GeoTIFF in EPSG:32632; the results are written beside the
screenshots.) Runs inside QGIS's Python, not resegzoo's.
"""
import os
from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QTabWidget
from qgis.utils import iface
import processing

OUT, SCENE, CLASSES = os.environ["SHOTS"], os.environ["SCENE"], os.environ["CLASSES"]
layer = QgsRasterLayer(SCENE, "scene")
QgsProject.instance().addMapLayer(layer)
state = {}


def after(seconds, step):
    QTimer.singleShot(int(seconds * 1000), step)


def dialog():
    iface.mainWindow().showMaximized()
    params = {"INPUT": layer, "CLASSES": CLASSES, "MODEL": "example-tiny", "MASKS": "slic",
              "OUTPUT": os.path.join(OUT, "scene.labels.tif"), "VECTOR": os.path.join(OUT, "scene.regions.gpkg")}
    dlg = processing.createAlgorithmDialog("resegzoo:segment", params)
    dlg.resize(1000, 800)
    dlg.show()
    state["dlg"] = dlg
    after(3, grab_dialog)


def grab_dialog():
    state["dlg"].grab().save(os.path.join(OUT, "qgis-dialog.png"))
    state["dlg"].runButton().click()  # runs in a background task, as a user's click does
    after(2, wait_for_run)


def wait_for_run():
    if not os.path.exists(os.path.join(OUT, "scene.labels.tif")):
        return after(2, wait_for_run)
    after(5, grab_log)


def grab_log():
    state["dlg"].findChildren(QTabWidget)[0].setCurrentIndex(1)
    after(1, grab_log_now)


def grab_log_now():
    state["dlg"].grab().save(os.path.join(OUT, "qgis-log.png"))
    state["dlg"].close()
    view = iface.layerTreeView()
    for node in QgsProject.instance().layerTreeRoot().findLayers():
        node.setExpanded(node.name() == "Labels")
        if node.name() == "Regions (polygons)":
            node.setItemVisibilityChecked(False)  # the raster's own style is what is shown
    iface.mapCanvas().zoomToFullExtent()
    iface.mapCanvas().refreshAllLayers()
    after(4, finish)


def finish():
    iface.mainWindow().grab().save(os.path.join(OUT, "qgis-result.png"))
    QgsProject.instance().clear()  # QGIS 3.22 can crash tearing down a window with layers in it
    after(1, QApplication.instance().quit)


after(5, dialog)
