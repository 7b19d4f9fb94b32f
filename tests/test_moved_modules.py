"""Issue 22 item 1: every module path from before issue 15's reorganisation (and the CLIP method's modules
that issue 22 moved into resegzoo/methods/clip/) still imports, as an alias whose names warn
(DeprecationWarning naming the new place) and are the new modules' own objects.

tests/data/moved_modules.json and moved_modules_issue22.json hold, frozen, the public names each old
module defined then."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from resegzoo.moved import BECAME_PACKAGES, MOVED

#: issue 15's moves (moved_modules.json) and issue 22's (the CLIP method's modules: moved_modules_issue22.json;
#: weights/hub.py and compose/st_io.py: moved_modules_issue22_route.json)
OLD_NAMES: dict[str, list[str]] = {
    module: names for frozen in ("moved_modules.json", "moved_modules_issue22.json", "moved_modules_issue22_route.json")
    for module, names in json.loads(
        (Path(__file__).parent / "data" / frozen).read_text(encoding="utf-8")).items()
    if not module.startswith("_")
}


def test_the_table_covers_every_module_that_moved():
    assert set(OLD_NAMES) == set(MOVED) | set(BECAME_PACKAGES)


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
def test_every_old_name_imports_from_its_old_path_with_a_warning_naming_the_new_place(old):
    module = importlib.import_module(old)
    for name in OLD_NAMES[old]:
        with pytest.warns(DeprecationWarning) as caught:
            value = getattr(module, name)
        (warning,) = caught
        message = str(warning.message)
        assert message.startswith(f"{old}.{name} is deprecated: {old} moved to resegzoo."), message
        # the place named in the warning holds the very same object
        place = message.rsplit("; ", 1)[1]
        if place.startswith("use "):
            home, attr = place.removeprefix("use ").rsplit(".", 1)
        else:
            attr, home = place.removeprefix("import ").split(" from ")
        assert getattr(importlib.import_module(home), attr) is value, (old, name, place)
        assert warning.filename == __file__  # the warning points at the line that used the old path


def test_plugin_names_point_at_the_plugin_api_and_the_markers_are_the_managers():
    import resegzoo.plugin
    from resegzoo.plugins import hookspecs
    from resegzoo.plugins.manager import get_plugin_manager

    with pytest.warns(DeprecationWarning, match=r"resegzoo\.hookspecs\.hookimpl is deprecated: resegzoo\.hookspecs "
                                                r"moved to resegzoo\.plugins\.hookspecs; import hookimpl from "
                                                r"resegzoo\.plugin$"):
        from resegzoo.hookspecs import hookimpl
    assert hookimpl is resegzoo.plugin.hookimpl is hookspecs.hookimpl
    assert hookimpl.project_name == get_plugin_manager(load_entrypoints=False).project_name
    with pytest.warns(DeprecationWarning, match="import ClipVariant from resegzoo.plugin"):
        from resegzoo.zoo import ClipVariant
    assert ClipVariant is resegzoo.plugin.ClipVariant
    with pytest.warns(DeprecationWarning, match="import MaskGeneratorSpec from resegzoo.plugin"):
        from resegzoo.interfaces import MaskGeneratorSpec
    assert MaskGeneratorSpec is resegzoo.plugin.MaskGeneratorSpec


def test_a_plugin_module_marked_through_the_old_path_registers_its_hooks():
    from types import ModuleType

    from resegzoo.plugins.registry import build_registry
    from resegzoo.plugins.manager import get_plugin_manager

    plugin = ModuleType("old_marked_plugin")
    with pytest.warns(DeprecationWarning):
        exec("from resegzoo.hookspecs import hookimpl\nfrom resegzoo.interfaces import MaskGeneratorSpec\n"
             "@hookimpl\ndef resegzoo_register_mask_generators(register):\n"
             "    register(MaskGeneratorSpec('old-marked', lambda **kw: None, 'through the old paths'))\n",
             plugin.__dict__)
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin, name="old-marked")
    assert build_registry(pm).mask_generators.owners["old-marked"] == "old-marked"


def test_packages_that_were_modules_answer_their_old_names_and_still_import_their_submodules():
    import resegzoo.plugins
    import resegzoo.runtime
    from resegzoo.plugins import manager
    from resegzoo.runtime import precision

    with pytest.warns(DeprecationWarning, match="import get_plugin_manager from resegzoo.plugin"):
        assert resegzoo.plugins.get_plugin_manager is manager.get_plugin_manager
    with pytest.warns(DeprecationWarning, match="import autocast from resegzoo.runtime.precision"):
        from resegzoo.runtime import autocast
    assert autocast is precision.autocast
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the packages' own submodules are no deprecated names
        from resegzoo.plugins import interfaces, registry  # noqa: F401
        from resegzoo.runtime import prefetch  # noqa: F401
    for not_old in ("hookspecs_typo", "metadata"):  # only the old module's own names: not what manager imports
        with pytest.raises(AttributeError, match=f"no attribute '{not_old}'"):
            getattr(resegzoo.plugins, not_old)


def test_a_name_no_module_had_is_an_import_error_and_a_moved_package_keeps_its_submodules():
    with pytest.raises(ImportError, match="cannot import name 'NoSuchName' from 'resegzoo.zoo'"):
        from resegzoo.zoo import NoSuchName  # noqa: F401
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("resegzoo.no_such_module")
    import resegzoo.gis.cog
    import resegzoo.outputs.gis.cog

    with pytest.warns(DeprecationWarning, match="resegzoo.gis.cog.write_cog is deprecated"):
        assert resegzoo.gis.cog.write_cog is resegzoo.outputs.gis.cog.write_cog


def test_star_import_of_an_old_module_gives_the_names_it_defines():
    namespace: dict = {}
    with pytest.warns(DeprecationWarning) as caught:
        exec("from resegzoo.interfaces import *", namespace)
    assert str(caught[0].message) == "resegzoo.interfaces is deprecated: it moved to resegzoo.plugins.interfaces"
    assert {"MaskGeneratorSpec", "WeightingSpec", "DatasetSpec", "MaskGenerator", "DenseEncoder"} <= set(namespace)
    assert "np" not in namespace and "dataclass" not in namespace  # what it imported is not its own


def test_old_paths_work_in_a_fresh_interpreter():
    """The aliases exist from ``import resegzoo`` on (the package installs the finder), in a process
    that never imported the new paths."""
    code = "from resegzoo.zoo import ClipVariant; from resegzoo.plugins import get_plugin_manager; print(ClipVariant)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "<class 'resegzoo.weights.records.ClipVariant'>" in run.stdout
    assert "resegzoo.zoo.ClipVariant is deprecated" in run.stderr
    assert "resegzoo.plugins.get_plugin_manager is deprecated" in run.stderr
