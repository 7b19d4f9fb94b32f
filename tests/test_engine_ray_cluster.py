"""--engine ray --address (issue 17, items 11, 13, 14): an address where nothing answers fails within
the connect timeout, a cluster that requires a token says so, and Ray's own messages go to a log
file in the output folder instead of the terminal.

No Ray is initialised in this test process: the connection failures happen before Ray starts, and
the runs that start or join Ray run the CLI in a process of their own (Ray's messages are written
to file descriptor 2, which only a real process shows).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import resegzoo
from resegzoo.cli import build_cli
from resegzoo.engines.options import RAY_LOG_NAME

# The ray extra is part of the test install: a missing Ray is a broken install and must fail here.
import ray  # noqa: F401

#: the lines of Ray's own that reached the user's terminal before (issue 17 item 14)
RAY_NOISE = ("core_worker", ".cc:", "Logging error", "_StatsActor", "(raylet)", "gcs_client", "rpc_client",
             "worker.py:", "INFO ", "WARNING ")


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "scene.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(path)
    return path


def _segment(image: Path, out: Path, *args: str) -> tuple[str, ...]:
    return ("segment", str(image), "--model", "oracle", "--masks", "none", "--classes", "red; blue",
            "--out", str(out), "--engine", "ray", *args)


def _one_line_error(output: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in output, output
    return errors[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    paths = [str(Path(resegzoo.__file__).parents[1]), *sys.path]
    return subprocess.run([sys.executable, "-c", "from resegzoo.cli import main; main()", *args],
                          env={**(env or os.environ), "PYTHONPATH": os.pathsep.join(paths), "HF_HUB_OFFLINE": "1"},
                          capture_output=True, text=True, timeout=timeout)


# -- item 11: an address where nothing answers ------------------------------------------------------


def test_an_address_where_nothing_listens_fails_at_once(image, tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    start = time.monotonic()
    result = CliRunner().invoke(build_cli(), _segment(image, tmp_path / "out", "--address", address))
    assert result.exit_code == 1
    message = _one_line_error(result.output)
    assert address in message and "nothing listens" in message
    assert time.monotonic() - start < 120  # the command's own start on a loaded machine; Ray alone retried > 5 min
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_an_address_that_never_answers_fails_within_the_connect_timeout(image, tmp_path):
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        result = CliRunner().invoke(build_cli(), _segment(image, tmp_path / "out", "--address", address,
                                                          "--connect-timeout", "2"))
        took = time.monotonic() - start
    assert result.exit_code == 1
    message = _one_line_error(result.output)
    assert address in message and "does not answer" in message
    assert took < 120, took  # the 2 s timeout, plus the command's own start on a loaded machine


def test_connect_timeout_goes_with_the_ray_engine(image, tmp_path):
    result = CliRunner().invoke(build_cli(), ("segment", str(image), "--classes", "a; b", "--out", str(tmp_path),
                                              "--connect-timeout", "5"))
    assert result.exit_code != 0 and "--connect-timeout go with --engine ray" in result.output


# -- item 13: a cluster that requires a token --------------------------------------------------------


@pytest.fixture
def token_cluster(tmp_path):
    """A Ray head on this machine with token authentication, in a process of its own."""
    token = "0123456789abcdef" * 2
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    head = subprocess.Popen(
        [sys.executable, "-c", "import ray, sys\n"
                               "ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)\n"
                               "print(ray.get_runtime_context().gcs_address, flush=True)\n"
                               "sys.stdin.readline()\n"
                               "ray.shutdown()\n"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        address = head.stdout.readline().strip()
        assert address, "the token-auth Ray head did not start"
        yield address
    finally:
        head.stdin.close()  # the head shuts its Ray down and exits
        head.wait(timeout=120)


def test_a_cluster_that_requires_a_token_says_so(image, tmp_path, token_cluster):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token either: the driver has no token at all
    out = tmp_path / "out"
    result = _process(*_segment(image, out, "--address", token_cluster, "--connect-timeout", "10"), env=env)
    assert result.returncode == 1, result.stderr
    message = _one_line_error(result.stderr)
    assert token_cluster in message and "requires a token" in message and "RAY_AUTH_TOKEN" in message
    assert not any(noise in result.stderr for noise in RAY_NOISE), result.stderr  # Ray's retries: in the log
    assert (out / RAY_LOG_NAME).is_file()


# -- item 14: Ray's own messages go to the log file ---------------------------------------------------


def test_ray_messages_go_to_the_log_file_not_the_terminal(image, tmp_path):
    out = tmp_path / "out"
    second = tmp_path / "second.png"
    second.write_bytes(image.read_bytes())
    result = _process(*_segment(image, out, "--actors", "1"), str(second))
    assert result.returncode == 0, result.stderr
    assert (out / "scene.labels.png").is_file() and (out / "second.labels.png").is_file()
    assert "scene.png -> " in result.stdout + result.stderr  # resegzoo's own lines still reach the user
    assert "windows: 100%" in result.stderr  # the bar, made before Ray started, still draws on the terminal
    noise = [line for line in result.stderr.splitlines() if any(n in line for n in RAY_NOISE)]
    assert not noise, result.stderr
    assert (out / RAY_LOG_NAME).is_file()
