"""One record type for every model weight resegzoo knows: :class:`ModelRecord` (compare timm's
``PretrainedCfg``).

A record names the weights (``name``), says what they are (``kind``: ``clip``, ``sam``, ``sam2``,
``sam3`` or a plugin's own kind), where they come from (``source``: a Hugging Face file or a whole
repository, an https URL or one member of an archive there, open_clip's own pretrained tag, a local
path, or a plugin's ``fetcher``), and what a user must know before using them (``license``,
``gated``, ``size``, ``sha256``, ``random_weights``). What only one kind needs lives in ``details``
(:class:`ClipDetails` for CLIP, :class:`SamDetails` for SAM and SAM 2.1; SAM 3 needs none; a
plugin's kind keeps its own mapping).

Records are registered through one hook, ``resegzoo_register_models``: resegzoo's own come from
``registry/models/*.yaml`` (``models:`` lists, read by :func:`load_models_file`), a plugin's from
Python. :class:`ClipVariant` is the record type of earlier releases, still accepted (a clip record).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from resegzoo.schema import SchemaError, from_mapping, load_yaml

#: the kinds resegzoo itself reads and builds; plugins may register records of other kinds
CLIP, SAM, SAM2, SAM3 = "clip", "sam", "sam2", "sam3"
BUILTIN_KINDS = (CLIP, SAM, SAM2, SAM3)
#: how each built-in kind is named in messages
KIND_NAMES = {CLIP: "CLIP", SAM: "SAM", SAM2: "SAM 2.1", SAM3: "SAM 3"}

#: segment-anything's vit_* (kind ``sam``) and SAM 2.1's hiera_* (kind ``sam2``)
SamModelType = Literal["vit_b", "vit_l", "vit_h", "hiera_t", "hiera_s", "hiera_b+", "hiera_l"]
SAM_MODEL_TYPES = {SAM: ("vit_b", "vit_l", "vit_h"), SAM2: ("hiera_t", "hiera_s", "hiera_b+", "hiera_l")}

#: what a transformers model folder needs of a Hub repository (the rest: other formats, docs, media)
HF_MODEL_FILES = ("config.json", "*.safetensors", "*.safetensors.index.json", "tokenizer.json",
                  "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                  "processor_config.json", "preprocessor_config.json")


def kind_name(kind: str) -> str:
    """A kind as messages name it (``SAM 3``; a plugin's kind as it is)."""
    return KIND_NAMES.get(kind, kind)


@dataclass(frozen=True)
class RecordSource:
    """Where a record's weights come from: exactly one of ``hf_repo``, ``url``, ``open_clip_tag``,
    ``path`` or (plugins) ``fetcher``."""

    #: a Hugging Face model repository (``ORG/REPO``)
    hf_repo: str | None = None
    #: one file of ``hf_repo``; None: the whole repository (a snapshot, e.g. transformers' layout)
    hf_file: str | None = None
    #: a whole repository: only the files matching these patterns (default :data:`HF_MODEL_FILES`)
    hf_patterns: tuple[str, ...] | None = None
    #: an https URL, downloaded into resegzoo's cache (resumable)
    url: str | None = None
    #: the file inside the archive at ``url`` that holds the weights (SkyCLIP's zips)
    member: str | None = None
    #: open_clip's own pretrained tag (``openai``) for ``details.architecture`` (kind clip)
    open_clip_tag: str | None = None
    #: a local file or folder (a site's shared models)
    path: str | None = None
    #: plugins only: ``fetcher()`` returns the local file or folder (making it if needed)
    fetcher: Callable[[], Any] | None = None

    def __post_init__(self) -> None:
        given = [f for f in ("hf_repo", "url", "open_clip_tag", "path", "fetcher") if getattr(self, f) is not None]
        if len(given) > 1:
            raise ValueError(f"source gives {' and '.join(given)}; give exactly one place the weights come from")
        if self.hf_file is not None and self.hf_repo is None:
            raise ValueError("source.hf_file needs source.hf_repo")
        if self.hf_patterns is not None and (self.hf_repo is None or self.hf_file is not None):
            raise ValueError("source.hf_patterns goes with a whole repository (hf_repo without hf_file)")
        if self.member is not None and self.url is None:
            raise ValueError("source.member (a file inside an archive) needs source.url")
        if self.hf_repo is not None and self.hf_repo.count("/") != 1:
            raise ValueError(f"source.hf_repo {self.hf_repo!r}: write ORG/REPO")
        check_https(self.url, "source.url")

    @property
    def given(self) -> bool:
        return any(getattr(self, f) is not None for f in ("hf_repo", "url", "open_clip_tag", "path", "fetcher"))

    @property
    def is_snapshot(self) -> bool:
        """A whole Hub repository (rather than one file of it)."""
        return self.hf_repo is not None and self.hf_file is None

    def where(self) -> str:
        """Where the weights come from, in words (listings, messages)."""
        if self.hf_repo is not None:
            return f"hf-hub:{self.hf_repo}" + (f" {self.hf_file}" if self.hf_file else "")
        if self.url is not None:
            return self.url + (f" ({self.member})" if self.member else "")
        if self.open_clip_tag is not None:
            return f"open_clip pretrained={self.open_clip_tag}"
        if self.path is not None:
            return self.path
        return "made by its plugin" if self.fetcher is not None else "-"


@dataclass(frozen=True)
class ClipDetails:
    """What a CLIP record needs besides its source."""

    #: open_clip model name; OpenAI-derived weights need the ``-quickgelu`` configs
    architecture: str
    #: the record these weights were fine-tuned from (composition warns when ancestors differ)
    init_from: str | None = None
    #: open_clip model config, for architectures open_clip does not ship (plugins, tests)
    model_config: dict | None = None


@dataclass(frozen=True)
class SamDetails:
    """What a SAM (``vit_*``) or SAM 2.1 (``hiera_*``) record needs besides its source."""

    model_type: SamModelType


#: the typed ``details`` of each built-in kind (None: the kind needs none)
DETAILS: dict[str, type | None] = {CLIP: ClipDetails, SAM: SamDetails, SAM2: SamDetails, SAM3: None}


@dataclass(frozen=True)
class ModelRecord:
    """One set of weights of any kind (see the module)."""

    name: str
    #: ``clip``, ``sam``, ``sam2``, ``sam3``, or a plugin's own kind
    kind: str
    license: str
    source: RecordSource = field(default_factory=RecordSource)
    citation: str = ""
    #: sha256 of the file that is loaded (for archives: of the member), null if unknown
    sha256: str | None = None
    #: the repository asks each user to accept its licence (and give a token) before downloading
    gated: bool = False
    #: approximate, human-readable (``375 MB``); shown before a download
    size: str | None = None
    description: str = ""
    #: weights random by design (demo/test models): every run says its labels are not results
    random_weights: bool = False
    #: the kind's own fields: a mapping in YAML, :class:`ClipDetails` / :class:`SamDetails` once
    #: read; a plugin's kind keeps its mapping
    details: Any = None
    #: plugins only: ``build(device=...)`` returns the ready model (a DenseEncoder for clip); the
    #: record then needs no source
    build: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        label = f"model {self.name!r}"
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a model record needs a name")
        if "/" in self.name or "\\" in self.name or self.name.startswith(("hf-hub:", "local-dir:")):
            raise ValueError(f"{label}: a record name has no '/' and no 'hf-hub:'/'local-dir:' prefix "
                             "(those are how specs name files, folders and Hub repositories)")
        if not self.kind or not isinstance(self.kind, str):
            raise ValueError(f"{label}: give its kind (clip, sam, sam2, sam3 or a plugin's own)")
        object.__setattr__(self, "details", _parsed_details(self.kind, self.details, label))
        if not self.source.given and self.build is None:
            raise ValueError(f"{label}: give its source (hf_repo, url, open_clip_tag or path)")
        if self.source.open_clip_tag is not None and self.kind != CLIP:
            raise ValueError(f"{label}: source.open_clip_tag is for clip records only")
        if self.kind in (SAM, SAM2):
            allowed = SAM_MODEL_TYPES[self.kind]
            if self.details.model_type not in allowed:
                raise ValueError(f"{label}: a {self.kind} record's model_type is one of {', '.join(allowed)}, "
                                 f"not {self.details.model_type!r}")
        if self.sha256 is not None and (len(self.sha256) != 64 or not _is_hex(self.sha256)):
            raise ValueError(f"{label}: sha256 must be 64 hex digits or null")

    @property
    def kind_name(self) -> str:
        return kind_name(self.kind)

    def clip_variant(self) -> "ClipVariant":
        """This clip record as earlier releases' :class:`ClipVariant` (``Registry.variants`` gives these)."""
        return ClipVariant.from_record(self)

    def gated_note(self) -> str:
        """What a user of a gated record must do first, in one sentence ("" when it is not gated)."""
        if not self.gated:
            return ""
        from huggingface_hub import constants  # HF_ENDPOINT, as resegzoo.weights.hf.hub_endpoint

        repo = self.source.hf_repo
        where = f"{constants.ENDPOINT}/{repo}" if repo else "its home page"
        return (f"{self.name} is gated: accept its licence ({self.license}) at {where} with your Hugging Face "
                "account, then give a token of that account (set HF_TOKEN, or run `hf auth login`)")


def _parsed_details(kind: str, details: Any, label: str) -> Any:
    if kind not in DETAILS:  # a plugin's kind: its own mapping (or object), as given
        return details if details is not None else {}
    typed = DETAILS[kind]
    if typed is None:
        if details:
            raise ValueError(f"{label}: a {kind} record takes no details")
        return None
    if isinstance(details, typed):
        return details
    if details is None:
        raise ValueError(f"{label}: a {kind} record needs details ({_fields(typed)})")
    try:
        return from_mapping(typed, details, "details")
    except SchemaError as exc:
        raise ValueError(str(exc)) from None


def _fields(cls: type) -> str:
    import dataclasses

    return ", ".join(f.name for f in dataclasses.fields(cls))


def check_https(url: str | None, what: str) -> None:
    """A record is data anyone can write (a plugin, a fork's registry): only https is downloaded,
    never file:// (a local file read into the cache) or another scheme urllib would follow."""
    if url is not None and not url.lower().startswith("https://"):
        raise ValueError(f"{what}: url must be an https:// URL, not {url!r}")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text.lower())


