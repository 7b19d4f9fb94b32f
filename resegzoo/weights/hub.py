"""Downloading and caching weights: Hugging Face files, URL downloads and archive members.

* Hugging Face files go through ``huggingface_hub.hf_hub_download`` into the HF cache, so a file
  another tool already downloaded is reused, and ``HF_HUB_OFFLINE=1`` resolves cached files with
  no network call.
* URL files (SAM ``.pth``, SkyCLIP ``.zip``) go into resegzoo's cache folder (``RESEGZOO_CACHE``
  or ``~/.cache/resegzoo``): downloaded to ``<file>.part`` (resumed with an HTTP Range request
  after an interruption), verified, then renamed into place. An archive member is extracted once,
  atomically, into the cache, and only if it is a regular file whose normalised path stays inside
  its folder (no absolute path, drive letter or ``..``; no link, device or name that collides with
  another after normalisation); a member is capped at its declared size, which may not exceed
  100x its stored size or the free space, and its CRC is checked.
* Offline (``HF_HUB_OFFLINE=1`` or ``RESEGZOO_OFFLINE=1``) and missing: :class:`FetchError`
  saying what to download, from where, and where to put it.

These are the internals of :mod:`resegzoo.weights.fetch` (step 2 of the model route); ``resegzoo
fetch`` calls :func:`fetch_record` directly.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import socket
import stat
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from resegzoo.outputs.atomic import atomic_path, write_text
from resegzoo.outputs.reading import UnsafeFileError, read_text
from resegzoo.weights.zoo import CheckpointError, ClipVariant, FetchError, NoNetworkError, Sam3Record, SamCheckpoint

_log = logging.getLogger(__name__)

Record = ClipVariant | SamCheckpoint | Sam3Record

CACHE_ENV = "RESEGZOO_CACHE"
OFFLINE_ENV = "RESEGZOO_OFFLINE"
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """resegzoo's own cache folder (URL downloads, extracted archive members)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "resegzoo").expanduser()


def is_offline() -> bool:
    """True when HF_HUB_OFFLINE or RESEGZOO_OFFLINE is set (read now, not at import time)."""
    from huggingface_hub import constants

    truthy = ("1", "true", "yes", "on")
    env = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get(OFFLINE_ENV, ""))
    return constants.HF_HUB_OFFLINE or any(v.strip().lower() in truthy for v in env)


#: (host, port) -> why it could not be reached, or None; one probe per host and process
_PROBED: dict[tuple[str, int], str | None] = {}


