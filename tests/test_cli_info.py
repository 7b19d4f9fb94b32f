"""``resegzoo plugins``, ``resegzoo list`` and ``resegzoo fetch`` end to end."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from resegzoo.plugins import registry as registry_module
from resegzoo.cli import build_cli
from resegzoo.weights.zoo import REGISTRY_ENV

REPO_REGISTRY = Path(__file__).resolve().parent.parent / "registry"


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setattr(registry_module, "_default", None)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(build_cli(), list(args), catch_exceptions=False)

    return invoke


@pytest.mark.parametrize("command", [["plugins"], ["list"], ["fetch"]])
def test_every_command_has_help(run, command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage: " in result.output and len(result.output.splitlines()) > 4
    if command != ["plugins"]:
        assert "--json" in result.output


def test_root_help_lists_the_commands(run):
    result = run("--help")
    for name in ("plugins", "list", "fetch"):
        assert f"  {name} " in result.output


def test_list_variants_table_and_json(run):
    table = run("list", "variants")
    assert table.exit_code == 0
    header, *rows = table.output.splitlines()
    assert header.split() == ["name", "architecture", "format", "init_from", "plugin"]
    row = next(r for r in rows if r.startswith("skyclip-vit-l-14 "))
    assert row.split()[1:3] == ["ViT-L-14-quickgelu", "skyclip-zip"]

    records = {r["name"]: r for r in json.loads(run("list", "variants", "--json").output)}
    assert records["georsclip-vit-h-14"]["hf_file"] == "ckpt/RS5M_ViT-H-14.pt"
    assert records["georsclip-vit-h-14"]["plugin"] == "resegzoo.builtin.models"
    assert len([n for n in records if n.split("-")[0] in ("openai", "remoteclip", "georsclip", "skyclip")]) >= 13


def test_list_sam_and_bad_kind(run):
    records = json.loads(run("list", "sam", "--json").output)
    assert [r["model_type"] for r in records] == ["vit_b", "vit_h", "vit_l", "hiera_b+", "hiera_l", "hiera_s", "hiera_t"]
    assert records[0]["file"] == "sam_vit_b_01ec64.pth" and records[0]["plugin"] == "resegzoo.builtin.models"
    result = CliRunner().invoke(build_cli(), ["list", "modles"])
    assert result.exit_code == 2 and "'modles' is not one of" in result.output
    result = CliRunner().invoke(build_cli(), ["list", "variants", "--kind", "sam"])
    assert result.exit_code == 2 and "--kind goes with `resegzoo list models`" in result.output


def test_list_models_shows_every_kind_and_marks_the_gated_ones(run):
    table = run("list", "models")
    assert table.exit_code == 0, table.output
    header, *rows = table.output.splitlines()
    assert header.split() == ["name", "kind", "size", "gated", "where", "plugin"]
    sam3 = next(r for r in rows if r.startswith("sam3 "))
    assert sam3.split()[1:5] == ["sam3", "3.5", "GB", "yes"]
    assert "hf-hub:facebook/sam3" in sam3
    assert next(r for r in rows if r.startswith("sam-vit-b ")).split()[1] == "sam"
    assert next(r for r in rows if r.startswith("remoteclip-vit-l-14 ")).split()[1] == "clip"
    assert "gated (sam3): accept the licence" in table.output and "HF_TOKEN" in table.output
    records = {r["name"]: r for r in json.loads(run("list", "models", "--json").output)}
    assert {r["kind"] for r in records.values()} >= {"clip", "sam", "sam2", "sam3"}
    assert records["sam3"]["gated"] is True and records["sam3"]["source"] == {"hf_repo": "facebook/sam3"}
    assert records["remoteclip-vit-l-14"]["details"]["architecture"] == "ViT-L-14-quickgelu"
    assert records["remoteclip-vit-l-14"]["gated"] is False
    only = json.loads(run("list", "models", "--kind", "sam3", "--json").output)
    assert [r["name"] for r in only] == ["sam3"]
    assert run("list", "models", "--kind", "nothing").output.strip() == "no models registered of kind 'nothing'"


@pytest.fixture
def local_sam_registry(tmp_path, monkeypatch, http_server):
    """A copy of registry/ whose SAM checkpoints download from the local test server."""
    folder = tmp_path / "registry"
    shutil.copytree(REPO_REGISTRY, folder)
    sam = folder / "models" / "sam.yaml"
    sam.write_text(sam.read_text().replace("https://dl.fbaipublicfiles.com", http_server.base))
    monkeypatch.setenv(REGISTRY_ENV, str(folder))
    http_server.files["/segment_anything/sam_vit_b_01ec64.pth"] = b"sam weights" * 1000
    return folder


def test_fetch_downloads_into_the_cache_and_prints_paths(run, local_sam_registry, resegzoo_cache, http_server,
                                                         monkeypatch):
    result = run("fetch", "sam-vit-b", "--json", "--quiet")
    assert result.exit_code == 0, result.output
    paths = json.loads(result.output)
    target = resegzoo_cache / "downloads" / "sam_vit_b_01ec64.pth"
    assert paths == {"sam-vit-b": str(target)}
    assert target.read_bytes() == b"sam weights" * 1000
    # offline, the cached file is found with no request
    monkeypatch.setenv("RESEGZOO_OFFLINE", "1")
    result = run("fetch", "vit_b", "--quiet")
    assert result.exit_code == 0 and result.output.strip() == f"sam-vit-b: {target}"
    assert len(http_server.requests) == 1


def test_fetch_unknown_name_is_a_usage_error_with_suggestions():
    result = CliRunner().invoke(build_cli(), ["fetch", "remoteclip-vit-l14"])
    assert result.exit_code == 2
    assert "remoteclip-vit-l-14" in result.output and "resegzoo list models" in result.output
    result = CliRunner().invoke(build_cli(), ["fetch", "sam33"])
    assert result.exit_code == 2 and "Did you mean sam3" in result.output


def test_fetch_offline_and_missing_explains_without_traceback(hf_offline):
    result = CliRunner().invoke(build_cli(), ["fetch", "remoteclip-vit-b-32"])
    assert result.exit_code == 1
    assert "chendelong/RemoteCLIP" in result.output and "RemoteCLIP-ViT-B-32.pt" in result.output
    assert "Traceback" not in result.output


def test_console_script_lists_builtins_and_the_example_plugin(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", RESEGZOO_CACHE=str(tmp_path))
    exe = Path(sys.executable).with_name("resegzoo")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from resegzoo.cli import main; main()"]
    out = subprocess.run(cmd + ["list", "variants", "--json"], env=env, capture_output=True, text=True,
                         check=True).stdout
    owners = {r["name"]: r["plugin"] for r in json.loads(out)}
    assert owners["remoteclip-vit-l-14"] == "resegzoo.builtin.models"
    assert owners["example-tiny"] == "example"  # through its installed entry point
    plugins = json.loads(subprocess.run(cmd + ["plugins"], env=env, capture_output=True, text=True,
                                        check=True).stdout)["plugins"]
    example = next(p for p in plugins if p["name"] == "example")
    assert example["distribution"] == "resegzoo-example" and not example["broken"]
    assert set(example["hooks"]) == {"resegzoo_register_models", "resegzoo_register_mask_generators"}


def test_help_and_list_with_every_bundled_plugin_import_no_torch(tmp_path):
    # A fresh interpreter: this test process has torch imported long ago. The bundled plugins are
    # imported from this checkout, whatever the installed entry points point at.
    repo = Path(__file__).resolve().parents[1]
    paths = [repo, repo / "plugins" / "resegzoo-example", repo / "plugins" / "resegzoo-oracle" / "src"]
    code = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from resegzoo.cli import build_cli\n"
        "from resegzoo.plugins.manager import get_plugin_manager\n"
        "cli = build_cli()\n"
        "for args in (['--help'], ['list', 'models'], ['list', 'variants'], ['list', 'sam'], ['list', 'recipes'],\n"
        "             ['plugins']):\n"
        "    result = CliRunner().invoke(cli, args)\n"
        "    assert result.exit_code == 0, (args, result.output)\n"
        "heavy = ('torch', 'torchvision', 'open_clip', 'timm', 'transformers', 'segment_anything', 'sam2')\n"
        "print(json.dumps({'plugins': sorted(n for n, _ in get_plugin_manager().list_name_plugin()),\n"
        "                  'heavy': sorted(m for m in heavy if m in sys.modules)}))\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", RESEGZOO_CACHE=str(tmp_path),
               PYTHONPATH=os.pathsep.join(map(str, paths)))
    out = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                    check=True).stdout)
    assert {"example", "oracle"} <= set(out["plugins"])  # every plugin under plugins/ was imported
    assert out["heavy"] == []


def test_list_recipes_shows_the_shipped_recipes_with_their_kind():
    result = CliRunner().invoke(build_cli(), ["list", "recipes"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:3] for line in result.output.splitlines()[1:]}
    assert rows["method-clearclip"] == ["segment", "eval-default"]
    assert rows["reseg-clip-l14"][0] == "compose" and rows["eval-default"][0] == "segment"
    listed = json.loads(CliRunner().invoke(build_cli(), ["list", "recipes", "--json"]).output)
    assert {r["name"] for r in listed} == set(rows)
    assert all(r["summary"] and Path(r["path"]).is_file() for r in listed)


def test_example_commands_in_the_shipped_recipes_parse():
    import shlex

    from resegzoo.weights.zoo import registry_dir

    cli = build_cli()
    examples = [line.lstrip("#").strip() for path in (registry_dir() / "recipes").glob("*.yaml")
                for line in path.read_text(encoding="utf-8").splitlines()
                if line.lstrip("#").strip().startswith("resegzoo eval ")]
    assert len(examples) >= 6
    for example in examples:
        args = shlex.split(example)[1:]
        command = cli.commands[args[0]]
        command.make_context(args[0], args[1:])  # raises on a missing required option such as --root


@pytest.mark.parametrize("args", [
    ["segment", "--help"],
    ["segment", "DEMO", "--classes", "a; b", "--model", "oracle", "--bands", "9,9,9", "--out", "OUT"],
    ["segment", "DEMO", "--classes", "a; b", "--model", "oracle", "--nodata", "nope", "--out", "OUT"],
    ["change", "--help"],
    ["change", "DEMO", "DEMO", "--classes", "a; b", "--model", "sam3", "--coverage", "2", "--out", "OUT"],
])
def test_help_and_failing_option_checks_import_no_torch(tmp_path, args):
    """`segment --help` and a command that fails its option checks pay for click, numpy and rasterio,
    not for torch (issue 27: start-up; benchmarks/bench_startup.py measures the CPU seconds)."""
    repo = Path(__file__).resolve().parents[1]
    args = [str(repo / "tests" / "data" / "demo_tile.png") if a == "DEMO" else str(tmp_path / "o") if a == "OUT"
            else a for a in args]
    code = ("import json, sys\n"
            "from click.testing import CliRunner\n"
            "from resegzoo.cli import build_cli\n"
            f"result = CliRunner().invoke(build_cli(), {args!r})\n"
            "heavy = ('torch', 'torchvision', 'open_clip', 'timm', 'transformers', 'segment_anything', 'sam2')\n"
            "print(json.dumps({'code': result.exit_code, 'output': result.output,\n"
            "                  'heavy': sorted(m for m in heavy if m in sys.modules)}))\n")
    paths = [repo, repo / "plugins" / "resegzoo-example", repo / "plugins" / "resegzoo-oracle" / "src"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", RESEGZOO_CACHE=str(tmp_path), PYTHONPATH=os.pathsep.join(map(str, paths)))
    out = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                    check=True).stdout.splitlines()[-1])
    assert out["code"] == (0 if "--help" in args else 2), out["output"]
    assert out["heavy"] == []
