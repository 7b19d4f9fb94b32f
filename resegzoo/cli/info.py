"""``resegzoo plugins`` and ``resegzoo list``: what is installed and what it registered."""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

KINDS = ("models", "variants", "masks", "methods", "weightings", "datasets", "sam", "recipes")


def plugin_report() -> tuple[list[dict[str, Any]], str | None]:
    """One dict per plugin (loaded or broken), and the registry error if building it failed."""
    from resegzoo.plugins.manager import BUILTIN_PLUGINS, get_plugin_manager
    from resegzoo.plugins.registry import RegistryError, build_registry
    from resegzoo.schema import SchemaError

    pm = get_plugin_manager()
    registry_error = None
    try:
        build_registry(pm)  # runs every register hook, so failing hooks show up as broken
    except (RegistryError, SchemaError) as exc:
        registry_error = str(exc)
    broken: dict[str, Any] = {}
    for b in pm.report.broken:  # one row per plugin, every problem of it in its error
        if b.name in broken:
            broken[b.name] = dataclasses.replace(broken[b.name], error=f"{broken[b.name].error}; {b.error}",
                                                 where=broken[b.name].where or b.where)
        else:
            broken[b.name] = b
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        dist, version = pm.report.distributions.get(name, (None, None))
        if name in BUILTIN_PLUGINS:
            from resegzoo import __version__

            dist, version = "resegzoo", __version__
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        row: dict[str, Any] = {"name": name, "builtin": name in BUILTIN_PLUGINS, "distribution": dist,
                               "version": version, "hooks": hooks, "broken": name in broken}
        if name in broken:
            row.update(_why(broken.pop(name)))
        if pm.report.deprecated.get(name):
            row["deprecated"] = pm.report.deprecated[name]
        rows.append(row)
    for b in broken.values():  # failed before it could be registered
        dist, version = pm.report.distributions.get(b.name, (None, None))
        row = {"name": b.name, "builtin": False, "distribution": dist, "version": version,
               "hooks": [], "broken": True, "origin": b.origin, **_why(b)}
        if pm.report.deprecated.get(b.name):
            row["deprecated"] = pm.report.deprecated[b.name]
        rows.append(row)
    return rows, registry_error


def _why(broken: Any) -> dict[str, str]:
    """A broken plugin's error (one line) and, when known, where in its code it failed."""
    return {"error": broken.error, **({"where": broken.where} if broken.where else {})}


