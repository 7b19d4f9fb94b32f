"""Segmentation methods and the seam they share with the pipeline (issue 16).

``base.py`` is the seam: :class:`~resegzoo.methods.base.MethodSpec` (what a method declares),
the :class:`~resegzoo.methods.base.Method` protocol (what a built method does) and the checks
made before any model loads. Every method lives here, one sub-package each: ``clip/`` (ReSeg-CLIP
and the peer CLIP methods), ``segearth_ov3/``.
"""
