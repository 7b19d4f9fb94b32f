"""Turn the recipe's input specs into files the composer can read tensor by tensor.

Finding and fetching a checkpoint is the model route's job (:func:`resegzoo.weights.loading.clip_files`,
which accepts registry names, files, folders, ``local-dir:`` and ``hf-hub:``). This module adds what composing needs:
every input becomes a :class:`ResolvedInput` whose ``weights`` is a safetensors file, either the
checkpoint itself or a copy converted once from a pickle into resegzoo's cache, keyed by the
original file's sha256, so later runs read it tensor by tensor without unpickling anything.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resegzoo.errors import ResegzooError
from resegzoo.schema import SchemaError, load_json
from resegzoo.compose.recipe import Recipe, public_name
from resegzoo.weights.cache import cached_sha256


class CompositionError(ResegzooError, ValueError):
    """Inputs that cannot be composed; the message says what is wrong and what to do."""


@dataclass
class ResolvedInput:
    label: str
    spec: str
    #: safetensors file holding the input's tensors (possibly a converted copy in the cache)
    weights: Path
    #: sha256 of the checkpoint file as the user or the Hub gave it
    sha256: str
    source: str
    model_config: dict | None = None
    architecture: str | None = None
    preprocess_cfg: dict = field(default_factory=dict)
    license: str | None = None
    citation: str | None = None
    hf_repo: str | None = None
    init_from: str | None = None
    #: the spec as published: a registry name, an ``hf-hub:`` id, or a file/folder name (never a local path)
    public_spec: str = ""

    def describe(self) -> dict[str, Any]:
        """What the output's metadata (and model card) records about this input: registry names,
        file names and hashes, never a local path (the folder may be published)."""
        return {
            "label": self.label, "spec": self.public_spec or public_name(self.spec), "file": Path(self.source).name,
            "sha256": self.sha256, "architecture": self.architecture, "license": self.license,
            "hf_repo": self.hf_repo, "init_from": self.init_from, "citation": self.citation,
        }


def _safetensors_copy(path: Path, sha: str) -> Path:
    """``path`` itself if it is safetensors, else its state dict converted once into the cache."""
    from resegzoo.weights.st_io import write_state_dict
    from resegzoo.outputs.reading import is_regular_file
    from resegzoo.weights.cache import cache_dir
    from resegzoo.weights.read import read_state_dict

    if path.suffix == ".safetensors":
        return path
    target = cache_dir() / "compose" / "safetensors" / f"{sha}.safetensors"
    # a link there (to other weights) or a FIFO is not the conversion this cache wrote: convert anew
    if not is_regular_file(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        state_dict = read_state_dict(path)  # weights_only=True, unwraps state_dict / module.
        write_state_dict(target, state_dict, {"converted_from": str(path), "sha256": sha})
        del state_dict
    return target


def resolve_input(label: str, spec: str) -> ResolvedInput:
    """Find (fetching if needed) one input and make it readable tensor by tensor."""
    from resegzoo.weights.loading import clip_files

    files = clip_files(spec)
    variant = files.source.record  # a clip record of the zoo, or None for a file, folder or Hub repo
    assert files.origin is not None and files.weights is not None  # every CLIP source has a weights file
    path = files.origin  # the file as given (an archive, not its member): what the output names
    sha = cached_sha256(path)
    item = ResolvedInput(label, spec, _safetensors_copy(files.weights, sha), sha, str(path))
    item.public_spec = spec if variant is not None else public_name(spec)
    if variant is not None:
        item.architecture = variant.details.architecture
        item.model_config = variant.details.model_config
        item.license, item.citation = variant.license, variant.citation
        item.hf_repo, item.init_from = variant.source.hf_repo, variant.details.init_from
        return item
    # Folders (local or hf-hub snapshots) and files with a config beside them carry their own.
    config_path = files.config
    if config_path is not None:
        try:
            config = load_json(config_path, "an open_clip config")  # bounded, as every model config
            item.model_config = config["model_cfg"]
        except (SchemaError, KeyError, TypeError) as exc:
            raise CompositionError(f"{config_path}: not a valid open_clip config ({exc!r})") from exc
        item.preprocess_cfg = dict(config.get("preprocess_cfg") or {})
        item.architecture = config.get("architecture")
    return item


def missing_inputs_message(failures: list[tuple[str, ResegzooError]], total: int) -> str:
    """One error line for the inputs that could not be resolved: each input's own message, and one
    `resegzoo fetch` command for the zoo names among them."""
    from resegzoo.plugins.registry import get_registry
    from resegzoo.weights.zoo import FetchError

    models = get_registry().models
    # one line, as every user error is (the CLI prints it after "Error: "): one input's own
    # message as it is, several joined with "; "
    if len(failures) == 1:
        message = str(failures[0][1])
    else:
        message = f"{len(failures)} of {total} inputs cannot be used: " + "; ".join(str(exc) for _, exc in failures)
    names = [spec for spec, exc in failures if isinstance(exc, FetchError) and spec in models]
    if len(names) > 1:
        message += (f"; on a machine with internet, `resegzoo fetch {' '.join(names)}` downloads the zoo's "
                    "inputs in one go")
    return message


def resolve_inputs(recipe: Recipe, progress: bool = True) -> list[ResolvedInput]:
    """Resolve every input and fill in model configs from the recipe where the input lacks one."""
    import open_clip
    from tqdm.auto import tqdm

    pairs = list(zip(recipe.labels, recipe.models))
    resolved, failures = [], []
    # every input is tried before any error is raised: offline, the user learns every missing
    # input from one run, not one per run
    for label, item in tqdm(pairs, desc="preparing inputs", unit="model", disable=not progress):
        try:
            resolved.append(resolve_input(label, item.model))
        except ResegzooError as exc:
            failures.append((item.model, exc))
    if len(failures) == 1:
        raise failures[0][1]
    if failures:
        raise CompositionError(missing_inputs_message(failures, len(pairs)))
    for item in resolved:
        if item.model_config is None and item.architecture is None:
            item.architecture = recipe.architecture
            item.model_config = recipe.model_config
        if item.model_config is None and item.architecture is not None:
            item.model_config = open_clip.get_model_config(item.architecture)
            if item.model_config is None:
                raise CompositionError(
                    f"{item.label}: open_clip has no architecture {item.architecture!r} (see open_clip.list_models())"
                )
        if item.model_config is None:
            raise CompositionError(
                f"{item.label}: cannot tell which architecture this checkpoint has; give `architecture:` "
                f"(an open_clip name such as ViT-L-14-quickgelu) in the recipe or --architecture"
            )
    return resolved
