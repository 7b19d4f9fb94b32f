"""Model weights: zoo records, fetching (downloads, cache, archive members), reading checkpoints, building
models."""
