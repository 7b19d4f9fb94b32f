"""An on-disk cache of id maps, keyed by the image's pixels and the generator's settings.

SAM is the slow part of segmenting with SAM masks; evaluating several recipes (ablations) over one
dataset asks for the same segments again and again. A cache entry is one ``.npz`` file named by
sha256(image) + sha256(settings [+ windows]); files are written atomically (temporary file in the
same folder, then ``os.replace``), so a crash never leaves a half-written entry.

What an entry holds is checked against the request before it is used: as many maps as windows
asked for, each ``(levels, h, w)`` of its window's size, the generator's level count (1 to
:data:`~resegzoo.masks.painting.MAX_MASK_LEVELS`), non-negative integer ids, and the entry's own
key and a checksum of its maps (maps of another image renamed to this key, or edited). Anything
else is recomputed and the entry replaced. A cache folder other users can write is not used at all
(a note says so; :func:`resegzoo.outputs.reading.unsafe_folder`).
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from resegzoo.outputs.atomic import atomic_path
from resegzoo.outputs.reading import UnsafeFileError, load_npz, unsafe_folder
from resegzoo.masks.painting import MAX_MASK_LEVELS, Box, check_image, check_windows

_log = logging.getLogger(__name__)

#: Bump when the meaning of cached maps changes, so old entries are not reused (2: entries hold
#: their key and a checksum).
CACHE_FORMAT = 2


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


def maps_checksum(key: str, maps: Sequence[np.ndarray]) -> np.ndarray:
    """sha256 of an entry's key and its maps (shapes, dtypes, bytes), as 32 uint8."""
    digest = hashlib.sha256(key.encode("ascii"))
    for m in maps:
        digest.update(f"{m.shape}|{m.dtype}|".encode())
        digest.update(np.ascontiguousarray(m).tobytes())
    return np.frombuffer(digest.digest(), np.uint8)


class MapCache:
    """A folder of cached id maps."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npz"

    def load(self, key: str, limit: int) -> list[np.ndarray] | None:
        """The maps stored under ``key``; None if there are none, or if what is there is not an
        entry this cache wrote under this key, of at most ``limit`` bytes (it is then computed and
        written anew)."""
        path = self.path(key)
        try:
            data = load_npz(path, limit)
            maps = [data[f"m{i}"] for i in range(len(data) - 1)]
            if not np.array_equal(data["checksum"], maps_checksum(key, maps)):
                raise ValueError("its checksum does not match its maps and key: not the maps stored for this image")
            return maps
        except FileNotFoundError:
            return None
        except (UnsafeFileError, KeyError, ValueError) as exc:
            _log.warning("mask cache: ignoring %s (%s); it is recomputed", path, exc)
            return None

    def save(self, key: str, maps: Sequence[np.ndarray]) -> None:
        with atomic_path(self.path(key), durable=True) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{f"m{i}": m for i, m in enumerate(maps)}, checksum=maps_checksum(key, maps))


def maps_problem(maps: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]], levels: int | None) -> str | None:
    """Why ``maps`` are not the answer to a request for ``sizes`` (one (h, w) per map) with
    ``levels`` levels each (None: unknown, but the same in every map); None when they are."""
    if len(maps) != len(sizes):
        return f"{len(maps)} maps for {len(sizes)} windows"
    for m, (h, w) in zip(maps, sizes):
        if m.ndim != 3 or tuple(m.shape[1:]) != (h, w):
            return f"a map of shape {m.shape} for a window of {h} x {w} px"
        if not np.issubdtype(m.dtype, np.integer):
            return f"a map of {m.dtype}, not integer segment ids"
        want = levels if levels is not None else maps[0].shape[0]
        if m.shape[0] != want or not 1 <= m.shape[0] <= MAX_MASK_LEVELS:
            return f"{m.shape[0]} levels, not {want} (1 to {MAX_MASK_LEVELS})"
        if m.size and int(m.min()) < 0:
            return "negative segment ids"
    return None


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
        #: what the user must know (a folder others can write: not used)
        self.notes: list[str] = []
        problem = unsafe_folder(self.cache.directory)
        self.use_disk = problem is None
        if problem is not None:
            self.notes.append(f"the mask cache is not used: {problem}; make it writable by you alone (chmod go-w)")
        self._levels: int | None = declared  # learnt from the first maps computed when not declared

    def key(self, image: np.ndarray, windows: Sequence[Box] | None = None) -> str:
        parts = [image_digest(image), self.settings_key]
        if windows is not None:
            parts.append(hashlib.sha256(json.dumps([list(w) for w in windows]).encode()).hexdigest())
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        return self._cached(self.key(image), lambda: [self.inner(image)], image, [image.shape[:2]])[0]

    def generate_windows(self, image: np.ndarray, windows: Sequence[Box]) -> list[np.ndarray]:
        from resegzoo.masks.windows import generate_for_windows

        image = check_image(image)
        boxes = check_windows(windows, image.shape[0], image.shape[1])
        return self._cached(self.key(image, boxes), lambda: generate_for_windows(self.inner, image, boxes), image,
                            [(y1 - y0, x1 - x0) for y0, x0, y1, x1 in boxes])

    def window_groups(self, windows: Sequence[Box]) -> list[list[int]]:
        """The wrapped generator's groups (:func:`resegzoo.masks.windows.window_groups`): each
        group is one cache entry."""
        from resegzoo.masks.windows import window_groups

        return window_groups(self.inner, windows)

    def _cached(self, key: str, compute: Callable[[], list[np.ndarray]], image: np.ndarray,
                sizes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        maps = self.cache.load(key, entry_limit(image)) if self.use_disk else None
        if maps is not None:
            problem = maps_problem(maps, sizes, self._levels)
            if problem is None:
                self.hits += 1
                return maps
            _log.warning("mask cache: ignoring %s (%s); it is recomputed", self.cache.path(key), problem)
        self.misses += 1
        maps = [np.asarray(m) for m in compute()]
        if self._levels is None and maps:
            self._levels = int(maps[0].shape[0])
        if self.use_disk:
            self.cache.save(key, maps)
        return maps
