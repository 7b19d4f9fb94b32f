"""Hugging Face files and repositories, through the Hugging Face cache.

Files go through ``huggingface_hub.hf_hub_download`` and whole repositories through
``snapshot_download`` into the HF cache, so a file another tool already downloaded is reused, and
``HF_HUB_OFFLINE=1`` resolves cached files with no network call. Missing and offline, or refused
(a gated repository), is one :class:`~resegzoo.weights.zoo.FetchError` saying what to do.
open_clip's own pretrained tags live on the Hub too (:func:`fetch_openclip_pretrained`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from resegzoo.weights.cache import is_offline, unreachable
from resegzoo.weights.records import HF_MODEL_FILES
from resegzoo.weights.zoo import FetchError, NoNetworkError

__all__ = ["HF_MODEL_FILES", "fetch_hf_file", "fetch_hf_snapshot", "fetch_openclip_pretrained", "hf_cached",
           "hub_endpoint", "hub_errors", "hub_failure", "openclip_pretrained_cached"]


def hub_endpoint() -> str:
    """The Hugging Face Hub's address (HF_ENDPOINT, default https://huggingface.co)."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_errors() -> tuple[type[BaseException], ...]:
    """What a huggingface_hub call raises when the Hub refuses, fails or cannot be reached.

    huggingface_hub < 1.0 raised OSError subclasses (requests' errors); later versions let the
    HTTP client's own transport errors (httpx, later httpx2: ConnectError, timeouts) through, and
    those are not OSError.
    """
    import importlib

    from huggingface_hub.errors import HfHubHTTPError

    errors: list[type[BaseException]] = [HfHubHTTPError, OSError]
    for module in ("httpx2", "httpx", "requests"):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        errors.append(getattr(mod, "HTTPError") if module != "requests" else mod.RequestException)
    return tuple(errors)


def hub_failure(exc: BaseException) -> str:
    """One line saying why a huggingface_hub call raising ``exc`` failed: "no network (...)" when
    the Hub could not be reached at all (connection refused, DNS, timeout; the host is then probed
    once for the precise reason), else the error's first line (auth, quota, a refused request)."""
    from huggingface_hub.errors import HfHubHTTPError

    transport = {"TransportError", "ConnectionError", "Timeout", "TimeoutException", "OfflineModeIsEnabled"}
    unreached = not isinstance(exc, HfHubHTTPError) and (
        isinstance(exc, (ConnectionError, TimeoutError)) or bool(transport & {c.__name__ for c in type(exc).__mro__}))
    if unreached:
        return f"no network ({unreachable(hub_endpoint()) or str(exc).splitlines()[0]})"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _fetch_hint(repo: str, what: str, *, record: Any = None) -> str:
    """What to do when ``what`` of ``repo`` is not cached and cannot be downloaded: a gated
    record's licence and token first, then `resegzoo fetch NAME` (a zoo record) or `hf download`."""
    command = f"resegzoo fetch {record.name}" if record is not None else f"hf download {repo}{what}"
    copy = "and copy the Hugging Face cache folder (~/.cache/huggingface/hub, or $HF_HUB_CACHE) here"
    gated = record.gated_note() if record is not None else ""
    if gated:
        return f"{gated}; then run `{command}` on a machine with internet {copy}"
    return f"On a machine with internet run `{command}` {copy}"


def fetch_hf_file(repo: str, filename: str, name: str, *, record: Any = None) -> Path:
    """``filename`` of Hugging Face model repo ``repo`` from the HF cache, downloaded if online.

    ``name`` is what the user asked for (used in error messages); ``record``: the zoo record it
    belongs to, if any (messages then say `resegzoo fetch NAME` and whether it is gated).
    """
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError

    hint = _fetch_hint(repo, f" {filename}", record=record)
    if record is None:
        hint += (f"; or download {hub_endpoint()}/{repo}/resolve/main/{filename} and pass the file path "
                 "instead")
    offline = is_offline()
    down = None if offline else unreachable(hub_endpoint())
    if down is not None:
        cached = try_to_load_from_cache(repo, filename)
        if isinstance(cached, str):
            return Path(cached)
        raise NoNetworkError(
            f"{name}: no network ({down}), and {filename} from Hugging Face repo {repo} is not in the "
            f"Hugging Face cache. {hint}", name=name, host=hub_endpoint(), reason=down)
    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, local_files_only=offline))
    except GatedRepoError:
        raise FetchError(_refused_as_gated(name, repo)) from None
    except LocalEntryNotFoundError as exc:
        where = "offline mode is on (HF_HUB_OFFLINE)" if offline else "the Hub could not be reached"
        raise FetchError(f"{name}: {filename} from Hugging Face repo {repo} is not in the Hugging Face cache and "
                         f"{where}. {hint} ({exc})") from exc
    except (EntryNotFoundError, HfHubHTTPError) as exc:
        raise FetchError(f"{name}: could not download {filename} from Hugging Face repo {repo}: {exc}") from exc


