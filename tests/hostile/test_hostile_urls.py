"""Issue 17 item 7: registry URLs are downloaded over https only. ``file://`` used to copy any local
file into the cache (urllib opens it); plain http, other schemes and redirects to them are refused
too, before anything is written."""
from __future__ import annotations

import pytest

from resegzoo.schema import SchemaError
from resegzoo.weights.download import download_url
from resegzoo.weights.fetch import fetch_record
from resegzoo.weights.records import ModelRecord, RecordSource, SamDetails, load_models_file
from resegzoo.weights.zoo import ClipVariant, FetchError

SECRET = b"the content of a local file"


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_bytes(SECRET)
    return path


@pytest.mark.parametrize("url", ["file://{secret}", "http://127.0.0.1:9/w.pt", "ftp://127.0.0.1/w.pt",
                                 "data:application/octet-stream;base64,AAAA", "FILE://{secret}"])
def test_download_url_refuses_anything_but_https(tmp_path, secret, url):
    target = tmp_path / "cache" / "w.pt"
    target.parent.mkdir()
    with pytest.raises(FetchError, match="https:// URLs only"):
        download_url(url.format(secret=secret), target, progress=False)
    assert list(target.parent.iterdir()) == []


def test_a_registry_record_with_a_file_url_is_refused_when_the_registry_loads(tmp_path, secret):
    models = tmp_path / "models.yaml"
    models.write_text(f"""models:
  - name: local-secret
    kind: clip
    details: {{architecture: ViT-B-32}}
    license: MIT
    source: {{url: "file://{secret}"}}
""")
    with pytest.raises(SchemaError, match=r"local-secret.*https://"):
        load_models_file(models)
    with pytest.raises(ValueError, match="https://"):
        ModelRecord(name="sam-secret", kind="sam", source=RecordSource(url=f"file://{secret}"),
                    details=SamDetails("vit_b"), license="MIT")
    with pytest.raises(ValueError, match="https://"):  # the earlier releases' record type too
        ClipVariant(name="sneaky", architecture="ViT-B-32", format="openclip-pickle", license="MIT",
                    citation="none", url=f"file://{secret}")


def test_a_record_made_in_code_cannot_fetch_a_local_file(resegzoo_cache, secret):
    """Even a record that skipped validation (a plugin's object, changed after creation) is refused
    by the fetcher, and nothing reaches the cache."""
    record = ModelRecord(name="sneaky", kind="clip", details={"architecture": "ViT-B-32"}, license="MIT",
                         source=RecordSource(url="https://example.org/w.pt"))
    object.__setattr__(record.source, "url", f"file://{secret}")  # frozen dataclass: bypass on purpose
    with pytest.raises(FetchError, match="https:// URLs only"):
        fetch_record(record, progress=False)
    assert not any(p.is_file() and p.read_bytes() == SECRET for p in resegzoo_cache.rglob("*"))


def test_a_redirect_to_plain_http_or_a_file_is_refused(http_server, tmp_path, secret):
    http_server.files["/real.pt"] = b"weights"
    http_server.redirects["/to-http.pt"] = http_server.base.replace("https://", "http://") + "/real.pt"
    http_server.redirects["/to-file.pt"] = f"file://{secret}"
    for path in ("/to-http.pt", "/to-file.pt"):
        target = tmp_path / path.strip("/")
        with pytest.raises((FetchError, OSError)) as info:
            download_url(http_server.base + path, target, progress=False)
        assert "https" in str(info.value) or "not allowed" in str(info.value)
        assert not target.exists()
    assert [p for p, _ in http_server.requests] == ["/to-http.pt", "/to-file.pt"]


def test_https_downloads_still_work(http_server, tmp_path):
    http_server.files["/w.pt"] = b"weights"
    assert download_url(http_server.base + "/w.pt", tmp_path / "w.pt", progress=False).read_bytes() == b"weights"
