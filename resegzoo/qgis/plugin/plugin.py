"""The plugin object QGIS starts: it only adds and removes the Processing provider."""
from qgis.core import QgsApplication

from .provider import ResegzooProvider


class ResegzooPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS's name; qgis_process calls only this)
        if self.provider is None:
            self.provider = ResegzooProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