def hf_cached(repo: str, filename: str) -> Path | None:
    """``filename`` of ``repo`` if the Hugging Face cache holds it (no network call), else None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename)
    return Path(found) if isinstance(found, str) else None


def _refused_as_gated(name: str, repo: str) -> str:
    return (f"{name}: Hugging Face repo {repo} is gated and refused this download: accept its license at "
            f"{hub_endpoint()}/{repo} with your account, then log in (`hf auth login`) or set HF_TOKEN to a token "
            "of that account")


def fetch_hf_snapshot(repo: str, name: str, allow_patterns: tuple[str, ...] | None = None, *,
                      record: Any = None) -> Path:
    """The local folder holding every file of Hugging Face model repo ``repo`` (a transformers
    ``save_pretrained`` layout; ``allow_patterns``: only the files matching these), from the HF
    cache, downloaded if online. A gated repository that refuses says so, in one line; so does the
    message for a gated ``record`` that is missing offline."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError

    hint = _fetch_hint(repo, "", record=record)
    offline = is_offline()
    down = None if offline else unreachable(hub_endpoint())
    patterns = list(allow_patterns) if allow_patterns else None
    try:
        return Path(snapshot_download(repo_id=repo, allow_patterns=patterns,
                                      local_files_only=offline or down is not None))
    except GatedRepoError:
        raise FetchError(_refused_as_gated(name, repo)) from None
    except LocalEntryNotFoundError as exc:
        if down is not None:
            raise NoNetworkError(
                f"{name}: no network ({down}), and Hugging Face repo {repo} is not in the Hugging Face cache. {hint}",
                name=name, host=hub_endpoint(), reason=down,
            ) from exc
        where = "offline mode is on (HF_HUB_OFFLINE)" if offline else "the Hub could not be reached"
        raise FetchError(f"{name}: Hugging Face repo {repo} is not in the Hugging Face cache and {where}. {hint}; "
                         "or pass a local folder (local-dir:DIR)") from exc
    except HfHubHTTPError as exc:
        raise FetchError(f"{name}: could not download Hugging Face repo {repo}: {exc}") from exc


def fetch_openclip_pretrained(name: str, architecture: str, tag: str) -> Path:
    """The checkpoint of open_clip's pretrained ``tag`` for ``architecture`` (open_clip knows where
    its tags live and checks the OpenAI URL hashes), from the Hugging Face cache when offline."""
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    cfg = get_pretrained_cfg(architecture, tag)
    if not cfg:
        raise FetchError(f"{name}: open_clip has no pretrained tag {tag!r} for {architecture}")
    host = hub_endpoint() if cfg.get("hf_hub") else cfg.get("url", "")
    down = None if is_offline() or not host else unreachable(host)
    if down is not None:
        cached = openclip_pretrained_cached(architecture, tag)
        if cached is not None:
            return cached
        raise NoNetworkError(
            f"{name}: no network ({down}), and open_clip's {architecture} pretrained={tag!r} is not in the "
            f"Hugging Face cache. On a machine with internet run `resegzoo fetch {name}` and copy the Hugging "
            "Face cache here.", name=name, host=host, reason=down)
    try:
        return Path(download_pretrained(cfg))
    except (OSError, RuntimeError) as exc:
        raise FetchError(
            f"{name}: open_clip could not get {architecture} pretrained={tag!r} ({exc}). With HF_HUB_OFFLINE=1 it "
            f"must already be in the Hugging Face cache: run `resegzoo fetch {name}` on a machine with internet "
            "and copy the cache."
        ) from exc


def openclip_pretrained_cached(architecture: str, tag: str) -> Path | None:
    """The cached checkpoint of an open_clip pretrained tag on the Hub, or None."""
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
    from open_clip.pretrained import get_pretrained_cfg

    hub = (get_pretrained_cfg(architecture, tag) or {}).get("hf_hub", "")
    repo, filename = os.path.split(hub)  # open_clip's own convention: "org/repo/" or "org/repo/file"
    names = [filename] if filename else [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]
    for found in (hf_cached(repo, n) for n in names if repo):
        if found is not None:
            return found
    return None
