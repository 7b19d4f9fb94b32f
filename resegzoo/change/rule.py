"""SegEarth-OV3's change rule (``segearthov3_change_detector.py``, class ``SegEarthOV3CDSeg``, in
earth-insights/SegEarth-OV-3), on the per-name scores L of any method with the ``features`` output.

Per date, a class map: each class's best name, the argmax, background where the top score is below
``background_threshold`` (its ``prob_thd``). Two rules, and a pixel changed where both say so:

* the object rule (class-agnostic): foreground = not background; each date's foreground dilated by a
  (2r+1) x (2r+1) max filter (r = 2: 5 x 5); 8-connected components of the undilated foreground; a
  component changed where less than ``coverage`` of its pixels lie in the other date's dilated
  foreground and its area is at least ``min_area``; both directions, OR.
* the pixel rule, per class that is not background: F = (1 - cosine) / 2 of the two dates' image
  features (upsampled to the window before the cosine), Delta = the max over the class's names of
  |L(A) - L(B)|, C = the max over its names of max(L(A), L(B)), E = C x Delta x F; changed where
  E > max(Otsu(E) if E varies by more than 1e-4 else 0, 0.01) for any class.

Nodata of either date is nodata of the result: such pixels are neither foreground nor counted in a
histogram. Everything here works on one image in memory or, strip by strip (:func:`object_changes`)
and block by block (:class:`EnergyHistogram`), on a raster of any size with the same result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from resegzoo.raster.opening import NODATA_LABEL

#: E must exceed at least this (the peer's floor under Otsu's threshold)
MIN_ENERGY = 0.01
#: E that varies by no more than this has no Otsu threshold (0, so the floor decides)
FLAT_ENERGY = 1e-4
#: bins of the Otsu histogram (scikit-image's default, which the peer uses)
OTSU_BINS = 256
#: the registration buffer: foregrounds dilated by a (2 x 2 + 1) square (the peer's inst_dilation_radius)
DILATION_RADIUS = 2
#: feature channels upsampled at a time for the cosine (bounds memory on 1008 px windows; exact)
FEATURE_CHUNK = 32


class ChangeSettingsError(ValueError):
    """Change settings out of range (a usage error; the message names the setting)."""


@dataclass(frozen=True)
class ChangeSettings:
    """The change rule's settings (SegEarth-OV3's per-dataset ``configs/cfg_*.py``)."""

    #: a pixel whose best score is below this is background at that date (``prob_thd``)
    background_threshold: float = 0.4
    #: a component changed where less than this share lies in the other date's dilated foreground
    #: (``instance_iou_threshold``)
    coverage: float = 0.3
    #: components smaller than this many pixels never change (``t12_min_instance_area``)
    min_area: int = 0
    #: vocabulary classes (by label) that are background, like the pixels below the threshold: the
    #: peer's class 0, ``background``, queried as a name like the others
    background_classes: tuple[str, ...] = ("background",)
    #: the registration buffer's radius in pixels (``inst_dilation_radius``)
    dilation: int = DILATION_RADIUS

    def __post_init__(self) -> None:
        if not 0.0 <= self.background_threshold <= 1.0:
            raise ChangeSettingsError(f"background_threshold must be in 0..1, got {self.background_threshold}")
        if not 0.0 <= self.coverage <= 1.0:
            raise ChangeSettingsError(f"coverage must be in 0..1, got {self.coverage}")
        if self.min_area < 0 or self.dilation < 0:
            raise ChangeSettingsError(f"min_area and dilation must be >= 0, got {self.min_area} and {self.dilation}")
        object.__setattr__(self, "background_classes", tuple(self.background_classes))

    def background_ids(self, vocab: Any) -> list[int]:
        """Label values that are background: the classes named so, and ``len(vocab)`` (below the
        threshold)."""
        return [i for i, name in enumerate(vocab.class_names) if name in self.background_classes] + [len(vocab)]

    def foreground_classes(self, vocab: Any) -> list[int]:
        """The vocabulary classes the pixel rule runs over (those that are not background)."""
        return [i for i, name in enumerate(vocab.class_names) if name not in self.background_classes]

    def to_dict(self) -> dict[str, Any]:
        return {"background_threshold": self.background_threshold, "coverage": self.coverage,
                "min_area": self.min_area, "background_classes": list(self.background_classes),
                "dilation": self.dilation, "min_energy": MIN_ENERGY, "flat_energy": FLAT_ENERGY,
                "otsu_bins": OTSU_BINS}


#: the settings of SegEarth-OV3's change configs (configs/cfg_levir_cd.py, cfg_whu-cd.py,
#: cfg_s2looking.py); each also sets confidence_threshold 0.5, segearth-ov3's default
PRESETS: dict[str, ChangeSettings] = {
    "levir-cd": ChangeSettings(background_threshold=0.4, coverage=0.3, min_area=0),
    "whu-cd": ChangeSettings(background_threshold=0.4, coverage=0.3, min_area=0),
    "s2looking": ChangeSettings(background_threshold=0.6, coverage=0.1, min_area=0),
}


# -- class maps ---------------------------------------------------------------------------------
def class_map(scores: Any, vocab: Any, threshold: float, valid: np.ndarray | None = None) -> np.ndarray:
    """(N, H, W) per-name scores -> (H, W) uint8 labels: each class's best name, the argmax (the
    first class on ties), ``len(vocab)`` where the best score is below ``threshold``,
    :data:`NODATA_LABEL` outside ``valid``."""
    import torch

    from resegzoo.methods.base import names_to_classes

    classes = names_to_classes(torch.as_tensor(scores).float(), vocab.class_of_names, len(vocab), dim=0)
    top = classes.amax(dim=0)
    labels = torch.argmax(classes, dim=0)  # documented: the first maximal index on ties
    labels = torch.where(top < threshold, len(vocab), labels).cpu().numpy().astype(np.uint8)
    if valid is not None:
        labels[~valid] = NODATA_LABEL
    return labels


def foreground(labels: np.ndarray, background_ids: Sequence[int]) -> np.ndarray:
    """Pixels that are neither background nor nodata."""
    return ~np.isin(labels, [*background_ids, NODATA_LABEL])


# -- the pixel rule -----------------------------------------------------------------------------
def feature_distance(features_a: Any, features_b: Any, size: tuple[int, int]) -> Any:
    """(h, w) float32 (1 - cosine) / 2 of two (C, g, g) feature maps, each upsampled to ``size``
    (bilinear, align_corners False) before the cosine, as the peer does (its similarity
    cosine x 0.5 + 0.5, subtracted from 1). Channels are upsampled a chunk at a time: the same
    numbers, a fraction of the memory."""
    import torch
    import torch.nn.functional as F

    a, b = torch.as_tensor(features_a).float(), torch.as_tensor(features_b).float()
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"feature maps of both dates must be (C, g, g) alike, got {tuple(a.shape)} and {tuple(b.shape)}")
    dot = norm_a = norm_b = None
    for s in range(0, a.shape[0], FEATURE_CHUNK):
        ua = F.interpolate(a[None, s:s + FEATURE_CHUNK], size=size, mode="bilinear", align_corners=False)[0]
        ub = F.interpolate(b[None, s:s + FEATURE_CHUNK], size=size, mode="bilinear", align_corners=False)[0]
        parts = ((ua * ub).sum(0), (ua * ua).sum(0), (ub * ub).sum(0))
        if dot is None:
            dot, norm_a, norm_b = parts
        else:
            dot, norm_a, norm_b = dot + parts[0], norm_a + parts[1], norm_b + parts[2]
    # torch's cosine_similarity: x.y / sqrt(max(|x|^2 |y|^2, eps^2)), eps = 1e-8
    cosine = dot / torch.sqrt(torch.clamp_min(norm_a * norm_b, 1e-16))
    return 1.0 - (cosine * 0.5 + 0.5)


def stitched_feature_distance(features_a: Sequence[tuple[Any, Any]], features_b: Sequence[tuple[Any, Any]],
                              plan: Any, size: tuple[int, int]) -> Any:
    """(H, W) float32 F of an image from each date's (window, features) pairs
    (``Segmenter.scores(features=...)``) on the same window plan: F of each window encoded at both
    dates, averaged where windows overlap (as scores are), cropped, and upsampled to the image's
    ``size`` when the plan's frame was resized. Pixels no such window covers (nodata at a date) get 0."""
    import torch

    from resegzoo.methods.base import upsample_patch_logits

    by_window = dict((tuple(win), feat) for win, feat in features_b)
    ph, pw = plan.padded
    total = torch.zeros((ph, pw), dtype=torch.float32)
    count = torch.zeros((ph, pw), dtype=torch.float32)
    for win, feat in features_a:
        other = by_window.get(tuple(win))
        if other is None:
            continue
        y0, x0, y1, x1 = win
        total[y0:y1, x0:x1] += feature_distance(feat, other, (y1 - y0, x1 - x0)).cpu()
        count[y0:y1, x0:x1] += 1
    distance = (total / count.clamp_min(1))[: plan.height, : plan.width]
    if tuple(distance.shape) != tuple(size):
        distance = upsample_patch_logits(distance[None, None], size)[0, 0]
    return distance