def unreachable(url: str, timeout: float = 5.0) -> str | None:
    """Why the host of ``url`` cannot be reached (e.g. "connection refused"), or None if it can.

    One TCP connection attempt per host and process. huggingface_hub retries a refused or
    unresolvable connection five times with back-off (about 30 s per file), so resegzoo asks once
    up front and then uses the caches alone.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if (host, port) not in _PROBED:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            _PROBED[host, port] = None
        except socket.gaierror as exc:
            _PROBED[host, port] = f"cannot resolve {host} ({exc.strerror or exc})"
        except OSError as exc:  # refused, unreachable network, timeout
            _PROBED[host, port] = f"cannot connect to {host}:{port} ({exc.strerror or exc})"
    return _PROBED[host, port]


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_memo(memo: Path) -> str | None:
    """A small file this cache wrote (a hash, a stamp), or None if there is none or what is there
    is something else (a FIFO, a link, a folder, too large): the value is then computed anew and
    the memo rewritten."""
    try:
        return read_text(memo, 4096)
    except FileNotFoundError:
        return None
    except UnsafeFileError as exc:
        _log.warning("cache: ignoring %s (%s)", memo, exc)
        return None


def cached_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so repeated runs do not re-read gigabytes."""
    path = path.resolve()
    st = path.stat()
    key = hashlib.sha1(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    memo = cache_dir() / "compose" / "sha256" / key
    remembered = _read_memo(memo)
    if remembered is not None and re.fullmatch(r"[0-9a-f]{64}", remembered.strip()):
        return remembered.strip()
    value = sha256_file(path)
    write_text(memo, value, durable=True)
    return value


def fetch_record(record: Record, *, progress: bool = True) -> Path:
    """The local checkpoint file of a zoo record (a SAM 3 model: its folder), downloaded first if needed."""
    if isinstance(record, Sam3Record):
        return fetch_hf_snapshot(record.hf_repo, record.name, HF_MODEL_FILES)
    if isinstance(record, SamCheckpoint):
        path = _fetch_url(record.url, record.file, record.name, progress)
        return _verified(path, record.sha256, record.name)
    if record.format == "custom":
        raise FetchError(f"variant {record.name!r} is built by its plugin; it has no checkpoint to fetch")
    if record.fetcher is not None:
        return _verified(Path(record.fetcher()), record.sha256, record.name)
    if record.format == "openclip-pretrained":
        return _fetch_openclip_pretrained(record)
    if record.hf_repo is not None and record.hf_file is not None:
        return _verified(fetch_hf_file(record.hf_repo, record.hf_file, record.name), record.sha256, record.name)
    assert record.url is not None  # guaranteed by ClipVariant.__post_init__
    file_name = _url_file_name(record.url)
    if record.member is not None:
        extracted = _member_target(cache_dir() / "downloads" / file_name, record.member)
        if not extracted.is_file():  # the archive is only needed until its member is out
            archive = _fetch_url(record.url, file_name, record.name, progress)
            extracted = extract_member(archive, record.member)
        return _verified(extracted, record.sha256, record.name)
    return _verified(_fetch_url(record.url, file_name, record.name, progress), record.sha256, record.name)


def _url_file_name(url: str) -> str:
    return url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]


def is_cached(record: Record) -> bool:
    """Whether :func:`fetch_record` would succeed offline (no network call)."""
    if isinstance(record, Sam3Record):
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(record.hf_repo, "config.json"), str)
    if isinstance(record, SamCheckpoint):
        return (cache_dir() / "downloads" / record.file).is_file()
    if record.format == "custom" or record.fetcher is not None:
        return True
    if record.format == "openclip-pretrained":
        return _openclip_pretrained_cached(record) is not None
    if record.hf_repo is not None and record.hf_file is not None:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(record.hf_repo, record.hf_file), str)
    assert record.url is not None
    archive = cache_dir() / "downloads" / _url_file_name(record.url)
    if record.member is not None:
        return _member_target(archive, record.member).is_file() or archive.is_file()
    return archive.is_file()


# -- Hugging Face -------------------------------------------------------------------------------


def fetch_hf_file(repo: str, filename: str, name: str) -> Path:
    """``filename`` of Hugging Face model repo ``repo`` from the HF cache, downloaded if online.

    ``name`` is what the user asked for (used in error messages).
    """
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
    )

    offline = is_offline()
    down = None if offline else unreachable(hub_endpoint())
    if down is not None:
        cached = try_to_load_from_cache(repo, filename)
        if isinstance(cached, str):
            return Path(cached)
        raise NoNetworkError(
            f"{name}: no network ({down}), and {filename} from Hugging Face repo {repo} is not in the "
            f"Hugging Face cache. {_hf_copy_hint(name, repo, filename)}",
            name=name, host=hub_endpoint(), reason=down,
        )
    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, local_files_only=offline))
    except LocalEntryNotFoundError as exc:
        where = "offline mode is on (HF_HUB_OFFLINE)" if offline else "the Hub could not be reached"
        raise FetchError(
            f"{name}: {filename} from Hugging Face repo {repo} is not in the Hugging Face cache and "
            f"{where}. {_hf_copy_hint(name, repo, filename)} ({exc})"
        ) from exc
    except (EntryNotFoundError, HfHubHTTPError) as exc:
        raise FetchError(f"{name}: could not download {filename} from Hugging Face repo {repo}: {exc}") from exc


