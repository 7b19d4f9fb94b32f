"""Test servers on 127.0.0.1: the suite's HTTPS range server (a thread of the test, or a child
process serving a folder) and an S3-compatible server (moto's server mode, a child process).

GDAL holds the GIL while it reads a raster, so a server GDAL reads from must not be a thread of
the reading process: :class:`ServerProcess` runs it in a child process, which stops by itself
after :data:`SERVER_LIFETIME_S` (and when its parent closes its stdin). Run as a script, this file
is that child: ``python servers.py https FOLDER CERT`` or ``python servers.py s3``; it prints its
port, then serves.
"""
from __future__ import annotations

import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

#: test servers stop themselves after this long, whatever the test does (they bind 127.0.0.1 only)
SERVER_LIFETIME_S = 600


def stop_after(stop: Callable[[], Any], seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    return timer


class _Server(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]
    requests: list[tuple[str, str | None]]  # (path, Range header)
    sent: list[tuple[str, int]]  # (path, body bytes sent) per GET
    honour_range: bool
    drop_after: int | None  # send only this many bytes once, then close (a dropped connection)
    redirects: dict[str, str]  # path -> Location of a 302 answer
    status: dict[str, int]  # path -> an error status to answer (403, 500, ...)
    daemon_threads = True


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    server: _Server

    @property
    def file_path(self) -> str:
        """The request's path without its query string (a signed URL's signature is ignored)."""
        return self.path.split("?", 1)[0]

    def do_HEAD(self) -> None:  # noqa: N802
        data = self.server.files.get(self.file_path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802: a STAC API's search; the answer is the file at the path
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((self.path, body.decode("utf-8", "replace")))
        data = self.server.files.get(self.file_path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/geo+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.requests.append((self.path, self.headers.get("Range")))
        if self.file_path in self.server.status:
            self.send_error(self.server.status[self.file_path])
            return
        if self.path in self.server.redirects:
            self.send_response(302)
            self.send_header("Location", self.server.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = self.server.files.get(self.file_path)
        if data is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        if rng and self.server.honour_range:
            first, _, last = rng.removeprefix("bytes=").split(",")[0].partition("-")
            start = int(first)
            end = min(int(last), len(data) - 1) if last.strip() else len(data) - 1
            if start >= len(data):
                self.send_error(416)
                return
            body = data[start:end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.server.drop_after is not None:
            body, self.server.drop_after = body[: self.server.drop_after], None
            self.close_connection = True
        self.server.sent.append((self.path, len(body)))
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class _FolderFiles:
    """``files`` of a server in a child process: ``FOLDER/<path>`` read when asked."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, path: str) -> bytes | None:
        target = (self.folder / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.folder.resolve()) or not target.is_file():
            return None
        return target.read_bytes()


class _Logged(list):
    """A request list that also appends each entry to a JSON-lines file (read by the parent)."""

    def __init__(self, path: Path, keys: tuple[str, ...]) -> None:
        super().__init__()
        self.path, self.keys = path, keys

    def append(self, item: Any) -> None:
        super().append(item)
        with self.path.open("a") as fh:
            fh.write(json.dumps(dict(zip(self.keys, item))) + "\n")


class _StatusFile(dict):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def _load(self) -> dict[str, int]:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def __contains__(self, key: object) -> bool:
        return key in self._load()

    def __getitem__(self, key: str) -> int:
        return self._load()[key]


def _serve_https(folder: Path, cert: Path) -> None:
    state = folder.parent / (folder.name + ".state")
    state.mkdir(exist_ok=True)
    srv = _Server(("127.0.0.1", 0), _RangeHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, cert.with_name("key.pem"))
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    srv.files = _FolderFiles(folder)  # type: ignore[assignment]
    srv.requests = _Logged(state / "requests.jsonl", ("path", "range"))
    srv.sent = _Logged(state / "sent.jsonl", ("path", "sent"))
    srv.honour_range, srv.drop_after, srv.redirects = True, None, {}
    srv.status = _StatusFile(state / "status.json")  # type: ignore[assignment]
    _run(srv.serve_forever, srv.shutdown, srv.server_address[1])


def _serve_s3() -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _run(None, server.stop, server.get_host_and_port()[1])


def _run(serve: Callable[[], Any] | None, stop: Callable[[], Any], port: int) -> None:
    """Print the port, serve until the lifetime ends or the parent closes stdin, then stop."""
    done = threading.Event()
    stop_after(done.set, SERVER_LIFETIME_S)
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    if serve is not None:
        threading.Thread(target=serve, daemon=True).start()
    print(port, flush=True)
    done.wait()
    stop()


class ServerProcess:
    """A server of this file in a child process (see the module's docstring)."""

    def __init__(self, args: list[str], folder: Path | None = None) -> None:
        self.folder = folder
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GS_", "AZURE_"))}
        self.process = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"test server did not start: {args}")
        self.port = int(line)
        self.host_port = f"127.0.0.1:{self.port}"
        self.base = f"https://127.0.0.1:{self.port}"

    @classmethod
    def https(cls, folder: Path, cert: Path) -> "ServerProcess":
        folder.mkdir(parents=True, exist_ok=True)
        return cls(["https", str(folder), str(cert)], folder)

    @classmethod
    def s3(cls) -> "ServerProcess":
        return cls(["s3"])

    # -- the https server's files, answers and log ---------------------------------------------
    @property
    def _state(self) -> Path:
        assert self.folder is not None
        return self.folder.parent / (self.folder.name + ".state")

    def put(self, path: str, data: bytes) -> None:
        assert self.folder is not None
        target = self.folder / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def status(self, path: str, code: int) -> None:
        state = self._state / "status.json"
        answers = json.loads(state.read_text()) if state.is_file() else {}
        state.write_text(json.dumps({**answers, path: code}))

    def _log(self, name: str) -> list[dict[str, Any]]:
        path = self._state / name
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    def requests(self) -> list[dict[str, Any]]:
        """Every GET: path (with its query) and Range header."""
        return self._log("requests.jsonl")

    def sent(self) -> list[dict[str, Any]]:
        """Every GET answered with a body: path and bytes sent."""
        return self._log("sent.jsonl")

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()  # type: ignore[union-attr]
                self.process.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


if __name__ == "__main__":
    if sys.argv[1] == "https":
        _serve_https(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        _serve_s3()
