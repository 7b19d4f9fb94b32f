"""The plugin system: third-party plugins found through real entry points (temporary dist-info)."""
from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from resegzoo.plugins import registry as registry_module
from resegzoo.cli import build_cli
from resegzoo.plugins.manager import DISABLE_ENV, get_plugin_manager
from resegzoo.plugins.registry import RegistryError, build_registry

VARIANT_PLUGIN = """
from resegzoo.plugins.hookspecs import hookimpl
from resegzoo.weights.zoo import ClipVariant

@hookimpl
def resegzoo_register_variants(register):
    register(ClipVariant(name={variant!r}, architecture="ViT-B-32", format="openclip-pickle",
                         license="MIT", citation="test", hf_repo="org/x", hf_file="x.pt"))
"""

#: the same plugin as written now: one hook for models of every kind, everything from resegzoo.plugin
MODEL_PLUGIN = """
from resegzoo.plugin import ClipDetails, ModelRecord, RecordSource, hookimpl

@hookimpl
def resegzoo_register_models(register):
    register(ModelRecord(name={variant!r}, kind="clip", license="MIT", citation="test",
                         source=RecordSource(hf_repo="org/x", hf_file="x.pt"), details=ClipDetails("ViT-B-32")))
"""


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """``install(entry_point_name, module_source)`` makes an installed distribution with a
    ``resegzoo`` entry point (a real dist-info folder on sys.path, as pip would leave it)."""
    monkeypatch.setattr(registry_module, "_default", None)  # no registry cached from other tests

    def install(ep_name: str, source: str, version: str = "1.2.3") -> str:
        module = f"fakeplug_{uuid.uuid4().hex[:8]}"
        site = tmp_path / f"site-{module}"
        site.mkdir()
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        dist_info = site / f"{module}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: {version}\n")
        (dist_info / "entry_points.txt").write_text(f"[resegzoo]\n{ep_name} = {module}\n")
        monkeypatch.syspath_prepend(str(site))
        return module

    return install


def test_entry_point_plugin_is_loaded_with_its_distribution(install_plugin):
    module = install_plugin("acme", VARIANT_PLUGIN.format(variant="acme-clip"))
    pm = get_plugin_manager()
    assert pm.get_plugin("acme").__name__ == module
    assert pm.report.distributions["acme"] == (module, "1.2.3")
    registry = build_registry(pm)
    assert registry.variants.owners["acme-clip"] == "acme"
    assert "remoteclip-vit-l-14" in registry.variants  # the built-ins are still there


def test_two_plugins_registering_one_name_keep_the_first_and_report_the_second(install_plugin):
    install_plugin("alpha", VARIANT_PLUGIN.format(variant="shared-name"))
    install_plugin("beta", VARIANT_PLUGIN.format(variant="shared-name") + """
@hookimpl
def resegzoo_register_mask_generators(register):
    from resegzoo.plugins.interfaces import MaskGeneratorSpec
    register(MaskGeneratorSpec("beta-grid", lambda **kw: None, "beta's other entry still works"))
""")
    pm = get_plugin_manager()
    first, second = [name for name, _ in pm.list_name_plugin() if name in ("alpha", "beta")]  # load order
    with pytest.warns(UserWarning, match=f"'{second}'.*'shared-name' is also registered by plugin '{first}'"):
        registry = build_registry(pm)
    assert registry.variants.owners["shared-name"] == first
    assert "beta-grid" in registry.mask_generators  # the clashing plugin's other entries are kept
    (broken,) = pm.report.broken
    assert broken.name == second and f"'{first}'" in broken.error and "'shared-name'" in broken.error


def test_plugin_clashing_with_a_builtin_loses_and_the_builtin_stays(install_plugin):
    install_plugin("copycat", VARIANT_PLUGIN.format(variant="remoteclip-vit-b-32").replace(
        '@hookimpl\n', '@hookimpl(tryfirst=True)\n'))  # even a plugin that asks to run first
    with pytest.warns(UserWarning, match="copycat.*resegzoo.builtin.models"):
        registry = build_registry(get_plugin_manager())
    assert registry.variants.owners["remoteclip-vit-b-32"] == "resegzoo.builtin.models"
    assert registry.variants.get("remoteclip-vit-b-32").hf_repo != "org/x"


def test_plugin_raising_at_import_is_reported_and_the_rest_works(install_plugin):
    install_plugin("good", VARIANT_PLUGIN.format(variant="good-clip"))
    install_plugin("bad", "raise RuntimeError('missing licence key file')\n")
    with pytest.warns(UserWarning, match="'bad'.*missing licence key file"):
        pm = get_plugin_manager()
    assert [b.name for b in pm.report.broken] == ["bad"]
    assert "good-clip" in build_registry(pm).variants

    runner = CliRunner()
    result = runner.invoke(build_cli(), ["plugins"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)["plugins"]}
    assert rows["bad"]["broken"] is True and "RuntimeError: missing licence key file" in rows["bad"]["error"]
    assert rows["good"]["broken"] is False and rows["good"]["hooks"] == ["resegzoo_register_variants"]
    assert rows["resegzoo.builtin.models"]["distribution"] == "resegzoo"

    result = runner.invoke(build_cli(), ["list", "variants", "--json"])
    assert result.exit_code == 0
    assert {"good-clip", "remoteclip-vit-l-14"} <= {row["name"] for row in json.loads(result.output)}


