"""Inputs to outputs: rasters cut into blocks, segmented and written."""
