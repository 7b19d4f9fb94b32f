"""`resegzoo qgis install|uninstall` into QGIS profile folders under tmp_path (no QGIS needed), and
what the copied plugin is: data QGIS's Python runs, which must not import resegzoo."""
from __future__ import annotations

import ast
import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

import resegzoo
from resegzoo.outputs import atomic
from resegzoo.cli import build_cli
from resegzoo.qgis import install as installer

PLUGIN_FILES = {"__init__.py", "metadata.txt", "plugin.py", "provider.py", "algorithm.py", "runner.py", "settings.py"}


@pytest.fixture
def exe(tmp_path) -> Path:
    path = tmp_path / "venv" / "bin" / "resegzoo"
    path.parent.mkdir(parents=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def profiles(tmp_path) -> Path:
    return tmp_path / "profiles"


def cli(*args: str, expect: int = 0):
    result = CliRunner().invoke(build_cli(), ["qgis", *args])
    assert result.exit_code == expect, result.output
    return result


def test_install_copies_the_plugin_records_the_executable_and_enables_it(profiles, exe):
    result = cli("install", "--profiles-dir", str(profiles), "--executable", str(exe))
    folder = profiles / "default" / "python" / "plugins" / "resegzoo_qgis"
    assert str(folder) in result.output and str(exe) in result.output
    assert {p.name for p in folder.iterdir()} == PLUGIN_FILES | {"install.json"}  # no __pycache__
    assert json.loads((folder / "install.json").read_text())["executable"] == str(exe)
    ini = profiles / "default" / "QGIS" / "QGIS3.ini"
    assert ini.read_text() == "[PythonPlugins]\nresegzoo_qgis=true\n"
    # the plugin reads the record with its own code (QGIS's Python would)
    from resegzoo.qgis.plugin import settings

    assert settings.recorded_executable() == ""  # the source folder holds no record
    record = json.loads((folder / settings.INSTALL_RECORD).read_text())
    assert settings.check_executable(record["executable"]) is None
    assert "does not exist" in settings.check_executable(str(exe) + "-gone")


def test_install_keeps_the_rest_of_the_profile_settings_and_drops_a_stale_executable(profiles, exe):
    ini = profiles / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    before = ("[General]\nlocale\\userLocale=en_US\n\n[PythonPlugins]\nprocessing=true\nother_plugin=false\n\n"
              "[Processing]\nConfiguration\\RESEGZOO_EXECUTABLE=/old/venv/bin/resegzoo\nConfiguration\\OTHER=1\n\n"
              "[qgis]\nstylesheet\\fontPointSize=10\n")
    ini.write_text(before)
    installer.install(profiles_dir=profiles, executable=exe)
    assert ini.read_text() == before.replace("other_plugin=false\n", "other_plugin=false\nresegzoo_qgis=true\n").replace(
        "Configuration\\RESEGZOO_EXECUTABLE=/old/venv/bin/resegzoo\n", "")
    installer.uninstall(profiles_dir=profiles)
    assert ini.read_text() == before.replace("Configuration\\RESEGZOO_EXECUTABLE=/old/venv/bin/resegzoo\n", "")


def test_reinstall_replaces_the_plugin_whole_and_leaves_no_temporaries(profiles, exe):
    folder, _ = installer.install(profiles_dir=profiles, executable=exe)
    (folder / "left-from-an-old-version.py").write_text("")
    other = exe.with_name("resegzoo2")
    other.write_bytes(exe.read_bytes())
    other.chmod(0o755)
    installer.install(profiles_dir=profiles, executable=other)
    assert not (folder / "left-from-an-old-version.py").exists()
    assert json.loads((folder / "install.json").read_text())["executable"] == str(other)
    assert atomic.temporaries(folder.parent) == []
    assert (profiles / "default" / "QGIS" / "QGIS3.ini").read_text().count("resegzoo_qgis=true") == 1


def test_uninstall_removes_the_plugin_and_its_settings(profiles, exe):
    folder, _ = installer.install(profiles_dir=profiles, executable=exe)
    result = cli("uninstall", "--profiles-dir", str(profiles))
    assert f"removed {folder}" in result.output
    assert not folder.exists() and atomic.temporaries(folder.parent) == []
    assert "resegzoo" not in (profiles / "default" / "QGIS" / "QGIS3.ini").read_text()
    assert "not installed" in cli("uninstall", "--profiles-dir", str(profiles)).output


def test_profiles_default_and_named(profiles, exe):
    (profiles / "work").mkdir(parents=True)
    (profiles / "profiles.ini").write_text("[core]\ndefaultProfile=work\n")
    folder, _ = installer.install(profiles_dir=profiles, executable=exe)
    assert folder == profiles / "work" / "python" / "plugins" / "resegzoo_qgis"
    (profiles / "field").mkdir()
    folder, _ = installer.install("field", profiles_dir=profiles, executable=exe)
    assert folder.parent.parent.parent.name == "field"


def test_an_unknown_profile_is_a_one_line_error(profiles, exe):
    (profiles / "default").mkdir(parents=True)
    result = cli("install", "--profile", "nope", "--profiles-dir", str(profiles), "--executable", str(exe), expect=1)
    assert result.output.strip().splitlines() == [
        f"Error: no QGIS profile 'nope' in {profiles} (profiles there: default); create it in QGIS "
        "(Settings > User Profiles > New Profile) or leave out --profile"]
    assert not (profiles / "nope").exists()
    assert "not a QGIS profile name" in cli("install", "--profile", "../x", "--profiles-dir", str(profiles),
                                              "--executable", str(exe), expect=1).output


def test_a_missing_executable_is_a_one_line_error(profiles, tmp_path):
    result = cli("install", "--profiles-dir", str(profiles), "--executable", str(tmp_path / "none"), expect=1)
    assert len(result.output.strip().splitlines()) == 1 and "is not an executable file" in result.output
    assert not profiles.exists()


def test_the_default_profiles_folder_is_qgis3s(monkeypatch, tmp_path):
    monkeypatch.delenv("QGIS_CUSTOM_CONFIG_PATH", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    if os.name == "posix" and not os.uname().sysname == "Darwin":
        assert installer.default_profiles_dir() == tmp_path / ".local" / "share" / "QGIS" / "QGIS3" / "profiles"
    monkeypatch.setenv("QGIS_CUSTOM_CONFIG_PATH", str(tmp_path / "custom"))
    assert installer.default_profiles_dir() == tmp_path / "custom" / "profiles"


def test_the_default_executable_is_this_environments_resegzoo():
    exe = installer.default_executable()
    assert exe is not None and exe.name.startswith("resegzoo") and os.access(exe, os.X_OK)


def test_the_plugin_never_imports_resegzoo_or_torch():
    """QGIS runs the plugin with its own Python, where neither exists. osgeo (GDAL's bindings) is
    QGIS's own: its Processing uses it, Debian's python3-qgis-common depends on python3-gdal, and
    QGIS's installers ship it."""
    for path in installer.PLUGIN_SOURCE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                assert name.split(".")[0] in {"qgis", "processing", "codecs", "errno", "json", "os", "queue", "re",
                                              "shlex", "shutil", "signal", "subprocess", "tempfile", "threading",
                                              "osgeo"}, \
                    f"{path.name} imports {name}"


def test_plugin_metadata():
    text = (installer.PLUGIN_SOURCE / "metadata.txt").read_text()
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith(";"))
    assert fields["version"] == resegzoo.__version__
    assert fields["hasProcessingProvider"] == "yes"
    assert float(fields["qgisMinimumVersion"]) <= 3.22
    assert {"name", "description", "about", "author", "email", "repository"} <= set(fields)


def _no_qgis_on_path(monkeypatch, tmp_path) -> None:
    bare = tmp_path / "bare-bin"
    bare.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(bare))


