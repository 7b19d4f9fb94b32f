"""benchmarks/render_peer_table.py on real `resegzoo eval` output, and the shipped benchmark recipes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from resegzoo.cli import build_cli
from resegzoo.eval.datasets import builtin_info
from resegzoo.eval.synthetic import write_dataset
from resegzoo_oracle import color_of

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "render_peer_table.py"


def _row(table: str, name: str) -> list[str]:
    line = next(row for row in table.splitlines() if row.startswith(f"| {name} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def test_table_puts_our_results_in_their_dataset_columns_beside_the_peers(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("base: eval-default\ninference: {window: 32, stride: 16}\nmasks: {generator: none}\n")
    outs = []
    for name, extra in (("vaihingen", []), ("udd5", ["--limit", "1"])):
        root, out = tmp_path / name, tmp_path / f"out-{name}"
        write_dataset(builtin_info(name), "mmseg", root, color_of)
        args = ["eval", "--dataset", name, "--root", str(root), "--recipe", str(recipe), "--model", "oracle",
                "--out", str(out), "--quiet", *extra]
        result = CliRunner().invoke(build_cli(), args)
        assert result.exit_code == 0, result.output
        outs.append(str(out / "results.json"))
    target = tmp_path / "table.md"
    proc = subprocess.run([sys.executable, str(SCRIPT), *outs, "--out", str(target)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    table = target.read_text()
    header = table.splitlines()[0]
    assert header == "| method | OpenEarthMap | LoveDA | iSAID | Potsdam | Vaihingen | UAVid | UDD5 | VDD |"
    # best of each column in bold (ties too: LoveDA); a --limit subset never counts as best
    assert _row(table, "SegEarth-OV") == ["**40.3**", "**36.9**", "21.7", "48.5", "40.0", "**42.5**", "**50.6**",
                                          "45.3"]
    assert _row(table, "MaskCLIP")[5] == "-"  # not reported
    assert _row(table, "CorrCLIP")[3] == "**51.9**"  # best peer number of its column
    # ours: 100 on Vaihingen, not bold: 32 px windows are not the peers' protocol ([custom]);
    # UDD5 on a --limit subset is marked; other columns empty
    assert _row(table, "resegzoo: oracle [custom]") == ["-", "-", "-", "-", "100.0", "-", "100.0*", "-"]
    assert "subset of the split" in table and "OpenEarthMap: peers" in table and "[peers] rows" in table
    assert json.loads((tmp_path / "out-vaihingen" / "results.json").read_text())["runs"][0]["protocol"] == "custom"


def test_only_peers_protocol_rows_can_be_best(tmp_path):
    root, out = tmp_path / "vaihingen", tmp_path / "out"
    write_dataset(builtin_info("vaihingen"), "mmseg", root, color_of)
    args = ["eval", "--dataset", "vaihingen", "--root", str(root), "--recipe", "eval-default", "--model", "oracle",
            "--masks", "none", "--out", str(out), "--quiet"]
    result = CliRunner().invoke(build_cli(), args)
    assert result.exit_code == 0, result.output
    assert "| peers |" in (out / "results.md").read_text()
    target = tmp_path / "table.md"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(out / "results.json"), "--out", str(target)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert _row(target.read_text(), "resegzoo: oracle [peers]")[4] == "**100.0**"


def test_bad_results_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text("{}")
    proc = subprocess.run([sys.executable, str(SCRIPT), str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "not a results.json written by `resegzoo eval`" in proc.stderr


@pytest.mark.parametrize("path", sorted((REPO / "benchmarks" / "recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_benchmark_recipes_load(path):
    from resegzoo.api import load_recipe

    from resegzoo.segmenter.recipe import protocol_name

    recipe = load_recipe(path)  # every benchmark recipe runs under the peers' protocol (eval-default)
    assert protocol_name(recipe) == "peers"
