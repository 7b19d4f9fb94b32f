"""SAM 3 (transformers' ``Sam3Model``) as SegEarth-OV3 runs it: one image pass per window, every
name through the prompt encoder and the decoders in one batch, text embeddings cached.

The order of operations follows SAM 3's own image model (``sam3/model/sam3_image.py`` in the
SegEarth-OV-3 repository) where transformers' port differs: a text-only prompt still gets the
geometry encoder's token for the empty prompt appended (``_encode_prompt`` always runs the
geometry encoder; ``Sam3Model.forward`` skips it without boxes). See docs/METHOD.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from resegzoo.methods.segearth_ov3.fusion import FusionSwitches, kept_instances
from resegzoo.methods.segearth_ov3.tokenizer import Tokenize, tokenizer_for

#: SAM 3's processor normalises with mean = std = 0.5 after scaling to [0, 1]
MEAN_STD = 0.5


@dataclass
class RawOutputs:
    """What the model gives for one window and N names, before fusion (float32)."""

    pred_logits: Any  # (N, Q) class logits of the queries
    presence_logits: Any  # (N,) presence logits
    semantic_seg: Any  # (N, 1, h, w) semantic head logits
    pred_masks: Any = None  # (N, Q, h, w) instance mask logits (all queries)


@dataclass
class _Encoded:
    """Per-window state shared by every name: image features and the empty-prompt token."""

    fpn: list[Any]
    pos: list[Any]
    geometry: Any | None  # (1, 1, C) or None without the token
    #: the pixel decoder's convolutions of this image's FPN levels, made once for all its names
    laterals: list[Any] | None = None


@dataclass
class Sam3Scorer:
    """Scores names on windows with a loaded ``Sam3Model``.

    ``precision``: ``fp32`` or ``bf16`` (autocast over the whole model, as SegEarth-OV3 runs on a
    GPU); ``decoder_precision``: the prompt encoder and decoders' own, when it differs (ProC-SAM3
    runs the image encoder in bf16 and the rest in fp32: the image features are cast back to
    float32). Fusion is float32 either way. ``name_batch`` bounds how many names share one decoder
    pass (memory: the pixel decoder holds a 288 x 288 x 256 map per name)."""

    model: Any
    tokenize: Tokenize
    device: Any = "cpu"
    precision: str = "fp32"
    name_batch: int = 16
    geometry_token: bool = True
    tokenizer_source: str = ""
    decoder_precision: str | None = None
    _text: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)
    _kernels: list[Any] | None = field(default=None, repr=False)

    @property
    def resolution(self) -> int:
        size = self.model.config.vision_config.backbone_config.image_size
        return int(size[0] if isinstance(size, (list, tuple)) else size)

    # -- inputs ------------------------------------------------------------------------------
    def pixel_values(self, pixels: Any) -> Any:
        """(B, 3, H, W) or (3, H, W) uint8 -> (B, 3, R, R) float32, as Sam3Processor's
        transform does on a GPU: float bilinear resize with antialias to the square R x R
        (aspect not kept), rounded back to uint8 levels, scaled to [0, 1], then (x - 0.5) / 0.5."""
        import torch
        import torch.nn.functional as F

        x = torch.as_tensor(pixels)
        if x.ndim == 3:
            x = x[None]
        if x.dtype != torch.uint8:
            raise ValueError(f"expected uint8 pixels, got {x.dtype}")
        r = self.resolution
        x = x.to(self.device).float()
        if tuple(x.shape[-2:]) != (r, r):
            # torchvision's v2.Resize on a uint8 tensor outside the CPU's native uint8 kernel:
            # float interpolation, round, back to uint8 (values stay in 0..255: the triangle
            # filter's weights are non-negative)
            x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False, antialias=True).round_()
        return (x / 255.0 - MEAN_STD) / MEAN_STD

    def text(self, names: Sequence[str]) -> tuple[Any, Any]:
        """(N, L, C) prompt features and (N, L) bool mask (True = a real token), cached per name."""
        import torch

        missing = [n for n in dict.fromkeys(names) if n not in self._text]
        if missing:
            ids, mask = self.tokenize(missing)
            with torch.inference_mode(), self._autocast():
                feats = self.model.get_text_features(input_ids=ids.to(self.device),
                                                     attention_mask=mask.to(self.device)).pooler_output
            for i, name in enumerate(missing):
                self._text[name] = (feats[i].float(), mask[i].to(self.device).bool())
        return (torch.stack([self._text[n][0] for n in names]), torch.stack([self._text[n][1] for n in names]))

    def _autocast(self) -> Any:
        from resegzoo.runtime.precision import autocast

        return autocast(self.precision, self.device)

    def _decoder_autocast(self) -> Any:
        from resegzoo.runtime.precision import autocast

        return autocast(self.decoder_precision or self.precision, self.device)

    def _decoder_inputs(self, encoded: list[_Encoded]) -> list[_Encoded]:
        """The image features in the decoders' precision (float32 when only the encoder ran lower)."""
        if self.decoder_precision in (None, self.precision) or self.decoder_precision != "fp32":
            return encoded
        return [_Encoded([f.float() for f in e.fpn], [p.float() for p in e.pos],
                         None if e.geometry is None else e.geometry.float()) for e in encoded]

    # -- the model, in SAM 3's order ---------------------------------------------------------
    def encode_image(self, pixel_values: Any) -> list[_Encoded]:
        """Image features of a batch of windows and, per window, the geometry encoder's token for
        the empty prompt (SAM 3's ``_encode_prompt``: its CLS token, projected, attending to the
        finest kept feature level)."""
        import torch

        out = self.model.vision_encoder(pixel_values)
        # Sam3Model drops the coarsest FPN level (SAM 3's scalp=1) for everything downstream
        fpn, pos = list(out.fpn_hidden_states[:-1]), list(out.fpn_position_encoding[:-1])
        geometry = None
        if self.geometry_token:
            b, dev = fpn[-1].shape[0], fpn[-1].device
            # float32 outside autocast: one token (cheap), and the box branch's roi_align, run
            # here on zero boxes, has no bf16 autocast rule on the CPU
            with torch.autocast(device_type=torch.device(dev).type, enabled=False):
                geometry = self.model.geometry_encoder(
                    box_embeddings=torch.zeros(b, 0, 4, dtype=torch.float32, device=dev),
                    box_mask=torch.zeros(b, 0, dtype=torch.bool, device=dev),
                    box_labels=torch.zeros(b, 0, dtype=torch.long, device=dev),
                    img_feats=[f.float() for f in fpn], img_pos_embeds=[p.float() for p in pos]).last_hidden_state
        return [_Encoded([f[i:i + 1] for f in fpn], [p[i:i + 1] for p in pos],
                         None if geometry is None else geometry[i:i + 1]) for i in range(len(pixel_values))]

    def _prompt(self, enc: _Encoded, names: Sequence[str]) -> tuple[Any, Any]:
        import torch

        feats, mask = self.text(names)
        if enc.geometry is not None:
            n = len(names)
            feats = torch.cat([feats.to(enc.geometry.dtype), enc.geometry.expand(n, -1, -1)], dim=1)
            mask = torch.cat([mask, torch.ones(n, enc.geometry.shape[1], dtype=torch.bool, device=mask.device)], 1)
        return feats, mask

    def _decode(self, enc: _Encoded, names: Sequence[str]) -> dict[str, Any]:
        """Encoder, decoder, scores and the pixel embedding for N names at once (no masks yet)."""
        m, n = self.model, len(names)
        prompt, mask = self._prompt(enc, names)
        vision, position = enc.fpn[-1].expand(n, -1, -1, -1), enc.pos[-1].expand(n, -1, -1, -1)
        encoded = m.detr_encoder(vision_features=[vision], text_features=prompt, vision_pos_embeds=[position],
                                 text_mask=mask)
        decoded = m.detr_decoder(vision_features=encoded.last_hidden_state, text_features=encoded.text_features,
                                 vision_pos_encoding=encoded.pos_embeds_flattened, text_mask=mask,
                                 spatial_shapes=encoded.spatial_shapes)
        hidden = decoded.intermediate_hidden_states
        logits = m.dot_product_scoring(decoder_hidden_states=hidden[-1:], text_features=encoded.text_features,
                                       text_mask=mask).squeeze(-1)[-1]
        queries = hidden[-1]
        # the mask decoder's own steps, split so the instance masks can be made for kept queries only
        md = m.mask_decoder
        states = encoded.last_hidden_state
        attn_mask = _cross_mask(md, states, prompt, mask)
        attended, _ = md.prompt_cross_attn(query=md.prompt_cross_attn_norm(states), key=prompt, value=prompt,
                                           attention_mask=attn_mask)
        pixel_embed = self._pixel_embed(enc, states + attended)
        return {"logits": logits, "presence": decoded.presence_logits[-1].reshape(n), "queries": queries,
                "pixel_embed": pixel_embed}

    def _pixel_embed(self, enc: _Encoded, states: Any) -> Any:
        """(N, C, H, W) pixel embeddings: transformers' ``_embed_pixels`` (the encoder's image
        tokens as the coarsest map, then the pixel decoder), with the image's own part of each
        stage made once per window (:mod:`.pixel_decoder`)."""
        from resegzoo.methods.segearth_ov3.pixel_decoder import lateral_features, pixel_embed, upsampled_conv_kernel

        decoder = self.model.mask_decoder.pixel_decoder
        if enc.laterals is None:
            enc.laterals = lateral_features(decoder, enc.fpn)
        if self._kernels is None:
            self._kernels = [upsampled_conv_kernel(c.weight) for c in decoder.conv_layers]
        h, w = enc.fpn[-1].shape[-2:]
        coarsest = states[:, :h * w].transpose(1, 2).reshape(states.shape[0], states.shape[-1], h, w)
        return pixel_embed(decoder, coarsest, enc.laterals, self._kernels)

    def _masks(self, d: dict[str, Any], index: int, keep: Any | None = None) -> Any:
        """Instance mask logits (K, h, w) of name ``index`` (all queries, or the ``keep`` ones)."""
        md = self.model.mask_decoder
        queries = d["queries"][index] if keep is None else d["queries"][index][keep]
        instance = md.instance_projection(d["pixel_embed"][index:index + 1])[0]
        import torch

        return torch.einsum("qc,chw->qhw", md.mask_embedder(queries), instance)

    def raw_outputs(self, pixels: Any, names: Sequence[str]) -> RawOutputs:
        """The model's raw outputs for one (3, H, W) uint8 window, every query's mask included
        (what the fusion rule is checked against)."""
        import torch

        with torch.inference_mode():
            with self._autocast():
                enc = self._decoder_inputs(self.encode_image(self.pixel_values(pixels)))[0]
            with self._decoder_autocast():
                d = self._decode(enc, names)
                masks = torch.stack([self._masks(d, i) for i in range(len(names))])
                semantic = self.model.mask_decoder.semantic_projection(d["pixel_embed"])
        return RawOutputs(d["logits"].float(), d["presence"].float(), semantic.float(), masks.float())

    def score_windows(self, pixels: Any, names: Sequence[str], switches: FusionSwitches) -> Any:
        """(B, N, H, W) float32 scores of B windows (B, 3, H, W) uint8 for N names, by the rule of
        ``switches`` (``switches.fuse``: SegEarth-OV3's, or another method's on the same raw
        outputs, e.g. ProC-SAM3's)."""
        return self.score_windows_and_features(pixels, names, switches, features=False)[0]

    def score_windows_and_features(self, pixels: Any, names: Sequence[str], switches: FusionSwitches,
                                   features: bool = True, instances: list[Any] | None = None) -> tuple[Any, Any]:
        """:meth:`score_windows` and, from the same image pass, each window's backbone features:
        (B, C, g, g) float32, the FPN level at SAM 3's patch stride (14 px of its input: 72 x 72
        for 1008 px), the last level the decoders use (SegEarth-OV3's change detector reads
        ``backbone_fpn[-1]``); None unless ``features``. ``instances``: a list that gets, per window,
        the instances SAM 3 keeps (:func:`~resegzoo.methods.segearth_ov3.fusion.kept_instances`: score
        above ``switches.confidence_threshold``), whether or not the fusion reads them."""
        import torch

        pixels = torch.as_tensor(pixels)
        if pixels.ndim == 3:
            pixels = pixels[None]
        size = tuple(pixels.shape[-2:])
        out = torch.empty((len(pixels), len(names)) + size, dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            with self._autocast():
                encoded = self.encode_image(self.pixel_values(pixels))
            feats = torch.cat([e.fpn[-1] for e in encoded]).float() if features else None
            encoded = self._decoder_inputs(encoded)
            for b, enc in enumerate(encoded):
                found: list[Any] = []
                for s in range(0, len(names), max(1, self.name_batch)):
                    chunk = list(names[s:s + self.name_batch])
                    with self._decoder_autocast():
                        d = self._decode(enc, chunk)
                        semantic = (self.model.mask_decoder.semantic_projection(d["pixel_embed"])
                                    if switches.semantic else None)
                    raw = RawOutputs(d["logits"].float(), d["presence"].float(),
                                     None if semantic is None else semantic.float())

                    made: dict[int, Any] = {}  # the kept masks, made once for the fusion and the instances

                    def masks(i: int, keep: Any, d: dict[str, Any] = d, made: dict[int, Any] = made) -> Any:
                        if i not in made:
                            with self._decoder_autocast():
                                made[i] = self._masks(d, i, keep).float()
                        return made[i]

                    switches.fuse(raw, size, masks=masks, out=out[b, s:s + len(chunk)])
                    if instances is not None:
                        found.extend(kept_instances(raw, chunk, size, switches.confidence_threshold, masks))
                if instances is not None:
                    instances.append(found)
        return out, feats

    def score_window(self, pixels: Any, names: Sequence[str], switches: FusionSwitches | None = None) -> Any:
        """(N, H, W) float32 scores of one (3, H, W) uint8 window."""
        return self.score_windows(pixels, names, switches or FusionSwitches())[0]


def _cross_mask(mask_decoder: Any, states: Any, prompt: Any, mask: Any) -> Any:
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=mask_decoder.config, inputs_embeds=states,
                                     encoder_hidden_states=prompt, attention_mask=mask)


def load_scorer(folder: str | Path, device: str = "cpu", precision: str = "fp32", **kwargs: Any) -> Sam3Scorer:
    """A :class:`Sam3Scorer` from a folder written by ``Sam3Model.save_pretrained`` (offline)."""
    from resegzoo.weights.loading import load_sam3

    folder = Path(folder)
    tokenize, source = tokenizer_for(folder)  # before the model: a bad file costs no loading
    model = load_sam3(folder, device)
    return Sam3Scorer(model, tokenize, device=device, precision=precision, tokenizer_source=source, **kwargs)
