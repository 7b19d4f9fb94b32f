"""resegzoo: training-free open-vocabulary segmentation of remote-sensing imagery (ReSeg-CLIP)."""
from importlib.metadata import PackageNotFoundError, version

from resegzoo import moved as _moved

try:
    __version__ = version("resegzoo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# Module paths from before issue 15's reorganisation keep importing, as warning aliases (moved.py).
_moved.install()
