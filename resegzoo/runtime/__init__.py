"""How work runs in this process: precision and threads, prefetching, checks before any model loads."""


def __getattr__(name: str):
    # resegzoo.runtime was a module before issue 15 (now runtime/precision.py): its names still resolve, with
    # a DeprecationWarning naming where they live now (resegzoo.moved).
    from resegzoo.moved import old_module_attribute

    return old_module_attribute(__name__, name)
