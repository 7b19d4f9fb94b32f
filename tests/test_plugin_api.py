"""Issue 22 item 1: ``resegzoo.plugin``, the one module plugin authors import from, and the snapshot
that holds its names, fields and signatures (tests/plugin_api.json)."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import resegzoo.plugin


def test_every_public_name_resolves_and_dir_lists_it():
    for name in resegzoo.plugin.__all__:
        assert getattr(resegzoo.plugin, name) is not None, name
    assert set(resegzoo.plugin.__all__) <= set(dir(resegzoo.plugin))
    assert len(set(resegzoo.plugin.__all__)) == len(resegzoo.plugin.__all__)


def test_names_are_the_objects_resegzoo_itself_uses():
    from resegzoo.methods.base import MethodSpec
    from resegzoo.plugins.hookspecs import hookimpl
    from resegzoo.vocabulary import Vocabulary
    from resegzoo.weights.zoo import ClipVariant

    assert resegzoo.plugin.hookimpl is hookimpl
    assert resegzoo.plugin.ClipVariant is ClipVariant and resegzoo.plugin.MethodSpec is MethodSpec
    assert resegzoo.plugin.Vocabulary is Vocabulary  # a lazy one


def test_importing_it_imports_no_torch_and_nothing_slow():
    code = ("import json, sys\nimport resegzoo.plugin\n"
            "heavy = ('torch', 'torchvision', 'open_clip', 'transformers', 'rasterio', 'PIL', 'resegzoo.segmenter',"
            " 'resegzoo.compose', 'resegzoo.eval')\n"
            "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


# -- the snapshot: names, fields and signatures plugins rely on ------------------------------------
# tests/plugin_api.json records resegzoo.plugin's names (and what they name: a record's fields in
# order, a function's parameters, a protocol's members, an error's bases) and the hooks with their
# arguments. A later release may add to it; removing or changing what a plugin uses is a breaking
# change this test names. After a deliberate addition (or, for a breaking change, after a decision
# recorded in the release notes), rewrite the snapshot:
#
#     python tests/test_plugin_api.py --update

SNAPSHOT = Path(__file__).with_name("plugin_api.json")
UPDATE = "python tests/test_plugin_api.py --update"


def _params(func: Any) -> list[dict[str, Any]]:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature
        return []
    return [{"name": p.name, "kind": p.kind.name.lower(), "default": p.default is not inspect.Parameter.empty,
             "annotation": _text(p.annotation)} for p in signature.parameters.values()]


def _text(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))


def _members(cls: type) -> dict[str, Any]:
    """Public methods and properties a class defines itself or inherits from resegzoo's classes."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("resegzoo"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") and name != "__call__":
                continue
            if isinstance(value, property):
                out[name] = {"kind": "property"}
            elif isinstance(value, (classmethod, staticmethod)):
                out[name] = {"kind": type(value).__name__, "params": _params(value.__func__)}
            elif inspect.isfunction(value):
                out[name] = {"kind": "method", "params": _params(value)}
    return out


def describe(value: Any) -> dict[str, Any]:
    """What a plugin relies on about one public name."""
    import dataclasses
    import typing

    import pluggy

    if isinstance(value, pluggy.HookimplMarker):
        return {"kind": "hookimpl", "project": value.project_name}
    if typing.get_origin(value) is typing.Literal:
        return {"kind": "literal", "values": list(typing.get_args(value))}
    if inspect.isfunction(value):
        return {"kind": "function", "params": _params(value)}
    if isinstance(value, type) and getattr(value, "_is_protocol", False):
        attributes = {name: {"kind": "attribute", "annotation": _text(kind)}
                      for name, kind in vars(value).get("__annotations__", {}).items()}
        return {"kind": "protocol", "members": {**attributes, **_members(value)}}
    if isinstance(value, type) and issubclass(value, BaseException):
        return {"kind": "exception", "bases": [k.__name__ for k in value.__mro__[1:] if k is not object]}
    if isinstance(value, type) and dataclasses.is_dataclass(value):
        fields = [{"name": f.name, "default": f.default is not dataclasses.MISSING
                   or f.default_factory is not dataclasses.MISSING, "kw_only": bool(f.kw_only),
                   "annotation": _text(f.type)} for f in dataclasses.fields(value)]
        return {"kind": "dataclass", "fields": fields, "members": _members(value)}
    if isinstance(value, type):
        return {"kind": "class", "init": _params(value.__init__)[1:], "members": _members(value)}
    if isinstance(value, (str, int, float, bool)):
        return {"kind": "value", "value": value}
    raise TypeError(f"resegzoo.plugin.{type(value).__name__}: no rule to describe it; add one to describe()")


