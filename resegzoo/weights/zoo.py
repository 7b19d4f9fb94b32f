"""The zoo: typed records of CLIP variants, SAM checkpoints and SAM 3 models, read from registry/*.yaml, and the
records the model route passes down (:class:`Source`, :class:`Files`) with the errors its steps raise.

The route (``resegzoo.weights.loading`` calls each step in turn; no step calls another)::

    spec --resolve.py--> Source --fetch.py--> Files --read.py--> state dict (+ config) --build.py--> model

The YAML files live in the repository's top-level ``registry/`` folder. A regular (wheel) install
ships them as data files under ``<prefix>/share/resegzoo/registry``; :func:`registry_dir` finds
whichever applies. ``RESEGZOO_REGISTRY`` points at another folder (tests, forks).
"""
from __future__ import annotations

import os
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from resegzoo.errors import ResegzooError
from resegzoo.schema import SchemaError, from_mapping, load_yaml

CheckpointFormat = Literal["openclip-pickle", "skyclip-zip", "safetensors", "openclip-pretrained", "custom"]
#: segment-anything's vit_* and SAM 2.1's hiera_* (the ``sam`` and ``sam2`` mask generators)
SamModelType = Literal["vit_b", "vit_l", "vit_h", "hiera_t", "hiera_s", "hiera_b+", "hiera_l"]

#: Environment variable naming a registry folder to use instead of the installed one.
REGISTRY_ENV = "RESEGZOO_REGISTRY"


@dataclass(frozen=True)
class ClipVariant:
    """One CLIP variant of the zoo (compare timm's PretrainedCfg)."""

    name: str
    #: open_clip model name; OpenAI-derived weights need the ``-quickgelu`` configs.
    architecture: str
    format: CheckpointFormat
    license: str
    citation: str
    hf_repo: str | None = None
    hf_file: str | None = None
    url: str | None = None
    #: file inside the archive at ``url`` (SkyCLIP's zips)
    member: str | None = None
    #: open_clip pretrained tag (``openai``) for format ``openclip-pretrained``
    pretrained_tag: str | None = None
    init_from: str | None = None
    #: sha256 of the checkpoint file that is loaded (for archives: of the member), null if unknown
    sha256: str | None = None
    description: str = ""
    #: open_clip model config, for architectures open_clip does not ship (plugins, tests)
    model_config: dict | None = None
    #: weights random by design (demo/test models): every run says its labels are not results
    random_weights: bool = False
    #: plugins only: ``build(device=...)`` returns a ready DenseEncoder (format ``custom``)
    build: Callable[..., Any] | None = None
    #: plugins only: ``fetcher()`` returns the local checkpoint file (making it if needed);
    #: used instead of hf_repo/hf_file/url, e.g. for weights a plugin generates or ships
    fetcher: Callable[[], Any] | None = None

    def __post_init__(self) -> None:
        # Each format needs its own source fields; catching this at registration time means a
        # broken record fails when the registry loads, not halfway through a download.
        file_source = ("url",) if self.url is not None else ("hf_repo", "hf_file")
        needs = {
            "openclip-pickle": () if self.fetcher is not None else file_source,
            "safetensors": () if self.fetcher is not None else file_source,
            "skyclip-zip": ("url", "member"),
            "openclip-pretrained": ("pretrained_tag",),
            "custom": ("build",),
        }[self.format]
        missing = [f for f in needs if getattr(self, f) is None]
        if missing:
            raise ValueError(f"variant {self.name!r} of format {self.format!r} needs {', '.join(missing)}")
        _check_url(self.url, f"variant {self.name!r}")
        if self.sha256 is not None and (len(self.sha256) != 64 or not _is_hex(self.sha256)):
            raise ValueError(f"variant {self.name!r}: sha256 must be 64 hex digits or null")


@dataclass(frozen=True)
class SamCheckpoint:
    """A segment-anything checkpoint (``vit_*``: SAM, ``sam_model_registry[model_type]``) or a
    SAM 2.1 checkpoint (``hiera_*``: the ``sam2`` mask generator)."""

    name: str
    model_type: SamModelType
    url: str
    #: file name in the cache (the last part of the URL)
    file: str
    license: str
    citation: str
    #: sha256 of the .pth file, null if unknown
    sha256: str | None = None
    #: approximate, human-readable (``375 MB``); shown before a download
    size: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.sha256 is not None and (len(self.sha256) != 64 or not _is_hex(self.sha256)):
            raise ValueError(f"SAM checkpoint {self.name!r}: sha256 must be 64 hex digits or null")
        _check_url(self.url, f"SAM checkpoint {self.name!r}")


