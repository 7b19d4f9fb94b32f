"""Mask generators: an RGB image in, L segment-id maps out (finest first, 0 = uncovered).

Built-ins (registered as plugins by :mod:`resegzoo.builtin.mask_generators`): ``sam``
(:mod:`resegzoo.masks.sam`), ``slic`` and ``felzenszwalb`` (:mod:`resegzoo.masks.superpixels`),
``none``. The segmenter asks for each window's maps through :func:`generate_for_windows`.
"""
from resegzoo.masks.painting import cut_window, paint_masks
from resegzoo.masks.windows import generate_for_windows, group_windows

__all__ = ["cut_window", "generate_for_windows", "group_windows", "paint_masks"]
