"""Issue 22 section 5: raster/reader.py is split by job (sandbox, options, stretch, georef, opening,
discovery); ``resegzoo.raster.reader`` stays the reader's documented face with every name it had,
and each name is the very object of the module that now holds it (one place, no copy)."""
from __future__ import annotations

import importlib

import pytest

#: every public name resegzoo.raster.reader had before the split, and the module holding it now
HOME = {
    "NODATA_LABEL": "opening", "Raster": "opening", "open_raster": "opening", "read_image": "opening",
    "fill_invalid": "opening", "SIDECAR_SUFFIXES": "discovery", "is_raster": "discovery",
    "find_rasters": "discovery", "ImageError": "errors", "MAX_VRT_DEPTH": "sandbox",
    "UNTRUSTED_GDAL_OPTIONS": "sandbox", "check_sources": "sandbox", "reaches_other_files": "sandbox",
    "gdal_env": "sandbox", "gdal_name": "names", "quiet_georef": "georef", "Georeference": "georef",
    "parse_bands": "options", "parse_nodata": "options", "parse_stretch": "options", "Stretch": "stretch",
    "OVERVIEW_SIDE": "stretch", "STRETCH_SAMPLE": "stretch", "STRETCH_SCOPES": "stretch",
    "needs_stretch": "stretch", "estimate_stretch": "stretch", "shared_stretch": "stretch",
    "with_stretch": "stretch",
}


@pytest.mark.parametrize("name", sorted(HOME))
def test_every_old_name_is_the_object_of_its_new_home(name):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the facade is documented, not retired: no warning
        reader = importlib.import_module("resegzoo.raster.reader")
    home = importlib.import_module(f"resegzoo.raster.{HOME[name]}")
    assert getattr(reader, name) is getattr(home, name)


def test_the_facade_lists_every_name():
    from resegzoo.raster import reader

    assert set(reader.__all__) == set(HOME)


def test_the_old_private_helpers_still_answer():
    """Code that reached into the module keeps working (the helpers were moved, not changed)."""
    from resegzoo.raster import reader

    assert reader._is_remote("s3://bucket/a.tif") and not reader._is_remote("a.tif")
    assert reader._source_problem("/vsizip/a.zip/b.tif") == "reads through an archive file system (/vsizip/)"
    assert reader._rounded([3263.0599999999395]) == "[3263.06]"


def test_the_batch_units_module_keeps_its_names():
    """batch/units.py was split the same way (naming, records, writer, unit); its names stay."""
    from resegzoo.batch import naming, records, unit, units, writer

    for name, home in [("output_stems", naming), ("OUTPUT_SUFFIXES", naming), ("sidecar_matches", naming),
                       ("remove_outputs", naming), ("stretch_record", records), ("raster_options", records),
                       ("settings_record", records), ("unit_record", records), ("written", records),
                       ("BatchResult", unit), ("RasterJob", unit), ("summary", unit),
                       ("write_units", writer), ("write_unit", writer)]:
        assert getattr(units, name) is getattr(home, name), name
    assert callable(units.run_batch) and callable(units.plan_job)
