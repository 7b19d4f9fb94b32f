"""The QGIS plugin's subprocess runner (plain Python, run here without QGIS): progress from real tqdm
bars, log lines, resegzoo's one-line error, cancelling, and the mapping onto resegzoo's flags."""
from __future__ import annotations

import os
import sys
import textwrap
import time

import pytest

from resegzoo.cli import build_cli
from resegzoo.qgis.plugin import runner


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


class Collected:
    def __init__(self, cancel_after_line: bool = False):
        self.lines: list[str] = []
        self.progress: list[float] = []
        self.cancel_after_line = cancel_after_line

    def run(self, cmd: list[str], **kwargs):
        return runner.run_resegzoo(cmd, self.lines.append, self.progress.append, self.cancelled, **kwargs)

    def cancelled(self) -> bool:
        return self.cancel_after_line and bool(self.lines)


def test_nested_tqdm_bars_become_one_rising_progress_and_lines_pass_through():
    # the bars resegzoo draws for a raster: blocks, and windows inside each block (leave=False)
    got = Collected()
    got.run(python("""
        import sys, time
        from tqdm.auto import tqdm
        print("starting", flush=True)
        for b in tqdm(range(3), desc="blocks", leave=False):
            for w in tqdm(range(4), desc="windows", leave=False):
                time.sleep(0.15)
        print("done: écrit", file=sys.stderr)
    """))
    assert got.lines == ["starting", "done: écrit"]
    assert all(0 <= p <= 100 for p in got.progress)
    assert got.progress == sorted(got.progress), got.progress
    assert any(0 < p < 100 for p in got.progress) and got.progress[-1] == 100


def test_progress_tracker_nests_bars():
    tracker = runner.ProgressTracker()
    assert tracker.update("blocks", 0, 4) == 0
    assert tracker.update("windows", 5, 10) == pytest.approx(0.125)
    assert tracker.update("blocks", 1, 4) == pytest.approx(0.25)  # the inner bar restarts
    assert tracker.update("windows", 0, 10) == pytest.approx(0.25)


def test_a_failure_raises_resegzoos_one_line_message():
    got = Collected()
    with pytest.raises(runner.ResegzooFailed) as info:
        got.run(python("""
            import sys
            print("Usage: resegzoo segment [OPTIONS] INPUTS...", file=sys.stderr)
            print("Error: no-such-model: not a zoo name, file or folder", file=sys.stderr)
            sys.exit(1)
        """))
    assert str(info.value) == "no-such-model: not a zoo name, file or folder"
    assert got.lines == ["Usage: resegzoo segment [OPTIONS] INPUTS..."]  # the message is raised, not logged twice


def test_a_crash_without_a_message_reports_its_last_line():
    with pytest.raises(runner.ResegzooFailed, match="^RuntimeError: boom$"):
        Collected().run(python("raise RuntimeError('boom')"))
    with pytest.raises(runner.ResegzooFailed, match="cannot run"):
        Collected().run(["/no/such/resegzoo"])


def test_cancel_interrupts_the_subprocess_and_raises():
    got = Collected(cancel_after_line=True)
    start = time.monotonic()
    with pytest.raises(runner.Cancelled):
        got.run(python("""
            import time
            try:  # the line inside: the SIGINT it triggers must land in here
                print("working", flush=True)
                time.sleep(60)
            except KeyboardInterrupt:
                print("interrupted, cleaning up", flush=True)
                raise SystemExit(130)
        """))
    assert time.monotonic() - start < 20
    assert got.lines == ["working", "interrupted, cleaning up"]  # SIGINT first: resegzoo cleans up


def test_a_subprocess_that_ignores_sigint_is_killed(monkeypatch):
    monkeypatch.setattr(runner, "CANCEL_GRACE_S", 0.5)
    got = Collected(cancel_after_line=True)
    start = time.monotonic()
    with pytest.raises(runner.Cancelled):
        got.run(python("""
            import signal, time
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("stubborn", flush=True)
            time.sleep(60)
        """))
    assert time.monotonic() - start < 20


def test_every_flag_the_plugin_passes_is_a_segment_option():
    cmd = runner.segment_command("resegzoo", "in.tif", "out", "a; b", model="m", masks="slic", recipe="r.yaml",
                                 method="x", bands="1,2,3", nodata="0", tile_size=512, device="cpu",
                                 vector_format="gpkg", probs=True)
    segment = build_cli().commands["segment"]
    options = {opt for param in segment.params for opt in param.opts}
    flags = [part for part in cmd if part.startswith("--")]
    assert len(flags) == 14
    assert [f for f in flags if f not in options] == []