def test_install_without_qgis_says_so_and_still_installs(profiles, exe, monkeypatch, tmp_path):
    from resegzoo.qgis.detect import QGIS_PACKAGES

    _no_qgis_on_path(monkeypatch, tmp_path)
    result = cli("install", "--profiles-dir", str(profiles), "--executable", str(exe))
    assert "note: no QGIS found on this machine" in result.output
    assert f"apt-get install {QGIS_PACKAGES}" in result.output and str(profiles) in result.output
    assert (profiles / "default" / "python" / "plugins" / "resegzoo_qgis" / "install.json").is_file()
    # QGIS started once (its profiles folder exists) or on PATH: no note
    again = cli("install", "--profiles-dir", str(profiles), "--executable", str(exe))
    assert "no QGIS found" not in again.output
    (tmp_path / "bare-bin" / "qgis_process").write_text("#!/bin/sh\n")
    (tmp_path / "bare-bin" / "qgis_process").chmod(0o755)
    other = tmp_path / "other-profiles"
    assert "no QGIS found" not in cli("install", "--profiles-dir", str(other), "--executable", str(exe)).output


def test_docs_and_the_real_qgis_tests_name_the_same_packages():
    from resegzoo.qgis.detect import QGIS_PACKAGES

    docs = (Path(__file__).resolve().parents[1] / "docs" / "qgis.md").read_text(encoding="utf-8")
    real = (Path(__file__).with_name("test_qgis_real.py")).read_text(encoding="utf-8")
    assert f"apt-get install {QGIS_PACKAGES}" in docs and "{QGIS_PACKAGES}" in real
    assert "apt-get install qgis`" not in docs  # no place names fewer packages
    assert "Couldn't load SIP module" in docs and "virtualenv" in docs and "pyenv" in docs
