"""The zoo and the records the model route passes down.

The zoo is every :class:`~resegzoo.weights.records.ModelRecord` registered (resegzoo's own from
``registry/models/*.yaml``, plugins' alike; :func:`model_records`, :func:`get_model`). The route
(``resegzoo.weights.loading`` calls each step in turn; no step calls another)::

    spec --resolve.py--> Source --fetch.py--> Files --read.py--> weights (+ config) --build.py--> model

and what the API hands on after resolving a spec once: :class:`ResolvedModel` (the source, the
files on disk, their content fingerprint, the record if any). The errors of the route's steps live
here too.

The YAML files live in the repository's top-level ``registry/`` folder. A regular (wheel) install
ships them as data files under ``<prefix>/share/resegzoo/registry``; :func:`registry_dir` finds
whichever applies. ``RESEGZOO_REGISTRY`` points at another folder (tests, forks).
"""
from __future__ import annotations

import os
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from resegzoo.errors import EXIT_USAGE, ResegzooError
from resegzoo.weights.records import ClipVariant, ModelRecord, kind_name

__all__ = ["CheckpointError", "ClipVariant", "FetchError", "Files", "LoadError", "ModelRecord", "NoNetworkError",
           "REGISTRY_ENV", "ResolvedModel", "Source", "SpecError", "WrongKindError", "get_model", "get_sam_checkpoint",
           "model_records", "registry_dir"]

#: Environment variable naming a registry folder to use instead of the installed one.
REGISTRY_ENV = "RESEGZOO_REGISTRY"


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


class SpecError(LoadError):
    """A spec that names nothing usable (no such file, folder or name; a malformed ``hf-hub:``),
    found before anything is fetched: a usage error (exit status 2)."""

    exit_code = EXIT_USAGE


class WrongKindError(SpecError):
    """A spec that names weights of another kind than asked for (a CLIP model where SAM 3 is
    needed, and back); found before anything is downloaded or loaded where the spec tells."""

    exit_code = EXIT_USAGE


#: how a spec names its weights: ``record`` (a zoo record, fetched by its source); ``file`` (a local
#: weights file; an archive's one checkpoint member is extracted by fetch); ``folder`` (a local model
#: folder); ``hf-hub`` (a Hugging Face model repo)
SourceForm = Literal["record", "file", "folder", "hf-hub"]
#: which files of a folder or Hub repo a model needs: ``open_clip`` (open_clip_config.json and one
#: weights file, open_clip's layout), ``snapshot`` (the whole folder, e.g. transformers' save_pretrained)
FolderLayout = Literal["open_clip", "snapshot"]


@dataclass(frozen=True)
class Source:
    """What a spec names (resolve's answer, fetch's question); nothing has been downloaded yet."""

    #: what the user asked for; error messages say it
    name: str
    form: SourceForm
    #: the model kind asked for (``clip``, ``sam``, ``sam2``, ``sam3``, a plugin's)
    kind: str = "clip"
    record: ModelRecord | None = None
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

    def paths(self) -> list[Path]:
        """Every local path these files are (for checking they are still there)."""
        return [p for p in (self.weights, self.origin, self.config, self.folder) if p is not None]


@dataclass(frozen=True)
class ResolvedModel:
    """A model spec resolved once (``resegzoo.weights.loading.resolve_model``): what the API hands
    to methods (``MethodContext.resolved``), eval run keys, the text cache, sidecars and Ray actors,
    so that none of them reads the spec string again."""

    #: the spec as the user gave it (shown in messages and sidecars)
    spec: str
    #: the model kind (``clip``, ``sam``, ``sam2``, ``sam3``, a plugin's)
    kind: str
    source: Source | None
    #: the files on disk; None for a model its plugin builds (``record.build``) or a plugin kind
    #: the route does not fetch
    files: Files | None
    #: what identifies the weights by content (JSON-able; eval run keys, the text cache, sidecars)
    fingerprint: dict[str, Any] = field(default_factory=dict)

    @property
    def record(self) -> ModelRecord | None:
        return self.source.record if self.source is not None else None

    @property
    def name(self) -> str:
        """The record's name, else the spec."""
        return self.record.name if self.record is not None else self.spec

    @property
    def random_weights(self) -> bool:
        """The weights are random by design (a demo/test record): labels are not results."""
        return bool(self.record is not None and self.record.random_weights)

    @property
    def architecture(self) -> str | None:
        """The open_clip architecture the user named (``--arch``), if any."""
        return self.source.architecture if self.source is not None else None

    def describe(self) -> dict[str, Any]:
        """What a sidecar records about the weights."""
        return {"spec": self.spec, "kind": self.kind, "name": self.name, "fingerprint": self.fingerprint}


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


# -- the zoo -------------------------------------------------------------------------------------


def model_records(kind: str | None = None) -> dict[str, ModelRecord]:
    """Every registered model record by name (only those of ``kind`` when given), in name order."""
    from resegzoo.plugins.registry import get_registry

    table = get_registry().models
    return {name: table.entries[name] for name in table if kind is None or table.entries[name].kind == kind}


def get_model(name: str, kind: str | None = None) -> ModelRecord:
    """The record called ``name``. Unknown: :class:`~resegzoo.plugins.registry.UnknownNameError`
    suggesting close names (of ``kind`` when given); of another kind than ``kind``:
    :class:`WrongKindError`."""
    from resegzoo.plugins.registry import Table, get_registry

    models = get_registry().models
    if name in models:
        record = models.get(name)
        if kind is not None and record.kind != kind:
            raise WrongKindError(f"{name!r} is a {record.kind_name} model, not a {kind_name(kind)} model; "
                                 f"see `resegzoo list models --kind {kind}`")
        return record
    if kind is None:
        return models.get(name)  # raises, suggesting close names
    of_kind: Table[ModelRecord] = Table(f"{kind_name(kind)} model")
    for other, record in model_records(kind).items():
        of_kind.add(other, record, models.owners[other])
    return of_kind.get(name)


def get_sam_checkpoint(name: str) -> ModelRecord:
    """The SAM or SAM 2.1 record called ``name`` (``sam-vit-b``; the model type ``vit_b`` works too)."""
    from resegzoo.plugins.registry import Table

    records = {**model_records("sam"), **model_records("sam2")}
    table: Table[ModelRecord] = Table("SAM checkpoint")
    for record in records.values():
        table.add(record.name, record, "")
    by_type = {r.details.model_type: r for r in records.values()}
    if name in by_type and name not in table:
        return by_type[name]
    return table.get(name)


def __getattr__(name: str) -> Any:
    """Names that moved away from here still work, with a DeprecationWarning (resegzoo.moved.LEFT)."""
    from resegzoo.moved import left_module_attribute

    return left_module_attribute(__name__, name)