def class_energy(scores_a: Any, scores_b: Any, distance: Any, vocab: Any, classes: Sequence[int]) -> np.ndarray:
    """(len(classes), H, W) float32 E = C x Delta x F per class, from (N, H, W) per-name scores of
    both dates and the (H, W) feature distance F."""
    import torch

    a, b = torch.as_tensor(scores_a).float(), torch.as_tensor(scores_b).float()
    f = torch.as_tensor(distance).float().to(a.device)
    of = torch.as_tensor(vocab.class_of_names, device=a.device)
    out = torch.zeros((len(classes), *a.shape[1:]), dtype=torch.float32)
    for k, c in enumerate(classes):
        rows = (of == c).nonzero(as_tuple=True)[0]
        delta = (a[rows] - b[rows]).abs().amax(dim=0)
        confidence = torch.maximum(a[rows], b[rows]).amax(dim=0)
        out[k] = (confidence * delta * f).cpu()
    return out.numpy()


def energy_threshold(values: np.ndarray) -> float:
    """The pixel rule's threshold of one class's energies (valid pixels only): Otsu's (scikit-image,
    256 bins) when they vary by more than :data:`FLAT_ENERGY`, else 0; never below :data:`MIN_ENERGY`."""
    values = np.asarray(values, dtype=np.float32).ravel()
    if values.size == 0 or float(values.max() - values.min()) <= FLAT_ENERGY:
        return MIN_ENERGY
    from skimage.filters import threshold_otsu

    return max(float(threshold_otsu(values, nbins=OTSU_BINS)), MIN_ENERGY)


