"""Segmentation methods and the seam they share with the pipeline (issue 16).

``base.py`` is the seam: :class:`~resegzoo.methods.base.MethodSpec` (what a method declares),
the :class:`~resegzoo.methods.base.Method` protocol (what a built method does) and the checks
made before any model loads. The CLIP method lives beside its encoder in
``resegzoo/segmenter/clip_method.py``; other methods live here, one sub-package each.
"""
