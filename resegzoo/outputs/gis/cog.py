"""The label raster as a Cloud-Optimized GeoTIFF that GIS software opens with names and colours.

GDAL writes everything: a small VRT in front of the finished label raster adds the colour table,
the class names (GDAL category names) and a thematic raster attribute table (value, class, colour),
and GDAL's COG driver copies it into a tiled, deflate-compressed GeoTIFF whose overviews use MODE
resampling (an overview pixel is the most frequent class below it, never an average). GeoTIFF
keeps category names and the attribute table in GDAL's ``NAME.tif.aux.xml`` sidecar (QGIS, ArcGIS
and GDAL read it); a QGIS style ``NAME.qml`` is written beside it too. The class names are also kept
in the file itself (:func:`label_names_metadata`: the band description and GDAL metadata, which
GeoTIFF stores in its own GDAL_METADATA tag), so a ``.tif`` copied alone still says what its values are.
"""
from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Sequence

from resegzoo.outputs.atomic import atomic_path
from resegzoo.outputs.gis import NODATA_LABEL, GisError, without_georeference_warnings

#: COG creation options (GDAL's COG driver)
COG_OPTIONS = {"COMPRESS": "DEFLATE", "BLOCKSIZE": "512", "OVERVIEW_RESAMPLING": "MODE", "BIGTIFF": "IF_SAFER"}
#: GDAL raster-attribute-table field types and usages (gdal.h: GDALRATFieldType, GDALRATFieldUsage)
_RAT_INT, _RAT_STRING = 0, 2
_USAGE_NAME, _USAGE_MINMAX, _USAGE_RED, _USAGE_GREEN, _USAGE_BLUE, _USAGE_ALPHA = 2, 5, 6, 7, 8, 9


#: the label raster's own metadata: the dataset's ``CLASS_NAMES`` (a JSON list, value k = entry k)
#: and band 1's ``CLASS_<k>`` (one name per value)
CLASS_NAMES_KEY = "CLASS_NAMES"


def label_names_metadata(class_names: Sequence[str]) -> tuple[str, dict[str, str], dict[str, str]]:
    """(band description, dataset metadata, band metadata) naming the classes of a label raster."""
    values = ", ".join(f"{k} {name}" for k, name in enumerate(class_names))
    description = f"class labels: {values}; {NODATA_LABEL} nodata" if values else "class labels"
    dataset = {CLASS_NAMES_KEY: json.dumps(list(class_names), ensure_ascii=False)}
    band = {f"CLASS_{k}": name for k, name in enumerate(class_names)}
    return description, dataset, band


def write_label_names(dataset: Any, class_names: Sequence[str]) -> None:
    """Name the classes inside a label raster opened for writing with rasterio (see
    :func:`label_names_metadata`)."""
    description, dataset_tags, band_tags = label_names_metadata(class_names)
    dataset.set_band_description(1, description)
    dataset.update_tags(**dataset_tags)
    dataset.update_tags(1, **band_tags)


def read_label_names(dataset: Any) -> list[str] | None:
    """The class names a label raster carries in its own metadata (rasterio dataset), or None."""
    text = dataset.tags().get(CLASS_NAMES_KEY)
    try:
        names = json.loads(text) if text else None
    except ValueError:
        return None
    return names if isinstance(names, list) and all(isinstance(n, str) for n in names) else None


def _metadata(parent: ET.Element, items: dict[str, str]) -> None:
    metadata = ET.SubElement(parent, "Metadata")
    for key, value in items.items():
        ET.SubElement(metadata, "MDI", {"key": key}).text = value