#: what a transformers model folder needs (the rest of a repository: other formats, docs, media)
HF_MODEL_FILES = ("config.json", "*.safetensors", "*.safetensors.index.json", "tokenizer.json",
                  "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                  "processor_config.json", "preprocessor_config.json")


def _hf_copy_hint(name: str, repo: str, filename: str) -> str:
    return (f"On a machine with internet run `resegzoo fetch {name}` (or `hf download {repo} "
            f"{filename}`) and copy the Hugging Face cache folder (~/.cache/huggingface/hub, or "
            f"$HF_HUB_CACHE) here; or download https://huggingface.co/{repo}/resolve/main/{filename} "
            f"and pass the file path instead of the name")


def fetch_hf_snapshot(repo: str, name: str, allow_patterns: tuple[str, ...] | None = None) -> Path:
    """The local folder holding every file of Hugging Face model repo ``repo`` (a transformers
    ``save_pretrained`` layout; ``allow_patterns``: only the files matching these), from the HF
    cache, downloaded if online. A gated repository that refuses says so, in one line."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError

    offline = is_offline()
    down = None if offline else unreachable(hub_endpoint())
    patterns = list(allow_patterns) if allow_patterns else None
    try:
        return Path(snapshot_download(repo_id=repo, allow_patterns=patterns,
                                      local_files_only=offline or down is not None))
    except GatedRepoError:
        raise FetchError(f"{name}: Hugging Face repo {repo} is gated and refused this download: accept its license "
                         f"at {hub_endpoint()}/{repo} with your account, then log in (`hf auth login`) or set "
                         "HF_TOKEN to a token of that account") from None
    except LocalEntryNotFoundError as exc:
        if down is not None:
            raise NoNetworkError(
                f"{name}: no network ({down}), and Hugging Face repo {repo} is not in the Hugging Face cache. "
                f"On a machine with internet run `hf download {repo}` and copy the Hugging Face cache here",
                name=name, host=hub_endpoint(), reason=down,
            ) from exc
        where = "offline mode is on (HF_HUB_OFFLINE)" if offline else "the Hub could not be reached"
        raise FetchError(
            f"{name}: Hugging Face repo {repo} is not in the Hugging Face cache and {where}. On a machine "
            f"with internet run `hf download {repo}` and copy the Hugging Face cache folder "
            f"(~/.cache/huggingface/hub, or $HF_HUB_CACHE) here, or pass a local folder (local-dir:DIR) ({exc})"
        ) from exc
    except HfHubHTTPError as exc:
        raise FetchError(f"{name}: could not download Hugging Face repo {repo}: {exc}") from exc


def _fetch_openclip_pretrained(record: ClipVariant) -> Path:
    # open_clip knows where its pretrained tags live (and checks the OpenAI URL hashes).
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    cfg = get_pretrained_cfg(record.architecture, record.pretrained_tag or "")
    if not cfg:
        raise FetchError(f"{record.name}: open_clip has no pretrained tag {record.pretrained_tag!r} "
                         f"for {record.architecture}")
    host = hub_endpoint() if cfg.get("hf_hub") else cfg.get("url", "")
    down = None if is_offline() or not host else unreachable(host)
    if down is not None:
        cached = _openclip_pretrained_cached(record)
        if cached is not None:
            return cached
        raise NoNetworkError(
            f"{record.name}: no network ({down}), and open_clip's {record.architecture} "
            f"pretrained={record.pretrained_tag!r} is not in the Hugging Face cache. On a machine with "
            f"internet run `resegzoo fetch {record.name}` and copy the Hugging Face cache here.",
            name=record.name, host=host, reason=down,
        )
    try:
        return Path(download_pretrained(cfg))
    except (OSError, RuntimeError) as exc:
        raise FetchError(
            f"{record.name}: open_clip could not get {record.architecture} pretrained={record.pretrained_tag!r} "
            f"({exc}). With HF_HUB_OFFLINE=1 it must already be in the Hugging Face cache: run "
            f"`resegzoo fetch {record.name}` on a machine with internet and copy the cache."
        ) from exc


def _openclip_pretrained_cached(record: ClipVariant) -> Path | None:
    """The cached checkpoint of an open_clip pretrained tag on the Hub, or None."""
    from huggingface_hub import try_to_load_from_cache
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
    from open_clip.pretrained import get_pretrained_cfg

    hub = (get_pretrained_cfg(record.architecture, record.pretrained_tag or "") or {}).get("hf_hub", "")
    repo, filename = os.path.split(hub)  # open_clip's own convention: "org/repo/" or "org/repo/file"
    names = [filename] if filename else [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]
    for found in (try_to_load_from_cache(repo, n) for n in names if repo):
        if isinstance(found, str):
            return Path(found)
    return None


# -- URL downloads ------------------------------------------------------------------------------


def _fetch_url(url: str, file_name: str, name: str, progress: bool) -> Path:
    require_https(url, name)
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
        with _lock(target):  # another process may be downloading the same file
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


# -- archives and verification ------------------------------------------------------------------


def _lock(path: Path):
    from filelock import FileLock

    return FileLock(str(path) + ".lock")


def _member_dir(archive: Path) -> Path:
    # Keyed by the archive's full path: two "model.zip" in different folders never share members.
    key = hashlib.sha256(str(archive.resolve()).encode()).hexdigest()[:12]
    return cache_dir() / "extracted" / f"{archive.name.removesuffix('.zip')}-{key}"


#: a member may decompress to at most this many times its stored size (deflate's own limit is
#: ~1032; checkpoints of floats barely compress, so a far higher ratio is a zip bomb)
MAX_COMPRESSION_RATIO = 100
_DRIVE = re.compile(r"^[A-Za-z]:")
_FILE_TYPES = {stat.S_IFLNK: "a symbolic link", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
               stat.S_IFIFO: "a named pipe", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def member_parts(archive: Path, member: str) -> tuple[str, ...]:
    """The path parts of archive member ``member``, refused unless they stay inside the folder
    they are extracted to: no absolute path, drive letter, ``..`` part or NUL byte."""
    if "\0" in member:
        raise FetchError(f"{archive}: member {member!r} has a NUL byte in its name; refusing to extract it")
    name = member.replace("\\", "/")  # zips made on Windows may use backslashes
    if name.startswith("/") or _DRIVE.match(name):
        raise FetchError(f"{archive}: member {member!r} has an absolute path; refusing to extract it "
                         f"(it would be written outside resegzoo's cache)")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise FetchError(f"{archive}: member {member!r} climbs out of its folder with '..'; refusing to "
                         f"extract it (it would be written outside resegzoo's cache)")
    if not parts:
        raise FetchError(f"{archive}: member {member!r} names no file")
    return parts


def _member_target(archive: Path, member: str) -> Path:
    folder = _member_dir(archive)
    target = folder.joinpath(*member_parts(archive, member))
    # the joined path must stay inside the folder even after resolving links on the way
    if not target.resolve().is_relative_to(folder.resolve()):
        raise FetchError(f"{archive}: member {member!r} would be written outside {folder}; refusing to extract it")
    return target


def _check_entry(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Refuse links, devices, folders, names that collide after normalisation, and zip bombs."""
    parts = member_parts(archive, info.filename)
    mode = info.external_attr >> 16
    kind = _FILE_TYPES.get(stat.S_IFMT(mode)) if mode else None
    if kind is None and info.is_dir():
        kind = "a folder"
    if kind is not None:
        raise FetchError(f"{archive}: member {info.filename!r} is {kind}, not a regular file; refusing to extract it")
    same = [i.filename for i in zf.infolist()
            if i is not info and tuple(p.lower() for p in _lenient_parts(i.filename)) == tuple(p.lower() for p in parts)]
    if same:
        raise FetchError(f"{archive}: member {info.filename!r} collides with {', '.join(map(repr, same))} (the same "
                         f"file name after normalisation); the archive is ambiguous, refusing to extract it")
    if info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1) + _CHUNK:
        raise FetchError(f"{archive}: member {info.filename!r} declares {info.file_size} bytes from "
                         f"{info.compress_size} stored: over {MAX_COMPRESSION_RATIO}x compression (a zip bomb?); "
                         f"refusing to extract it")
    free = shutil.disk_usage(_existing_parent(cache_dir())).free
    if info.file_size > free:
        raise FetchError(f"{archive}: member {info.filename!r} needs {info.file_size} bytes but only {free} are "
                         f"free in {cache_dir()}; free space or set {CACHE_ENV} to a larger disk")


