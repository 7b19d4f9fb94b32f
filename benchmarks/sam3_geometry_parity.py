"""SAM 3's own geometry encoder against resegzoo's empty-prompt token on transformers' modules.

SAM 3's image model (``sam3/model/sam3_image.py``, ``_encode_prompt``) runs its geometry encoder
on the empty prompt for a text-only prompt and appends the result (one token: its CLS embedding,
projected and normed, attending to the image features) after the text tokens; transformers'
``Sam3Model.forward`` adds no geometry token without boxes. This script

1. builds SAM 3's own ``SequenceGeometryEncoder`` (its ``model_builder`` settings, at the width
   of the transformers config) from a checkout of SegEarth-OV-3 (only ``sam3/model``'s plain
   PyTorch modules are imported: no network, none of its heavy dependencies), copies the weights
   of the transformers module into it, and compares the empty-prompt token on the same image
   features;
2. measures how much the token changes SAM 3's outputs and SegEarth-OV3's scores (transformers'
   path without the token against resegzoo's with it), on the same random model and image.

    python benchmarks/sam3_geometry_parity.py --sam3-repo /path/to/SegEarth-OV-3 [--full]

``--full`` uses the full-size random SAM 3 config for step 1 (256 wide, 3 layers, 72 x 72
features); step 2 always runs the tiny test model (the full model is too slow on a CPU).
"""
from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path


def import_official(repo: Path):
    """SAM 3's geometry encoder classes, without running ``sam3/__init__.py`` (which imports the
    whole model builder and its dependencies)."""
    pkg = types.ModuleType("sam3")
    pkg.__path__ = [str(repo / "sam3")]
    sys.modules.setdefault("sam3", pkg)
    from sam3.model.encoder import TransformerEncoderLayer
    from sam3.model.geometry_encoders import Prompt, SequenceGeometryEncoder
    from sam3.model.model_misc import MultiheadAttentionWrapper
    from sam3.model.position_encoding import PositionEmbeddingSine

    return TransformerEncoderLayer, Prompt, SequenceGeometryEncoder, MultiheadAttentionWrapper, PositionEmbeddingSine


def official_encoder(hf, classes):
    """SAM 3's ``_create_geometry_encoder`` at the transformers module's width, its weights."""
    import torch

    layer_cls, _, encoder_cls, mha, pos_cls = classes
    cfg = hf.config
    d, heads, ff = cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size
    layer = layer_cls(activation="relu", d_model=d, dim_feedforward=ff, dropout=0.1, pos_enc_at_attn=False,
                      pre_norm=True, self_attention=mha(num_heads=heads, dropout=0.1, embed_dim=d, batch_first=False),
                      pos_enc_at_cross_attn_queries=False, pos_enc_at_cross_attn_keys=True,
                      cross_attention=mha(num_heads=heads, dropout=0.1, embed_dim=d, batch_first=False))
    enc = encoder_cls(pos_enc=pos_cls(num_pos_feats=d, normalize=True, scale=None, temperature=10000),
                      encode_boxes_as_points=False, points_direct_project=True, points_pool=True,
                      points_pos_enc=True, boxes_direct_project=True, boxes_pool=True, boxes_pos_enc=True,
                      d_model=d, num_layers=cfg.num_layers, layer=layer, use_act_ckpt=False, add_cls=True,
                      add_post_encode_proj=True)
    sd = {"cls_embed.weight": hf.cls_embed.weight, "final_proj.weight": hf.final_proj.weight,
          "final_proj.bias": hf.final_proj.bias, "norm.weight": hf.prompt_layer_norm.weight,
          "norm.bias": hf.prompt_layer_norm.bias, "encode_norm.weight": hf.output_layer_norm.weight,
          "encode_norm.bias": hf.output_layer_norm.bias}
    for i, lay in enumerate(hf.layers):
        p = f"encode.{i}."
        for ours, theirs in (("self_attn", "self_attn"), ("cross_attn", "cross_attn_image")):
            a = getattr(lay, ours)
            sd[p + theirs + ".in_proj_weight"] = torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])
            sd[p + theirs + ".in_proj_bias"] = torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias])
            sd[p + theirs + ".out_proj.weight"] = a.o_proj.weight
            sd[p + theirs + ".out_proj.bias"] = a.o_proj.bias
        for k, norm in (("norm1", "layer_norm1"), ("norm2", "layer_norm2"), ("norm3", "layer_norm3")):
            sd[p + k + ".weight"] = getattr(lay, norm).weight
            sd[p + k + ".bias"] = getattr(lay, norm).bias
        sd[p + "linear1.weight"], sd[p + "linear1.bias"] = lay.mlp.fc1.weight, lay.mlp.fc1.bias
        sd[p + "linear2.weight"], sd[p + "linear2.bias"] = lay.mlp.fc2.weight, lay.mlp.fc2.bias
    missing, _ = enc.load_state_dict({k: v.detach().clone() for k, v in sd.items()}, strict=False)
    # what stays random is only used by point and box prompts, never by the empty prompt
    assert all(k.split(".")[0] in {"label_embed", "points_direct_project", "points_pool_project",
                                   "points_pos_enc_project", "boxes_direct_project", "boxes_pool_project",
                                   "boxes_pos_enc_project", "img_pre_norm"} for k in missing), missing
    return enc.eval()


