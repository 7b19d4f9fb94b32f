"""QGIS profile settings files edited by ``resegzoo qgis install`` / ``uninstall`` (issue 26 item 4).

QGIS3.ini may hold saved database passwords (0600): it was rewritten with default permissions
(0644); a read-only file was rewritten; a symlinked ini was replaced by a plain file; CRLF line
endings became LF; a non-UTF-8 or NUL-containing ini or profiles.ini was read with replacement
characters. Now: mode and owner kept, the link's target written, a read-only file left alone with a
one-line error, CRLF kept, and an ini that is not UTF-8 text is a one-line error BEFORE the plugin
is copied (no half-installed plugin).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hostile_helpers import assert_one_line_error, cli, snapshot
from resegzoo.outputs.atomic import temporaries

BEFORE = "[General]\nlocale\\userLocale=en_US\n\n[PythonPlugins]\nprocessing=true\n\n[qgis]\nfontPointSize=10\n"
ENABLED = "resegzoo_qgis=true"


@pytest.fixture
def exe(tmp_path) -> Path:
    path = tmp_path / "venv" / "bin" / "resegzoo"
    path.parent.mkdir(parents=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def ini(tmp_path) -> Path:
    path = tmp_path / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    path.parent.mkdir(parents=True)
    path.write_text(BEFORE)
    return path


def _install(tmp_path: Path, exe: Path):
    return cli("qgis", "install", "--profiles-dir", str(tmp_path / "profiles"), "--executable", str(exe))


def _uninstall(tmp_path: Path):
    return cli("qgis", "uninstall", "--profiles-dir", str(tmp_path / "profiles"))


def _plugin(tmp_path: Path) -> Path:
    return tmp_path / "profiles" / "default" / "python" / "plugins" / "resegzoo_qgis"


def test_a_private_ini_keeps_its_mode_and_owner(tmp_path, exe, ini):
    ini.chmod(0o600)
    owner = (12345, 12345) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    if os.geteuid() == 0:  # root can give the file away, as a profile of another user would be
        os.chown(ini, *owner)
    assert _install(tmp_path, exe).exit_code == 0
    assert ENABLED in ini.read_text()
    assert stat.S_IMODE(ini.stat().st_mode) == 0o600
    assert (ini.stat().st_uid, ini.stat().st_gid) == owner
    assert _uninstall(tmp_path).exit_code == 0
    assert ENABLED not in ini.read_text() and stat.S_IMODE(ini.stat().st_mode) == 0o600


def test_a_symlinked_ini_is_written_through_its_target(tmp_path, exe, ini):
    real = tmp_path / "dotfiles" / "QGIS3.ini"
    real.parent.mkdir()
    ini.rename(real)
    ini.symlink_to(real)
    assert _install(tmp_path, exe).exit_code == 0
    assert ini.is_symlink() and Path(os.readlink(ini)) == real
    assert ENABLED in real.read_text()
    assert not temporaries(tmp_path)


def test_a_read_only_ini_is_left_alone_with_a_one_line_error(tmp_path, exe, ini):
    ini.chmod(0o444)
    before = snapshot(tmp_path)
    assert_one_line_error(_install(tmp_path, exe), str(ini), "read-only")
    assert ini.read_text() == BEFORE and stat.S_IMODE(ini.stat().st_mode) == 0o444
    assert snapshot(tmp_path) == before, "nothing installed when the ini cannot be edited"
    assert not _plugin(tmp_path).exists()


def test_crlf_line_endings_are_kept(tmp_path, exe, ini):
    ini.write_bytes(BEFORE.replace("\n", "\r\n").encode())
    assert _install(tmp_path, exe).exit_code == 0
    raw = ini.read_bytes()
    assert ENABLED.encode() + b"\r\n" in raw
    assert raw.count(b"\n") == raw.count(b"\r\n"), raw
    assert _uninstall(tmp_path).exit_code == 0
    assert ini.read_bytes() == BEFORE.replace("\n", "\r\n").encode()


@pytest.mark.parametrize(("which", "data", "fragment"), [
    ("QGIS3.ini", BEFORE.encode() + b"caf\xe9=1\n", "not UTF-8"),
    ("QGIS3.ini", BEFORE.encode() + b"x=\x00\x00\n", "NUL"),
    ("profiles.ini", b"[core]\ndefaultProfile=caf\xe9\n", "not UTF-8"),
    ("profiles.ini", b"[core]\ndefaultProfile=de\x00fault\n", "NUL"),
])
def test_an_ini_that_is_not_utf8_text_is_refused_before_the_plugin_is_copied(tmp_path, exe, ini, which, data, fragment):
    path = ini if which == "QGIS3.ini" else tmp_path / "profiles" / "profiles.ini"
    path.write_bytes(data)
    before = snapshot(tmp_path)
    assert_one_line_error(_install(tmp_path, exe), str(path), fragment)
    assert path.read_bytes() == data
    assert snapshot(tmp_path) == before and not _plugin(tmp_path).exists()


def test_uninstall_refuses_a_broken_ini_and_keeps_the_plugin(tmp_path, exe, ini):
    assert _install(tmp_path, exe).exit_code == 0
    broken = ini.read_bytes() + b"\xff\n"
    ini.write_bytes(broken)
    assert_one_line_error(_uninstall(tmp_path), str(ini), "not UTF-8")
    assert ini.read_bytes() == broken and _plugin(tmp_path).is_dir()