@dataclass
class EnergyHistogram:
    """One class's energies over a whole raster, block by block, in two passes: :meth:`extent`
    for each block (min and max), then :meth:`add` for each block (the histogram over the whole
    range); :meth:`threshold` is then exactly :func:`energy_threshold` of every value at once
    (numpy bins each value on its own, so the blocks' counts add up to the whole's)."""

    low: Any = math.inf
    high: Any = -math.inf
    counts: np.ndarray | None = None
    edges: np.ndarray | None = None

    def extent(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float32)
        if values.size:
            # float32 scalars, as numpy takes the range of a float32 array itself: the bin edges are
            # then computed in float32 exactly as for the whole array at once
            self.low = min(self.low, values.min())
            self.high = max(self.high, values.max())

    @property
    def flat(self) -> bool:
        return bool(self.high < self.low) or float(self.high - self.low) <= FLAT_ENERGY

    def add(self, values: np.ndarray) -> None:
        if self.flat:
            return
        counts, edges = np.histogram(np.asarray(values, dtype=np.float32).ravel(), bins=OTSU_BINS,
                                     range=(self.low, self.high))
        self.counts = counts if self.counts is None else self.counts + counts
        self.edges = edges

    def threshold(self) -> float:
        if self.flat:
            return MIN_ENERGY
        if self.counts is None or self.edges is None:
            raise RuntimeError("EnergyHistogram.threshold before the histogram pass (add)")
        from skimage.filters import threshold_otsu

        centers = (self.edges[:-1] + self.edges[1:]) / 2.0
        return max(float(threshold_otsu(hist=(self.counts, centers))), MIN_ENERGY)


