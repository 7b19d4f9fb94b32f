"""Joining a Ray cluster within a bounded time, saying why it failed, and placing the actors.

``ray.init(address=...)`` retries for minutes when nothing answers at the address, and reports
any failure (a missing token included) as "Failed to connect". Before it is called, the address
is probed: a TCP connection (refused: nothing listens), then the opening of an HTTP/2 connection
(Ray's head speaks gRPC, so it answers with its settings; something else there does not), both
within ``--connect-timeout``. Ray's own
retries are bounded by the same time. A failure is then told apart by its cause (a token the
cluster requires, an address that does not answer).

Before any work, the actors asked for must fit the cluster: each actor's CPUs and GPUs on one
node. Ray would otherwise wait forever for an actor no node can hold.
"""
from __future__ import annotations

import contextlib
import math
import os
import socket
from typing import Any, Iterator

from resegzoo.engines.options import EngineError, EngineOptions

#: where Ray looks for the token of a cluster with token authentication (Ray >= 2.52)
TOKEN_HINT = ("set RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN (or its file in "
              "RAY_AUTH_TOKEN_PATH, or in ~/.ray/auth_token) before running resegzoo (see docs/cluster.md)")
#: Ray's GCS connection: attempts about a second apart (ray._private.node._init_gcs_client)
GCS_WAIT_ENV = "RAY_gcs_server_port_wait_time_s"


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``host:port`` or ``ray://host:port``; None for ``auto``/``local`` or no port."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rstrip("/").rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def probe(address: str, timeout: float) -> None:
    """Raise an :class:`EngineError` naming ``address`` unless a gRPC server answers there within
    ``timeout`` seconds."""
    target = _host_port(address)
    if target is None:
        return  # "auto" and the like: Ray finds the address itself, and fails fast when there is none
    host, port = target
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            answered = os.environ.get("RAY_USE_TLS", "0") not in ("0", "") or _speaks_http2(conn)
    except ConnectionRefusedError:
        raise EngineError(f"no Ray cluster at {address}: nothing listens there (connection refused); start the "
                          "head with `ray start --head` or check the address and port") from None
    except OSError as exc:  # timeout, no route, unknown host
        raise EngineError(f"cannot reach a Ray cluster at {address} within {timeout:g} s ({exc or 'timed out'}); "
                          "check the address and that the port is open (--connect-timeout sets the wait)") from None
    if not answered:
        raise EngineError(f"no Ray cluster answers at {address}: something listens there but does not answer as "
                          f"Ray's head does (another program, or the wrong port?); --connect-timeout sets the wait")


#: the client's opening of an HTTP/2 connection (RFC 9113 3.4) and an empty SETTINGS frame
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _speaks_http2(conn: socket.socket) -> bool:
    """Whether the server answers the HTTP/2 preface with its SETTINGS frame, as every gRPC server
    (Ray's GCS, the Ray Client server) does; the socket's timeout bounds the wait (TLS clusters are
    not probed this way)."""
    try:
        conn.sendall(_HTTP2_PREFACE)
        header = b""
        while len(header) < 9:
            chunk = conn.recv(9 - len(header))
            if not chunk:
                return False
            header += chunk
    except OSError:  # reset, or no answer in time
        return False
    return header[3] == 0x4  # frame type SETTINGS


@contextlib.contextmanager
def bounded_ray_retries(timeout: float) -> Iterator[None]:
    """Ray's attempts to reach the cluster's GCS last about ``timeout`` seconds (unless the user set
    their own bound)."""
    if GCS_WAIT_ENV in os.environ:
        yield
        return
    os.environ[GCS_WAIT_ENV] = str(max(1, math.ceil(timeout)))
    try:
        yield
    finally:
        os.environ.pop(GCS_WAIT_ENV, None)


def _chain_text(exc: BaseException) -> str:
    parts, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def connect_error(address: str | None, exc: BaseException) -> EngineError:
    """The one-line error for a failed ``ray.init``, its cause told apart."""
    text = _chain_text(exc)
    if address and any(mark in text for mark in ("AuthenticationError", "InvalidAuthToken", "Unauthenticated")):
        return EngineError(f"the Ray cluster at {address} requires a token (token authentication) and none or a "
                           f"wrong one was given: {TOKEN_HINT}")
    where = f"the Ray cluster at {address}" if address else "a Ray instance in this process"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return EngineError(f"could not start or join {where}: {first}")


# -- placing the actors ------------------------------------------------------------------------------


def _alive_nodes(ray: Any) -> list[dict[str, Any]]:
    return [node for node in ray.nodes() if node.get("Alive", node.get("alive", False))]


def _node_name(node: dict[str, Any]) -> str:
    return str(node.get("NodeManagerAddress") or node.get("NodeID", "?")[:8])


def placeable(nodes: list[dict[str, Any]], options: EngineOptions) -> int:
    """How many actors of these sizes the nodes hold at once (each actor on one node)."""
    total = 0
    for node in nodes:
        resources = node.get("Resources", {})
        fits = int(resources.get("CPU", 0) // options.cpus_per_actor)
        if options.gpus_per_actor:
            fits = min(fits, int(resources.get("GPU", 0) // options.gpus_per_actor))
        total += fits
    return total


def actor_count(ray: Any, options: EngineOptions, items: int) -> int:
    """--actors (at most one per work item), or as many actors as the cluster holds; an
    :class:`EngineError` saying what is missing when the cluster cannot hold the actors asked for."""
    nodes = _alive_nodes(ray)
    fits = placeable(nodes, options)
    wanted = max(1, min(options.actors if options.actors is not None else fits, items))
    if fits >= wanted:
        return wanted
    size = f"{options.cpus_per_actor:g} CPU" + (f" and {options.gpus_per_actor:g} GPU" if options.gpus_per_actor else "")
    found = "; ".join(f"{_node_name(n)}: {n.get('Resources', {}).get('CPU', 0):g} CPU, "
                      f"{n.get('Resources', {}).get('GPU', 0):g} GPU" for n in nodes) or "no live node"
    missing = []
    cpus = sum(n.get("Resources", {}).get("CPU", 0) for n in nodes)
    gpus = sum(n.get("Resources", {}).get("GPU", 0) for n in nodes)
    if options.gpus_per_actor and gpus < wanted * options.gpus_per_actor:
        missing.append(f"{wanted * options.gpus_per_actor - gpus:g} GPU(s)")
    if cpus < wanted * options.cpus_per_actor:
        missing.append(f"{wanted * options.cpus_per_actor - cpus:g} CPU(s)")
    lack = f"missing {' and '.join(missing)}" if missing else "no single node has room for each actor"
    asked = f"--actors {options.actors}" if options.actors is not None else "one actor"
    raise EngineError(f"{asked} of {size} each cannot be placed on the Ray cluster (it holds {fits}; {lack}; "
                      f"nodes: {found}); lower --actors, --gpus-per-actor or --cpus-per-actor, or add nodes")
