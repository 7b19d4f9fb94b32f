"""The Processing provider ``resegzoo``: one algorithm, and the setting that says where the
``resegzoo`` executable is (Settings > Options > Processing > Providers > resegzoo)."""
from qgis.core import QgsProcessingProvider

from .algorithm import SegmentAlgorithm
from .settings import EXECUTABLE_SETTING, processing_config, recorded_executable


class ResegzooProvider(QgsProcessingProvider):
    def id(self):
        return "resegzoo"

    def name(self):
        return "resegzoo"

    def longName(self):
        return "resegzoo: open-vocabulary segmentation of remote-sensing imagery"

    def load(self):
        config, setting = processing_config()
        config.settingIcons[self.name()] = self.icon()
        config.addSetting(setting(self.name(), EXECUTABLE_SETTING, "resegzoo executable (in resegzoo's own environment)",
                                  recorded_executable(), valuetype=setting.FILE))
        config.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self):
        config, _ = processing_config()
        config.settings.pop(EXECUTABLE_SETTING, None)

    def loadAlgorithms(self):  # noqa: N802 (QGIS's names)
        self.addAlgorithm(SegmentAlgorithm())

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]

    def supportedOutputVectorLayerExtensions(self):  # noqa: N802
        return ["gpkg", "geojson"]

    def defaultVectorFileExtension(self, hasGeometry=True):  # noqa: N802,N803
        return "gpkg"

    def defaultRasterFileExtension(self):  # noqa: N802
        return "tif"

