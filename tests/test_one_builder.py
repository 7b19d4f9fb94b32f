"""Issue 8, item 17: one open_clip builder (resegzoo.weights.build.build_clip) serves segment, eval and
compose's scoring, so compose scores CoCa models, old logit_scale layouts and HF/timm towers the
way segment loads them."""
from __future__ import annotations

import copy

import torch

from compose_helpers import save_folder
from resegzoo.compose import compose, recipe_from_mapping
from resegzoo.compose.inputs import resolve_input
from resegzoo.compose.weighting.models import load_scoring_model
from resegzoo.weights.loading import load_clip
from resegzoo.testing import tiny_model_config


def _tiny_coca_config() -> dict:
    cfg = tiny_model_config(output_tokens=True, attentional_pool=True, attn_pooler_heads=4)
    cfg["text_cfg"].update(context_length=76, embed_cls=True, output_tokens=True)
    cfg["custom_text"] = True  # as open_clip's coca_*.json
    cfg["multimodal_cfg"] = {"context_length": 76, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 1,
                             "attn_pooler_heads": 4}
    return cfg


def _coca(seed: int):
    from open_clip.coca_model import CoCa

    cfg = _tiny_coca_config()
    cfg.pop("custom_text")
    torch.manual_seed(seed)
    return CoCa(**cfg).eval()


def _prompt_quality(folders):
    return recipe_from_mapping({"inputs": folders, "weighting": {"strategy": "prompt-quality"},
                                "vocabulary": {"classes": ["red", "blue", "green"]}})


def test_compose_scores_coca_models_like_segment_loads_them(tmp_path):
    base = _coca(0)
    folders = []
    for i in range(2):
        model = copy.deepcopy(base)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.01)
        folders.append(str(save_folder(model, tmp_path / f"coca{i}", _tiny_coca_config())))
    result = compose(_prompt_quality(folders), dry_run=True, progress=False)
    assert len(result.weighting.weights) == 2 and abs(sum(result.weighting.weights) - 1) < 1e-6

    scoring = load_scoring_model(resolve_input("coca0", folders[0]))
    segmenting = load_clip(folders[0])
    assert type(scoring.model) is type(segmenting.model)
    tokens = segmenting.tokenizer(["a red thing", "blue"])
    assert torch.equal(scoring.tokenizer(["a red thing", "blue"]), tokens)
    with torch.no_grad():
        expected = segmenting.model.encode_text(tokens, normalize=True)
    torch.testing.assert_close(scoring.encode_text(["a red thing", "blue"]), expected.float())


def test_compose_scores_checkpoints_with_a_one_element_logit_scale(tmp_path, tiny_clip):
    """Older checkpoints store logit_scale with shape [1]; the loader reshapes it, scoring too."""
    folders = []
    for i in range(2):
        sd = {k: v.clone() for k, v in tiny_clip.state_dict().items()}
        sd["logit_scale"] = sd["logit_scale"].reshape(1) + i * 0.01
        folders.append(str(save_folder(sd, tmp_path / f"m{i}")))
    result = compose(_prompt_quality(folders), dry_run=True, progress=False)
    assert len(result.weighting.weights) == 2
    scoring = load_scoring_model(resolve_input("m0", folders[0]))
    assert scoring.model.logit_scale.shape == tiny_clip.logit_scale.shape


def test_scoring_and_segment_build_through_the_same_builder(tmp_path, monkeypatch):
    from resegzoo.weights import build

    seen = []
    real = build._build_model

    def spy(model_config):
        seen.append(copy.deepcopy(model_config))
        return real(model_config)

    monkeypatch.setattr(build, "_build_model", spy)
    folder = save_folder(_coca(1), tmp_path / "c", _tiny_coca_config())
    load_scoring_model(resolve_input("c", str(folder)))
    load_clip(str(folder))
    assert len(seen) == 2 and seen[0] == seen[1], "scoring and segment build through the same builder"


def test_the_builder_switches_tower_downloads_off(tmp_path, tiny_clip):
    """A config asking a timm tower for pretrained weights: the checkpoint has them all, so the
    builder never downloads (scoring used to build the tower with the download on)."""
    from resegzoo.weights.build import _build_model

    timm_cfg = {"embed_dim": 32, "vision_cfg": {"timm_model_name": "vit_tiny_patch16_224", "timm_model_pretrained": True,
                                                "image_size": 224, "timm_pool": "", "timm_proj": "linear"},
                "text_cfg": tiny_model_config()["text_cfg"]}
    model = _build_model(timm_cfg)  # offline (HF_HUB_OFFLINE=1): a pretrained download would fail here
    assert model.visual.trunk is not None
    folder = save_folder(model, tmp_path / "timm", timm_cfg)
    scoring = load_scoring_model(resolve_input("timm", str(folder)))
    assert type(scoring.model.visual).__name__ == "TimmModel"
