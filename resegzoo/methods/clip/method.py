"""The ``clip`` method: dense CLIP scores, ReSeg-CLIP's and the peer CLIP methods'.

A DenseEncoder (open_clip's ViT re-run with segment-masked attention, ``encoder.py``) gives patch
embeddings of each window; the vocabulary's names under the recipe's templates give text
embeddings (``text.py``, once per vocabulary); their cosines, upsampled to the window, are the
window's scores. The schedule, the last block and the extras of the recipe choose between
ReSeg-CLIP and the peers (MaskCLIP, SCLIP, ClearCLIP, NACLIP, SegEarth-OV). The rest of the
pipeline (``resegzoo.segmenter.core``) sees only the method seam (:mod:`resegzoo.methods.base`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from resegzoo.methods.base import MethodBase, upsample_patch_logits
from resegzoo.methods.clip import NAME  # noqa: F401  (also importable from here, as from the old clip_method)
from resegzoo.methods.clip.extras import add_cls_bias, majority_vote
from resegzoo.methods.clip.settings import ClipSettings, parse_settings, settings_of
from resegzoo.methods.clip.schedule import levels_needed, token_ids_from_pixels
from resegzoo.methods.clip.text import TextCache, TextEmbeddings, load_templates
from resegzoo.runtime.precision import autocast
from resegzoo.vocabulary import Vocabulary



def encoder_device(encoder: Any) -> Any:
    """The torch device an encoder runs on (encoders that do not say: the CPU)."""
    return torch.device(getattr(encoder, "device", "cpu"))


class ClipMethod(MethodBase):
    """A DenseEncoder, the recipe's shared inference settings and the method's own (templates,
    readout, extras; :class:`~resegzoo.methods.clip.settings.ClipSettings`; see the module).

    It gives class rows as well as name rows: a class's score is the best of its names' patch
    cosines BEFORE the upsampling to the window (the reference code's order), and with
    ``inference.average: probabilities`` it takes each window's softmax itself, before cutting the
    padding of a short crop (SegEarth-OV's ``forward_slide``).

    ``settings``: the parsed settings (the factory's ``context.settings``); None: the recipe's
    ``method.settings``."""

    names_only = False
    window_softmax = True

    def __init__(self, encoder: Any, recipe: Any, settings: ClipSettings | None = None) -> None:
        self.encoder = encoder
        self.recipe = recipe
        self.settings = settings if settings is not None else settings_of(recipe)
        pinned = getattr(encoder, "prompt_templates", None)
        self.templates: tuple[str, ...] = tuple(pinned) if pinned else load_templates(self.settings.templates)
        self.text = TextCache(encoder)
        self.window = int(encoder.image_size)
        self.window_multiple = int(encoder.patch_size)
        self.device = encoder_device(encoder)
        self.notes: list[str] = []
        self.cache_notes: list[str] = []  # not recorded in sidecars (see Segmenter.cache_notes)
        self.random_weights = False
        #: the mask generator's name, for messages (the factory sets it)
        self.masks_name = ""

    def mask_levels(self) -> int | None:
        """How many segment levels the encoder reads; None when it does not say (then masks are made)."""
        schedule = getattr(self.encoder, "schedule", None)
        return None if schedule is None else levels_needed(schedule)

    def text_embeddings(self, vocab: Vocabulary) -> TextEmbeddings:
        return self.text.get(vocab, self.templates)

    def _normalise(self, windows: np.ndarray) -> torch.Tensor:
        # uint8 goes to the device (a quarter of the bytes of float32), the arithmetic happens there
        x = torch.from_numpy(windows).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.encoder.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.encoder.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def window_scores(self, windows: np.ndarray, vocab: Vocabulary, per_name: bool,
                      maps: list[np.ndarray] | None = None) -> torch.Tensor:
        """(B, R, h, w) scores of a batch of (B, h, w, 3) uint8 windows (the method seam)."""
        return self.window_logits(windows, maps, self.text_embeddings(vocab), self.settings.extras.cls_token_lambda,
                                  per_name)

    def window_logits(self, windows: np.ndarray, maps: list[np.ndarray] | None, text: TextEmbeddings,
                      lam: float, per_name: bool) -> torch.Tensor:
        """(B, R, h, w) scores of a batch of (B, h, w, 3) windows: R rows are the classes, or the
        names with ``per_name``; cosines, or each window's softmax with ``inference.average:
        probabilities``."""
        # a crop smaller than the window (shift placement, an axis shorter than the window) that is
        # no patch multiple is padded with zeros in the NORMALISED image, centred, and its scores
        # cut back after the readout: SegEarth-OV's forward_slide
        h, w = windows.shape[1:3]
        patch = int(self.encoder.patch_size)
        left, right, top, bottom = patch_padding(h, w, patch)
        images = self._normalise(windows)
        if left or right or top or bottom:
            images = torch.nn.functional.pad(images, (left, right, top, bottom))
        size = (top + h + bottom, left + w + right)
        token_ids = None
        if maps is not None:
            ids = torch.from_numpy(np.stack(maps)).to(self.device).long()
            ids = torch.nn.functional.pad(ids, (left, right, top, bottom))  # 0: covered by no segment
            token_ids = token_ids_from_pixels(ids, patch)
        inf = self.recipe.inference
        # the feature readout upsamples the tokens BEFORE L2 normalisation (the reference code's
        # order); an encoder that only gives normalised ones is upsampled as it is
        readout = self.settings.readout
        raw = readout == "features" and bool(getattr(self.encoder, "raw_features", False))
        with torch.inference_mode():
            with autocast(inf.precision, self.device):  # the image tower only
                extra = {"normalize": False} if raw else {}
                out = self.encoder.encode_dense(images, token_ids, return_cls=lam != 0, **extra)
            feats, cls_feat = out if lam != 0 else (out, None)
            feats = torch.as_tensor(feats).float()
            if raw and cls_feat is not None:
                cls_feat = torch.nn.functional.normalize(torch.as_tensor(cls_feat).float(), dim=-1)
            if readout == "features":
                scores = readout_features(feats, text, per_name, size)
            else:
                scores = upsample_patch_logits(text.rows(feats, per_name).permute(0, 3, 1, 2), size)
            if cls_feat is not None:
                scores = add_cls_bias(scores, text.rows(torch.as_tensor(cls_feat).float(), per_name), lam)
            if inf.average == "probabilities":
                scores = torch.softmax(inf.logit_scale * scores, dim=1)
            return scores[:, :, top:top + h, left:left + w]

    def refine_labels(self, image: np.ndarray, labels: np.ndarray, segments: Any) -> np.ndarray:
        """``extras.majority_vote``: each finest segment of the whole image takes its majority label
        (``segments()``: the pipeline's (L, H, W) segment ids of ``image``, None without a generator)."""
        if not self.settings.extras.majority_vote:
            return labels
        levels = segments()
        if levels is None:
            raise ValueError("extras.majority_vote needs a mask generator with at least one level")
        if levels.shape[0] == 0:
            generator = f"mask generator {self.masks_name!r}" if self.masks_name else "the mask generator"
            raise ValueError(f"extras.majority_vote needs segments, but {generator} gives none; pick e.g. --masks slic")
        return majority_vote(labels, levels[0])

    def facts(self) -> dict[str, Any]:
        return {"templates": len(self.templates)}

    def describe(self) -> dict[str, Any]:
        from resegzoo.methods.clip.encoder import describe

        return {"encoder": describe(self.encoder), "templates": list(self.templates)}


def build_clip_method(context: Any) -> ClipMethod:
    """The ``clip`` method's factory: the CLIP the API resolved (``context.resolved``) as a
    masked-attention encoder configured by the recipe, checked against the mask generator before any image."""
    from resegzoo.methods.clip.build import build_encoder, fit_schedule, text_tower_key
    from resegzoo.weights.resolve import random_weights_note

    settings = parse_settings(context.settings)
    model = context.resolved or context.model  # resolved once by the API (a context made by hand: a spec)
    encoder = build_encoder(model, settings, device=context.device, architecture=context.architecture)
    notes = fit_schedule(encoder, context.mask_generator, context.masks_name, settings)  # before any image is read
    method = ClipMethod(encoder, context.recipe, settings)
    method.masks_name = context.masks_name
    # text embeddings stored on disk (unless other users can write the cache folder: a note)
    cache_note = method.text.store_on_disk(text_tower_key(model, encoder, context.architecture))
    random_note = random_weights_note(model)
    method.random_weights = random_note is not None
    method.notes = ([random_note] if random_note else []) + notes
    method.cache_notes = [cache_note] if cache_note else []
    return method


def clip_method_around(encoder: Any, context: Any) -> ClipMethod:
    """The ``clip`` method around a DenseEncoder the caller built (the seam's ``from_model``: the
    Python API's ``Segmenter(encoder, mask_generator, recipe)``)."""
    method = ClipMethod(encoder, context.recipe, parse_settings(context.settings))
    method.masks_name = context.masks_name
    return method


def readout_features(feats: torch.Tensor, text: TextEmbeddings, per_name: bool,
                     size: tuple[int, int]) -> torch.Tensor:
    """The official ReSeg-CLIP readout: (B, gh, gw, C) patch features (as the encoder gives them
    before L2 normalisation) upsampled bilinearly to ``size``, L2-normalised per pixel, then
    cosines with the text: (B, R, h, w). One window at a time, since the upsampled features are
    C planes per window."""
    import torch.nn.functional as F

    out = []
    for f in feats:
        up = upsample_patch_logits(f.permute(2, 0, 1)[None], size)[0]
        up = F.normalize(up, dim=0).permute(1, 2, 0)
        out.append(text.rows(up, per_name).permute(2, 0, 1))
    return torch.stack(out)


def patch_padding(height: int, width: int, patch: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding that makes a crop a multiple of ``patch``, centred
    (the left/top half rounded down), as SegEarth-OV pads a crop smaller than its window."""
    def split(n: int) -> tuple[int, int]:
        extra = (-n) % patch
        return extra // 2, extra - extra // 2

    (left, right), (top, bottom) = split(width), split(height)
    return left, right, top, bottom
