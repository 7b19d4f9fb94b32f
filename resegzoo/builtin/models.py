"""Built-in model records: ``registry/models/*.yaml`` (CLIP variants, SAM, SAM 2.1, SAM 3), registered
through the same hook as a plugin's."""
from __future__ import annotations

from resegzoo.plugins.hookspecs import hookimpl


@hookimpl
def resegzoo_register_models(register):
    from resegzoo.weights.records import load_models_file
    from resegzoo.weights.zoo import registry_dir

    for path in sorted((registry_dir() / "models").glob("*.yaml")):
        for record in load_models_file(path):
            register(record)
