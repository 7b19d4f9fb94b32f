"""Fixtures shared by the whole suite: an isolated cache, tiny CLIP models, an offline HF cache."""
from __future__ import annotations

import importlib
import ssl
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import SERVER_LIFETIME_S, ServerProcess, _RangeHandler, _Server, stop_after as _stop_after


@pytest.fixture(scope="session")
def _session_resegzoo_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("resegzoo-cache")


@pytest.fixture(autouse=True)
def _isolated_resegzoo_cache(_session_resegzoo_cache, monkeypatch):
    """Never let a test read or write the user's ~/.cache/resegzoo.

    One folder per session (so generated example weights are made once); tests that need an
    empty cache use the ``resegzoo_cache`` fixture.
    """
    monkeypatch.setenv("RESEGZOO_CACHE", str(_session_resegzoo_cache))


@pytest.fixture
def resegzoo_cache(tmp_path, monkeypatch) -> Path:
    """An empty resegzoo cache folder (RESEGZOO_CACHE) for this test only."""
    path = tmp_path / "resegzoo-cache"
    monkeypatch.setenv("RESEGZOO_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_clip():
    """A tiny random open_clip CLIP (resegzoo.testing.TINY_MODEL_CONFIG, seed 0). Do not modify it."""
    from resegzoo.testing import make_tiny_clip

    return make_tiny_clip(seed=0)


@pytest.fixture
def tiny_clip_config() -> dict:
    """A fresh copy of the tiny model's open_clip config (``model_cfg``)."""
    from resegzoo.testing import tiny_model_config

    return tiny_model_config()


@pytest.fixture
def hf_offline(tmp_path, monkeypatch) -> Path:
    """Hugging Face offline mode with an empty, private HF cache; returns the cache folder.

    huggingface_hub reads HF_HUB_OFFLINE/HF_HUB_CACHE at import time, so both the environment
    (for subprocesses) and the already-imported constants are set.
    """
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def put_in_hf_cache(hf_offline) -> Callable[[str, str, bytes], Path]:
    """``put(repo_id, filename, data)`` stores a file in the offline HF cache, in the Hub's real
    layout (``models--org--name/{refs/main, snapshots/<rev>/<filename>}``); returns its path."""
    revision = "0123456789abcdef0123456789abcdef01234567"

    def put(repo_id: str, filename: str, data: bytes) -> Path:
        repo_dir = hf_offline / ("models--" + repo_id.replace("/", "--"))
        (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
        (repo_dir / "refs" / "main").write_text(revision)
        target = repo_dir / "snapshots" / revision / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    return put


#: a self-signed certificate for 127.0.0.1 (valid until 2126): resegzoo downloads over https only
TLS_CERT = Path(__file__).parent / "data" / "tls" / "cert.pem"


@pytest.fixture
def http_server(monkeypatch):
    """A local HTTPS server (127.0.0.1, a thread) serving ``http_server.files[path] = bytes``, with
    HTTP Range support; ``.requests`` records (path, Range header); ``.redirects[path] = url``
    answers 302; ``.base`` is its ``https://`` URL. Its certificate is the one trusted
    (SSL_CERT_FILE, also for subprocesses) while the test runs.

    Tests that use it download from loopback, so offline mode (CI sets HF_HUB_OFFLINE=1) is
    switched off for them; a test may switch it back on with monkeypatch.setenv."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("RESEGZOO_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("SSL_CERT_FILE", str(TLS_CERT))
    srv = _Server(("127.0.0.1", 0), _RangeHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS_CERT, TLS_CERT.with_name("key.pem"))
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    srv.files, srv.requests, srv.honour_range, srv.drop_after, srv.redirects = {}, [], True, None, {}
    srv.sent, srv.status = [], {}
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    stop = _stop_after(srv.shutdown, SERVER_LIFETIME_S)
    srv.base = f"https://127.0.0.1:{srv.server_address[1]}"  # type: ignore[attr-defined]
    yield srv
    stop.cancel()
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def https_process_server(tmp_path, monkeypatch):
    """The suite's TLS range server (the handler of ``http_server``) in a child process, serving
    the files of a folder: GDAL reads from it while holding the GIL, so it cannot be a thread of
    the test's process. ``.put(path, bytes)``, ``.status(path, code)``, ``.requests()`` (dicts:
    path, range, sent), ``.base``. Its certificate is trusted (also by GDAL's curl); it binds
    127.0.0.1 and stops itself after SERVER_LIFETIME_S."""
    monkeypatch.setenv("SSL_CERT_FILE", str(TLS_CERT))
    monkeypatch.setenv("GDAL_CURL_CA_BUNDLE", str(TLS_CERT))  # GDAL's own setting (its curl ignores SSL_CERT_FILE)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(TLS_CERT))  # requests' (pystac-client searches through it)
    with ServerProcess.https(tmp_path / "https-server", TLS_CERT) as server:
        yield server


@pytest.fixture
def s3_server(monkeypatch):
    """A local S3-compatible server (moto's server mode, 127.0.0.1, a child process) with the
    bucket ``test-bucket``; ``.put(key, bytes)`` stores an object. The environment points GDAL
    (and subprocesses) at it with fake credentials, as a user of an S3-compatible store would
    (AWS_S3_ENDPOINT, AWS_HTTPS=NO, AWS_VIRTUAL_HOSTING=FALSE). Stops itself after SERVER_LIFETIME_S."""
    from types import SimpleNamespace

    import boto3  # moto[s3] (and so boto3) is part of the test extra: missing, the install is broken
    for key in [k for k in os.environ if k.startswith(("AWS_", "GS_", "AZURE_", "GOOGLE_"))]:
        monkeypatch.delenv(key)
    with ServerProcess.s3() as server:
        env = {"AWS_ACCESS_KEY_ID": "AKIATESTKEY", "AWS_SECRET_ACCESS_KEY": "test-secret-do-not-log",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_S3_ENDPOINT": server.host_port,
               "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE", "AWS_CONFIG_FILE": os.devnull,
               "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        client = boto3.client("s3", endpoint_url=f"http://{server.host_port}", region_name="us-east-1")
        client.create_bucket(Bucket="test-bucket")
        yield SimpleNamespace(client=client, bucket="test-bucket", env=env,
                              put=lambda key, data: client.put_object(Bucket="test-bucket", Key=key, Body=data))


@pytest.fixture(scope="session")
def tiny_sam3_dir(tmp_path_factory) -> Path:
    """A tiny random SAM 3 (resegzoo.testing.TINY_SAM3_CONFIG, seed 0) written by transformers'
    save_pretrained, without tokenizer files. Do not modify it."""
    from resegzoo.testing import save_tiny_sam3

    return save_tiny_sam3(tmp_path_factory.mktemp("tiny-sam3") / "sam3")


@pytest.fixture
def refusing_hub(tmp_path) -> Iterator[dict[str, str]]:
    """Environment for a subprocess on a machine without network: HF_ENDPOINT points at a loopback
    port that refuses connections (bound, never listening, so no one else can take it), offline
    mode is off, and the Hugging Face and resegzoo caches are empty folders of this test."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "RESEGZOO_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{sock.getsockname()[1]}", HF_HUB_CACHE=str(tmp_path / "hf-cache"),
               RESEGZOO_CACHE=str(tmp_path / "resegzoo-cache"), HF_TOKEN="hf_test")
    with sock:
        yield env


@pytest.fixture
def resegzoo_command() -> list[str]:
    """The `resegzoo` console script of this interpreter (or the CLI module where it is missing)."""
    exe = Path(sys.executable).with_name("resegzoo")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from resegzoo.cli import main; main()"]


@pytest.fixture
def red_blue_geotiff(tmp_path) -> Path:
    """A small georeferenced 3-band GeoTIFF ``in/scene.tif``, its left half red and its right half
    blue in the oracle model's colours (``--model oracle`` labels it exactly)."""
    import numpy as np
    import rasterio
    from affine import Affine

    from resegzoo_oracle import color_of

    image = np.zeros((3, 40, 48), dtype=np.uint8)
    image[:, :, :24] = np.array(color_of("red"), dtype=np.uint8)[:, None, None]
    image[:, :, 24:] = np.array(color_of("blue"), dtype=np.uint8)[:, None, None]
    path = tmp_path / "in" / "scene.tif"
    path.parent.mkdir(exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", height=40, width=48, count=3, dtype="uint8", crs="EPSG:32632",
                       transform=Affine(1, 0, 500000, 0, -1, 5800000)) as dst:
        dst.write(image)
    return path


# -- the test suite's method plugin (tests/method_plugin), installed like a real one --------------
METHOD_PLUGIN_DIR = Path(__file__).parent / "method_plugin"


@pytest.fixture(scope="session")
def plugin_paths(tmp_path_factory) -> list[str]:
    """tests/method_plugin (never shipped: the colour methods) as pip would leave it: its module, and
    a .dist-info with a `resegzoo` entry point."""
    site = tmp_path_factory.mktemp("method-plugin-site")
    info = site / "resegzoo_colour_method-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: resegzoo-colour-method\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[resegzoo]\ncolour = resegzoo_colour_method\n")
    return [str(METHOD_PLUGIN_DIR), str(site)]


@pytest.fixture
def colour_plugin(plugin_paths):
    """The colour plugin installed in this process for one test (the registry rebuilt around it)."""
    from resegzoo.plugins.registry import get_registry

    saved = list(sys.path)
    sys.path[:0] = plugin_paths
    importlib.invalidate_caches()
    get_registry(refresh=True)
    try:
        yield
    finally:
        sys.path[:] = saved
        importlib.invalidate_caches()
        get_registry(refresh=True)
