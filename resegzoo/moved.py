"""Module paths that moved, kept working as warning aliases (a public interface is a contract).

Issue 15 grouped resegzoo's flat top-level modules into packages (``resegzoo/zoo.py`` became
``resegzoo/weights/zoo.py``, and so on). Plugins and scripts written before import the old paths, so
each old path still imports: it is an alias module whose names are looked up in the new module when
used, each use emitting a :class:`DeprecationWarning` that names where the name lives now (the public
plugin API, :mod:`resegzoo.plugin`, for the names it holds). The objects are the new modules' own, so
``resegzoo.hookspecs.hookimpl is resegzoo.plugin.hookimpl`` and records pass ``isinstance`` checks.

Two old modules became packages of the same name (``resegzoo/plugins.py``, ``resegzoo/runtime.py``):
their packages answer the old names through :func:`old_module_attribute` from their ``__getattr__``.

The aliases are found by :class:`MovedModuleFinder`, which ``resegzoo/__init__.py`` puts on
``sys.meta_path``; it answers only for the old paths in :data:`MOVED` (no file is read, nothing is
imported until an alias is). Targets are named by string, so this module imports nothing of
resegzoo itself and sits in the base layer.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class Moved:
    """One old module path and where its names live now."""

    #: the module that holds the old module's names now
    target: str
    #: names the old module had that now live elsewhere: name -> (module, name there)
    elsewhere: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: the old path was a package (its submodules are aliases too)
    package: bool = False


#: weights/hub.py, split by job in issue 22 (downloads, the HF cache, archives): name -> its new module
_HUB: dict[str, tuple[str, str]] = {
    "CACHE_ENV": ("resegzoo.weights.cache", "CACHE_ENV"),
    "OFFLINE_ENV": ("resegzoo.weights.cache", "OFFLINE_ENV"),
    "cache_dir": ("resegzoo.weights.cache", "cache_dir"),
    "is_offline": ("resegzoo.weights.cache", "is_offline"),
    "unreachable": ("resegzoo.weights.cache", "unreachable"),
    "sha256_file": ("resegzoo.weights.cache", "sha256_file"),
    "cached_sha256": ("resegzoo.weights.cache", "cached_sha256"),
    "hub_endpoint": ("resegzoo.weights.hf", "hub_endpoint"),
    "hub_errors": ("resegzoo.weights.hf", "hub_errors"),
    "hub_failure": ("resegzoo.weights.hf", "hub_failure"),
    "fetch_hf_file": ("resegzoo.weights.hf", "fetch_hf_file"),
    "fetch_hf_snapshot": ("resegzoo.weights.hf", "fetch_hf_snapshot"),
    "HF_MODEL_FILES": ("resegzoo.weights.hf", "HF_MODEL_FILES"),
    "fetch_record": ("resegzoo.weights.fetch", "fetch_record"),
    "is_cached": ("resegzoo.weights.fetch", "is_cached"),
    "require_https": ("resegzoo.weights.download", "require_https"),
    "download_url": ("resegzoo.weights.download", "download_url"),
    "MAX_COMPRESSION_RATIO": ("resegzoo.weights.archive", "MAX_COMPRESSION_RATIO"),
    "member_parts": ("resegzoo.weights.archive", "member_parts"),
    "only_checkpoint_member": ("resegzoo.weights.archive", "only_checkpoint_member"),
    "extract_member": ("resegzoo.weights.archive", "extract_member"),
    "Record": ("resegzoo.weights.records", "ModelRecord"),
}
#: names that left weights/zoo.py in issue 22 (one ModelRecord for every kind; earlier readers in legacy.py)
_ZOO: dict[str, tuple[str, str]] = {
    **{name: ("resegzoo.weights.legacy", name) for name in (
        "CheckpointFormat", "SamModelType", "SamCheckpoint", "load_variants_file", "load_sam_file",
        "load_builtin_variants", "sam_checkpoints")},
    "SourceKind": ("resegzoo.weights.zoo", "SourceForm"),
}

#: old module path -> where it moved (the layout before issue 15, commit 34e7376; then issue 22's moves)
MOVED: dict[str, Moved] = {
    "resegzoo.hookspecs": Moved("resegzoo.plugins.hookspecs"),
    "resegzoo.interfaces": Moved("resegzoo.plugins.interfaces"),
    "resegzoo.registry": Moved("resegzoo.plugins.registry"),
    "resegzoo.zoo": Moved("resegzoo.weights.zoo", {**_ZOO, "get_sam_checkpoint": ("resegzoo.weights.legacy",
                                                                                  "get_sam_checkpoint")}),
    "resegzoo.hub": Moved("resegzoo.weights.fetch", {**_HUB, "fetch": ("resegzoo.weights.fetch", "fetch_record"),
                                                     "FetchError": ("resegzoo.weights.zoo", "FetchError")}),
    "resegzoo.loading": Moved("resegzoo.weights.loading", {
        "LOCAL_DIR": ("resegzoo.weights.resolve", "LOCAL_DIR"),
        "HF_HUB": ("resegzoo.weights.resolve", "HF_HUB"),
        "WEIGHT_SUFFIXES": ("resegzoo.weights.resolve", "WEIGHT_SUFFIXES"),
        "resolve_variant": ("resegzoo.weights.resolve", "resolve_variant"),
        "FOLDER_WEIGHTS": ("resegzoo.weights.fetch", "FOLDER_WEIGHTS"),
        "read_state_dict": ("resegzoo.weights.read", "read_state_dict"),
        "infer_architectures": ("resegzoo.weights.read", "infer_architectures"),
    }),
    "resegzoo.checkpoint_files": Moved("resegzoo.weights.read", {
        "PICKLE_SUFFIXES": ("resegzoo.weights.resolve", "PICKLE_SUFFIXES"),
        "WEIGHT_SUFFIXES": ("resegzoo.weights.resolve", "WEIGHT_SUFFIXES"),
    }),
    "resegzoo.prefetch": Moved("resegzoo.runtime.prefetch"),
    "resegzoo.preflight": Moved("resegzoo.runtime.preflight"),
    "resegzoo.atomic": Moved("resegzoo.outputs.atomic"),
    "resegzoo.claims": Moved("resegzoo.outputs.claims"),
    "resegzoo.colours": Moved("resegzoo.outputs.colours"),
    "resegzoo.fonts": Moved("resegzoo.outputs.fonts"),
    "resegzoo.imageio": Moved("resegzoo.outputs.imageio"),
    "resegzoo.gis": Moved("resegzoo.outputs.gis", package=True),
    "resegzoo.gis.cog": Moved("resegzoo.outputs.gis.cog"),
    "resegzoo.gis.style": Moved("resegzoo.outputs.gis.style"),
    "resegzoo.gis.vector": Moved("resegzoo.outputs.gis.vector"),
    "resegzoo.raster.job": Moved("resegzoo.batch.job"),
    # issue 22: the CLIP method became a package like every method (resegzoo/methods/clip/), and the one
    # Vocabulary class its own module (resegzoo/vocabulary.py)
    "resegzoo.segmenter.clip_method": Moved("resegzoo.methods.clip.method"),
    "resegzoo.segmenter.encoder": Moved("resegzoo.methods.clip.encoder"),
    "resegzoo.segmenter.schedule": Moved("resegzoo.methods.clip.schedule"),
    "resegzoo.segmenter.last_block": Moved("resegzoo.methods.clip.last_block"),
    "resegzoo.segmenter.extras": Moved("resegzoo.methods.clip.extras"),
    # issue 22: weights/hub.py split by job; the streaming safetensors reader moved below compose (the
    # model route reads safetensors headers too)
    "resegzoo.weights.hub": Moved("resegzoo.weights.fetch", _HUB),
    "resegzoo.compose.st_io": Moved("resegzoo.weights.st_io"),
    "resegzoo.segmenter.text": Moved("resegzoo.methods.clip.text", {
        **{name: ("resegzoo.vocabulary", name) for name in ("Vocabulary", "VocabularyError", "MAX_NAME_CHARS",
                                                            "MAX_NAMES", "_check_name")},
        "MAX_YAML_BYTES": ("resegzoo.schema", "MAX_YAML_BYTES")}),
}

#: names that left a module which stays (issue 22): module -> {name: (the module holding it now, its name
#: there)}; the module's ``__getattr__`` answers them through :func:`left_module_attribute`
LEFT: dict[str, dict[str, tuple[str, str]]] = {
    # one record type for every kind of weights (issue 22): the older types and readers in weights/legacy.py
    "resegzoo.weights.zoo": _ZOO,
    # resolve once (issue 22): the fingerprint of a spec is resolve_model's
    "resegzoo.weights.fingerprint": {"weights_fingerprint": ("resegzoo.weights.loading", "weights_fingerprint")},
    "resegzoo.segmenter.models": {
        "build_encoder": ("resegzoo.methods.clip.build", "build_encoder"),
        "fit_schedule": ("resegzoo.methods.clip.build", "fit_schedule"),
        "text_tower_key": ("resegzoo.methods.clip.build", "text_tower_key"),
        "mask_level_count": ("resegzoo.methods.base", "mask_level_count"),
        "PROBE_SIDE": ("resegzoo.methods.base", "PROBE_SIDE"),
        "random_weights_note": ("resegzoo.weights.resolve", "random_weights_note"),
    },
    "resegzoo.segmenter.windows": {
        "patch_padding": ("resegzoo.methods.clip.method", "patch_padding"),
        "upsample_patch_logits": ("resegzoo.methods.base", "upsample_patch_logits"),
    },
    # compose's ``vocabulary:`` section was a second class called Vocabulary
    "resegzoo.compose.recipe": {"Vocabulary": ("resegzoo.compose.recipe", "PromptSet")},
    "resegzoo.compose": {"Vocabulary": ("resegzoo.compose.recipe", "PromptSet")},
}

#: old modules that are packages of the same name now: package -> (the module holding the old names,
#: the public names the old module defined)
BECAME_PACKAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "resegzoo.plugins": ("resegzoo.plugins.manager", (
        "BUILTIN_PLUGINS", "BrokenPlugin", "DISABLE_ENV", "ENTRY_POINT_GROUP", "PluginManager", "PluginReport",
        "get_plugin_manager")),
    "resegzoo.runtime": ("resegzoo.runtime.precision", (
        "PRECISIONS", "Precision", "PrecisionError", "autocast", "autocast_dtype", "set_threads")),
}

#: where plugins should import from: names it holds are pointed there, not at their module
PLUGIN_API = "resegzoo.plugin"


def _advice(name: str, module: str, attr: str, value: Any) -> str:
    """Where to import ``name`` from now, in words for the warning."""
    if attr != name:
        return f"use {module}.{attr}"
    if module != PLUGIN_API:
        api = importlib.import_module(PLUGIN_API)
        if name in getattr(api, "__all__", ()) and getattr(api, name, None) is value:
            return f"import {name} from {PLUGIN_API}"
    return f"import {name} from {module}"


def _public_names(module: str) -> list[str]:
    """What ``from module import *`` gives: its ``__all__``, else the public names it defines itself."""
    target = importlib.import_module(module)
    names = getattr(target, "__all__", None)
    if names is not None:
        return list(names)
    return [n for n, v in vars(target).items() if not n.startswith("_") and not isinstance(v, ModuleType)
            and getattr(v, "__module__", module) == module]


def _resolve(old: str, name: str, module: str, elsewhere: dict[str, tuple[str, str]], stacklevel: int) -> Any:
    """``old.name``, looked up where it lives now, with a DeprecationWarning naming that place."""
    if name.startswith("__") and name.endswith("__") and name != "__all__":
        raise AttributeError(f"module {old!r} has no attribute {name!r}")
    if name == "__all__":  # ``from old import *``: the names the module defines (not what it imported)
        warnings.warn(f"{old} is deprecated: it moved to {module}", DeprecationWarning, stacklevel=stacklevel)
        return _public_names(module) + [n for n in elsewhere if n not in _public_names(module)]
    if f"{old}.{name}" in MOVED:  # a submodule of a package that moved: its own alias
        return importlib.import_module(f"{old}.{name}")
    where, attr = elsewhere.get(name, (module, name))
    try:
        value = getattr(importlib.import_module(where), attr)
    except AttributeError:
        raise AttributeError(f"module {old!r} has no attribute {name!r} (it moved to {module}, which has no "
                             f"{name!r} either)") from None
    warnings.warn(f"{old}.{name} is deprecated: {old} moved to {module}; {_advice(name, where, attr, value)}",
                  DeprecationWarning,
                  stacklevel=stacklevel)
    return value


def old_module_attribute(package: str, name: str) -> Any:
    """A name of the old module ``package`` (now a package; :data:`BECAME_PACKAGES`), with a warning.
    Called from the package's ``__getattr__``; anything else is an AttributeError as usual."""
    module, names = BECAME_PACKAGES[package]
    if name not in names:  # submodules not imported yet, and every other name: as usual
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return _resolve(package, name, module, {}, stacklevel=4)


