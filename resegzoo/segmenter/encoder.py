"""Moved to :mod:`resegzoo.methods.clip.encoder` (issue 22: the CLIP method is a package under methods/).

Importing this path still works and gives that module, with a DeprecationWarning."""
from resegzoo.deprecation import alias_module

alias_module(__name__, "resegzoo.methods.clip.encoder")
