"""A concave object (a C shape) that a window's edge cuts into two pieces inside that window is still
one object: the small piece lies inside the whole object that the next window sees, so it merges,
though its IoU with it in the shared strip is small (the other piece makes up the rest). The colour
test method (one instance per patch of a name's colour a window sees) on tests/test_objects.py's
scene with its nodata rectangle painted as ground: the red box there becomes a C, and the objects must
still be the painted ones, whole and exact."""
from __future__ import annotations

import numpy as np

from test_objects import BOXES, CLASSES, NODATA, _box, painted


def test_a_concave_object_cut_into_two_pieces_by_a_window_is_one_object(colour_plugin):
    from resegzoo.api import Segmenter, Vocabulary, load_recipe

    image, objects, valid = painted()
    y0, x0, y1, x1 = NODATA
    image[y0:y1, x0:x1] = 250  # ground, not nodata: the red box (66..80, 118..136) is a C whose arms
    # a window at rows 64..96, columns 128..160 sees as two patches
    seg = Segmenter.from_recipe(load_recipe(None, method="colour", window=32, stride=16))
    result = seg.segment(image, Vocabulary.parse(CLASSES), objects=True)
    assert sorted((int(o.class_id), o.box) for o in result.objects) == sorted(
        (CLASSES.split("; ").index(name), _box(mask)) for name, mask in objects), \
        [(int(o.class_id), o.box, int(o.mask.sum())) for o in result.objects]
    c_shape = next(o for o in result.objects if o.box == BOXES[4][1])
    np.testing.assert_array_equal(c_shape.mask, objects[4][1][66:80, 118:136])