def _styled_vrt(src: Any, source_path: Path, class_names: Sequence[str],
                palette: Sequence[tuple[int, int, int]]) -> str:
    """VRT XML: the source's band 1 as is, plus colour table, category names and attribute table."""
    root = ET.Element("VRTDataset", {"rasterXSize": str(src.width), "rasterYSize": str(src.height)})
    if src.crs is not None:
        ET.SubElement(root, "SRS").text = src.crs.to_wkt()
    if not src.transform.is_identity:
        t = src.transform
        ET.SubElement(root, "GeoTransform").text = ",".join(repr(v) for v in (t.c, t.a, t.b, t.f, t.d, t.e))
    description, dataset_tags, band_tags = label_names_metadata(class_names)
    _metadata(root, dataset_tags)
    band = ET.SubElement(root, "VRTRasterBand", {"dataType": "Byte", "band": "1"})
    ET.SubElement(band, "Description").text = description
    _metadata(band, band_tags)
    nodata = NODATA_LABEL if src.nodata is None else int(src.nodata)
    ET.SubElement(band, "NoDataValue").text = str(nodata)
    ET.SubElement(band, "ColorInterp").text = "Palette"
    categories = ET.SubElement(band, "CategoryNames")
    for name in class_names:
        ET.SubElement(categories, "Category").text = name
    table = ET.SubElement(band, "ColorTable")
    for value in range(256):  # classes in their colours; every other value (nodata) transparent
        r, g, b, a = (*palette[value], 255) if value < len(class_names) else (0, 0, 0, 0)
        ET.SubElement(table, "Entry", {"c1": str(r), "c2": str(g), "c3": str(b), "c4": str(a)})
    rat = ET.SubElement(band, "GDALRasterAttributeTable", {"tableType": "thematic"})
    fields = [("Value", _RAT_INT, _USAGE_MINMAX), ("Class", _RAT_STRING, _USAGE_NAME), ("Red", _RAT_INT, _USAGE_RED),
              ("Green", _RAT_INT, _USAGE_GREEN), ("Blue", _RAT_INT, _USAGE_BLUE), ("Alpha", _RAT_INT, _USAGE_ALPHA)]
    for index, (name, kind, usage) in enumerate(fields):
        field = ET.SubElement(rat, "FieldDefn", {"index": str(index)})
        ET.SubElement(field, "Name").text = name
        ET.SubElement(field, "Type").text = str(kind)
        ET.SubElement(field, "Usage").text = str(usage)
    for value, (name, rgb) in enumerate(zip(class_names, palette)):
        row = ET.SubElement(rat, "Row", {"index": str(value)})
        for cell in (value, name, *rgb, 255):
            ET.SubElement(row, "F").text = str(cell)
    source = ET.SubElement(band, "SimpleSource")
    ET.SubElement(source, "SourceFilename", {"relativeToVRT": "0"}).text = str(source_path.resolve())
    ET.SubElement(source, "SourceBand").text = "1"
    return ET.tostring(root, encoding="unicode")


def write_cog(labels_path: str | Path, cog_path: str | Path, class_names: Sequence[str],
              palette: Sequence[tuple[int, int, int]]) -> list[Path]:
    """Copy a single-band uint8 label raster (GeoTIFF or PNG) to a COG with names and colours.

    ``cog_path`` may be ``labels_path`` itself (the plain GeoTIFF is then replaced). Writes
    ``cog_path`` and GDAL's ``cog_path.aux.xml`` (category names, attribute table) atomically and
    returns both paths. Rasters without a CRS (PNG inputs) give a COG in pixel coordinates."""
    import rasterio
    import rasterio.shutil

    labels_path, cog_path = Path(labels_path), Path(cog_path)
    if len(class_names) > NODATA_LABEL or len(palette) < len(class_names):
        raise GisError(f"{len(class_names)} classes with {len(palette)} colours: a label COG holds at most "
                       f"{NODATA_LABEL} classes, one colour each")
    with without_georeference_warnings(), rasterio.open(labels_path) as src:
        if src.count != 1 or src.dtypes[0] != "uint8":
            raise GisError(f"{labels_path}: a label raster is one uint8 band, not {src.count} {src.dtypes[0]} band(s)")
        vrt = _styled_vrt(src, labels_path, class_names, palette)
    aux_path = cog_path.with_name(cog_path.name + ".aux.xml")
    with tempfile.TemporaryDirectory(prefix="resegzoo-cog-") as work:
        vrt_path = Path(work) / "styled.vrt"
        vrt_path.write_text(vrt, encoding="utf-8")
        with atomic_path(cog_path) as tmp, without_georeference_warnings():
            rasterio.shutil.copy(str(vrt_path), str(tmp), driver="COG", **COG_OPTIONS)
            tmp_aux = tmp.with_name(tmp.name + ".aux.xml")
            if not tmp_aux.exists():
                raise GisError(f"GDAL wrote no attribute table beside {cog_path} (GDAL_PAM_ENABLED=NO?)")
            os.replace(tmp_aux, aux_path)
    return [cog_path, aux_path]
