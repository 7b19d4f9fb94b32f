"""Downloading and caching (resegzoo.weights.fetch and its helpers: cache, download, archive, hf) against
a local HTTP server and an offline HF cache."""
from __future__ import annotations

import hashlib
import io
import os
import zipfile

import pytest

from resegzoo.outputs.atomic import temporaries
from resegzoo.weights.archive import extract_member
from resegzoo.weights.cache import cache_dir
from resegzoo.weights.download import download_url
from resegzoo.weights.fetch import fetch_record, is_cached
from resegzoo.weights.records import ModelRecord, RecordSource, SamDetails
from resegzoo.weights.zoo import ClipVariant, FetchError


def _sam(url: str, sha256: str | None = None) -> ModelRecord:
    return ModelRecord(name="sam-test", kind="sam", source=RecordSource(url=url), details=SamDetails("vit_b"),
                       license="Apache-2.0", citation="test", sha256=sha256)


PAYLOAD = os.urandom(3 * (1 << 20) + 123)  # several read chunks


def test_url_download_goes_to_cache_and_is_reused(http_server, resegzoo_cache):
    http_server.files["/sam_test.pth"] = PAYLOAD
    record = _sam(http_server.base + "/sam_test.pth", hashlib.sha256(PAYLOAD).hexdigest())
    assert not is_cached(record)
    path = fetch_record(record, progress=False)
    assert path == resegzoo_cache / "downloads" / "sam_test.pth"
    assert path.read_bytes() == PAYLOAD
    assert not path.with_name("sam_test.pth.part").exists()
    assert is_cached(record)
    fetch_record(record, progress=False)
    assert len(http_server.requests) == 1  # the second fetch made no request


def test_interrupted_download_resumes_with_range(http_server, resegzoo_cache):
    http_server.files["/f.bin"] = PAYLOAD
    target = resegzoo_cache / "f.bin"
    target.parent.mkdir(parents=True)
    half = len(PAYLOAD) // 2
    target.with_name("f.bin.part").write_bytes(PAYLOAD[:half])
    download_url(http_server.base + "/f.bin", target, progress=False)
    assert http_server.requests == [("/f.bin", f"bytes={half}-")]
    assert target.read_bytes() == PAYLOAD


def test_dropped_connection_keeps_the_part_file_and_the_next_fetch_resumes(http_server, resegzoo_cache):
    http_server.files["/sam_test.pth"] = PAYLOAD
    http_server.drop_after = (1 << 20) + 7
    record = _sam(http_server.base + "/sam_test.pth", hashlib.sha256(PAYLOAD).hexdigest())
    with pytest.raises(FetchError, match="run the command again to resume"):
        fetch_record(record, progress=False)
    part = resegzoo_cache / "downloads" / "sam_test.pth.part"
    kept = part.stat().st_size
    assert 0 < kept < len(PAYLOAD)
    assert not (resegzoo_cache / "downloads" / "sam_test.pth").exists()
    assert fetch_record(record, progress=False).read_bytes() == PAYLOAD
    assert http_server.requests[-1] == ("/sam_test.pth", f"bytes={kept}-")
    assert not part.exists()


def test_server_ignoring_range_restarts_cleanly(http_server, resegzoo_cache):
    http_server.files["/f.bin"] = PAYLOAD
    http_server.honour_range = False
    target = resegzoo_cache / "f.bin"
    target.parent.mkdir(parents=True)
    target.with_name("f.bin.part").write_bytes(b"garbage from an older version")
    download_url(http_server.base + "/f.bin", target, progress=False)
    assert target.read_bytes() == PAYLOAD


def test_wrong_sha256_is_an_error_naming_both_hashes(http_server, resegzoo_cache):
    http_server.files["/sam_test.pth"] = PAYLOAD
    wrong = "0" * 64
    with pytest.raises(FetchError) as info:
        fetch_record(_sam(http_server.base + "/sam_test.pth", wrong), progress=False)
    msg = str(info.value)
    assert wrong in msg and hashlib.sha256(PAYLOAD).hexdigest() in msg and "resegzoo fetch sam-test" in msg


def test_http_error_says_how_to_recover(http_server, resegzoo_cache):
    with pytest.raises(FetchError, match="run the command again to resume"):
        fetch_record(_sam(http_server.base + "/missing.pth"), progress=False)