@click.command("plugins")
def plugins() -> None:
    """Print the loaded plugins as JSON: distribution, version, hooks; a broken one with why it failed
    (`error`: the exception on one line, `where`: the file and line of the plugin's code), and a plugin
    that imports resegzoo's old module paths with the `deprecated` paths and what to import instead.

    Third-party plugins are found through the `resegzoo` entry-point group; set
    RESEGZOO_DISABLE_PLUGIN_AUTOLOAD=1 to load only the built-ins.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # broken plugins are reported in the JSON itself
        rows, registry_error = plugin_report()
    out: dict[str, Any] = {"plugins": rows}
    if registry_error:
        out["registry_error"] = registry_error
    click.echo(json.dumps(out, indent=2))
    if registry_error:
        raise SystemExit(1)


def _jsonable(value: Any) -> Any:
    """A registered value as JSON can hold it: callables (functions, classes, lambdas,
    ``functools.partial``) by their dotted name; other objects JSON cannot encode by ``repr``."""
    import functools

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, functools.partial):
        args = [repr(a) for a in value.args] + [f"{k}={v!r}" for k, v in value.keywords.items()]
        return f"functools.partial({', '.join([_jsonable(value.func), *args])})"
    if callable(value):
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
        if name is None:  # a callable instance
            return repr(value)
        return f"{getattr(value, '__module__', None) or '?'}.{name}"
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return repr(value)


def recipe_rows() -> list[dict[str, Any]]:
    """The recipes shipped in registry/recipes: name, kind (compose: a model to average; segment:
    settings for segment and eval), base recipe, path and the description from its header comment."""
    from resegzoo.schema import load_yaml
    from resegzoo.segmenter.recipe import shipped_recipes

    rows = []
    for path in shipped_recipes().values():
        data = load_yaml(path) or {}
        header = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            header.append(line.lstrip("#").strip())
        text = " ".join(h for h in header if h)
        description = data.get("description") if isinstance(data.get("description"), str) else text
        rows.append({"name": path.stem, "kind": "compose" if "inputs" in data else "segment",
                     "base": data.get("base"), "summary": _first_sentence(description),
                     "description": description, "path": str(path)})
    return rows


def _first_sentence(text: str) -> str:
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def model_rows(kind: str | None = None) -> list[dict[str, Any]]:
    """Every model record (of ``kind`` when given) as JSON can hold it, with the plugin that
    registered it; ``source`` keeps only the fields it sets, and ``where`` says it in words."""
    from resegzoo.plugins.registry import get_registry

    table = get_registry().models
    rows = []
    for name in table:
        record = table.entries[name]
        if kind is not None and record.kind != kind:
            continue
        row = _jsonable(record)
        row["source"] = {k: v for k, v in row["source"].items() if v is not None}
        where = "built by its plugin" if record.build is not None else record.source.where()
        row.update(where=where, plugin=table.owners[name])
        rows.append(row)
    return rows


def _old_rows(kind: str) -> list[dict[str, Any]]:
    """``list variants`` and ``list sam`` as earlier releases printed them (one record type now)."""
    from resegzoo.plugins.registry import get_registry
    from resegzoo.weights.records import ClipVariant

    table = get_registry().models
    rows = []
    for name in table:
        record = table.entries[name]
        if kind == "variants" and record.kind == "clip":
            fields = _jsonable(ClipVariant.from_record(record))
        elif kind == "sam" and record.kind in ("sam", "sam2"):
            fields = {"name": name, "model_type": record.details.model_type, "url": record.source.url,
                      "file": (record.source.url or "").rsplit("/", 1)[-1] or None, "license": record.license,
                      "citation": record.citation, "sha256": record.sha256, "size": record.size,
                      "description": record.description}
        else:
            continue
        rows.append(dict(fields, plugin=table.owners[name]))
    return rows


def _entries(kind: str, model_kind: str | None = None) -> list[dict[str, Any]]:
    if kind == "recipes":
        return recipe_rows()
    if kind == "models":
        return model_rows(model_kind)
    if kind in ("variants", "sam"):
        return _old_rows(kind)
    from resegzoo.plugins.registry import get_registry

    table = get_registry().table(kind)
    rows = []
    for name in table:
        entry = table.entries[name]
        raw = ({f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)} if dataclasses.is_dataclass(entry)
               else dict(vars(entry)))
        fields = {key: _jsonable(value) for key, value in raw.items()}
        if kind == "methods":
            fields.update(needs=entry.needs, settings=_settings_defaults(entry.settings))
        rows.append(dict(fields, plugin=table.owners[name]))
    return rows


def _settings_defaults(settings: Any) -> dict[str, Any] | None:
    """A method's settings dataclass as {key: default} (None: it takes no settings)."""
    if settings is None:
        return None
    out: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        if f.default is not dataclasses.MISSING:
            out[f.name] = _jsonable(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()  # a nested section (the clip method's schedule, text, extras): its keys
            out[f.name] = _jsonable(dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value)
        else:
            out[f.name] = None  # required
    return out


_COLUMNS = {
    "models": ("name", "kind", "size", "gated", "where", "plugin"),
    "variants": ("name", "architecture", "format", "init_from", "plugin"),
    "sam": ("name", "model_type", "size", "url"),
    "methods": ("name", "model", "masks", "scores", "outputs", "description", "plugin"),
    "recipes": ("name", "kind", "base", "summary"),
}


_MAX_CELL = 90  # long descriptions are cut in the table; --json has them in full


def _cell(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):  # e.g. a method's outputs
        value = ", ".join(sorted(map(str, value))) or None
    text = "-" if value is None or value is False else "yes" if value is True else str(value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


@click.command("list")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--kind", "model_kind", default=None, metavar="K",
              help="models only: only records of this model kind (clip, sam, sam2, sam3 or a plugin's).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list with every field instead of a table.")
def list_(kind: str, model_kind: str | None, as_json: bool) -> None:
    """List what is registered: model weights of every kind (models: CLIP variants, SAM, SAM 2.1,
    SAM 3, plugins' kinds; gated ones need a licence accepted and a token before `resegzoo fetch`),
    mask generators (masks), segmentation methods (methods: what each needs, a model kind and masks
    or not), weighting strategies, datasets, with the plugin that registered each; or the shipped
    recipes (recipes) that --recipe NAME accepts. `variants` (CLIP) and `sam` (SAM, SAM 2.1) are
    the same records as earlier releases listed them.

    \b
    Examples:
      resegzoo list models
      resegzoo list models --kind sam3 --json
    """
    from resegzoo.plugins.registry import RegistryError
    from resegzoo.schema import SchemaError

    if model_kind is not None and kind != "models":
        raise click.UsageError("--kind goes with `resegzoo list models`")
    try:
        rows = _entries(kind, model_kind)
    except (RegistryError, SchemaError) as exc:
        from resegzoo.cli import user_error

        raise user_error(exc) from exc
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo(f"no {kind} registered" + (f" of kind {model_kind!r}" if model_kind else ""))
    else:
        click.echo(_table(rows, _COLUMNS.get(kind, ("name", "description", "plugin"))))
        gated = [r["name"] for r in rows if r.get("gated")]
        if kind == "models" and gated:
            click.echo(f"\ngated ({', '.join(gated)}): accept the licence on the model's Hugging Face page with "
                       "your account and give a token (HF_TOKEN, or `hf auth login`) before `resegzoo fetch`")


COMMANDS = [plugins, list_]
