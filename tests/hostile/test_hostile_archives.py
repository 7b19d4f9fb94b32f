"""Hostile zip archives given as a model (issue 8, items 1-2): nothing may land outside the cache.

A `.pth` file that lands in site-packages runs code at every Python start, so each archive below is
refused with an error that names the member, and the test checks that no file or folder appeared
anywhere but in resegzoo's cache (and that no member was extracted even there).
"""
from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hostile_helpers import (
    assert_nothing_outside,
    assert_one_line_error,
    cli,
    files_under,
    forge_member,
    snapshot,
    special_entry,
    symlink_entry,
    zip_entries,
)
from resegzoo.weights.archive import extract_member
from resegzoo.weights.zoo import FetchError

SITE_PACKAGES_PAYLOAD = b"import os; os.makedirs('code-ran')\n"  # what an attacker's .pth would hold


@pytest.fixture
def workspace(tmp_path, resegzoo_cache):
    """tmp_path with an image to segment; the cache is tmp_path/resegzoo-cache."""
    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "in" / "scene.png")
    return tmp_path


def _checkpoint_bytes(tiny_clip) -> bytes:
    buf = io.BytesIO()
    torch.save(tiny_clip.state_dict(), buf)
    return buf.getvalue()


def _extracted(cache: Path) -> list[Path]:
    """Files extracted into the cache (the lock files filelock leaves beside a target are not members)."""
    return [p for p in files_under(cache / "extracted") if p.suffix != ".lock"]


def _segment_with(workspace: Path, archive: Path):
    return cli("segment", str(workspace / "in" / "scene.png"), "--model", str(archive), "--masks", "none",
               "--classes", "red; blue", "--out", str(workspace / "out"))


def _assert_refused_by_cli(workspace: Path, archive: Path, *fragments: str) -> None:
    before = snapshot(workspace)
    result = _segment_with(workspace, archive)
    assert_one_line_error(result, *fragments)
    cache = workspace / "resegzoo-cache"
    assert_nothing_outside(workspace, before, allowed=[cache, workspace / "out"])
    assert _extracted(cache) == [], "no member may be extracted, even inside the cache"
    assert files_under(workspace / "out") == [], "a refused model writes no outputs"
    assert not (workspace / "outside").exists()


def _assert_refused(workspace: Path, archive: Path, member: str, *fragments: str) -> None:
    before = snapshot(workspace)
    with pytest.raises(FetchError) as info:
        extract_member(archive, member)
    message = str(info.value)
    assert repr(member) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert_nothing_outside(workspace, before, allowed=[workspace / "resegzoo-cache"])
    assert _extracted(workspace / "resegzoo-cache") == []


def test_member_climbing_out_with_dotdot_is_refused(workspace):
    member = "../../../outside/site-packages/evil.pth"  # from cache/extracted/NAME-KEY/ up to tmp_path
    archive = zip_entries(workspace / "evil.zip", [(member, SITE_PACKAGES_PAYLOAD)])
    _assert_refused_by_cli(workspace, archive, repr(member), "'..'")


def test_member_with_an_absolute_path_is_refused(workspace):
    member = str(workspace / "outside" / "site-packages" / "evil.pth")
    archive = zip_entries(workspace / "evil.zip", [(member, SITE_PACKAGES_PAYLOAD)])
    _assert_refused_by_cli(workspace, archive, repr(member), "absolute path")


@pytest.mark.parametrize("member, why", [
    ("..\\..\\..\\outside\\evil.pth", "'..'"),  # Windows separators
    ("C:/outside/evil.pth", "absolute path"),  # a drive letter
    ("C:evil.pth", "absolute path"),  # drive-relative
    ("weights/../../../../outside/evil.pth", "'..'"),  # climbing out from a subfolder
])
def test_windows_and_nested_escapes_are_refused(workspace, member, why):
    archive = zip_entries(workspace / "evil.zip", [(member, SITE_PACKAGES_PAYLOAD)])
    _assert_refused(workspace, archive, member, why)


def test_symlink_member_is_refused(workspace):
    archive = zip_entries(workspace / "evil.zip", [symlink_entry("model.pth", "/etc/passwd")])
    _assert_refused_by_cli(workspace, archive, "'model.pth'", "symbolic link")


