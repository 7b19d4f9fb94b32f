"""The pipeline every method shares: the recipe, windows and stitching, names to classes, the
softmax, background and nodata (``core.py``); it imports no method (they are in resegzoo.methods).

The public entry points are re-exported by :mod:`resegzoo.api`.
"""
