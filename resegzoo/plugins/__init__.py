"""The plugin system: hook specifications, the plugin manager, the registry of what plugins register, and
the typed specs and protocols plugins implement."""