def test_outputs_are_renamed_onto_the_chosen_paths(tmp_path):
    work = runner.work_dir(tmp_path / "dest" / "labels.tif")
    assert (tmp_path / "dest").is_dir()
    names = {"labels": "s.labels.tif", "cog": "s.labels.tif", "attribute_table": "s.labels.tif.aux.xml",
             "qgis_style": "s.labels.qml", "vector": "s.regions.gpkg", "probs": "s.probs.tif", "overlay": "s.overlay.png"}
    for name in names.values():
        (tmp_path / "dest" / work / name).write_text(name)
    written = runner.place_outputs(work, {"outputs": names}, str(tmp_path / "dest" / "labels.tif"),
                                   vector=str(tmp_path / "v" / "regions.gpkg"), probs=str(tmp_path / "dest" / "p.tif"))
    assert (tmp_path / "dest" / "labels.tif").read_text() == "s.labels.tif"
    assert (tmp_path / "dest" / "labels.tif.aux.xml").read_text() == "s.labels.tif.aux.xml"
    assert (tmp_path / "dest" / "labels.qml").read_text() == "s.labels.qml"
    assert (tmp_path / "v" / "regions.gpkg").read_text() == "s.regions.gpkg"
    assert (tmp_path / "dest" / "p.tif").read_text() == "s.probs.tif"
    assert len(written) == 5
    runner.remove_work_dir(work)
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["labels.qml", "labels.tif", "labels.tif.aux.xml",
                                                                      "p.tif"]


def test_objects_flags_are_segment_options_and_one_format_for_both_vectors():
    segment = build_cli().commands["segment"]
    options = {opt for param in segment.params for opt in param.opts}
    alone = runner.segment_command("resegzoo", "in.tif", "out", "a", objects_format="geojson")
    assert alone[alone.index("--objects"):] == ["--objects", "--vector-format", "geojson"] and "--vector" not in alone
    both = runner.segment_command("resegzoo", "in.tif", "out", "a", vector_format="gpkg", objects_format="gpkg")
    assert [p for p in both if p.startswith("--")][-3:] == ["--vector", "--vector-format", "--objects"]
    assert [p for p in alone + both if p.startswith("--") and p not in options] == []
    assert runner.vector_format_of("r.GPKG", "o.gpkg") == "gpkg"
    assert runner.vector_format_of(None, "o.geojson") == "geojson"
    assert runner.vector_format_of() is None
    with pytest.raises(runner.ResegzooFailed, match=r"must both be \.gpkg or both \.geojson"):
        runner.vector_format_of("r.gpkg", "o.geojson")
    assert runner.destinations("l.tif", objects="o.gpkg")[-2:] == ["o.gpkg", "l.tif"]


def _work_with(tmp_path, names):
    work = runner.work_dir(tmp_path / "dest" / "labels.tif")
    for name in set(names.values()):
        (tmp_path / "dest" / work / name).write_text(name)
    return work


def test_objects_alone_are_renamed_onto_their_destination(tmp_path):
    names = {"labels": "s.labels.tif", "objects": "s.objects.gpkg"}
    work = _work_with(tmp_path, names)
    written = runner.place_outputs(work, {"outputs": names}, str(tmp_path / "dest" / "labels.tif"),
                                   objects=str(tmp_path / "o" / "cars.gpkg"))
    assert (tmp_path / "o" / "cars.gpkg").read_text() == "s.objects.gpkg"
    assert written == {"s.objects.gpkg": str(tmp_path / "o" / "cars.gpkg"),
                       "s.labels.tif": str(tmp_path / "dest" / "labels.tif")}
    # resegzoo wrote no objects (it always does with --objects): refused, nothing moved
    work = _work_with(tmp_path, {"labels": "s.labels.tif"})
    with pytest.raises(runner.ResegzooFailed, match="no objects file"):
        runner.place_outputs(work, {"outputs": {"labels": "s.labels.tif"}}, str(tmp_path / "dest" / "l2.tif"),
                             objects=str(tmp_path / "o" / "o2.gpkg"))
    assert not (tmp_path / "dest" / "l2.tif").exists()


def test_objects_inside_the_regions_geopackage_are_split_into_their_own_file(tmp_path):
    names = {"labels": "s.labels.tif", "vector": "s.regions.gpkg", "objects": "s.regions.gpkg"}
    work = _work_with(tmp_path, names)
    calls = []

    def split(source, layer, destination):  # the real one (GDAL) runs in QGIS: tests/test_qgis_real.py
        calls.append((source, layer, destination))
        with open(destination, "w") as fh:
            fh.write(layer)
        with open(source, "w") as fh:
            fh.write("regions")

    runner.place_outputs(work, {"outputs": names}, str(tmp_path / "dest" / "labels.tif"),
                         vector=str(tmp_path / "dest" / "r.gpkg"), objects=str(tmp_path / "dest" / "o.gpkg"),
                         split_layer=split)
    assert calls == [(os.path.join(work, "s.regions.gpkg"), "objects",
                      os.path.join(work, "s.regions.objects-only.gpkg"))]
    assert (tmp_path / "dest" / "o.gpkg").read_text() == "objects"
    assert (tmp_path / "dest" / "r.gpkg").read_text() == "regions"
    runner.remove_work_dir(work)
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["labels.tif", "o.gpkg", "r.gpkg"]
