"""The `sam3` zoo record: fetching a gated repository says exactly that, in one line."""
from __future__ import annotations

import http.server
import os
import subprocess
import threading

import pytest


class _GatedHandler(http.server.BaseHTTPRequestHandler):
    """What the Hub answers for a gated repository without an accepted license."""

    def _refuse(self) -> None:
        body = b'{"error": "Access to model facebook/sam3 is restricted. You must have access to it."}'
        self.send_response(401)
        self.send_header("X-Error-Code", "GatedRepo")
        self.send_header("X-Error-Message", "Access to model facebook/sam3 is restricted.")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = _refuse

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def gated_hub(tmp_path):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _GatedHandler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "RESEGZOO_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{srv.server_address[1]}", HF_HUB_CACHE=str(tmp_path / "hf"),
               RESEGZOO_CACHE=str(tmp_path / "rz"), HF_TOKEN="hf_test")
    yield env
    srv.shutdown()
    srv.server_close()


def test_fetch_sam3_when_the_hub_refuses_says_gated_in_one_line(gated_hub, resegzoo_command):
    proc = subprocess.run(resegzoo_command + ["fetch", "sam3", "--quiet"], env=gated_hub, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "gated" in lines[0] and "facebook/sam3" in lines[0] and "license" in lines[0] and "HF_TOKEN" in lines[0]


def test_sam3_record():
    from resegzoo.weights.zoo import get_model

    record = get_model("sam3", "sam3")
    assert record.source.hf_repo == "facebook/sam3" and record.gated
