"""`resegzoo.api.detect_change` checks its arguments' types like `segment_files` does: a wrong type is
a one-line error naming the argument (a ResegzooError the CLI catches), before any raster is read or
the model loads; never an AttributeError from deep inside, and never a truthy string taken for True
(``overwrite="no"`` must not overwrite)."""
from __future__ import annotations

import pytest

from resegzoo.errors import ResegzooError


@pytest.mark.parametrize("argument, value", [
    ("classes", 5), ("classes", ["red", "blue"]), ("method", 5), ("model", 5), ("device", 0),
    ("background_threshold", "0.4"), ("coverage", "a"), ("min_area", "5"), ("min_area", 2.5),
    ("background_classes", 5), ("bands", 3), ("nodata", [0]), ("trust_vrt", "no"), ("overwrite", "no"),
    ("say", 5), ("progress", "yes"),
])
def test_a_wrong_type_is_a_one_line_error_naming_the_argument(colour_plugin, tmp_path, argument, value):
    from resegzoo.api import detect_change

    recipe = tmp_path / "colour.yaml"
    recipe.write_text("method: colour-change\n")
    kwargs = {"recipe": recipe, argument: value}
    classes = kwargs.pop("classes", "red; blue")
    # the dates do not exist: only the argument's check may answer
    with pytest.raises(ResegzooError) as caught:
        detect_change(tmp_path / "a.tif", tmp_path / "b.tif", classes, tmp_path / "out", **kwargs)
    message = str(caught.value)
    assert isinstance(caught.value, TypeError) and argument in message and "\n" not in message, message
    assert not (tmp_path / "out").exists()
