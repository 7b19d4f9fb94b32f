"""The plugin system: hook specifications, the plugin manager, the registry of what plugins register, and
the typed specs and protocols plugins implement."""


def __getattr__(name: str):
    # resegzoo.plugins was a module before issue 15 (now plugins/manager.py): its names still resolve, with
    # a DeprecationWarning naming where they live now (resegzoo.moved).
    from resegzoo.moved import old_module_attribute

    return old_module_attribute(__name__, name)