def _lenient_parts(member: str) -> tuple[str, ...]:
    return tuple(p for p in member.replace("\\", "/").split("/") if p not in ("", "."))


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _copy_member(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, dst) -> None:
    """Copy exactly the declared number of bytes, checking the CRC ourselves."""
    written, crc = 0, 0
    with zf.open(info) as src:
        while block := src.read(_CHUNK):
            written += len(block)
            if written > info.file_size:
                raise FetchError(f"{archive}: member {info.filename!r} holds more than the {info.file_size} bytes "
                                 f"it declares; refusing to extract it")
            crc = zlib.crc32(block, crc)
            dst.write(block)
    if written != info.file_size:
        raise FetchError(f"{archive}: member {info.filename!r} holds {written} bytes but declares "
                         f"{info.file_size}; the archive is truncated or forged")
    if crc != info.CRC:
        raise FetchError(f"{archive}: member {info.filename!r} fails its CRC check; the archive is corrupt")


def only_checkpoint_member(archive: Path, suffixes: tuple[str, ...]) -> str:
    """The one member of a zip archive whose name ends in one of ``suffixes`` (SkyCLIP's zips hold one)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [n for n in zf.namelist() if n.endswith(suffixes)]
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{archive}: not a readable zip archive ({exc}); truncated?") from exc
    if len(members) != 1:
        found = ", ".join(members) or "none"
        raise CheckpointError(
            f"{archive}: expected exactly one checkpoint inside the zip, found {found}; "
            f"extract the one you want and pass its path"
        )
    return members[0]


def extract_member(archive: Path, member: str) -> Path:
    """Extract one member of a zip archive into the cache, once; later calls reuse it.

    The member must be a regular file whose path stays inside its cache folder (see
    :func:`member_parts`); nothing is created before that is checked.
    """
    target = _member_target(archive, member)
    if target.is_file() and not (archive.is_file() and archive.stat().st_mtime_ns > target.stat().st_mtime_ns):
        return target  # extracted before, and the archive has not been replaced since
    if not zipfile.is_zipfile(archive):
        raise FetchError(f"{archive} is not a zip archive (a truncated download?); delete it and fetch again")
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = [i for i in zf.infolist() if i.filename == member]
            if not infos:
                shown = ", ".join(n for n in zf.namelist() if not n.endswith("/"))[:400]
                raise FetchError(f"{archive} has no member {member!r} (it holds: {shown})")
            if len(infos) > 1:
                raise FetchError(f"{archive}: member {member!r} appears {len(infos)} times; the archive is "
                                 f"ambiguous, refusing to extract it")
            _check_entry(archive, zf, infos[0])
            target.parent.mkdir(parents=True, exist_ok=True)
            with _lock(target), atomic_path(target, durable=True) as tmp, tmp.open("wb") as dst:
                _copy_member(archive, zf, infos[0], dst)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise FetchError(f"{archive}: member {member!r} could not be read ({exc}); the archive is corrupt or "
                         f"truncated: delete it and fetch again") from exc
    return target


def _verified(path: Path, sha256: str | None, name: str, hasher: Callable[[Path], str] = sha256_file) -> Path:
    """Check ``path`` against a known sha256 (once per file: a marker remembers success)."""
    if sha256 is None:
        return path
    stat = path.stat()
    marker = cache_dir() / "verified" / sha256
    stamp = f"{path.resolve()} {stat.st_size} {stat.st_mtime_ns}"
    if _read_memo(marker) == stamp:
        return path
    actual = hasher(path)
    if actual != sha256.lower():
        raise FetchError(
            f"{name}: {path} has sha256 {actual}, expected {sha256}; the file is corrupt or a "
            f"different version. Delete it and run `resegzoo fetch {name}` again."
        )
    write_text(marker, stamp, durable=True)
    return path