# -- reading registry/models/*.yaml ---------------------------------------------------------------


def yaml_records(path: Path, top_key: str) -> list[tuple[Any, str]]:
    """The items of the one list a registry YAML file holds under ``top_key``, each with a label
    naming file, position and record name for error messages."""
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


def load_models_file(path: str | Path) -> list[ModelRecord]:
    """Read one ``models:`` YAML file; any unknown/missing key is a SchemaError naming file and key."""
    records = []
    for item, where in yaml_records(Path(path), "models"):
        source = item.get("source") if isinstance(item, dict) else None
        if isinstance(item, dict) and ("build" in item or isinstance(source, dict) and "fetcher" in source):
            raise SchemaError(f"{where}: 'build' and 'source.fetcher' can only be set by a Python plugin")
        records.append(from_mapping(ModelRecord, item, where))
    return records


# -- the record type of earlier releases --------------------------------------------------------

CheckpointFormat = Literal["openclip-pickle", "skyclip-zip", "safetensors", "openclip-pretrained", "custom"]


@dataclass(frozen=True)
class ClipVariant:
    """A CLIP variant as earlier releases described it; registering one (through
    ``resegzoo_register_models`` or the older ``resegzoo_register_variants``) registers the clip
    :class:`ModelRecord` of :meth:`as_record`. New code writes ModelRecord directly."""

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
    #: plugins only: ``fetcher()`` returns the local checkpoint file (making it if needed)
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
        check_https(self.url, f"variant {self.name!r}")
        if self.sha256 is not None and (len(self.sha256) != 64 or not _is_hex(self.sha256)):
            raise ValueError(f"variant {self.name!r}: sha256 must be 64 hex digits or null")

    def as_record(self) -> ModelRecord:
        """The clip :class:`ModelRecord` this variant describes."""
        if self.format == "custom":
            source = RecordSource()
        elif self.format == "openclip-pretrained":
            source = RecordSource(open_clip_tag=self.pretrained_tag)
        elif self.fetcher is not None:
            source = RecordSource(fetcher=self.fetcher)
        elif self.url is not None:
            source = RecordSource(url=self.url, member=self.member)
        else:
            source = RecordSource(hf_repo=self.hf_repo, hf_file=self.hf_file)
        return ModelRecord(
            name=self.name, kind=CLIP, license=self.license, source=source, citation=self.citation,
            sha256=self.sha256, description=self.description, random_weights=self.random_weights,
            details=ClipDetails(self.architecture, self.init_from, self.model_config),
            build=self.build if self.format == "custom" else None)

    @classmethod
    def from_record(cls, record: ModelRecord) -> "ClipVariant":
        """The earlier releases' view of a clip record (``resegzoo list variants`` shows it)."""
        if record.kind != CLIP:
            raise ValueError(f"{record.name!r} is a {record.kind_name} model, not a CLIP variant")
        src, details = record.source, record.details
        if record.build is not None:
            fmt = "custom"
        elif src.open_clip_tag is not None:
            fmt = "openclip-pretrained"
        elif src.member is not None:
            fmt = "skyclip-zip"
        else:
            fmt = "safetensors" if (src.hf_file or src.url or "").endswith(".safetensors") else "openclip-pickle"
        return cls(name=record.name, architecture=details.architecture, format=fmt, license=record.license,
                   citation=record.citation, hf_repo=src.hf_repo, hf_file=src.hf_file, url=src.url,
                   member=src.member, pretrained_tag=src.open_clip_tag, init_from=details.init_from,
                   sha256=record.sha256, description=record.description, model_config=details.model_config,
                   random_weights=record.random_weights, build=record.build, fetcher=src.fetcher)


def as_record(entry: Any) -> ModelRecord:
    """What a register hook was given, as a :class:`ModelRecord` (a :class:`ClipVariant` converted)."""
    if isinstance(entry, ModelRecord):
        return entry
    if isinstance(entry, ClipVariant):
        return entry.as_record()
    raise TypeError(f"expected a resegzoo ModelRecord (or ClipVariant), got {type(entry).__name__}")
