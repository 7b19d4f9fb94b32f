"""Downloads of https URLs into resegzoo's cache (SAM checkpoints, SkyCLIP archives).

A file is downloaded to ``<file>.part`` (resumed with an HTTP Range request after an interruption),
then renamed into place; only ``https://`` is followed, redirects included. Offline or unreachable:
a :class:`~resegzoo.weights.zoo.FetchError` saying where to put the file by hand.
"""
from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from resegzoo.weights.cache import CACHE_ENV, OFFLINE_ENV, cache_dir, file_lock, is_offline, unreachable
from resegzoo.weights.zoo import FetchError, NoNetworkError

_CHUNK = 1 << 20


def url_file_name(url: str) -> str:
    """The file name a URL download is cached under (the URL's last part, without a query)."""
    return url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]


def cached_download(url: str) -> Path:
    """Where :func:`fetch_url` keeps the download of ``url`` (it may not exist yet)."""
    return cache_dir() / "downloads" / url_file_name(url)


def fetch_url(url: str, name: str, progress: bool = True) -> Path:
    """The cached download of https ``url`` (``name``: what the user asked for, in messages),
    downloaded first if needed."""
    require_https(url, name)
    file_name = url_file_name(url)
    target = cache_dir() / "downloads" / file_name
    if target.is_file():
        return target
    if is_offline():
        raise FetchError(
            f"{name}: {file_name} is not in resegzoo's cache and offline mode is on. Download "
            f"{url} and put it at {target} (or set {CACHE_ENV} to the folder whose downloads/ "
            f"holds it), or unset HF_HUB_OFFLINE/{OFFLINE_ENV} and run `resegzoo fetch {name}`."
        )
    down = unreachable(url)
    if down is not None:
        raise NoNetworkError(
            f"{name}: no network ({down}), and {file_name} is not in resegzoo's cache. Download {url} "
            f"on a machine with internet and put it at {target}, or run `resegzoo fetch {name}` there "
            f"and copy {cache_dir()}.", name=name, host=url, reason=down,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with file_lock(target):  # another process may be downloading the same file
            if not target.is_file():
                download_url(url, target, progress=progress)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise FetchError(
            f"{name}: downloading {url} failed ({exc}); run the command again to resume, or "
            f"download the file yourself and put it at {target}"
        ) from exc
    return target


def require_https(url: str, name: str) -> None:
    """Refuse any URL but ``https://``: a registry record (or a redirect) must not make resegzoo
    read local files (``file://``), talk plain http or use any other scheme urllib knows."""
    from urllib.parse import urlsplit

    if urlsplit(url).scheme.lower() != "https":
        raise FetchError(f"{name}: refusing to download {url!r}: resegzoo downloads https:// URLs only "
                         f"(and Hugging Face Hub files); download the file yourself and pass its path")


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 (urllib's signature)
        require_https(newurl, f"redirect from {req.full_url}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def download_url(url: str, target: Path, *, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download https ``url`` to ``target`` via ``target.part``, resuming a previous partial download."""
    from tqdm.auto import tqdm

    require_https(url, url)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "resegzoo"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.build_opener(_HttpsOnlyRedirects).open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not have:  # 416: the .part file already holds the whole file
            raise
        os.replace(part, target)
        return target
    with response:
        resumed = have and response.status == 206
        if not resumed:
            have = 0  # the server ignored Range: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=target.name, disable=not progress)
        with bar, open(part, "ab" if resumed else "wb") as out:
            for block in iter(lambda: response.read(_CHUNK), b""):
                out.write(block)
                bar.update(len(block))
    if total is not None and part.stat().st_size != total:
        raise OSError(f"download of {url} stopped at {part.stat().st_size} of {total} bytes")
    os.replace(part, target)
    return target


