"""The segmentation pipeline: resize, windows, masks, masked encoder, text scores, stitching."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from resegzoo.methods.base import (
    DEFAULT_METHOD, FEATURES, INSTANCES, SCORE_KINDS, MethodError, ModelLoadError, check_scores, class_of_names,
    method_attribute, method_outputs, names_to_classes, upsample_patch_logits, vocabulary_names, window_outputs)
from resegzoo.raster.opening import NODATA_LABEL
from resegzoo.runtime.precision import autocast_dtype
from resegzoo.runtime import timing
from resegzoo.runtime.prefetch import prefetched
from resegzoo.segmenter.recipe import MAX_WINDOW, SegmentRecipe, protocol_name
from resegzoo.segmenter.spec import SegmenterSpec
from resegzoo.segmenter.windows import (
    Stitcher, Window, WindowPlan, check_work_size, fit_size, resize_image, short_side_size)
from resegzoo.vocabulary import Vocabulary

BACKGROUND = "background"
#: windows are grouped for mask generators in bands of window rows this tall (SAM's native size):
#: a region generator groups a band's windows into regions (whole regions, memory bounded on big
#: images); the maps are made as the encoder's batches need them (:class:`BatchMasks`)
MASK_BAND_PX = 1024


def _row_bands(windows: tuple[Window, ...], band_px: int) -> list[list[Window]]:
    """Split row-major windows into bands of whole window rows spanning at most ``band_px``."""
    bands: list[list[Window]] = []
    for win in windows:
        if bands and win[2] - bands[-1][0][0] <= max(band_px, win[2] - win[0]):
            bands[-1].append(win)
        else:
            bands.append([win])
    return bands


@dataclass
class SegmentResult:
    """What :meth:`Segmenter.segment` returns for one image.

    ``labels`` index ``class_names``; pixels outside the ``valid`` mask given to ``segment`` are
    :data:`NODATA_LABEL` (255) with all-zero ``probs``. With ``inference.background_threshold`` set, the extra class
    ``background`` is the LAST entry of ``class_names`` (``background_index``); ``probs`` always
    has one plane per vocabulary class (no background plane).
    """

    labels: np.ndarray  # (H, W) int32
    #: (K, H, W) float32: softmax over the K vocabulary classes; with ``inference.probabilities:
    #: name`` each class's best name after a softmax over all names (then they need not sum to 1)
    probs: np.ndarray
    class_names: list[str]
    background_index: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: with ``segment(..., objects=True)``: the method's instances made whole across windows
    #: (:class:`resegzoo.objects.instances.Objects` in the image's pixels; ``class_ids`` index the
    #: vocabulary's classes); None when not asked for
    objects: Any = None


class BatchMasks:
    """The segment maps of one image's windows, made as the encoder's batches need them.

    Encoder batches are runs of ``batch_size`` windows within a band. Calling ``masks(k)`` gives
    batch ``k``'s maps (None when the method reads no segments). The mask generator's window
    groups (:func:`resegzoo.masks.windows.window_groups`; each window alone for SLIC and
    Felzenszwalb, regions for SAM) are made whole, the first time a batch needs one of their
    windows, and kept until their batches take them; so the maps are those of one generator call
    for the whole band, made in pieces. Batches must be asked for in order, by one thread at a
    time (the segmenter's prefetch thread asks for the next batch while the encoder runs this one).
    """

    def __init__(self, segmenter: "Segmenter", padded: np.ndarray, bands: list[list[Window]], batch_size: int) -> None:
        self.segmenter = segmenter
        self.padded = padded
        self.bands = bands
        self.batch_size = batch_size
        #: (band, first window) of each encoder batch, in encoding order
        self.batches = [(b, s) for b, band in enumerate(bands) for s in range(0, len(band), batch_size)]
        self._groups: dict[int, tuple[list[list[int]], list[int]]] = {}
        self._ready: dict[tuple[int, int], np.ndarray] = {}

    def windows(self, k: int) -> list[Window]:
        band, start = self.batches[k]
        return self.bands[band][start:start + self.batch_size]

    def __call__(self, k: int) -> list[np.ndarray] | None:
        if not self.segmenter.reads_masks():
            return None
        band, start = self.batches[k]
        windows = self.bands[band]
        groups, group_of = self._groups_of(band)
        stop = min(start + self.batch_size, len(windows))
        for i in range(start, stop):
            if (band, i) not in self._ready:
                group = groups[group_of[i]]
                maps = self.segmenter._window_masks(self.padded, [windows[j] for j in group])
                self._ready.update({(band, j): m for j, m in zip(group, maps)})
        return [self._ready.pop((band, i)) for i in range(start, stop)]

    def _groups_of(self, band: int) -> tuple[list[list[int]], list[int]]:
        if band not in self._groups:
            from resegzoo.masks.windows import window_groups

            windows = self.bands[band]
            groups = window_groups(self.segmenter.mask_generator, windows)
            group_of = [-1] * len(windows)
            for g, group in enumerate(groups):
                for i in group:
                    if not 0 <= i < len(windows) or group_of[i] != -1:
                        raise ValueError(f"mask generator {self.segmenter.masks_name!r}: window_groups must put "
                                         f"each of the {len(windows)} windows in exactly one group")
                    group_of[i] = g
            if -1 in group_of:
                raise ValueError(f"mask generator {self.segmenter.masks_name!r}: window_groups left window "
                                 f"{group_of.index(-1)} out")
            self._groups[band] = (groups, group_of)
        return self._groups[band]


@dataclass
class PreparedImage:
    """An image made ready for the encoder by :meth:`Segmenter.prepare`: resized, padded, its
    windows in bands, and (when asked for) the first encoder batch's segments already made."""

    image: np.ndarray  # the checked (H, W, 3) input
    size: tuple[int, int]  # the working size after the resize rule
    plan: WindowPlan
    padded: np.ndarray
    bands: list[list[Window]]
    first_masks: Any = None  # the first encoder batch's maps
    has_first_masks: bool = False
    valid: np.ndarray | None = None  # (H, W) bool, None = all valid
    dead: list[Window] = field(default_factory=list)  # windows without a valid pixel: never encoded
    masks: BatchMasks | None = None  # every batch's maps, made as the encoder needs them


class Segmenter:
    """A method (:mod:`resegzoo.methods.base`) + a mask generator + a recipe; :meth:`segment` runs
    it on an image. Only the window scores are the method's business: resize, windows, segments,
    stitching, names to classes, the softmax, background, nodata are the same for every method, and
    this module imports no method (it gets a built one through the seam).

    ``Segmenter(encoder, mask_generator, recipe)`` runs the default method (``clip``) around a
    model built by the caller (a DenseEncoder; the spec's ``from_model``);
    ``Segmenter(None, mask_generator, recipe, method=built_method)`` runs any built method."""

    def __init__(self, encoder: Any, mask_generator: Callable[[np.ndarray], np.ndarray] | None,
                 recipe: SegmentRecipe | None = None, *, model_name: str = "", masks_name: str = "",
                 method: Any = None, scores: str | None = None, resolved: Any = None) -> None:
        self.recipe = recipe or SegmentRecipe()
        #: the method's registered name (the recipe's ``method.name`` when a built method is given)
        self.method_name = DEFAULT_METHOD if method is None else self.recipe.method.name
        if method is None:
            if encoder is None:
                raise ValueError(f"give a model for the {DEFAULT_METHOD} method (a DenseEncoder) or a built method=")
            method, scores = _default_method_around(encoder, self.recipe, mask_generator, masks_name)
        self.method = method
        #: the method's model when it exposes one as ``encoder`` (the clip method's DenseEncoder)
        self.encoder = getattr(method, "encoder", encoder)
        self.mask_generator = mask_generator
        self.model_name = model_name
        #: the model spec resolved once (``resegzoo.weights.zoo.ResolvedModel``): what Ray actors get
        self.resolved = resolved
        self.masks_name = masks_name
        #: what the user must know about this setup (random weights, a schedule fallback), in words
        self.notes: list[str] = list(method_attribute(method, "notes"))
        #: what the user must know about the caches (a folder others can write is not used); not
        #: recorded in sidecars: a cache never changes a result
        self.cache_notes: list[str] = [*method_attribute(method, "cache_notes"), *getattr(mask_generator, "notes", [])]
        #: the model's weights are random by design (``ClipVariant.random_weights``)
        self.random_weights = bool(method_attribute(method, "random_weights"))
        #: cosines (softmax with logit_scale) or probabilities already (no softmax): the spec's
        #: ``scores``, or the built method's own ``scores`` attribute
        self.score_kind: str = scores or method_attribute(method, "scores") or "cosine"
        if self.score_kind not in SCORE_KINDS:
            raise ValueError(f"method {self.method_name!r}: scores must be one of {', '.join(SCORE_KINDS)}, "
                             f"got {self.score_kind!r}")
        inf = self.recipe.inference
        native = getattr(method, "window", None)
        if not inf.window and not native:
            raise MethodError(f"method {self.method_name!r} declares no window (its window side): give it a `window` "
                              "attribute, or set inference.window")
        self.window = inf.window or int(native)
        if self.window > MAX_WINDOW:  # the model's own size (a recipe's window is checked with the recipe)
            raise ValueError(f"the model's native window is {self.window:,} px, above the limit of {MAX_WINDOW:,} "
                             "(inference.window); set inference.window")
        self.stride = inf.stride or max(1, self.window // 2)
        p = int(method_attribute(method, "window_multiple"))
        if self.window % p:
            raise ValueError(f"inference.window ({self.window}) must be a multiple of the model's patch size ({p})")
        if self.stride > self.window:
            raise ValueError(f"inference.stride ({self.stride}) is larger than the window ({self.window})")
        self.device = torch.device(method_attribute(method, "device"))
        autocast_dtype(inf.precision, self.device)  # fp16 on a CPU: refused now, not at the first image
        # the generator may be stateful (SAM's predictor) and is called from prefetch threads
        self._mask_lock = threading.Lock()

    @classmethod
    def from_recipe(cls, recipe: SegmentRecipe | None = None, model: Any = None,
                    masks: str | None = None, device: str = "cpu", architecture: str | None = None,
                    method: str | None = None) -> "Segmenter":
        """Build the method named by ``method`` (or the recipe's ``method:``) with the model
        ``model`` (or the recipe's) and the mask generator ``masks`` (or the recipe's), after
        :meth:`SegmenterSpec.check` found the combination sound.

        ``model``: a spec, resolved here once (:func:`resegzoo.methods.base.resolve_method_model`)
        before the mask generator or the model loads, or a ``ResolvedModel`` resolved before (a
        Ray actor gets the driver's)."""
        from resegzoo.weights.zoo import ResolvedModel

        resolved = model if isinstance(model, ResolvedModel) else None
        spec = SegmenterSpec(recipe, model if resolved is None else resolved.spec, masks, device, architecture,
                             resolved=resolved)
        return cls.from_spec(spec, method=method)

    @classmethod
    def from_spec(cls, spec: SegmenterSpec, method: str | None = None) -> "Segmenter":
        """Build the segmenter ``spec`` describes: a spec :meth:`SegmenterSpec.check` made is not
        checked again (a hand-made one, or another ``method``, is checked first), and its model is
        resolved once (:meth:`SegmenterSpec.resolve`) unless it was before (a Ray actor gets the
        driver's; its files are fetched on this machine only when they are not here)."""
        from resegzoo.methods.base import MethodContext, MethodError, method_spec
        from resegzoo.segmenter.models import build_mask_generator
        from resegzoo.weights.loading import on_this_machine

        try:
            if not spec.checked or method is not None:
                spec = SegmenterSpec.check(spec.recipe, model=spec.model, masks=spec.masks, method=method,
                                           device=spec.device, architecture=spec.architecture,
                                           resolved=spec.resolved)
            spec = spec.resolve()
        except MethodError as exc:  # one error type for "this setup cannot be built", as before methods
            raise ModelLoadError(str(exc)) from exc  # the chain keeps the error's kind (the exit status)
        resolved = None if spec.resolved is None else on_this_machine(spec.resolved)
        recipe = spec.recipe
        method_record = method_spec(recipe.method.name)
        generator = None
        if method_record.masks:
            settings = recipe.masks.settings if spec.masks == recipe.masks.generator else {}
            generator = build_mask_generator(spec.masks, settings, precision=recipe.inference.precision)
        context = MethodContext(recipe=recipe, model=spec.model, settings=spec.settings, device=spec.device,
                                precision=recipe.inference.precision, batch_size=recipe.inference.batch_size,
                                mask_generator=generator, masks_name=spec.masks, architecture=spec.architecture,
                                resolved=resolved)
        built = method_record.factory(context)
        return cls(getattr(built, "encoder", None), generator, recipe, model_name=spec.model or "",
                   masks_name=spec.masks, method=built, scores=method_record.scores, resolved=resolved)

    # -- the clip method's parts, where callers read them before the method seam -------------
    @property
    def templates(self) -> Any:
        """Deprecated: ``segmenter.method.templates`` (the clip method's prompt templates)."""
        return _deprecated_part(self.method, "templates")

    @property
    def text(self) -> Any:
        """Deprecated: ``segmenter.method.text`` (the clip method's text-embedding cache)."""
        return _deprecated_part(self.method, "text")

    def text_embeddings(self, vocab: Vocabulary) -> Any:
        """Deprecated: ``segmenter.method.text_embeddings(vocab)`` (the clip method's)."""
        return _deprecated_part(self.method, "text_embeddings")(vocab)

    @property
    def per_name(self) -> bool:
        """Whether rows are names (``inference.probabilities: name``, or a method that scores
        names only) rather than classes."""
        return self.recipe.inference.probabilities == "name" or bool(method_attribute(self.method, "names_only"))

    @property
    def stitched_names(self) -> bool:
        """Whether the stitched rows (:meth:`scores`) are names: :attr:`per_name`, unless a names-only
        method's cosines were reduced to classes in each window before that window's softmax
        (``inference.average: probabilities`` with class probabilities)."""
        return self.per_name and not self._reduce_each_window

    @property
    def _reduce_each_window(self) -> bool:
        inf = self.recipe.inference
        return (self.per_name and inf.probabilities == "class" and self._softmax_each_window)

    @property
    def _softmax_each_window(self) -> bool:
        """Each window's cosines become probabilities here (``inference.average: probabilities``),
        unless the method takes that softmax itself (``window_softmax``)."""
        return (self.score_kind == "cosine" and self.recipe.inference.average == "probabilities"
                and not method_attribute(self.method, "window_softmax"))

    # -- masks -------------------------------------------------------------------------------
    def reads_masks(self) -> bool:
        """Whether windows get segment maps: a mask generator, and a method that reads segments."""
        return self.mask_generator is not None and method_attribute(self.method, "mask_levels")() != 0

    def _window_masks(self, padded: np.ndarray, windows: list[Window]) -> list[np.ndarray] | None:
        if not self.reads_masks():
            return None
        from resegzoo.masks.windows import generate_for_windows

        # SAM runs once per region larger than a window and cuts the maps; others run per window
        with self._mask_lock, timing.stage("masks"):
            maps = generate_for_windows(self.mask_generator, padded, windows)
        for m, (y0, x0, y1, x1) in zip(maps, windows):
            if m.ndim != 3 or m.shape[1:] != (y1 - y0, x1 - x0):
                raise ValueError(f"mask generator {self.masks_name!r} returned shape {m.shape}, "
                                 f"expected (L, {y1 - y0}, {x1 - x0})")
        return maps

    # -- the pipeline ------------------------------------------------------------------------
    def _window_scores(self, padded: np.ndarray, wins: list[Window], maps: list[np.ndarray] | None,
                       vocab: Vocabulary, features: list | None = None,
                       objects: list[Any] | None = None) -> torch.Tensor:
        """(B, R, h, w) scores of a batch of windows from the method: R rows are the classes, or
        the names (:attr:`stitched_names`); h x w is the window, or less where the image is (shift
        placement: an axis shorter than the window gets one smaller crop). With ``inference.average:
        probabilities`` a cosine method's rows are each window's softmax (a names-only method's
        reduced to each class's best name first when the recipe wants class probabilities).
        ``features``: a list that gets each window's (window, image features) from the same pass
        (:meth:`scores`); ``objects``: a list that gets each window's instances as Objects, NMS done."""
        crops = np.stack([padded[y0:y1, x0:x1] for (y0, x0, y1, x1) in wins])
        rows = len(vocabulary_names(vocab)) if self.per_name else len(vocab)
        want = frozenset(name for name, wanted in ((FEATURES, features), (INSTANCES, objects)) if wanted is not None)
        with timing.stage("encode"):
            outputs = window_outputs(self.method, crops, vocab, self.per_name, maps, want)
            out = outputs.scores
        if features is not None:
            features.extend(zip(wins, outputs.features))
        if objects is not None:
            objects.extend(window_objects(self.method_name, outputs.instances, wins, vocab))
        timing.windows_done(len(wins))
        out = check_scores(self.method_name, out, (len(wins), rows, *crops.shape[1:3]))
        if self._softmax_each_window:
            if self._reduce_each_window:
                out = names_to_classes(out, class_of_names(vocab), len(vocab), dim=1)
            out = torch.softmax(self.recipe.inference.logit_scale * out.float(), dim=1)
        return out

    def prepare(self, image: np.ndarray, scale: float | None = None, masks: bool = True,
                valid: np.ndarray | None = None) -> PreparedImage:
        """Check, resize, pad and cut ``image`` into windows; with ``masks`` also make the first
        encoder batch's segments. Runs in prefetch threads while the encoder works on the previous image.

        ``scale`` resizes by a fixed factor instead of the recipe's resize rule (tiles of a big
        raster must all be resized by the whole raster's factor). ``valid`` (H, W) bool: invalid
        pixels are filled from their nearest valid pixel, and windows with no valid pixel are
        left out (never encoded; their logits, which only invalid pixels receive, are zero)."""
        image = check_image(image)
        h, w = image.shape[:2]
        if valid is not None:
            from resegzoo.raster.opening import fill_invalid

            valid = _check_valid(valid, image)
            image = fill_invalid(image, valid) if valid.any() else image
        inf = self.recipe.inference
        size = work_size(h, w, inf) if scale is None else (max(2, round(h * scale)), max(2, round(w * scale)))
        if size != (h, w):
            check_work_size(*size, self.window, f"an image of {h:,} x {w:,} px resized by {resize_setting(inf)}",
                            "lower it")
        else:
            check_work_size(h, w, self.window, "the image", "segment it with segment_raster (block by block)")
        plan = WindowPlan.make(size[0], size[1], self.window, self.stride, inf.window_placement)
        padded = plan.pad(resize_image(image, size, inf.resize_filter), inf.pad_mode)
        bands, dead = _row_bands(plan.windows, MASK_BAND_PX), []
        if valid is not None and not valid.all():
            live = _live_pixels(valid, size, plan)
            alive = [[win for win in band if live[win[0]:win[2], win[1]:win[3]].any()] for band in bands]
            dead = [win for band in bands for win in band if not live[win[0]:win[2], win[1]:win[3]].any()]
            bands = [band for band in alive if band]
        prep = PreparedImage(image, size, plan, padded, bands, valid=valid, dead=dead,
                             masks=BatchMasks(self, padded, bands, inf.batch_size))
        if masks and prep.bands:
            prep.first_masks = prep.masks(0)
            prep.has_first_masks = True
        return prep

    def logits(self, image: np.ndarray | PreparedImage, vocab: Vocabulary, progress: bool = False,
               scale: float | None = None, valid: np.ndarray | None = None) -> tuple[torch.Tensor, dict]:
        """Averaged cosine logits (K, H, W) at the image's own size, on the encoder's device, and
        facts for the sidecar.

        ``image`` may be a :class:`PreparedImage` (then ``scale`` is the one it was prepared
        with). The segments of the next encoder batch are made in a background thread while
        the encoder runs on this one (``inference.prefetch``: how many batches ahead). ``valid``: see :meth:`prepare`.
        Each class's best name; probabilities instead with ``inference.average: probabilities``."""
        rows, info = self.scores(image, vocab, progress=progress, scale=scale, valid=valid)
        if self.stitched_names:
            rows = _names_to_classes(rows, vocab)
        return rows, info

    def scores(self, image: np.ndarray | PreparedImage, vocab: Vocabulary, progress: bool = False,
               scale: float | None = None, valid: np.ndarray | None = None,
               features: list | None = None, objects: list[Any] | None = None) -> tuple[torch.Tensor, dict]:
        """Averaged window scores (R, H, W) at the image's own size, on the encoder's device:
        R = classes, or names with ``inference.probabilities: name``; cosines, or probabilities
        with ``inference.average: probabilities``. See :meth:`logits`. ``features``: a list that
        gets (window, (C, g, g) image features) of every encoded window, in the resized and padded
        frame of the image's window plan, from the same pass (a method with the ``features``
        output, :func:`resegzoo.methods.base.window_outputs`). ``objects``: a list that gets the
        method's instances (its ``instances`` output), whole (:func:`image_objects`), as one Objects."""
        prep = image if isinstance(image, PreparedImage) else self.prepare(image, scale, masks=False, valid=valid)
        h, w = prep.image.shape[:2]
        size, plan, padded = prep.size, prep.plan, prep.padded
        rows = len(vocabulary_names(vocab)) if self.stitched_names else len(vocab)
        stitcher = Stitcher(plan, rows, device=self.device)
        batch = self.recipe.inference.batch_size
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(plan.windows), desc="windows", unit="win", leave=False)
        for win in prep.dead:
            stitcher.add(win, torch.zeros((rows, win[2] - win[0], win[3] - win[1])))
        timing.windows_done(len(prep.dead))  # never encoded, but done: the count up front has them
        if bar is not None:
            bar.update(len(prep.dead))
        found: list[Any] | None = None if objects is None else []
        masks = prep.masks
        if masks is None or masks.batch_size != batch:
            masks = BatchMasks(self, padded, prep.bands, batch)

        def batch_masks(k: int) -> list[np.ndarray] | None:
            if k == 0 and prep.has_first_masks and masks is prep.masks:
                return prep.first_masks
            return masks(k)

        # the next batch's segments are made in a background thread while this batch is encoded
        for k, maps in prefetched(batch_masks, range(len(masks.batches)), self.recipe.inference.prefetch):
            wins = masks.windows(k)
            for win, lg in zip(wins, self._window_scores(padded, wins, maps, vocab, features, found)):
                stitcher.add(win, lg)
            if bar is not None:
                bar.update(len(wins))
        if bar is not None:
            bar.close()
        result = stitcher.result()
        if size != (h, w):
            result = upsample_patch_logits(result[None], (h, w))[0]
        if objects is not None and found is not None:
            objects.append(image_objects(found, size, (h, w), prep.valid))
        info = {"size": [h, w], "resized_to": list(size), "window": self.window, "stride": self.stride,
                "windows": len(plan.windows), **method_attribute(self.method, "facts")(), "protocol": protocol_name(self.recipe)}
        if prep.valid is not None:
            info["windows_skipped_nodata"] = len(prep.dead)
        return result, info

    @property
    def gives_objects(self) -> bool:
        """Whether the method gives instances (its ``instances`` output: ``segment(objects=True)``)."""
        return INSTANCES in method_outputs(self.method)

    def segment(self, image: np.ndarray | PreparedImage, vocab: Vocabulary, progress: bool = False,
                scale: float | None = None, valid: np.ndarray | None = None, objects: bool = False) -> SegmentResult:
        """Segment one (H, W, 3) uint8 RGB image (or a :meth:`prepare`d one) into the
        vocabulary's classes (``scale``, ``valid``: see :meth:`prepare`; invalid pixels get
        :data:`NODATA_LABEL` and zero probabilities). ``objects``: also the method's instances, made
        whole across windows (``SegmentResult.objects``; a method without them: MethodError)."""
        if objects and not self.gives_objects:
            raise MethodError(f"method {self.method_name!r} gives no objects (instances), only class scores")
        if isinstance(image, PreparedImage):
            valid = image.valid
        elif valid is not None:
            valid = _check_valid(valid, check_image(image))
            if not valid.any():  # nothing to segment: no encoder pass at all
                result = _all_nodata(check_image(image), vocab, self.recipe.inference.background_threshold)
                if objects:
                    from resegzoo.objects.instances import Objects

                    result.objects = Objects.empty()
                return result
        found: list[Any] | None = [] if objects else None
        rows, info = self.scores(image, vocab, progress=progress, scale=scale, valid=valid, objects=found)
        if isinstance(image, PreparedImage):
            image = image.image
        inf = self.recipe.inference
        names = self.stitched_names
        if names and inf.probabilities == "class" and self.score_kind == "cosine" and inf.average == "logits":
            rows, names = _names_to_classes(rows, vocab), False  # each class's best name, then the class softmax
        if self.score_kind == "cosine" and inf.average == "logits":
            probs = torch.softmax(inf.logit_scale * rows.float(), dim=0)
        else:  # each window's softmax already, or a method that gives probabilities
            probs = rows.float()
        if names:  # the softmax over every name (probabilities: name), then each class's best name
            probs = _names_to_classes(probs, vocab)
        probs = probs.cpu()
        top, labels_t = probs.max(dim=0)
        labels = labels_t.numpy().astype(np.int32)
        names = vocab.class_names
        labels = self._refined(method_attribute(self.method, "refine_labels"), np.asarray(image), labels)
        background = None
        threshold = self.recipe.inference.background_threshold
        if threshold is not None:
            background = len(names)
            labels = np.where(top.numpy() < threshold, background, labels).astype(np.int32)
            names = names + [BACKGROUND]
        probs_np = probs.numpy().astype(np.float32, copy=False)  # may be the method's own tensor: never written
        if valid is not None and not valid.all():
            labels = np.where(valid, labels, NODATA_LABEL).astype(np.int32)
            probs_np = np.where(valid[None], probs_np, np.float32(0.0))
        return SegmentResult(labels, probs_np, names, background, info, objects=found[0] if found else None)

    def _refined(self, refine: Callable[..., Any], image: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The method's ``refine_labels(image, labels, segments)`` (e.g. CLIP's majority vote), checked;
        ``segments()`` gives the whole image's (L, H, W) segment ids from the mask generator, made only
        when asked for (None: there is no mask generator)."""
        def segments() -> np.ndarray | None:
            if self.mask_generator is None:
                return None
            with self._mask_lock:  # shared with the prefetch threads preparing the next image
                return np.asarray(self.mask_generator(image))

        out = np.asarray(refine(image, labels, segments))
        if out.shape != labels.shape or not np.issubdtype(out.dtype, np.integer):
            raise MethodError(f"method {self.method_name!r} refined the labels into {out.dtype} {out.shape}, expected "
                              f"integers of shape {labels.shape}")
        return out.astype(np.int32, copy=False)

    def describe(self) -> dict[str, Any]:
        """What a sidecar records about this setup; ``--skip-existing`` compares it."""
        weights = self.resolved.fingerprint if self.resolved is not None else None
        return {"method": self.method_name, "model": self.model_name, "weights": weights,
                "random_weights": self.random_weights,
                "masks": self.masks_name, **method_attribute(self.method, "describe")(),
                "recipe": self.recipe.to_dict(), "notes": list(self.notes)}


def window_objects(method: str, found: Any, wins: list[Window], vocab: Vocabulary) -> list[Any]:
    """A batch's instances (per window, a list of :class:`~resegzoo.objects.instances.Instance`) as
    Objects in the padded frame, each window's NMS done; a method that breaks the contract is named."""
    from resegzoo.objects.instances import Objects
    from resegzoo.objects.merge import nms

    if not isinstance(found, (list, tuple)) or len(found) != len(wins):
        raise MethodError(f"method {method!r} gave instances for {len(found) if isinstance(found, (list, tuple)) else '?'} "
                          f"windows, expected a list of {len(wins)} lists")
    class_of = dict(zip(vocabulary_names(vocab), class_of_names(vocab)))
    try:
        return [nms(Objects.from_instances(list(inst), win, class_of, method)) for win, inst in zip(wins, found)]
    except (ValueError, TypeError, AttributeError) as exc:
        raise MethodError(f"method {method!r}: bad instances: {exc}") from None


def image_objects(parts: list[Any], size: tuple[int, int], image_size: tuple[int, int],
                  valid: np.ndarray | None) -> Any:
    """Every window's objects (padded, resized frame) merged across windows
    (:func:`resegzoo.objects.merge.merge`), then in the image's own pixels: resampled where the image
    was resized, cut to the image and its valid pixels."""
    from resegzoo.objects.instances import Objects
    from resegzoo.objects.merge import merge

    objects = merge(Objects.concat(parts))
    if tuple(size) != tuple(image_size):
        objects = objects.resampled(size[0] / image_size[0], size[1] / image_size[1])
    return objects.clipped(valid, image_size)


def _deprecated_part(method: Any, name: str) -> Any:
    """``method.<name>``, read through the Segmenter as before the method seam, with a warning."""
    import warnings

    warnings.warn(f"Segmenter.{name} is deprecated: it is the method's; use segmenter.method.{name}",
                  DeprecationWarning, stacklevel=3)
    return getattr(method, name)


def _default_method_around(model: Any, recipe: SegmentRecipe, mask_generator: Any, masks_name: str) -> tuple[Any, str]:
    """The default method built around ``model`` (the spec's ``from_model``), and its score kind."""
    from resegzoo.methods.base import MethodContext, method_spec, parse_settings

    spec = method_spec(DEFAULT_METHOD)
    if spec.from_model is None:
        raise MethodError(f"method {spec.name!r} is built from a model spec only; use Segmenter.from_recipe")
    own = recipe.method.settings if recipe.method.name == spec.name else {}
    context = MethodContext(recipe=recipe, model=None, settings=parse_settings(spec, own),
                            precision=recipe.inference.precision, batch_size=recipe.inference.batch_size,
                            mask_generator=mask_generator, masks_name=masks_name)
    return spec.from_model(model, context), spec.scores


def _names_to_classes(values: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """(N, H, W) per-name values -> (K, H, W): each class's best name."""
    return names_to_classes(values, class_of_names(vocab), len(vocab), dim=0)


def _check_valid(valid: Any, image: np.ndarray) -> np.ndarray:
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != image.shape[:2]:
        raise ValueError(f"valid mask {valid.shape} does not match the image {image.shape[:2]}")
    return valid


def _live_pixels(valid: np.ndarray, size: tuple[int, int], plan: WindowPlan) -> np.ndarray:
    """Which pixels of the padded, resized frame see any valid source pixel (a generous test:
    antialiased resize, so windows touching valid data by a fraction of a pixel are kept)."""
    import torch.nn.functional as F

    t = torch.from_numpy(valid.astype(np.float32))[None, None]
    if tuple(valid.shape) != tuple(size):
        t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
        t = F.max_pool2d(t, 3, stride=1, padding=1)  # one more pixel of margin for the upsampling back
    return plan.pad(t[0, 0].numpy() > 0)


def _all_nodata(image: np.ndarray, vocab: Vocabulary, threshold: float | None) -> SegmentResult:
    h, w = image.shape[:2]
    names = vocab.class_names + ([BACKGROUND] if threshold is not None else [])
    return SegmentResult(np.full((h, w), NODATA_LABEL, np.int32), np.zeros((len(vocab), h, w), np.float32), names,
                         len(vocab) if threshold is not None else None, {"size": [h, w], "windows": 0, "all_nodata": True})


def work_size(height: int, width: int, inference: Any) -> tuple[int, int]:
    """The size the recipe's resize rule gives an image (``inference.resize``)."""
    if inference.resize == "fit":
        return fit_size(height, width, inference.fit_scale)
    return short_side_size(height, width, inference.short_side)


def resize_setting(inference: Any) -> str:
    """The recipe setting that sizes the resize, as messages name it: ``inference.short_side = 448``."""
    key, value = ("fit_scale", inference.fit_scale) if inference.resize == "fit" else ("short_side", inference.short_side)
    return f"inference.{key} = {'null' if value is None else value}"


def work_scale(height: int, width: int, inference: Any) -> float | None:
    """The factor the recipe's resize rule applies to an image of this size (None: no resize);
    tiles of a big raster are all resized by the whole raster's factor."""
    if inference.resize == "fit":
        if inference.fit_scale is None:
            return None
        return min(max(inference.fit_scale) / max(height, width), min(inference.fit_scale) / min(height, width))
    return None if inference.short_side is None else inference.short_side / min(height, width)


def check_image(image: Any) -> np.ndarray:
    """An (H, W, 3) uint8 array of at least 2 x 2 pixels, else ValueError saying what is wrong."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image (0..255), got {arr.dtype}; scale it first "
                         "(resegzoo.raster.reader.read_image stretches 16-bit and float data)")
    if min(arr.shape[:2]) < 2:
        raise ValueError(f"the image is {arr.shape[0]}x{arr.shape[1]} px; at least 2x2 is needed")
    return arr

