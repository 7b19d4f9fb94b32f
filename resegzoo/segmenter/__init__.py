"""The ReSeg-CLIP segmenter: masked-attention encoder, text side, windows, recipe.

The public entry points are re-exported by :mod:`resegzoo.api`.
"""
