"""Upload a composed model folder to the Hugging Face Hub, after checking it is complete."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from resegzoo.errors import ResegzooError
from resegzoo.schema import SchemaError, load_json
from resegzoo.compose.card import CardError, validate_card
from resegzoo.compose.inputs import CompositionError
from resegzoo.compose.output import CONFIG_FILE, OUTPUT_FILES, read_metadata

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


class PublishError(ResegzooError, ValueError):
    """A folder that is not a complete composed model, or a bad repository id."""


@dataclass
class PublishResult:
    repo_id: str
    files: list[str]
    url: str | None = None
    dry_run: bool = False
    #: what a user should know before the model is public (see :func:`publish_warnings`)
    warnings: list[str] = field(default_factory=list)


def publish_warnings(folder: Path) -> list[str]:
    """The warnings `compose` gave that still matter before an upload, read back from the folder:
    inputs far apart (their average is likely broken) and inputs whose licence is unknown."""
    from huggingface_hub import ModelCard

    from resegzoo.compose.card import DISTANCES_FIELD, THRESHOLD_FIELD

    found = []
    data = ModelCard.load(folder / "README.md").data.to_dict()
    threshold = data.get(THRESHOLD_FIELD)
    for pair in data.get(DISTANCES_FIELD) or []:
        if threshold is not None and pair.get("relative_l2", 0) > threshold:
            found.append(f"inputs {pair['a']!r} and {pair['b']!r} are far apart (relative L2 distance "
                         f"{pair['relative_l2']:.3f} > {threshold}); they probably do not share an initialisation, "
                         "and their average is likely a broken model")
    unknown = [item.get("label") or item.get("spec") for item in read_metadata(folder)["inputs"]
               if not (item.get("license") or "").strip() or item["license"].strip().lower() == "unknown"]
    if unknown:
        found.append(f"the licence of {', '.join(repr(u) for u in unknown)} is unknown (the card says "
                     "'unknown'): check the terms of each input allow publishing a derivative")
    return found


def validate_folder(folder: Path) -> list[str]:
    """The files to upload; raises PublishError naming whatever is missing or broken."""
    if not folder.is_dir():
        raise PublishError(f"{folder}: no such folder (give the --out folder of `resegzoo compose`)")
    missing = [f for f in OUTPUT_FILES if not (folder / f).is_file()]
    if missing:
        raise PublishError(
            f"{folder} is not a complete composed model: missing {', '.join(missing)}; "
            f"run `resegzoo compose` again to write it"
        )
    try:
        config = load_json(folder / CONFIG_FILE, "an open_clip config")  # bounded, as every model config
    except SchemaError as exc:
        raise PublishError(f"{folder / CONFIG_FILE}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or "model_cfg" not in config:
        raise PublishError(f"{folder / CONFIG_FILE}: no 'model_cfg' entry, open_clip could not load the model")
    try:
        read_metadata(folder)
        validate_card(folder / "README.md")
    except (CompositionError, CardError, ValueError) as exc:
        raise PublishError(f"{folder} cannot be published: {exc}") from exc
    return list(OUTPUT_FILES)


def check_repo_id(repo_id: str) -> None:
    if not _REPO_ID.match(repo_id):
        raise PublishError(f"repository id {repo_id!r} must look like USER/NAME (letters, digits, '-', '_', '.')")


def publish(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    token: str | None = None,
    api: Any = None,
    warn: Callable[[str], None] | None = None,
) -> PublishResult:
    """Validate ``folder`` and upload exactly its model files to ``repo_id`` (created if needed).

    The token comes from ``token``, else huggingface_hub's usual places (HF_TOKEN, ``hf auth login``).
    ``warn(message)`` hears each of :func:`publish_warnings` before anything is uploaded.
    """
    folder = Path(folder)
    check_repo_id(repo_id)
    files = validate_folder(folder)
    found = publish_warnings(folder)
    for message in found if warn is not None else []:
        warn(message)
    if dry_run:
        return PublishResult(repo_id, files, dry_run=True, warnings=found)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    repo = api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id=repo_id, repo_type="model", branch=revision, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        repo_type="model",
        folder_path=str(folder),
        allow_patterns=files,
        revision=revision,
        commit_message=f"Upload composed CLIP model ({', '.join(files)})",
    )
    url = getattr(commit, "commit_url", None) or str(repo)
    return PublishResult(repo_id, files, url=url, warnings=found)
