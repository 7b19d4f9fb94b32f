"""A QGIS layer style (``.qml``) for a label raster: the paletted renderer with class names and colours.

QGIS applies ``NAME.qml`` automatically when it opens ``NAME.tif``, so the classes show with their
names and colours without any set-up."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

from resegzoo.outputs import atomic


def qml_text(class_names: Sequence[str], palette: Sequence[tuple[int, int, int]]) -> str:
    """The style as XML text: one palette entry per class (value = class id, label = class name)."""
    root = ET.Element("qgis", {"version": "3.28.0", "styleCategories": "Symbology"})
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", {"type": "paletted", "band": "1", "opacity": "1",
                                                       "alphaBand": "-1", "nodataColor": ""})
    ET.SubElement(renderer, "rasterTransparency")
    entries = ET.SubElement(renderer, "colorPalette")
    for value, (name, rgb) in enumerate(zip(class_names, palette)):
        ET.SubElement(entries, "paletteEntry", {"value": str(value), "color": "#{:02x}{:02x}{:02x}".format(*rgb),
                                                "alpha": "255", "label": name})
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode") + "\n"


def write_qml(path: str | Path, class_names: Sequence[str], palette: Sequence[tuple[int, int, int]]) -> Path:
    atomic.write_text(path, qml_text(class_names, palette))
    return Path(path)
