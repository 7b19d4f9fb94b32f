"""Downloading and caching (resegzoo.hub) against a local HTTP server and an offline HF cache."""
from __future__ import annotations

import hashlib
import http.server
import io
import os
import threading
import zipfile

import pytest

from resegzoo.hub import FetchError, cache_dir, download_url, extract_member, fetch, is_cached
from resegzoo.zoo import ClipVariant, SamCheckpoint


class _Server(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]
    requests: list[tuple[str, str | None]]  # (path, Range header)
    honour_range: bool
    drop_after: int | None  # send only this many bytes once, then close (a dropped connection)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.requests.append((self.path, self.headers.get("Range")))
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        if rng and self.server.honour_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            body = data[start:]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.drop_after is not None:
            body, self.server.drop_after = body[: self.server.drop_after], None
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _RangeHandler)
    srv.files, srv.requests, srv.honour_range, srv.drop_after = {}, [], True, None
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"  # type: ignore[attr-defined]
    yield srv
    srv.shutdown()
    srv.server_close()


def _sam(url: str, sha256: str | None = None) -> SamCheckpoint:
    return SamCheckpoint(name="sam-test", model_type="vit_b", url=url, file="sam_test.pth",
                         license="Apache-2.0", citation="test", sha256=sha256)


PAYLOAD = os.urandom(3 * (1 << 20) + 123)  # several read chunks


def test_url_download_goes_to_cache_and_is_reused(server, resegzoo_cache):
    server.files["/sam_test.pth"] = PAYLOAD
    record = _sam(server.base + "/sam_test.pth", hashlib.sha256(PAYLOAD).hexdigest())
    assert not is_cached(record)
    path = fetch(record, progress=False)
    assert path == resegzoo_cache / "downloads" / "sam_test.pth"
    assert path.read_bytes() == PAYLOAD
    assert not path.with_name("sam_test.pth.part").exists()
    assert is_cached(record)
    fetch(record, progress=False)
    assert len(server.requests) == 1  # the second fetch made no request


def test_interrupted_download_resumes_with_range(server, resegzoo_cache):
    server.files["/f.bin"] = PAYLOAD
    target = resegzoo_cache / "f.bin"
    target.parent.mkdir(parents=True)
    half = len(PAYLOAD) // 2
    target.with_name("f.bin.part").write_bytes(PAYLOAD[:half])
    download_url(server.base + "/f.bin", target, progress=False)
    assert server.requests == [("/f.bin", f"bytes={half}-")]
    assert target.read_bytes() == PAYLOAD


def test_dropped_connection_keeps_the_part_file_and_the_next_fetch_resumes(server, resegzoo_cache):
    server.files["/sam_test.pth"] = PAYLOAD
    server.drop_after = (1 << 20) + 7
    record = _sam(server.base + "/sam_test.pth", hashlib.sha256(PAYLOAD).hexdigest())
    with pytest.raises(FetchError, match="run the command again to resume"):
        fetch(record, progress=False)
    part = resegzoo_cache / "downloads" / "sam_test.pth.part"
    kept = part.stat().st_size
    assert 0 < kept < len(PAYLOAD)
    assert not (resegzoo_cache / "downloads" / "sam_test.pth").exists()
    assert fetch(record, progress=False).read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/sam_test.pth", f"bytes={kept}-")
    assert not part.exists()


def test_server_ignoring_range_restarts_cleanly(server, resegzoo_cache):
    server.files["/f.bin"] = PAYLOAD
    server.honour_range = False
    target = resegzoo_cache / "f.bin"
    target.parent.mkdir(parents=True)
    target.with_name("f.bin.part").write_bytes(b"garbage from an older version")
    download_url(server.base + "/f.bin", target, progress=False)
    assert target.read_bytes() == PAYLOAD


def test_wrong_sha256_is_an_error_naming_both_hashes(server, resegzoo_cache):
    server.files["/sam_test.pth"] = PAYLOAD
    wrong = "0" * 64
    with pytest.raises(FetchError) as info:
        fetch(_sam(server.base + "/sam_test.pth", wrong), progress=False)
    msg = str(info.value)
    assert wrong in msg and hashlib.sha256(PAYLOAD).hexdigest() in msg and "resegzoo fetch sam-test" in msg


def test_http_error_says_how_to_recover(server, resegzoo_cache):
    with pytest.raises(FetchError, match="run the command again to resume"):
        fetch(_sam(server.base + "/missing.pth"), progress=False)