def test_plugin_whose_hook_raises_is_reported_and_skipped(install_plugin):
    install_plugin("flaky", """
        from resegzoo.plugins.hookspecs import hookimpl

        @hookimpl
        def resegzoo_register_variants(register):
            raise ValueError("registry server unreachable")
    """)
    pm = get_plugin_manager()
    with pytest.warns(UserWarning, match="flaky"):
        registry = build_registry(pm)
    assert "openai-vit-b-32" in registry.variants
    assert pm.report.broken[0].name == "flaky" and "registry server unreachable" in pm.report.broken[0].error


def test_environment_variable_disables_third_party_plugins(install_plugin, monkeypatch):
    install_plugin("acme", VARIANT_PLUGIN.format(variant="acme-clip"))
    monkeypatch.setenv(DISABLE_ENV, "1")
    pm = get_plugin_manager()
    assert pm.get_plugin("acme") is None
    registry = build_registry(pm)
    assert "acme-clip" not in registry.variants and "remoteclip-vit-l-14" in registry.variants


def test_a_name_clash_is_reported_by_plugins_and_every_command_still_works(install_plugin, tmp_path):
    install_plugin("alpha", VARIANT_PLUGIN.format(variant="shared-name"))
    install_plugin("beta", VARIANT_PLUGIN.format(variant="shared-name"))
    install_plugin("copycat", """
from resegzoo.plugins.hookspecs import hookimpl
from resegzoo.plugins.interfaces import MaskGeneratorSpec

@hookimpl
def resegzoo_register_mask_generators(register):
    register(MaskGeneratorSpec("slic", lambda **kw: None, "not the real slic"))
""")
    runner = CliRunner()
    result = runner.invoke(build_cli(), ["plugins"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert "registry_error" not in report
    rows = {row["name"]: row for row in report["plugins"]}
    (kept,) = [name for name in ("alpha", "beta") if not rows[name]["broken"]]
    (lost,) = {"alpha", "beta"} - {kept}
    assert "'shared-name'" in rows[lost]["error"] and f"'{kept}'" in rows[lost]["error"]
    assert rows["copycat"]["broken"] is True and "resegzoo.builtin.mask_generators" in rows["copycat"]["error"]
    for kind in ("variants", "masks", "weightings", "datasets"):
        result = runner.invoke(build_cli(), ["list", kind])
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    result = runner.invoke(build_cli(), ["list", "masks", "--json"])
    (slic,) = [row for row in json.loads(result.output) if row["name"] == "slic"]
    assert slic["plugin"] == "resegzoo.builtin.mask_generators"
    image = tmp_path / "x.png"
    from PIL import Image
    import numpy as np
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(image)
    result = runner.invoke(build_cli(), ["segment", str(image), "--model", "oracle", "--masks", "slic",
                                         "--classes", "red; blue", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output


FACTORY_PLUGIN = """
import functools
from resegzoo.plugins.hookspecs import hookimpl
from resegzoo.plugins.interfaces import MaskGeneratorSpec, WeightingSpec, DatasetSpec
from resegzoo.weights.zoo import ClipVariant


class GridFactory:
    def __init__(self, **settings):
        self.settings = settings


def make(kind, **settings):
    return kind


@hookimpl
def resegzoo_register_mask_generators(register):
    register(MaskGeneratorSpec("fac-class", GridFactory, "a class"))
    register(MaskGeneratorSpec("fac-lambda", lambda **kw: None, "a lambda"))
    register(MaskGeneratorSpec("fac-partial", functools.partial(make, "grid", cell=4), "a partial"))
    register(MaskGeneratorSpec("fac-instance", GridFactory(cell=3), "a callable instance"))


@hookimpl
def resegzoo_register_weightings(register):
    register(WeightingSpec("fac-class", GridFactory, "a class"))
    register(WeightingSpec("fac-lambda", lambda **kw: None, "a lambda"))
    register(WeightingSpec("fac-partial", functools.partial(make, "w"), "a partial"))


@hookimpl
def resegzoo_register_datasets(register):
    register(DatasetSpec("fac-partial", functools.partial(make, "d"), "a partial"))


@hookimpl
def resegzoo_register_variants(register):
    register(ClipVariant(name="fac-custom", architecture="x", format="custom", license="MIT", citation="t",
                         build=functools.partial(make, "encoder"), model_config={"vision": (1, 2), 3: {4}}))
"""


@pytest.mark.parametrize("kind", ["variants", "masks", "weightings", "datasets", "sam"])
def test_list_json_is_valid_json_with_classes_lambdas_and_partials_as_factories(install_plugin, kind):
    module = install_plugin("factories", FACTORY_PLUGIN)
    result = CliRunner().invoke(build_cli(), ["list", kind, "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    if kind in ("masks", "weightings"):
        assert rows["fac-class"]["factory"] == f"{module}.GridFactory"
        assert rows["fac-lambda"]["factory"].startswith(f"{module}.")
        assert rows["fac-lambda"]["factory"].endswith(".<lambda>")
        assert rows["fac-partial"]["factory"].startswith(f"functools.partial({module}.make, ")
    if kind == "masks":
        assert rows["fac-instance"]["factory"].startswith(f"<{module}.GridFactory object")
    if kind == "variants":
        assert rows["fac-custom"]["build"] == f"functools.partial({module}.make, 'encoder')"
        assert rows["fac-custom"]["model_config"] == {"vision": [1, 2], "3": [4]}
    if kind == "datasets":
        assert rows["fac-partial"]["factory"] == f"functools.partial({module}.make, 'd')"
    assert all(row["plugin"] for row in rows.values())


def test_source_checkout_has_no_stray_plugin_modules():
    # Built-ins are listed explicitly; every one must exist and implement at least one hook.
    pm = get_plugin_manager(load_entrypoints=False)
    for name, plugin in pm.list_name_plugin():
        assert pm.get_hookcallers(plugin), f"{name} implements no hook"
        assert Path(plugin.__file__).is_file()


def test_two_distributions_with_one_plugin_name_report_the_second(install_plugin):
    install_plugin("samename", VARIANT_PLUGIN.format(variant="first-clip"))
    earlier_on_path = install_plugin("samename", VARIANT_PLUGIN.format(variant="second-clip"))
    with pytest.warns(UserWarning, match="already used by"):
        pm = get_plugin_manager()
    # entry points are read in sys.path order: the distribution found first wins
    assert pm.get_plugin("samename").__name__ == earlier_on_path
    (broken,) = pm.report.broken
    assert broken.name.startswith("samename (") and f"already used by {earlier_on_path}" in broken.error


def _plugins_rows() -> dict[str, dict]:
    result = CliRunner().invoke(build_cli(), ["plugins"])
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.output)["plugins"]}


def test_plugins_shows_why_and_where_a_plugin_failed_to_load(install_plugin, tmp_path):
    missing = install_plugin("needs-dep", "import json\n\nimport resegzoo_no_such_dependency\n", version="2.0")
    install_plugin("multiline", "raise ValueError('config file is broken\\n  line 2 of the details')\n")
    syntax = install_plugin("typo", "def f(:\n    pass\n")
    install_plugin("hook-fails", """
        from resegzoo.plugin import hookimpl

        def read_settings():
            return {}["url"]

        @hookimpl
        def resegzoo_register_variants(register):
            read_settings()
    """)
    rows = _plugins_rows()
    row = rows["needs-dep"]
    assert row["broken"] is True
    assert row["error"] == "ModuleNotFoundError: No module named 'resegzoo_no_such_dependency'"
    assert row["where"] == f"{tmp_path / f'site-{missing}' / f'{missing}.py'}, line 3"
    assert (row["distribution"], row["version"]) == (missing, "2.0")
    assert rows["multiline"]["error"] == "ValueError: config file is broken ..."  # one line
    assert rows["typo"]["error"].startswith("SyntaxError: ") and rows["typo"]["where"].endswith(f"{syntax}.py, line 1")
    assert rows["hook-fails"]["error"] == "KeyError: 'url'"
    assert rows["hook-fails"]["where"].endswith(", line 5")  # in the plugin's helper, not in resegzoo
    assert rows["hook-fails"]["hooks"] == ["resegzoo_register_variants"]


def test_plugins_lists_the_old_module_paths_a_plugin_still_uses(install_plugin):
    module = install_plugin("old-paths", """
        from resegzoo.hookspecs import hookimpl

        @hookimpl
        def resegzoo_register_mask_generators(register):
            from resegzoo.interfaces import MaskGeneratorSpec
            register(MaskGeneratorSpec("old-paths-grid", lambda **kw: None, "registered through old paths"))
    """)
    install_plugin("new-paths", MODEL_PLUGIN.format(variant="new-clip"))
    install_plugin("old-hook", VARIANT_PLUGIN.format(variant="old-hook-clip"))
    rows = _plugins_rows()
    row = rows["old-paths"]
    assert row["broken"] is False and row["hooks"] == ["resegzoo_register_mask_generators"]
    hookimpl_note, spec_note = row["deprecated"]
    assert hookimpl_note.startswith("resegzoo.hookspecs.hookimpl is deprecated") and "import hookimpl from " \
        "resegzoo.plugin" in hookimpl_note and hookimpl_note.endswith(f"{module}.py, line 2)")
    assert "import MaskGeneratorSpec from resegzoo.plugin" in spec_note and spec_note.endswith("line 6)")
    assert "deprecated" not in rows["new-paths"]
    (note,) = rows["old-hook"]["deprecated"]  # the earlier releases' hook still registers, with a note
    assert note.startswith("resegzoo.plugins.hookspecs.resegzoo_register_variants is deprecated: implement "
                           "resegzoo_register_models")
    # a second manager in the same process (the module is imported already) still knows
    assert get_plugin_manager().report.deprecated["old-paths"][0] == hookimpl_note
