"""An on-disk cache of id maps, keyed by the image's pixels and the generator's settings.

SAM is the slow part of segmenting with SAM masks; evaluating several recipes (ablations) over one
dataset asks for the same segments again and again. A cache entry is one ``.npz`` file named by
sha256(image) + sha256(settings [+ windows]); files are written atomically (temporary file in the
same folder, then ``os.replace``), so a crash never leaves a half-written entry.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from resegzoo.outputs.atomic import atomic_path
from resegzoo.outputs.reading import UnsafeFileError, load_npz
from resegzoo.masks.painting import Box, check_image, check_windows

_log = logging.getLogger(__name__)

#: Bump when the meaning of cached maps changes, so old entries are not reused.
CACHE_FORMAT = 1


def image_digest(image: np.ndarray) -> str:
    """sha256 of the pixels, shape and dtype."""
    digest = hashlib.sha256(f"{image.shape}|{image.dtype}|".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


def settings_digest(settings: Mapping[str, Any]) -> str:
    """sha256 of the settings as canonical JSON (sorted keys); they must be JSON-serialisable."""
    text = json.dumps({"format": CACHE_FORMAT, **settings}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def entry_limit(image: np.ndarray) -> int:
    """The most bytes a cache entry of ``image`` may hold: int32 maps of many levels over
    overlapping windows stay far below 64 times the image's own bytes."""
    return 64 * int(image.nbytes) + (1 << 20)


class MapCache:
    """A folder of cached id maps."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npz"

    def load(self, key: str, limit: int) -> list[np.ndarray] | None:
        """The maps stored under ``key``; None if there are none, or if what is there is not an
        entry this cache wrote of at most ``limit`` bytes (it is then computed and written anew)."""
        path = self.path(key)
        try:
            data = load_npz(path, limit)
            return [data[f"m{i}"] for i in range(len(data))]
        except FileNotFoundError:
            return None
        except (UnsafeFileError, KeyError) as exc:
            _log.warning("mask cache: ignoring %s (%s); it is recomputed", path, exc)
            return None

    def save(self, key: str, maps: Sequence[np.ndarray]) -> None:
        with atomic_path(self.path(key), durable=True) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{f"m{i}": m for i, m in enumerate(maps)})


class CachedMaskGenerator:
    """Wraps a mask generator so repeated images (and window lists) are read from disk.

    ``settings`` must name everything the maps depend on (generator, weights, every setting);
    two different settings give two different keys.
    """

    def __init__(self, inner: Callable[[np.ndarray], np.ndarray], directory: str | Path,
                 settings: Mapping[str, Any]) -> None:
        self.inner = inner
        declared = getattr(inner, "level_count", None)
        if declared is not None:  # absent: the segmenter probes through the cache
            self.level_count = declared
        self.cache = MapCache(directory)
        self.settings_key = settings_digest(settings)
        self.hits = 0
        self.misses = 0

    def key(self, image: np.ndarray, windows: Sequence[Box] | None = None) -> str:
        parts = [image_digest(image), self.settings_key]
        if windows is not None:
            parts.append(hashlib.sha256(json.dumps([list(w) for w in windows]).encode()).hexdigest())
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        return self._cached(self.key(image), lambda: [self.inner(image)], image)[0]

    def generate_windows(self, image: np.ndarray, windows: Sequence[Box]) -> list[np.ndarray]:
        from resegzoo.masks.windows import generate_for_windows

        image = check_image(image)
        boxes = check_windows(windows, image.shape[0], image.shape[1])
        return self._cached(self.key(image, boxes), lambda: generate_for_windows(self.inner, image, boxes), image)

    def _cached(self, key: str, compute: Callable[[], list[np.ndarray]], image: np.ndarray) -> list[np.ndarray]:
        maps = self.cache.load(key, entry_limit(image))
        if maps is not None:
            self.hits += 1
            return maps
        self.misses += 1
        maps = compute()
        self.cache.save(key, maps)
        return maps