def _skyclip_zip(member_bytes: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("SkyCLIP_test/", b"")
        zf.writestr("SkyCLIP_test/epoch_20.pt", member_bytes)
        zf.writestr("SkyCLIP_test/params.txt", b"lr: 1e-5")
    return buf.getvalue()


def test_archive_member_is_extracted_once(http_server, resegzoo_cache):
    member = os.urandom(5000)
    http_server.files["/SkyCLIP_test.zip"] = _skyclip_zip(member)
    variant = ClipVariant(name="sky-test", architecture="ViT-B-32", format="skyclip-zip", license="x",
                          citation="x", url=http_server.base + "/SkyCLIP_test.zip",
                          member="SkyCLIP_test/epoch_20.pt", sha256=hashlib.sha256(member).hexdigest())
    path = fetch_record(variant, progress=False)
    assert path.read_bytes() == member
    assert path.is_relative_to(resegzoo_cache / "extracted")
    first = path.stat().st_mtime_ns
    os.unlink(resegzoo_cache / "downloads" / "SkyCLIP_test.zip")  # not needed any more
    assert fetch_record(variant, progress=False) == path and path.stat().st_mtime_ns == first
    assert len(http_server.requests) == 1
    assert not temporaries(resegzoo_cache)


def test_missing_member_lists_what_the_archive_holds(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(_skyclip_zip(b"x"))
    with pytest.raises(FetchError, match="SkyCLIP_test/epoch_20.pt"):
        extract_member(archive, "SkyCLIP_test/epoch_99.pt")


def test_offline_and_missing_says_what_to_download_and_where(http_server, resegzoo_cache, monkeypatch):
    monkeypatch.setenv("RESEGZOO_OFFLINE", "1")
    url = http_server.base + "/sam_test.pth"
    with pytest.raises(FetchError) as info:
        fetch_record(_sam(url), progress=False)
    msg = str(info.value)
    assert url in msg and str(resegzoo_cache / "downloads" / "sam_test.pth") in msg
    assert http_server.requests == []


def test_offline_uses_cached_url_file_without_network(http_server, resegzoo_cache, monkeypatch):
    monkeypatch.setenv("RESEGZOO_OFFLINE", "1")
    (resegzoo_cache / "downloads").mkdir(parents=True)
    (resegzoo_cache / "downloads" / "sam_test.pth").write_bytes(b"weights")
    assert fetch_record(_sam(http_server.base + "/sam_test.pth"), progress=False).read_bytes() == b"weights"
    assert http_server.requests == []


def _hf_variant(sha256: str | None = None) -> ClipVariant:
    return ClipVariant(name="hf-test", architecture="ViT-B-32", format="openclip-pickle", license="x",
                       citation="x", hf_repo="someorg/SomeCLIP", hf_file="ckpt/Some-ViT.pt", sha256=sha256)


def test_hf_file_resolves_from_offline_cache(put_in_hf_cache):
    stored = put_in_hf_cache("someorg/SomeCLIP", "ckpt/Some-ViT.pt", b"pickled weights")
    variant = _hf_variant(hashlib.sha256(b"pickled weights").hexdigest())
    assert is_cached(variant)
    assert fetch_record(variant).resolve() == stored.resolve()


def test_hf_file_missing_offline_names_repo_file_and_command(hf_offline):
    with pytest.raises(FetchError) as info:
        fetch_record(_hf_variant())
    msg = str(info.value)
    assert "someorg/SomeCLIP" in msg and "ckpt/Some-ViT.pt" in msg and "resegzoo fetch hf-test" in msg
    assert "HF_HUB_OFFLINE" in msg


def test_verification_is_remembered_until_the_file_changes(put_in_hf_cache):
    stored = put_in_hf_cache("someorg/SomeCLIP", "ckpt/Some-ViT.pt", b"pickled weights")
    variant = _hf_variant(hashlib.sha256(b"pickled weights").hexdigest())
    fetch_record(variant)
    assert (cache_dir() / "verified" / variant.sha256).is_file()
    stored.write_bytes(b"tampered weights")  # size and mtime change: hashed again, and caught
    with pytest.raises(FetchError, match="sha256"):
        fetch_record(variant)


def test_custom_variants_have_nothing_to_fetch():
    variant = ClipVariant(name="c", architecture="x", format="custom", license="x", citation="x",
                          build=lambda device="cpu": None)
    with pytest.raises(FetchError, match="built by its plugin"):
        fetch_record(variant)


def test_openclip_pretrained_tag_resolves_from_offline_hf_cache(put_in_hf_cache):
    from resegzoo.weights.resolve import resolve_variant

    variant = resolve_variant("openai-vit-b-32")  # open_clip's tag 'openai' -> a timm/ HF repo
    assert not is_cached(variant)
    with pytest.raises(FetchError, match="resegzoo fetch openai-vit-b-32"):
        fetch_record(variant)
    stored = put_in_hf_cache("timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors", b"w")
    assert is_cached(variant)
    assert fetch_record(variant).resolve() == stored.resolve()


def test_concurrent_fetches_download_once(http_server, resegzoo_cache):
    from concurrent.futures import ThreadPoolExecutor

    http_server.files["/sam_test.pth"] = PAYLOAD
    record = _sam(http_server.base + "/sam_test.pth", hashlib.sha256(PAYLOAD).hexdigest())
    with ThreadPoolExecutor(3) as pool:
        paths = list(pool.map(lambda _: fetch_record(record, progress=False), range(3)))
    assert len(set(paths)) == 1 and paths[0].read_bytes() == PAYLOAD
    assert len(http_server.requests) == 1


def test_fetch_without_network_says_so_at_once_and_reports_every_name(refusing_hub, resegzoo_command):
    import subprocess
    import time
    from pathlib import Path

    # the middle name is in the Hugging Face cache already (names without open_clip tags: no torch import)
    snapshot = Path(refusing_hub["HF_HUB_CACHE"]) / "models--chendelong--RemoteCLIP"
    (snapshot / "refs").mkdir(parents=True)
    (snapshot / "refs" / "main").write_text("0" * 40)
    cached = snapshot / "snapshots" / ("0" * 40) / "RemoteCLIP-ViT-B-32.pt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"w")
    start = time.monotonic()
    result = subprocess.run(resegzoo_command + ["fetch", "remoteclip-rn50", "remoteclip-vit-b-32", "georsclip-vit-b-32"],
                            env=refusing_hub, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - start
    assert result.returncode == 1
    assert "Retrying" not in result.stderr and "Traceback" not in result.stderr
    assert result.stdout.strip() == f"remoteclip-vit-b-32: {cached}"
    [error] = result.stderr.strip().splitlines()
    assert error.startswith("Error: no network (cannot connect to 127.0.0.1:")
    assert "not fetched: remoteclip-rn50, georsclip-vit-b-32;" in error
    assert "resegzoo fetch remoteclip-rn50 georsclip-vit-b-32" in error
    # huggingface_hub's back-off sleeps 23 s per name (46 s for two, whatever the load); a refused
    # probe is immediate, the rest is the interpreter's start-up on a possibly busy machine
    assert elapsed < 40, elapsed
