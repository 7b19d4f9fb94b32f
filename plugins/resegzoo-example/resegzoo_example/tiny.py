"""The ``example-tiny`` CLIP model: tiny random weights, generated once into resegzoo's cache."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from resegzoo.plugin import ClipDetails, ModelRecord, RecordSource

TINY_VARIANT_NAME = "example-tiny"
SEED = 0


def weights_path() -> Path:
    from resegzoo.plugin import cache_dir

    return cache_dir() / "plugins" / "resegzoo-example" / f"{TINY_VARIANT_NAME}-seed{SEED}.safetensors"


def make_weights() -> Path:
    """Generate the weights (deterministic from SEED) on first use; later calls reuse the file."""
    path = weights_path()
    if path.is_file():
        return path
    from safetensors.torch import save_file

    from resegzoo.testing import make_tiny_clip

    state = {k: v.contiguous() for k, v in make_tiny_clip(seed=SEED).state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target, then rename: a crash never leaves a half-written file behind.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; it is a shareable cache file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def tiny_record() -> ModelRecord:
    from resegzoo.testing import tiny_model_config

    return ModelRecord(
        name=TINY_VARIANT_NAME,
        kind="clip",
        license="Apache-2.0",
        citation="resegzoo example plugin",
        # the weights come from this plugin's own function (made on first use), not a download
        source=RecordSource(fetcher=make_weights),
        details=ClipDetails(architecture="tiny-vit-16", model_config=tiny_model_config()),
        size="8 MB",
        description="tiny random CLIP (64 px, 8 blocks) for quick starts and tests; not a real model",
        random_weights=True,  # every run says so: console, sidecar, overlay legend
    )
