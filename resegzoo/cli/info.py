"""``resegzoo plugins`` and ``resegzoo list``: what is installed and what it registered."""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

KINDS = ("variants", "masks", "methods", "weightings", "datasets", "sam", "recipes")


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


def _entries(kind: str) -> list[dict[str, Any]]:
    if kind == "recipes":
        return recipe_rows()
    if kind == "sam":
        from resegzoo.weights.zoo import sam_checkpoints

        return [dict(dataclasses.asdict(r), plugin="resegzoo (registry/sam.yaml)")
                for r in sorted(sam_checkpoints().values(), key=lambda r: r.name)]
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
    "variants": ("name", "architecture", "format", "init_from", "plugin"),
    "sam": ("name", "model_type", "size", "url"),
    "methods": ("name", "model", "masks", "scores", "description", "plugin"),
    "recipes": ("name", "kind", "base", "summary"),
}


_MAX_CELL = 90  # long descriptions are cut in the table; --json has them in full


def _cell(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


@click.command("list")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list with every field instead of a table.")
def list_(kind: str, as_json: bool) -> None:
    """List what is registered: CLIP variants, mask generators (masks), segmentation methods
    (methods: what each needs, a model kind and masks or not), weighting strategies, datasets,
    or SAM checkpoints (sam), with the plugin that registered each; or the shipped recipes
    (recipes) that --recipe NAME accepts.
    """
    from resegzoo.plugins.registry import RegistryError
    from resegzoo.schema import SchemaError

    try:
        rows = _entries(kind)
    except (RegistryError, SchemaError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo(f"no {kind} registered")
    else:
        click.echo(_table(rows, _COLUMNS.get(kind, ("name", "description", "plugin"))))


COMMANDS = [plugins, list_]