@dataclass(frozen=True)
class Sam3Record:
    """A SAM 3 model in transformers' format: a whole Hugging Face repository (config, weights,
    tokenizer), read by ``Sam3Model.from_pretrained`` (the ``segearth-ov3`` method)."""

    name: str
    hf_repo: str
    license: str
    citation: str
    #: the repository asks each user to accept its license (and a token) before downloading
    gated: bool = False
    #: approximate, human-readable; shown before a download
    size: str | None = None
    description: str = ""


class FetchError(ResegzooError, RuntimeError):
    """Weights could not be found or downloaded; the message says what to do."""


class NoNetworkError(FetchError):
    """Weights are not cached and their host cannot be reached (no network, firewall, proxy)."""

    def __init__(self, message: str, *, name: str, host: str, reason: str):
        super().__init__(message)
        self.name, self.host, self.reason = name, host, reason


class CheckpointError(ResegzooError, ValueError):
    """A checkpoint that cannot be read or does not fit its architecture; the message says why."""


class LoadError(CheckpointError):
    """A spec that cannot be loaded; the message says what is wrong and what to do."""


#: where a model's files come from:
#: ``record``: a zoo record (:class:`ClipVariant` / :class:`SamCheckpoint`), fetched by the hub;
#: ``file``: a local weights file (an archive's one checkpoint member is extracted by fetch);
#: ``folder``: a local model folder; ``hf-hub``: a Hugging Face model repo
SourceKind = Literal["record", "file", "folder", "hf-hub"]
#: which files of a folder or Hub repo a model needs: ``open_clip`` (open_clip_config.json and one
#: weights file, open_clip's layout), ``snapshot`` (the whole folder, e.g. transformers' save_pretrained)
FolderLayout = Literal["open_clip", "snapshot"]


@dataclass(frozen=True)
class Source:
    """What a spec names (resolve's answer, fetch's question); nothing has been downloaded yet."""

    #: what the user asked for; error messages say it
    name: str
    kind: SourceKind
    record: ClipVariant | SamCheckpoint | None = None
    #: ``file``: the weights file; ``folder``: the folder
    path: Path | None = None
    #: ``hf-hub``: ``ORG/REPO``
    repo: str | None = None
    layout: FolderLayout = "open_clip"
    #: an open_clip architecture the user named (``--arch``): it wins over any config
    architecture: str | None = None


@dataclass(frozen=True)
class Files:
    """What fetch put on disk for a :class:`Source` (read's question)."""

    source: Source
    #: the file read reads (an archive's member once extracted); None for a ``snapshot``
    weights: Path | None = None
    #: the file as the user or the zoo gave it (the archive itself): what identifies the weights
    origin: Path | None = None
    #: open_clip_config.json of a folder, a Hub repo, or beside a file (when no architecture is named)
    config: Path | None = None
    #: a ``snapshot``: the local folder holding every file of the model
    folder: Path | None = None


def _check_url(url: str | None, what: str) -> None:
    # A record is data anyone can write (a plugin, a fork's registry): only https is downloaded,
    # never file:// (a local file read into the cache) or another scheme urllib would follow.
    if url is not None and not url.lower().startswith("https://"):
        raise ValueError(f"{what}: url must be an https:// URL, not {url!r}")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text.lower())


# -- where registry/ is ------------------------------------------------------------------------


def _candidate_registry_dirs() -> list[Path]:
    candidates = []
    if os.environ.get(REGISTRY_ENV):
        return [Path(os.environ[REGISTRY_ENV])]
    # A source checkout (editable install, or running from the repository).
    source_root = Path(__file__).resolve().parents[2]
    if (source_root / "pyproject.toml").is_file():
        candidates.append(source_root / "registry")
    # A wheel install: [tool.setuptools.data-files] puts registry/ under <data>/share/resegzoo
    # (the environment's prefix, or the user base for `pip install --user`).
    data_roots = {sysconfig.get_path("data"), sysconfig.get_path("data", sysconfig.get_preferred_scheme("user"))}
    for root in sorted(data_roots):
        candidates.append(Path(root) / "share" / "resegzoo" / "registry")
    return candidates