def token_parity(model, classes, size: int, seed: int = 0) -> float:
    """max |official - resegzoo| of the empty-prompt token on random image features."""
    import torch

    _, prompt_cls, *_ = classes
    hf = model.geometry_encoder
    d = hf.config.hidden_size
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(1, d, size, size, generator=g)
    pos = torch.randn(1, d, size, size, generator=g)
    official = official_encoder(hf, classes)
    if not torch.cuda.is_available():
        # SAM 3's box branch pins a 4-number scale tensor (a transfer speed-up that changes no
        # value); pinning needs a CUDA driver, so on a CPU-only machine it is the identity
        torch.Tensor.pin_memory = lambda self, *a, **k: self
    empty = prompt_cls(box_embeddings=torch.zeros(0, 1, 4), box_mask=torch.zeros(1, 0, dtype=torch.bool))
    with torch.no_grad():
        theirs, theirs_mask = official(geo_prompt=empty, img_feats=[feats.flatten(2).permute(2, 0, 1)],
                                       img_sizes=[(size, size)], img_pos_embeds=[pos.flatten(2).permute(2, 0, 1)])
        ours = hf(box_embeddings=torch.zeros(1, 0, 4), box_mask=torch.zeros(1, 0, dtype=torch.bool),
                  box_labels=torch.zeros(1, 0, dtype=torch.long), img_feats=[feats],
                  img_pos_embeds=[pos]).last_hidden_state
    assert theirs.shape == (1, 1, d) and not bool(theirs_mask.any()), (theirs.shape, theirs_mask)
    return float((theirs[:, 0] - ours[:, 0]).abs().max())


def output_effect(folder: Path, names: list[str], seed: int = 1) -> dict[str, float]:
    """How much the token moves the raw outputs and the fused scores (tiny random model)."""
    import torch

    from resegzoo.methods.segearth_ov3.fusion import FusionSwitches, instance_scores
    from resegzoo.methods.segearth_ov3.model import load_scorer

    scorer = load_scorer(folder)
    px = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    with_token = scorer.raw_outputs(px, names)
    scorer.geometry_token = False
    without = scorer.raw_outputs(px, names)
    s_with = instance_scores(with_token.pred_logits, with_token.presence_logits)
    s_without = instance_scores(without.pred_logits, without.presence_logits)
    thr = float(s_without.median())
    fused = {}
    for flag in (True, False):
        scorer.geometry_token = flag
        scorer._text.clear()
        fused[flag] = scorer.score_window(px, names, FusionSwitches(confidence_threshold=thr))
    return {"class logits": float((with_token.pred_logits - without.pred_logits).abs().max()),
            "presence logits": float((with_token.presence_logits - without.presence_logits).abs().max()),
            "instance scores": float((s_with - s_without).abs().max()),
            "mask logits": float((with_token.pred_masks - without.pred_masks).abs().max()),
            "semantic logits": float((with_token.semantic_seg - without.semantic_seg).abs().max()),
            "fused scores": float((fused[True] - fused[False]).abs().max()),
            "kept instances changed": int(((s_with > thr) != (s_without > thr)).sum()),
            "argmax pixels changed": float((fused[True].argmax(0) != fused[False].argmax(0)).float().mean())}


def main() -> None:
    import tempfile

    import torch

    from resegzoo.testing import make_tiny_sam3, save_tiny_sam3

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sam3-repo", type=Path, required=True, help="a checkout of earth-insights/SegEarth-OV-3")
    ap.add_argument("--full", action="store_true", help="full-size geometry encoder for the token check")
    args = ap.parse_args()
    classes = import_official(args.sam3_repo)
    if args.full:
        from transformers import Sam3GeometryEncoderConfig
        from transformers.models.sam3.modeling_sam3 import Sam3GeometryEncoder

        torch.manual_seed(0)
        geo = Sam3GeometryEncoder(Sam3GeometryEncoderConfig()).eval()
        with torch.no_grad():
            for p in geo.parameters():
                p.add_(torch.randn_like(p) * 0.02)
        model, size = types.SimpleNamespace(geometry_encoder=geo), 72
    else:
        model, size = make_tiny_sam3(), 16
    print(f"empty-prompt token, SAM 3's own encoder vs transformers' modules: max |diff| = "
          f"{token_parity(model, classes, size):.3g} (width {model.geometry_encoder.config.hidden_size}, "
          f"{size} x {size} features)")
    names = ["building", "road", "tree", "water", "car", "grass", "bare soil", "river"]
    with tempfile.TemporaryDirectory() as tmp:
        effect = output_effect(save_tiny_sam3(Path(tmp) / "m"), names)
    print("effect of the token (tiny random model, 8 names, threshold = median instance score):")
    for k, v in effect.items():
        print(f"  {k:24s} {v:.4g}")


if __name__ == "__main__":
    main()
