"""Earlier home of the model route's downloading and caching, now split by job; this alias keeps
the old path working and warns. The new homes: :mod:`resegzoo.weights.cache` (the cache folder,
offline mode, sha256), :mod:`resegzoo.weights.hf` (the Hugging Face cache),
:mod:`resegzoo.weights.download` (https downloads), :mod:`resegzoo.weights.archive` (archive
members), :mod:`resegzoo.weights.fetch` (``fetch_record``, ``is_cached``)."""
from __future__ import annotations

import warnings

from resegzoo.weights.archive import (  # noqa: F401  (re-exported)
    MAX_COMPRESSION_RATIO,
    extract_member,
    member_parts,
    only_checkpoint_member,
)
from resegzoo.weights.cache import (  # noqa: F401
    CACHE_ENV,
    OFFLINE_ENV,
    cache_dir,
    cached_sha256,
    is_offline,
    sha256_file,
    unreachable,
)
from resegzoo.weights.download import download_url, require_https  # noqa: F401
from resegzoo.weights.fetch import fetch_record, is_cached  # noqa: F401
from resegzoo.weights.hf import (  # noqa: F401
    HF_MODEL_FILES,
    fetch_hf_file,
    fetch_hf_snapshot,
    hub_endpoint,
    hub_errors,
    hub_failure,
)

warnings.warn("resegzoo.weights.hub is split by job: import from resegzoo.weights.cache, .hf, .download, "
              ".archive or .fetch", DeprecationWarning, stacklevel=2)
