"""Issue 15 item 4: resegzoo's import graph has no cycle, lazy imports included, and its packages keep
the layer order ARCHITECTURE.md draws (imports go down, never up).

Every module is parsed with ``ast``; every import counts wherever it is written (module level, inside
a function, under ``TYPE_CHECKING``), in each form: ``import resegzoo.a.b``, ``from resegzoo.a import
b`` (b a module or a name), ``from resegzoo import a``, relative imports. ``resegzoo/__init__.py``
(``__version__`` and the moved-module aliases) is the root: importing it is no edge between packages.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "resegzoo"

#: The layers of ARCHITECTURE.md, lowest first: a package may import packages of its own layer or
#: below, never above. Keep in step with ARCHITECTURE.md's "Layers" section.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "schema", "moved", "vocabulary", "prompt_pools"),  # base; old module paths as warning aliases; the class list and its prompt pools
    ("plugins",),                        # the plugin system (hooks, manager, registry, interfaces)
    ("raster", "runtime", "objects"),    # reading images; run-time settings; objects (instances) made whole
    ("outputs",),                        # atomic writes, claims, images, GIS products
    ("weights",),                        # the model route: zoo, resolve, fetch, read, build
    ("masks",),                          # mask generators
    ("methods",),                        # the method seam and the methods (clip, segearth_ov3, ...)
    ("segmenter",),                      # the pipeline
    ("engines",),                        # where segment/eval work runs (local, Ray): one interface
    ("batch",),                          # one input = one unit of outputs
    ("change", "compose", "eval", "qgis"),  # change detection, composition, evaluation, the QGIS plugin
    ("api", "plugin"),                   # the public APIs: Python (segment_files: options checked, then the batch), plugins
    ("cli",),                            # click commands
    ("builtin", "testing"),              # resegzoo's own plugins (loaded by name); tiny test models
]


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module under ``root`` (a package folder)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _existing(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` if it is a module, else its closest enclosing module (``pkg.mod.Class`` -> ``pkg.mod``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that ``module`` imports, at any depth of its syntax tree."""
    top = module.split(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == top and (target := _existing(alias.name, modules)):
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package, one level up per extra dot
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != top:
                continue
            for alias in node.names:  # ``from pkg import mod`` imports the module mod itself
                target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else _existing(base, modules)
                if target:
                    found.add(target)
    found.discard(module)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def package_of(module: str) -> str | None:
    """The top-level package (or top-level module) of ``module``; None for the root package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.items():
        for target in targets:
            a, b = package_of(source), package_of(target)
            if a is not None and b is not None and a != b:
                out[a].add(b)
    return dict(out)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or None when it is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def layer_violations(packages: dict[str, set[str]], layers: list[tuple[str, ...]]) -> list[str]:
    """Imports that go up the layer table, and packages the table does not place."""
    level = {name: i for i, layer in enumerate(layers) for name in layer}
    problems = [f"{name} is in no layer of the table (add it, and to ARCHITECTURE.md)"
                for name in sorted(set(packages) | {t for ts in packages.values() for t in ts}) if name not in level]
    for source, targets in sorted(packages.items()):
        for target in sorted(targets):
            if source in level and target in level and level[target] > level[source]:
                problems.append(f"{source} (layer {level[source]}) imports {target} (layer {level[target]}, above it)")
    return problems


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT)


def test_no_cycle_between_files(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between files: " + " -> ".join(cycle or [])


def test_no_cycle_between_packages(graph):
    cycle = find_cycle(package_graph(graph))
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle or [])


def test_packages_import_only_their_layer_or_below(graph):
    assert layer_violations(package_graph(graph), LAYERS) == []


def test_every_layer_package_exists_and_architecture_md_lists_it():
    """The table names real folders, and ARCHITECTURE.md's layer section names the same ones."""
    modules = module_files(ROOT)
    architecture = (ROOT.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = architecture.split("## Layers", 1)[1].split("\n## ", 1)[0]
    for layer in LAYERS:
        for name in layer:
            assert f"resegzoo.{name}" in modules or name in ("methods", "qgis"), f"{name}: no such package"
            assert f"`{name}" in section, f"ARCHITECTURE.md's Layers section does not name {name}"


# -- the checker itself can fail ----------------------------------------------------------------


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "resegzoo"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_lazy_cycle_is_found(tmp_path):
    """The cycle issue 15 found (core imports models at module level, models imports core in a function)."""
    root = _package(tmp_path, {
        "__init__.py": "__version__ = '0'\n",
        "segmenter/__init__.py": "",
        "segmenter/core.py": "from resegzoo.segmenter.models import build\n",
        "segmenter/models.py": "def build():\n    from resegzoo.segmenter.core import Error\n    raise Error\n",
    })
    assert find_cycle(import_graph(root)) == ["resegzoo.segmenter.core", "resegzoo.segmenter.models",
                                              "resegzoo.segmenter.core"]


def test_every_import_form_counts(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "from importlib.metadata import version\n__version__ = version('resegzoo')\n",
        "errors.py": "from resegzoo import __version__\n",
        "a/__init__.py": "",
        "a/x.py": "from . import y\nfrom .y import f\nimport resegzoo.b.z\n",
        "a/y.py": "def f():\n    from ..b import z\n    from resegzoo import errors\n",
        "b/__init__.py": "",
        "b/z.py": "if True:\n    from resegzoo.a.x import Thing\n",
    })
    graph = import_graph(root)
    assert graph["resegzoo.a.x"] == {"resegzoo.a.y", "resegzoo.b.z"}
    assert graph["resegzoo.a.y"] == {"resegzoo.b.z", "resegzoo.errors"}
    assert graph["resegzoo.errors"] == {"resegzoo"}  # the root: no package edge
    assert package_graph(graph) == {"a": {"b", "errors"}, "b": {"a"}}
    assert find_cycle(package_graph(graph)) == ["a", "b", "a"]


def test_an_import_up_the_layers_is_reported():
    problems = layer_violations({"weights": {"segmenter"}, "segmenter": {"weights"}, "new": set()},
                                [("weights",), ("segmenter",)])
    assert problems == ["new is in no layer of the table (add it, and to ARCHITECTURE.md)",
                        "weights (layer 0) imports segmenter (layer 1, above it)"]
