"""Evaluation: datasets, metrics, resumable runs, reports and ablations (``resegzoo eval``)."""