def pixel_changes(energy: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """(H, W) bool: E above its class's threshold for any class."""
    out = np.zeros(energy.shape[1:], dtype=bool)
    for plane, threshold in zip(energy, thresholds):
        out |= plane > threshold
    return out


# -- the object rule ----------------------------------------------------------------------------
#: ``read(row0, row1)`` -> the two dates' foregrounds (bool, rows row0..row1 of the whole width)
ForegroundReader = Callable[[int, int], tuple[np.ndarray, np.ndarray]]

_EIGHT = np.ones((3, 3), dtype=bool)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` dilated by a (2r+1) square; outside the array counts as not set (the peer's
    max-pool with padding)."""
    if radius <= 0:
        return mask
    from scipy import ndimage

    return ndimage.binary_dilation(mask, structure=np.ones((2 * radius + 1,) * 2, dtype=bool))


@dataclass
class _Date:
    """One direction of the object rule: this date's components, checked against the other's
    dilated foreground."""

    offsets: list[int] = field(default_factory=list)  # the first piece id of each strip
    area: list[np.ndarray] = field(default_factory=list)
    cover: list[np.ndarray] = field(default_factory=list)
    joins: list[np.ndarray] = field(default_factory=list)  # (a, b) piece pairs joined across strips
    pieces: int = 0
    changed: np.ndarray | None = None  # per piece (index 0: no piece)
    ratio: np.ndarray | None = None  # per piece: its component's coverage


def _label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=_EIGHT)
    return labels, int(count)


def _strips(height: int, rows: int) -> list[tuple[int, int]]:
    return [(r0, min(height, r0 + rows)) for r0 in range(0, height, max(1, rows))]


def _read_strip(read: ForegroundReader, height: int, r0: int, r1: int, radius: int
                ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The two foregrounds of rows r0..r1 and, of the same rows, each dilated (read with a halo of
    ``radius`` rows so the dilation sees across the strip's edges)."""
    e0, e1 = max(0, r0 - radius), min(height, r1 + radius)
    fa, fb = read(e0, e1)
    rows = slice(r0 - e0, r1 - e0)
    return (fa[rows], fb[rows]), (dilate(fa, radius)[rows], dilate(fb, radius)[rows])


def _joins(above: np.ndarray, below: np.ndarray) -> np.ndarray:
    """(a, b) pairs of piece ids 8-adjacent across a strip edge (``above``: the last row of one
    strip, ``below``: the first of the next, global ids, 0 = none)."""
    pairs = []
    w = len(above)
    for dx in (-1, 0, 1):
        a = above[max(0, -dx):w - max(0, dx)]
        b = below[max(0, dx):w - max(0, -dx)]
        both = (a > 0) & (b > 0)
        pairs.append(np.stack([a[both], b[both]], axis=1))
    return np.unique(np.concatenate(pairs), axis=0)


def object_changes(read: ForegroundReader, height: int, width: int, settings: ChangeSettings,
                   strip_rows: int | None = None) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """The object rule over an image of ``height`` x ``width`` read strip by strip: yields
    (row0, row1, changed, coverage) for consecutive strips: ``changed`` (row1 - row0, width) bool,
    ``coverage`` float32, the share of each pixel's component (the smaller of its two dates') that
    lies in the other date's dilated foreground (1 where no component holds the pixel).

    Components crossing strip edges are followed across them (their pieces joined, their areas
    and coverages summed), and each strip is dilated with its neighbours' rows, so the result is
    the whole image's at once, whatever ``strip_rows`` (default: the whole image). ``read`` is
    called twice per strip: the rule needs every component whole before any pixel is decided."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    strips = _strips(height, strip_rows or height)
    radius = settings.dilation
    dates = (_Date(), _Date())
    last: list[np.ndarray | None] = [None, None]
    for r0, r1 in strips:
        fg, dilated = _read_strip(read, height, r0, r1, radius)
        for d, (date, mask, other) in enumerate(zip(dates, fg, dilated[::-1])):
            labels, count = _label(mask)
            offset = date.pieces
            date.offsets.append(offset)
            date.area.append(np.bincount(labels.ravel(), minlength=count + 1)[1:])
            date.cover.append(np.bincount(labels.ravel(), weights=other.ravel().astype(np.float64),
                                          minlength=count + 1)[1:])
            ids = np.where(labels > 0, labels + offset, 0)
            if last[d] is not None:
                date.joins.append(_joins(last[d], ids[0]))
            last[d] = ids[-1]
            date.pieces += count
    for date in dates:
        n = date.pieces
        area = np.concatenate([np.zeros(1), *date.area]) if n else np.zeros(1)
        cover = np.concatenate([np.zeros(1), *date.cover]) if n else np.zeros(1)
        joins = np.concatenate(date.joins) if date.joins else np.zeros((0, 2), np.int64)
        graph = coo_matrix((np.ones(len(joins)), (joins[:, 0], joins[:, 1])), shape=(n + 1, n + 1))
        _, component = connected_components(graph, directed=False)
        total_area = np.bincount(component, weights=area)
        total_cover = np.bincount(component, weights=cover)
        ratio = total_cover / np.maximum(total_area, 1)
        changed = (ratio < settings.coverage) & (total_area >= settings.min_area)
        date.changed = changed[component]
        date.changed[0] = False
        date.ratio = ratio[component].astype(np.float32)
        date.ratio[0] = 1.0
    for s, (r0, r1) in enumerate(strips):
        fg, _ = _read_strip(read, height, r0, r1, 0)
        out = np.zeros((r1 - r0, width), dtype=bool)
        coverage = np.ones((r1 - r0, width), dtype=np.float32)
        for date, mask in zip(dates, fg):
            labels, _ = _label(mask)
            ids = np.where(labels > 0, labels + date.offsets[s], 0)
            out |= date.changed[ids]  # type: ignore[index]
            coverage = np.minimum(coverage, date.ratio[ids])  # type: ignore[index]
        yield r0, r1, out, coverage


# -- one image ----------------------------------------------------------------------------------
@dataclass
class ChangeMaps:
    """The change between two dates of one image, and what decided it."""

    #: (H, W) uint8: 0 unchanged, 1 changed, 255 nodata (either date)
    change: np.ndarray
    #: (H, W) uint8 class maps of each date (``len(vocab)`` = background below the threshold, 255 nodata)
    labels_a: np.ndarray
    labels_b: np.ndarray
    #: (H, W) bool: each rule's verdict (valid pixels)
    objects: np.ndarray
    pixels: np.ndarray
    #: (K', H, W) float32 energies of the pixel rule's classes, and each class's threshold
    energy: np.ndarray
    thresholds: list[float]
    #: the vocabulary classes of ``energy``'s planes
    energy_classes: list[int]


def detect(scores_a: Any, scores_b: Any, distance: Any, vocab: Any, settings: ChangeSettings,
           valid: np.ndarray | None = None) -> ChangeMaps:
    """The rule on one image in memory: (N, H, W) per-name scores of each date and their (H, W)
    feature distance F (:func:`stitched_feature_distance`); ``valid``: pixels valid at both dates."""
    h, w = np.asarray(distance).shape[-2:]
    valid = np.ones((h, w), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    labels_a = class_map(scores_a, vocab, settings.background_threshold, valid)
    labels_b = class_map(scores_b, vocab, settings.background_threshold, valid)
    background = settings.background_ids(vocab)
    fg_a, fg_b = foreground(labels_a, background), foreground(labels_b, background)
    objects = next(object_changes(lambda r0, r1: (fg_a[r0:r1], fg_b[r0:r1]), h, w, settings))[2]
    classes = settings.foreground_classes(vocab)
    energy = class_energy(scores_a, scores_b, distance, vocab, classes)
    thresholds = [energy_threshold(plane[valid]) for plane in energy]
    pixels = pixel_changes(energy, thresholds) & valid
    change = np.where(valid, (objects & pixels).astype(np.uint8), NODATA_LABEL).astype(np.uint8)
    return ChangeMaps(change, labels_a, labels_b, objects & valid, pixels, energy, thresholds, classes)