def _skyclip_zip(member_bytes: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("SkyCLIP_test/", b"")
        zf.writestr("SkyCLIP_test/epoch_20.pt", member_bytes)
        zf.writestr("SkyCLIP_test/params.txt", b"lr: 1e-5")
    return buf.getvalue()


def test_archive_member_is_extracted_once(server, resegzoo_cache):
    member = os.urandom(5000)
    server.files["/SkyCLIP_test.zip"] = _skyclip_zip(member)
    variant = ClipVariant(name="sky-test", architecture="ViT-B-32", format="skyclip-zip", license="x",
                          citation="x", url=server.base + "/SkyCLIP_test.zip",
                          member="SkyCLIP_test/epoch_20.pt", sha256=hashlib.sha256(member).hexdigest())
    path = fetch(variant, progress=False)
    assert path.read_bytes() == member
    assert path.is_relative_to(resegzoo_cache / "extracted")
    first = path.stat().st_mtime_ns
    os.unlink(resegzoo_cache / "downloads" / "SkyCLIP_test.zip")  # not needed any more
    assert fetch(variant, progress=False) == path and path.stat().st_mtime_ns == first
    assert len(server.requests) == 1
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".extract-")]


def test_missing_member_lists_what_the_archive_holds(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(_skyclip_zip(b"x"))
    with pytest.raises(FetchError, match="SkyCLIP_test/epoch_20.pt"):
        extract_member(archive, "SkyCLIP_test/epoch_99.pt")


def test_offline_and_missing_says_what_to_download_and_where(server, resegzoo_cache, monkeypatch):
    monkeypatch.setenv("RESEGZOO_OFFLINE", "1")
    url = server.base + "/sam_test.pth"
    with pytest.raises(FetchError) as info:
        fetch(_sam(url), progress=False)
    msg = str(info.value)
    assert url in msg and str(resegzoo_cache / "downloads" / "sam_test.pth") in msg
    assert server.requests == []


def test_offline_uses_cached_url_file_without_network(server, resegzoo_cache, monkeypatch):
    monkeypatch.setenv("RESEGZOO_OFFLINE", "1")
    (resegzoo_cache / "downloads").mkdir(parents=True)
    (resegzoo_cache / "downloads" / "sam_test.pth").write_bytes(b"weights")
    assert fetch(_sam(server.base + "/sam_test.pth"), progress=False).read_bytes() == b"weights"
    assert server.requests == []


def _hf_variant(sha256: str | None = None) -> ClipVariant:
    return ClipVariant(name="hf-test", architecture="ViT-B-32", format="openclip-pickle", license="x",
                       citation="x", hf_repo="someorg/SomeCLIP", hf_file="ckpt/Some-ViT.pt", sha256=sha256)


def test_hf_file_resolves_from_offline_cache(put_in_hf_cache):
    stored = put_in_hf_cache("someorg/SomeCLIP", "ckpt/Some-ViT.pt", b"pickled weights")
    variant = _hf_variant(hashlib.sha256(b"pickled weights").hexdigest())
    assert is_cached(variant)
    assert fetch(variant).resolve() == stored.resolve()


def test_hf_file_missing_offline_names_repo_file_and_command(hf_offline):
    with pytest.raises(FetchError) as info:
        fetch(_hf_variant())
    msg = str(info.value)
    assert "someorg/SomeCLIP" in msg and "ckpt/Some-ViT.pt" in msg and "resegzoo fetch hf-test" in msg
    assert "HF_HUB_OFFLINE" in msg


def test_verification_is_remembered_until_the_file_changes(put_in_hf_cache):
    stored = put_in_hf_cache("someorg/SomeCLIP", "ckpt/Some-ViT.pt", b"pickled weights")
    variant = _hf_variant(hashlib.sha256(b"pickled weights").hexdigest())
    fetch(variant)
    assert (cache_dir() / "verified" / variant.sha256).is_file()
    stored.write_bytes(b"tampered weights")  # size and mtime change: hashed again, and caught
    with pytest.raises(FetchError, match="sha256"):
        fetch(variant)


def test_custom_variants_have_nothing_to_fetch():
    variant = ClipVariant(name="c", architecture="x", format="custom", license="x", citation="x",
                          build=lambda device="cpu": None)
    with pytest.raises(FetchError, match="built by its plugin"):
        fetch(variant)
