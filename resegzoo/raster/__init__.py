"""Rasters in and out: the one reader (``reader``), the block planner (``blocks``) and block-by-block
segmentation of rasters of any size (``job``). Nothing heavy is imported here."""