def current_api() -> dict[str, Any]:
    from resegzoo.plugins import hookspecs

    hooks = {name: [p.name for p in inspect.signature(func).parameters.values()]
             for name, func in vars(hookspecs).items() if hasattr(func, "resegzoo_spec")}
    return {"names": {name: describe(getattr(resegzoo.plugin, name)) for name in sorted(resegzoo.plugin.__all__)},
            "hooks": dict(sorted(hooks.items()))}


def _signature_breaks(where: str, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    """Calls written against ``old`` parameters that ``new`` would break."""
    problems = []
    by_name = {p["name"]: p for p in new}
    positional = ("positional_only", "positional_or_keyword")
    old_pos = [p["name"] for p in old if p["kind"] in positional]
    new_pos = [p["name"] for p in new if p["kind"] in positional]
    if new_pos[:len(old_pos)] != old_pos:
        problems.append(f"{where}: positional parameters were {old_pos}, now {new_pos} (calls by position break; "
                        "add a new field or parameter after the existing ones, or keyword-only)")
    for p in old:
        q = by_name.get(p["name"])
        if q is None:
            if p["kind"] not in ("var_positional", "var_keyword"):
                problems.append(f"{where}: parameter {p['name']!r} was removed")
        elif p["default"] and not q["default"]:
            problems.append(f"{where}: parameter {p['name']!r} lost its default (calls without it break)")
    old_names = {p["name"] for p in old}
    for q in new:
        if q["name"] not in old_names and not q["default"] and q["kind"] not in ("var_positional", "var_keyword"):
            problems.append(f"{where}: new parameter {q['name']!r} has no default (calls written before break)")
    return problems


def _fields_as_params(fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A dataclass's fields as the parameters of its constructor."""
    return [{"name": f["name"], "default": f["default"],
             "kind": "keyword_only" if f["kw_only"] else "positional_or_keyword"} for f in fields]


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What in ``new`` breaks a plugin written against ``old`` (both as :func:`current_api` returns)."""
    problems = []
    for hook, args in old["hooks"].items():
        if hook not in new["hooks"]:
            problems.append(f"hook {hook} was removed")
        elif not set(args) <= set(new["hooks"][hook]):
            problems.append(f"hook {hook}: arguments {args} became {new['hooks'][hook]} (implementations asking "
                            "for a removed one break)")
    for name, was in old["names"].items():
        now = new["names"].get(name)
        where = f"resegzoo.plugin.{name}"
        if now is None:
            problems.append(f"{where} was removed")
            continue
        if was["kind"] != now["kind"]:
            problems.append(f"{where} was a {was['kind']}, now a {now['kind']}")
            continue
        kind = was["kind"]
        if kind in ("hookimpl", "value") and was != now:
            problems.append(f"{where} changed: {was} -> {now}")
        elif kind == "literal" and not set(was["values"]) <= set(now["values"]):
            problems.append(f"{where}: values {sorted(set(was['values']) - set(now['values']))} were removed")
        elif kind == "function":
            problems += _signature_breaks(where, was["params"], now["params"])
        elif kind == "exception" and not set(was["bases"]) <= set(now["bases"]):
            problems.append(f"{where}: no longer a subclass of {sorted(set(was['bases']) - set(now['bases']))} "
                            "(plugins catching those break)")
        elif kind == "dataclass":
            problems += _signature_breaks(f"{where}(...)", _fields_as_params(was["fields"]),
                                          _fields_as_params(now["fields"]))
        elif kind == "class":
            problems += _signature_breaks(f"{where}(...)", was["init"], now["init"])
        if kind in ("dataclass", "class", "protocol"):
            for member, spec in was["members"].items():
                if member not in now["members"]:
                    problems.append(f"{where}.{member} was removed")
                elif spec.get("kind") != now["members"][member].get("kind"):
                    problems.append(f"{where}.{member} was a {spec.get('kind')}, now a "
                                    f"{now['members'][member].get('kind')}")
                elif "params" in spec and kind == "protocol":  # plugins implement it, resegzoo calls it
                    shape = [[(p["name"], p["kind"], p["default"]) for p in s["params"]]
                             for s in (spec, now["members"][member])]
                    if shape[0] != shape[1]:
                        problems.append(f"{where}.{member}: parameters {shape[0]} became {shape[1]} "
                                        "(implementations written before break)")
                elif "params" in spec:
                    problems += _signature_breaks(f"{where}.{member}", spec["params"], now["members"][member]["params"])
        if kind == "protocol":
            for member in sorted(set(now["members"]) - set(was["members"])):
                problems.append(f"{where}.{member} is a new member every implementation must have; make it "
                                "optional (read with getattr, documented in the docstring) instead")
    return problems


def dump(value: Any, indent: str = "") -> str:
    """JSON with one line per field, parameter or member (short diffs when the API grows)."""
    flat = not isinstance(value, (dict, list)) or all(not isinstance(v, (dict, list)) or not v for v in
                                                      (value.values() if isinstance(value, dict) else value))
    if flat:
        return json.dumps(value)
    inner = indent + " "
    if isinstance(value, list):
        return "[\n" + ",\n".join(inner + dump(v, inner) for v in value) + "\n" + indent + "]"
    items = ",\n".join(f"{inner}{json.dumps(k)}: {dump(v, inner)}" for k, v in value.items())
    return "{\n" + items + "\n" + indent + "}"


def test_nothing_plugins_use_was_removed_or_changed_incompatibly():
    old = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    problems = breaking_changes(old, current_api())
    assert not problems, ("the plugin API lost or changed what plugins use (tests/plugin_api.json):\n  "
                          + "\n  ".join(problems) + "\nRestore it (a moved name: keep it importable from "
                          f"resegzoo.plugin). Only for a decided breaking change: {UPDATE}")


def test_the_snapshot_records_every_public_name_and_hook():
    old = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    new = current_api()
    missing = sorted(set(new["names"]) - set(old["names"])) + sorted(set(new["hooks"]) - set(old["hooks"]))
    assert not missing, f"not in the snapshot yet, so not held: {missing}; record them: {UPDATE}"


def _api_with(change) -> dict[str, Any]:
    api = json.loads(json.dumps(current_api()))
    change(api)
    return api


def test_the_checker_names_each_kind_of_break():
    """The rules themselves can fail: each change a plugin would feel is reported, additions are not."""
    base = current_api()
    clip = base["names"]["ClipVariant"]["fields"]

    def drop_name(api):
        del api["names"]["MaskGeneratorSpec"]

    def drop_field(api):
        api["names"]["ClipVariant"]["fields"] = [f for f in clip if f["name"] != "fetcher"]

    def reorder_fields(api):
        spec = api["names"]["MaskGeneratorSpec"]["fields"]
        spec[1], spec[2] = spec[2], spec[1]

    def required_field(api):
        api["names"]["MethodSpec"]["fields"].append({"name": "new", "default": False, "kw_only": False,
                                                     "annotation": "int"})

    def optional_field(api):
        api["names"]["MethodSpec"]["fields"].append({"name": "new", "default": True, "kw_only": False,
                                                     "annotation": "int"})

    def drop_param(api):
        api["names"]["names_to_classes"]["params"].pop()

    def protocol_member(api):
        api["names"]["Method"]["members"]["reset"] = {"kind": "method", "params": []}

    def protocol_param(api):
        api["names"]["Method"]["members"]["window_scores"]["params"].append(
            {"name": "extra", "kind": "positional_or_keyword", "default": True, "annotation": ""})

    def drop_hook_arg(api):
        api["hooks"]["resegzoo_register_variants"] = []

    def new_hook(api):
        api["hooks"]["resegzoo_register_more"] = ["register"]

    def error_base(api):
        api["names"]["MethodError"]["bases"].remove("ValueError")

    for change, expected in [(drop_name, "resegzoo.plugin.MaskGeneratorSpec was removed"),
                             (drop_field, "parameter 'fetcher' was removed"),
                             (reorder_fields, "calls by position break"),
                             (required_field, "new parameter 'new' has no default"),
                             (drop_param, "parameter 'dim' was removed"),
                             (protocol_member, "Method.reset is a new member"),
                             (protocol_param, "Method.window_scores: parameters"),
                             (drop_hook_arg, "hook resegzoo_register_variants: arguments"),
                             (error_base, "no longer a subclass of ['ValueError']")]:
        problems = breaking_changes(base, _api_with(change))
        assert any(expected in p for p in problems), (change.__name__, problems)
    for addition in (optional_field, new_hook):
        assert breaking_changes(base, _api_with(addition)) == [], addition.__name__
    assert breaking_changes(base, base) == []


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: {UPDATE}")
    SNAPSHOT.write_text(dump(current_api()) + "\n", encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
