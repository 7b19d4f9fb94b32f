"""Moved to :mod:`resegzoo.weights.st_io` (the model route reads safetensors headers too); this
alias keeps the old path working and warns."""
from __future__ import annotations

import warnings

from resegzoo.weights.st_io import (  # noqa: F401  (re-exported)
    SafetensorsError,
    SafetensorsFile,
    StreamingWriter,
    TensorInfo,
    dtype_name,
    write_state_dict,
)

warnings.warn("resegzoo.compose.st_io moved to resegzoo.weights.st_io; import it from there",
              DeprecationWarning, stacklevel=2)
