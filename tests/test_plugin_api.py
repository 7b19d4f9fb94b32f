"""Issue 22 item 1: ``resegzoo.plugin``, the one module plugin authors import from."""
from __future__ import annotations

import json
import subprocess
import sys

import resegzoo.plugin


def test_every_public_name_resolves_and_dir_lists_it():
    for name in resegzoo.plugin.__all__:
        assert getattr(resegzoo.plugin, name) is not None, name
    assert set(resegzoo.plugin.__all__) <= set(dir(resegzoo.plugin))
    assert len(set(resegzoo.plugin.__all__)) == len(resegzoo.plugin.__all__)


def test_names_are_the_objects_resegzoo_itself_uses():
    from resegzoo.methods.base import MethodSpec
    from resegzoo.plugins.hookspecs import hookimpl
    from resegzoo.segmenter.text import Vocabulary
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
