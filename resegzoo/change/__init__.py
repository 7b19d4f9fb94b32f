"""Open-vocabulary change detection between two dates (``resegzoo change``, issue 25).

SegEarth-OV3's training-free rule (:mod:`.rule`) on the per-name scores and image features of any
method that gives both (the SAM 3 methods), from one pass over each date's windows
(:mod:`.pair`); two rasters of any size and on any grids, block by block (:mod:`.run`).
"""