def registry_dir() -> Path:
    """The folder holding the zoo's YAML records (and shipped recipes)."""
    candidates = _candidate_registry_dirs()
    for path in candidates:
        if path.is_dir():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"resegzoo's registry folder was not found (looked in: {tried}); reinstall resegzoo "
        f"or set {REGISTRY_ENV} to the repository's registry/ folder"
    )


# -- reading the YAML records -------------------------------------------------------------------


def _records(path: Path, top_key: str) -> list[tuple[dict, str]]:
    data = load_yaml(path)
    if not isinstance(data, dict) or set(data) != {top_key}:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise SchemaError(f"{path}: expected one top-level key {top_key!r} holding a list, found {keys}")
    items = data[top_key]
    if not isinstance(items, list):
        raise SchemaError(f"{path}: {top_key!r} must be a list of records")
    out = []
    for i, item in enumerate(items):
        label = item.get("name", f"#{i}") if isinstance(item, dict) else f"#{i}"
        out.append((item, f"{path}: {top_key}[{i}] ({label})"))
    return out


def load_variants_file(path: str | Path) -> list[ClipVariant]:
    """Read one ``variants:`` YAML file; any unknown/missing key is a SchemaError naming file and key."""
    variants = [from_mapping(ClipVariant, item, where) for item, where in _records(Path(path), "variants")]
    for v in variants:
        if v.build is not None or v.fetcher is not None:
            raise SchemaError(f"{path}: variant {v.name!r}: 'build' and 'fetcher' can only be set by a Python plugin")
    return variants


def load_sam_file(path: str | Path) -> list[SamCheckpoint]:
    """Read a ``sam_checkpoints:`` YAML file."""
    return [from_mapping(SamCheckpoint, item, where) for item, where in _records(Path(path), "sam_checkpoints")]


def load_sam3_file(path: str | Path) -> list[Sam3Record]:
    """Read a ``sam3_models:`` YAML file."""
    return [from_mapping(Sam3Record, item, where) for item, where in _records(Path(path), "sam3_models")]


def load_builtin_variants() -> list[ClipVariant]:
    """Every record in ``registry/variants/*.yaml``, in file order."""
    folder = registry_dir() / "variants"
    out: list[ClipVariant] = []
    for path in sorted(folder.glob("*.yaml")):
        out.extend(load_variants_file(path))
    return out


@cache
def _record_table(folder: str, file_name: str, what: str) -> dict[str, Any]:
    """The records of one registry file (``sam.yaml``, ``sam3.yaml``) by name; a name listed twice
    is an error."""
    path = Path(folder) / file_name
    loader = {"sam.yaml": load_sam_file, "sam3.yaml": load_sam3_file}[file_name]
    table: dict[str, Any] = {}
    for record in loader(path):
        if record.name in table:
            raise SchemaError(f"{path}: {what} {record.name!r} is listed twice")
        table[record.name] = record
    return table


def _lookup_table(what: str, records: dict[str, Any]) -> Any:
    """A registry ``Table`` of built-in records: lookups give UnknownNameError listing the known names."""
    from resegzoo.plugins.registry import Table

    table: Table[Any] = Table(what)
    for record in records.values():
        table.add(record.name, record, "resegzoo.builtin")
    return table


def sam_checkpoints() -> dict[str, SamCheckpoint]:
    """All SAM checkpoints of ``registry/sam.yaml`` by name."""
    return dict(_record_table(str(registry_dir()), "sam.yaml", "SAM checkpoint"))


def get_sam_checkpoint(name: str) -> SamCheckpoint:
    """The SAM checkpoint called ``name`` (``sam-vit-b``; the model type ``vit_b`` works too)."""
    table = _lookup_table("SAM checkpoint", sam_checkpoints())
    by_type = {r.model_type: r for r in table.entries.values()}
    if name in by_type and name not in table:
        return by_type[name]
    return table.get(name)


def sam3_models() -> dict[str, Sam3Record]:
    """All SAM 3 models of ``registry/sam3.yaml`` by name."""
    return dict(_record_table(str(registry_dir()), "sam3.yaml", "SAM 3 model"))


def get_sam3_model(name: str) -> Sam3Record:
    """The SAM 3 model called ``name`` (UnknownNameError listing the known ones otherwise)."""
    return _lookup_table("SAM 3 model", sam3_models()).get(name)
