"""What earlier releases' zoo offered besides :class:`~resegzoo.weights.records.ClipVariant`, kept
working for plugins and scripts written against it (the old names import from ``resegzoo.zoo`` and
``resegzoo.weights.zoo`` with a DeprecationWarning pointing here): the SAM record type, and readers
of the registry's earlier YAML layouts (``variants:`` files, ``sam.yaml``).

Every model is a :class:`~resegzoo.weights.records.ModelRecord` now (``registry/models/*.yaml``); a
:class:`SamCheckpoint` registered or fetched is taken as the record of :meth:`SamCheckpoint.as_record`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from resegzoo.schema import SchemaError, from_mapping
from resegzoo.weights.records import (  # noqa: F401  (CheckpointFormat, SamModelType: earlier releases' names)
    SAM,
    SAM2,
    SAM_MODEL_TYPES,
    CheckpointFormat,
    ClipVariant,
    ModelRecord,
    RecordSource,
    SamDetails,
    SamModelType,
    check_https,
    yaml_records,
)


@dataclass(frozen=True)
class SamCheckpoint:
    """A SAM (``vit_*``) or SAM 2.1 (``hiera_*``) checkpoint as earlier releases described it."""

    name: str
    model_type: SamModelType
    url: str
    #: file name in the cache (the last part of the URL)
    file: str
    license: str
    citation: str
    sha256: str | None = None
    size: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        check_https(self.url, f"SAM checkpoint {self.name!r}")

    def as_record(self) -> ModelRecord:
        """The sam or sam2 :class:`ModelRecord` this checkpoint describes."""
        kind = SAM if self.model_type in SAM_MODEL_TYPES[SAM] else SAM2
        return ModelRecord(name=self.name, kind=kind, license=self.license, source=RecordSource(url=self.url),
                           citation=self.citation, sha256=self.sha256, size=self.size,
                           description=self.description, details=SamDetails(self.model_type))

    @classmethod
    def from_record(cls, record: ModelRecord) -> "SamCheckpoint":
        if record.kind not in (SAM, SAM2) or record.source.url is None:
            raise ValueError(f"{record.name!r} is not a SAM checkpoint downloaded from a URL")
        return cls(name=record.name, model_type=record.details.model_type, url=record.source.url,
                   file=record.source.url.split("?")[0].rsplit("/", 1)[-1], license=record.license,
                   citation=record.citation, sha256=record.sha256, size=record.size, description=record.description)


def load_variants_file(path: str | Path) -> list[ClipVariant]:
    """Read a ``variants:`` YAML file of earlier releases (``registry/models/*.yaml`` now)."""
    variants = [from_mapping(ClipVariant, item, where) for item, where in yaml_records(Path(path), "variants")]
    for v in variants:
        if v.build is not None or v.fetcher is not None:
            raise SchemaError(f"{path}: variant {v.name!r}: 'build' and 'fetcher' can only be set by a Python plugin")
    return variants


def load_sam_file(path: str | Path) -> list[SamCheckpoint]:
    """Read a ``sam_checkpoints:`` YAML file of earlier releases."""
    return [from_mapping(SamCheckpoint, item, where) for item, where in yaml_records(Path(path), "sam_checkpoints")]


def load_builtin_variants() -> list[ClipVariant]:
    """The built-in clip records, as ClipVariants (``model_records("clip")`` gives every one, plugins' too)."""
    from resegzoo.weights.zoo import model_records

    from resegzoo.plugins.registry import get_registry

    owners = get_registry().models.owners
    return [ClipVariant.from_record(r) for r in model_records("clip").values()
            if owners.get(r.name) == "resegzoo.builtin.models"]


def sam_checkpoints() -> dict[str, SamCheckpoint]:
    """Every SAM and SAM 2.1 record downloaded from a URL, as SamCheckpoints, by name."""
    from resegzoo.weights.zoo import model_records

    return {name: SamCheckpoint.from_record(r) for name, r in model_records().items()
            if r.kind in (SAM, SAM2) and r.source.url is not None}


def get_sam_checkpoint(name: str) -> SamCheckpoint:
    """The SAM or SAM 2.1 checkpoint called ``name`` (or its model type, ``vit_b``), as a SamCheckpoint."""
    from resegzoo.weights.zoo import get_sam_checkpoint as record_of

    return SamCheckpoint.from_record(record_of(name))
