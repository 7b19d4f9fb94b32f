"""The QGIS runner's outputs next to something in the way (issue 26 item 12): a folder at the
OUTPUT path used to get the ``.aux.xml`` and ``.qml`` renamed into place before the label raster's
rename failed (half an output, and a raw error). Every destination is checked before anything is
run or moved."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from resegzoo.qgis.plugin import runner

NAMES = {"labels": "s.labels.tif", "cog": "s.labels.tif", "attribute_table": "s.labels.tif.aux.xml",
         "qgis_style": "s.labels.qml", "vector": "s.regions.gpkg", "probs": "s.probs.tif"}


def _work(tmp_path: Path, labels: Path) -> str:
    work = runner.work_dir(labels)
    for name in NAMES.values():
        (Path(work) / name).write_text(name)
    return work


@pytest.mark.parametrize("blocked", ["labels", "vector", "probs", "style"])
def test_a_folder_at_an_output_path_moves_nothing(tmp_path, blocked):
    dest = tmp_path / "dest"
    labels, vector, probs = dest / "labels.tif", dest / "regions.gpkg", dest / "p.tif"
    work = _work(tmp_path, labels)
    in_the_way = {"labels": labels, "vector": vector, "probs": probs, "style": dest / "labels.qml"}[blocked]
    in_the_way.mkdir(parents=True)
    before = sorted(p.name for p in dest.iterdir())
    with pytest.raises(runner.ResegzooFailed, match=f"{in_the_way} is a folder"):
        runner.place_outputs(work, {"outputs": NAMES}, str(labels), vector=str(vector), probs=str(probs))
    assert sorted(p.name for p in dest.iterdir()) == before, "something was moved into place before the failure"
    assert sorted(p.name for p in Path(work).iterdir()) == sorted(set(NAMES.values()))
    runner.remove_work_dir(work)


def test_a_file_where_an_outputs_folder_should_be_is_refused(tmp_path):
    (tmp_path / "dest").write_text("a file")
    with pytest.raises(runner.ResegzooFailed, match="is a file, not a folder"):
        runner.check_destinations(runner.destinations(str(tmp_path / "dest" / "sub" / "labels.tif")))


def test_the_algorithm_checks_the_destinations_before_running_resegzoo():
    """QGIS is not installed here: the order is read off the algorithm's source (the check comes
    before the work folder is made and resegzoo is run)."""
    source = Path(runner.__file__).with_name("algorithm.py").read_text(encoding="utf-8")
    body = next(node for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.FunctionDef) and node.name == "processAlgorithm")
    calls = [node.func.attr for node in ast.walk(body) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
             and node.func.value.id == "runner"]
    assert "check_destinations" in calls
    lines = {name: min(n.lineno for n in ast.walk(body) if isinstance(n, ast.Attribute) and n.attr == name)
             for name in ("check_destinations", "work_dir", "run_resegzoo")}
    assert lines["check_destinations"] < lines["work_dir"] < lines["run_resegzoo"]