@pytest.mark.parametrize("file_type, kind", [
    (stat.S_IFCHR, "character device"), (stat.S_IFBLK, "block device"), (stat.S_IFIFO, "named pipe"),
])
def test_device_and_pipe_members_are_refused(workspace, file_type, kind):
    archive = zip_entries(workspace / "evil.zip", [special_entry("model.pth", file_type)])
    _assert_refused(workspace, archive, "model.pth", kind)


@pytest.mark.parametrize("names", [
    ("weights/model.pth", "weights/./model.pth"),
    ("weights/model.pth", "weights//model.pth"),
    ("weights/model.pth", "weights\\model.pth"),
    ("weights/model.pth", "Weights/Model.pth"),  # one file on case-insensitive filesystems
    ("weights/model.pth", "weights/model.pth"),  # the same name twice
])
def test_names_colliding_after_normalisation_are_refused(workspace, tiny_clip, names):
    data = _checkpoint_bytes(tiny_clip)
    archive = zip_entries(workspace / "evil.zip", [(names[0], data), (names[1], SITE_PACKAGES_PAYLOAD)])
    with pytest.raises(FetchError, match="collides|appears 2 times") as info:
        extract_member(archive, names[0])
    assert repr(names[0]) in str(info.value)
    assert _extracted(workspace / "resegzoo-cache") == []


def test_member_declaring_one_gigabyte_is_refused_before_writing(workspace):
    archive = zip_entries(workspace / "bomb.zip", [("model.pth", bytes(1 << 20))], zipfile.ZIP_DEFLATED)
    forge_member(archive, file_size=1 << 30)
    _assert_refused_by_cli(workspace, archive, "'model.pth'", "1073741824 bytes", "zip bomb")


def test_member_shorter_than_declared_is_refused(workspace, tiny_clip):
    data = _checkpoint_bytes(tiny_clip)
    archive = forge_member(zip_entries(workspace / "short.zip", [("model.pth", data)]), file_size=len(data) + 1000)
    _assert_refused_by_cli(workspace, archive, "'model.pth'", f"holds {len(data)} bytes but declares {len(data) + 1000}")


def test_member_failing_its_crc_is_refused(workspace, tiny_clip):
    data = _checkpoint_bytes(tiny_clip)
    archive = forge_member(zip_entries(workspace / "bad.zip", [("model.pth", data)]), crc=0x12345678)
    _assert_refused_by_cli(workspace, archive, "'model.pth'", "CRC")


def test_a_clean_archive_still_loads(workspace, tiny_clip, tiny_clip_config):
    """The checks refuse hostile members only: a SkyCLIP-style zip in a subfolder still loads."""
    from resegzoo.weights.loading import load_state_dict

    archive = zip_entries(workspace / "ok.zip", [("ckpt/epoch_20.pt", _checkpoint_bytes(tiny_clip))],
                          zipfile.ZIP_DEFLATED)
    sd, _ = load_state_dict(str(archive), architecture="ViT-B-32")
    assert all(torch.equal(sd[k], v) for k, v in tiny_clip.state_dict().items())
    extracted = _extracted(workspace / "resegzoo-cache")
    assert [p.name for p in extracted] == ["epoch_20.pt"]
    assert extracted[0].is_relative_to(workspace / "resegzoo-cache")


def test_registry_member_climbing_out_is_refused_before_any_lookup(workspace, http_server):
    """A variant (from a plugin or a registry file) whose archive member climbs out of the cache:
    neither is_cached nor fetch may look at, download or return a file outside the cache."""
    from resegzoo.weights.fetch import fetch_record, is_cached
    from resegzoo.weights.zoo import ClipVariant

    outside = workspace / "outside" / "evil.pt"
    outside.parent.mkdir()
    outside.write_bytes(b"an existing file the member path points at")
    member = "../../../outside/evil.pt"
    http_server.files["/sky.zip"] = zip_entries(workspace / "sky.zip", [(member, b"x")]).read_bytes()
    variant = ClipVariant(name="sky-evil", architecture="ViT-B-32", format="skyclip-zip", license="x", citation="x",
                          url=http_server.base + "/sky.zip", member=member)
    before = snapshot(workspace)
    for call in (is_cached, lambda v: fetch_record(v, progress=False)):
        with pytest.raises(FetchError, match=r"climbs out of its folder with '\.\.'"):
            call(variant)
    assert http_server.requests == []
    assert_nothing_outside(workspace, before, allowed=[workspace / "resegzoo-cache"])
