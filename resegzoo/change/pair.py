"""Two dates of one image through a segmenter: each date's per-name scores and, from the same pass
over the windows, its image features; the feature distance F of the pair (:mod:`.rule`).

The method must give probabilities and the ``features`` output (``resegzoo list methods``: the SAM 3
methods, segearth-ov3 and proc-sam3); :func:`check_change_method` says so in one line before any
model loads, :func:`check_segmenter` for a segmenter built already.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from resegzoo.change.rule import ChangeMaps, ChangeSettings, detect, stitched_feature_distance
from resegzoo.methods.base import FEATURES, MethodError, method_outputs, method_spec


def _needs(name: str) -> str:
    return (f"method {name!r} cannot detect change: the change rule needs a method whose scores are "
            "probabilities and that gives its image features (the SAM 3 methods: segearth-ov3, proc-sam3)")


def check_change_method(name: str) -> None:
    """MethodError unless the registered method ``name`` declares probability scores and the
    ``features`` output (its ``MethodSpec``), before any model loads."""
    spec = method_spec(name)
    if spec.scores != "probabilities" or FEATURES not in spec.outputs:
        raise MethodError(_needs(name))


def check_segmenter(segmenter: Any, vocab: Any) -> None:
    """MethodError unless ``segmenter``'s built method gives probabilities and features, and per-name
    rows (or one name per class, where class rows are the same)."""
    if segmenter.score_kind != "probabilities" or FEATURES not in method_outputs(segmenter.method):
        raise MethodError(_needs(segmenter.method_name))
    if not segmenter.per_name and any(len(names) > 1 for names in vocab.classes):
        raise MethodError(f"method {segmenter.method_name!r} scores classes, not names, and a class has "
                          "synonyms: the change rule takes the max over each class's names")


@dataclass
class PairScores:
    """Both dates of one image, scored: (N, H, W) per-name scores (on the segmenter's device), the
    (H, W) feature distance F, and the pixels valid at both dates."""

    scores_a: Any
    scores_b: Any
    distance: Any
    valid: np.ndarray
    info: dict[str, Any]


def _prepared(segmenter: Any, image: Any, scale: float | None, valid: np.ndarray | None) -> Any:
    from resegzoo.segmenter.core import PreparedImage

    return image if isinstance(image, PreparedImage) else segmenter.prepare(image, scale, masks=False, valid=valid)


def score_pair(segmenter: Any, vocab: Any, image_a: Any, image_b: Any, valid_a: np.ndarray | None = None,
               valid_b: np.ndarray | None = None, scale: float | None = None) -> PairScores:
    """Score both dates (H, W, 3) uint8 images (or images ``segmenter.prepare`` made, with their
    valid masks) on the same window plan, each in ONE pass that gives its scores and its features."""
    from resegzoo.segmenter.core import PreparedImage

    check_segmenter(segmenter, vocab)
    prep_a = _prepared(segmenter, image_a, scale, valid_a)
    prep_b = _prepared(segmenter, image_b, scale, valid_b)
    if prep_a.image.shape != prep_b.image.shape or prep_a.plan != prep_b.plan:
        raise ValueError(f"the two dates differ in size: {prep_a.image.shape[:2]} and {prep_b.image.shape[:2]}; "
                         "read the second onto the first's grid first")
    features_a: list[tuple[Any, Any]] = []
    features_b: list[tuple[Any, Any]] = []
    scores_a, info = segmenter.scores(prep_a, vocab, features=features_a)
    scores_b, _ = segmenter.scores(prep_b, vocab, features=features_b)
    h, w = prep_a.image.shape[:2]
    distance = stitched_feature_distance(features_a, features_b, prep_a.plan, (h, w))
    valid = np.ones((h, w), dtype=bool)
    for prep in (prep_a, prep_b):
        if isinstance(prep, PreparedImage) and prep.valid is not None:
            valid &= prep.valid
    return PairScores(scores_a, scores_b, distance, valid, info)


class ChangeDetector:
    """The change between two dates of one image in memory: a segmenter (a method with features),
    the vocabulary and the rule's settings.

        detector = ChangeDetector(segmenter, Vocabulary.parse("background; building"), PRESETS["levir-cd"])
        maps = detector.detect(before, after)      # (H, W, 3) uint8 arrays of one place
        maps.change                                # 0 unchanged, 1 changed, 255 nodata

    Rasters of any size go through :func:`resegzoo.change.run.detect_change_files` (block by
    block, Otsu over the whole raster, components followed across blocks)."""

    def __init__(self, segmenter: Any, vocab: Any, settings: ChangeSettings | None = None) -> None:
        check_segmenter(segmenter, vocab)
        self.segmenter, self.vocab = segmenter, vocab
        self.settings = settings or ChangeSettings()

    def score(self, image_a: Any, image_b: Any, valid_a: np.ndarray | None = None,
              valid_b: np.ndarray | None = None, scale: float | None = None) -> PairScores:
        return score_pair(self.segmenter, self.vocab, image_a, image_b, valid_a, valid_b, scale)

    def detect(self, image_a: Any, image_b: Any, valid_a: np.ndarray | None = None,
               valid_b: np.ndarray | None = None) -> ChangeMaps:
        """:class:`~resegzoo.change.rule.ChangeMaps` of two (H, W, 3) uint8 images of one place
        (``valid_*``: (H, W) bool masks; invalid pixels at either date are nodata of the result)."""
        pair = self.score(image_a, image_b, valid_a, valid_b)
        return detect(pair.scores_a, pair.scores_b, pair.distance, self.vocab, self.settings, pair.valid)
