"""Objects, not only pixels: the instances a method finds, kept whole across windows and blocks.

A method with the ``instances`` output (``MethodSpec.outputs``; its ``window_outputs``) gives, per
window, a list of :class:`~resegzoo.objects.instances.Instance` (name, score, presence, mask). The
pipeline turns them into :class:`~resegzoo.objects.instances.Objects` (columnar: class, name,
score, presence, box, the mask cropped to its box, and the *view* that saw it: its window or
block) and makes every object whole (:mod:`resegzoo.objects.merge`):

- within a window: non-maximum suppression per class (mask IoU above ``NMS_IOU``: the best score kept);
- across overlapping windows of an image or block, and across blocks of a raster (streamed,
  :class:`~resegzoo.objects.merge.ObjectAssembler`): two objects of one class from different views
  whose masks agree where both views see (IoU inside the intersection of the two views at least
  ``MERGE_IOU``) are one object: the union of the masks, the best score (its name and presence).

:mod:`resegzoo.objects.store` keeps the finished objects of a raster (areas, filters, counts, ids in
a deterministic order). Pure numpy: no torch, no GDAL (the GIS files are :mod:`resegzoo.outputs.gis.objects`).
"""