def left_module_attribute(module: str, name: str) -> Any:
    """A name that left ``module`` (which stays; :data:`LEFT`), from where it lives now, with a
    DeprecationWarning naming that place. Called from the module's ``__getattr__``; any other name is
    an AttributeError as usual."""
    where, attr = LEFT.get(module, {}).get(name, (None, None))
    if where is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where), attr)
    warnings.warn(f"{module}.{name} is deprecated: it moved to {where}; {_advice(name, where, attr, value)}",
                  DeprecationWarning, stacklevel=3)
    return value


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports each old path of :data:`MOVED` as an alias module; answers for nothing else."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        moved = MOVED.get(fullname)
        if moved is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, origin=f"deprecated alias of {moved.target}",
                                              is_package=moved.package)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # a plain module, filled in by exec_module

    def exec_module(self, module: ModuleType) -> None:
        old = module.__name__
        moved = MOVED[old]
        importlib.import_module(moved.target)  # a broken target fails here, at the import, not at a use
        module.__doc__ = (f"Deprecated alias of {moved.target} (a module that moved); plugins import from "
                          f"{PLUGIN_API}. Each name used through it warns.")

        def __getattr__(name: str) -> Any:
            return _resolve(old, name, moved.target, moved.elsewhere, stacklevel=3)

        def __dir__() -> list[str]:
            return sorted(set(dir(sys.modules[moved.target])) | set(moved.elsewhere))

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        module.__dir__ = __dir__  # type: ignore[method-assign]


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (``resegzoo/__init__.py`` calls this)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
