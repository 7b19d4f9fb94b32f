"""The model card (README.md) of a composed model, made with huggingface_hub's ModelCard."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resegzoo.errors import ResegzooError

TEMPLATE = "compose_model_card.md"
REQUIRED_SECTIONS = ("## Base models", "## Weights", "## How to load", "## Citation")
TAGS = ["clip", "open_clip", "remote-sensing", "model-merging", "resegzoo", "reseg-clip"]


class CardError(ResegzooError, ValueError):
    """A model card that is missing something the Hub or users need."""


def hub_license(licenses: Sequence[str | None]) -> dict[str, str]:
    """The card's licence fields: a shared Hub licence id, else ``other`` naming every input's."""
    ids = {(lic or "unknown").strip().lower() for lic in licenses}
    if len(ids) == 1:
        only = ids.pop()
        if only and " " not in only and only != "unknown":
            return {"license": only}
    listed = "; ".join(sorted({lic or "unknown" for lic in licenses}))
    return {"license": "other", "license_name": "mixed-input-licences", "license_details": listed}


#: the card header's machine-readable record of how far apart the inputs are (publish warns from it)
DISTANCES_FIELD, THRESHOLD_FIELD = "resegzoo_input_distances", "resegzoo_distance_threshold"


def distance_fields(distances: dict[str, Any]) -> dict[str, Any]:
    """The card header's fields for the inputs' pairwise distances (none before they are measured)."""
    if not distances.get("pairs"):
        return {}
    return {DISTANCES_FIELD: [dict(pair) for pair in distances["pairs"]], THRESHOLD_FIELD: distances["threshold"]}


def build_card(summary: dict[str, Any], repo_id: str | None = None):
    """``summary``: the composed model's metadata (see :func:`resegzoo.compose.output.metadata_dict`)."""
    from huggingface_hub import ModelCard, ModelCardData

    inputs = summary["inputs"]
    lic = hub_license([i.get("license") for i in inputs])
    details = lic.pop("license_details", None)
    data = ModelCardData(
        library_name="open_clip",
        tags=TAGS,
        base_model=[i["hf_repo"] for i in inputs if i.get("hf_repo")] or None,
        pipeline_tag="zero-shot-image-classification",
        **lic,
        **distance_fields(summary.get("distances", {})),
    )
    scores = summary["scores"]
    score_names = list(scores)
    rows = [
        {"label": item["label"], "weight": w, "scores": [scores[n][i] for n in score_names]}
        for i, (item, w) in enumerate(zip(inputs, summary["weights"]))
    ]
    recipe = summary["recipe"]
    blocks = summary.get("distances", {}).get("blocks", {})
    load_id = f"hf-hub:{repo_id}" if repo_id else "path/to/this/folder"
    description = recipe.get("description") or f"Composed CLIP model `{recipe['name']}`."
    if details:
        description += f"\n\nLicences of the inputs: {details}."
    return ModelCard.from_template(
        data,
        template_path=str(Path(__file__).resolve().parent.parent / "data" / TEMPLATE),
        model_name=recipe["name"],
        description=description,
        architecture=summary.get("architecture") or "custom open_clip config",
        resegzoo_version=summary["resegzoo_version"],
        inputs=inputs,
        strategy=summary["weighting"]["strategy"],
        params=json.dumps(summary["weighting"]["params"]) if summary["weighting"]["params"] else "",
        score_names=score_names,
        weight_rows=rows,
        distances=summary.get("distances", {}).get("pairs", []),
        distance_blocks=blocks,
        block_pairs=list(next(iter(blocks.values()), {})),
        distance_threshold=summary.get("distances", {}).get("threshold"),
        load_id=load_id,
        open_clip_id=f"hf-hub:{repo_id}" if repo_id else "local-dir:path/to/this/folder",
    )


def validate_card(path: Path) -> None:
    """Local checks of a README.md model card (no network): parsable YAML header with the fields
    the Hub needs, and the sections users rely on."""
    from huggingface_hub import ModelCard

    try:
        card = ModelCard.load(path)
    except (ValueError, OSError) as exc:
        raise CardError(f"{path}: not a valid model card ({exc})") from exc
    data = card.data
    problems = []
    if not data.get("license"):
        problems.append("no `license` in the YAML header")
    elif data.get("license") == "other" and not data.get("license_name"):
        problems.append("license is `other` but `license_name` is missing")
    if data.get("library_name") != "open_clip":
        problems.append("`library_name` must be open_clip (so the Hub shows how to load it)")
    problems += [f"missing section {s!r}" for s in REQUIRED_SECTIONS if s not in card.text]
    if problems:
        raise CardError(f"{path}: " + "; ".join(problems))
