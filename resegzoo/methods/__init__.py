"""Segmentation methods (issue 16)."""
