"""SAM 3 methods in resegzoo against the peers' own code, on the same random SAM 3.

The baselines are the peers' segmentors run verbatim from fetched checkouts (never committed):
SegEarth-OV-3's ``segearthov3_segmentor.py`` (``SegEarthOV3Segmentation``) with SAM 3's own
``Sam3Processor`` (its ``sam3/model/sam3_image_processor.py``), and ProC-SAM3's
``sam3_segmentor_cached.py`` (``CachedSAM3OpenSegmentor``) with its ``core/`` execution engine,
result reducer and prompt bank and its own ``Sam3Processor``. What they are given in place of SAM 3's
own image model (which needs its checkpoint and dependencies) is :class:`Sam3ImageAdapter`: the
interface their code calls (``backbone.forward_image``, ``backbone.forward_text``,
``forward_grounding``, ``_get_dummy_prompt``) computed with transformers' ``Sam3Model`` -- the
modules resegzoo runs, with the same random weights -- in SAM 3's order (the empty-prompt geometry
token appended, every query's mask made, as SAM 3's ``forward_grounding`` does). mmseg/mmengine,
which their segmentors subclass and return results in, are replaced by minimal stand-ins.

SAM 3's processor takes torchvision's float resize path, as on the GPUs the peers run on (resegzoo
follows that path; torchvision's uint8 kernel on a CPU rounds differently).

resegzoo runs the whole pipeline (``Segmenter.segment``: windows, the method, stitching, names to
classes, background threshold) on the same image file; both sides read the PNG inside the timing.
Thresholds are realistic for random weights: ``confidence_threshold`` keeps about ``--kept`` of
the queries and ``prob_thd`` sends about ``--background`` of the pixels to the background class
(both measured on resegzoo's raw outputs first). Labels must agree on >= 0.999 of the pixels.

    python benchmarks/bench_sam3.py --segearth-repo DIR --proc-repo DIR [--config small] [--names 8]
        [--size 1024] [--repeats 3]

``--config small``: SAM 3's prompt encoder and decoders at full width and depth, a 4-block ViT at
336 px (so 96 px masks) and a 12-layer text encoder; ``full``: every size SAM 3's (1008 px input,
288 px masks; slow on a CPU). Both peers' processors run at the model's input size (ProC-SAM3
takes ``processor_resolution``; SegEarth-OV3 builds SAM 3's processor with its default, 1008 px,
so the benchmark builds it again, same class, with ``resolution`` set to the model's). Rows: SegEarth-OV3 on the whole image and with its OpenEarthMap
protocol (512 px windows at stride 512), ProC-SAM3 on the whole image. Repeats are interleaved
(peer, resegzoo, peer, ...) so load on a shared machine hits both alike; the table gives medians,
the ratio of medians and the spread of the per-repeat ratios.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import resource
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

NAMES = ["background", "building", "road", "water", "tree", "car", "bare soil", "agricultural", "ship", "bridge",
         "roof", "grass", "cropland", "forest", "parking lot", "railway"]

SMALL = {"vision_config": {"backbone_config": {"model_type": "sam3_vit_model", "num_hidden_layers": 4,
                                               "global_attn_indexes": [3], "image_size": 336},
                           "backbone_feature_sizes": [[96, 96], [48, 48], [24, 24]]},
         "text_config": {"num_hidden_layers": 12}}


def build_model(config: str):
    from resegzoo.testing import make_tiny_sam3

    return make_tiny_sam3(seed=0, config=copy.deepcopy(SMALL) if config == "small" else {})


# -- SAM 3's image-model interface over transformers' modules -----------------------------------
class _Backbone:
    def __init__(self, adapter: "Sam3ImageAdapter") -> None:
        self.adapter = adapter

    def forward_image(self, images: Any) -> dict[str, Any]:
        """SAM 3's ``backbone.forward_image``: FPN features and positions (the coarsest level
        dropped, SAM 3's scalp), (B, C, H, W) each."""
        out = self.adapter.model.vision_encoder(images)
        return {"backbone_fpn": list(out.fpn_hidden_states[:-1]), "vision_pos_enc": list(out.fpn_position_encoding[:-1])}

    def forward_text(self, captions: list[str], device: Any = None) -> dict[str, Any]:
        """SAM 3's ``backbone.forward_text``: (L, N, C) features and (N, L) mask (True: a token)."""
        ids, mask = self.adapter.tokenize(list(captions))
        feats = self.adapter.model.get_text_features(input_ids=ids, attention_mask=mask).pooler_output
        return {"language_features": feats.transpose(0, 1), "language_mask": mask.bool(), "language_embeds": None}


class Sam3ImageAdapter:
    """What the peers' segmentors call on SAM 3's image model, computed by transformers' Sam3Model."""

    num_feature_levels = 1
    inst_interactive_predictor = None

    def __init__(self, model: Any, tokenize: Callable[[list[str]], Any]) -> None:
        self.model = model
        self.tokenize = tokenize
        self.backbone = _Backbone(self)
        size = model.config.vision_config.backbone_config.image_size
        self.resolution = int(size[0] if isinstance(size, (list, tuple)) else size)

    def to(self, *args: Any, **kwargs: Any) -> "Sam3ImageAdapter":
        return self

    def eval(self) -> "Sam3ImageAdapter":
        return self

    def _get_dummy_prompt(self, num_prompts: int = 1) -> Any:
        return types.SimpleNamespace(num_prompts=num_prompts)  # the empty geometric prompt

    def forward_grounding(self, backbone_out: dict[str, Any], find_input: Any, geometric_prompt: Any = None,
                          find_target: Any = None) -> dict[str, Any]:
        """SAM 3's ``forward_grounding`` for N (image, text) slots: the text prompt with the
        geometry encoder's empty-prompt token appended, the DETR encoder and decoder, boxes and
        scores of every layer, every query's mask and the semantic map (Sam3Model.forward's
        arithmetic otherwise)."""
        from transformers.models.sam3.modeling_sam3 import box_cxcywh_to_xyxy, inverse_sigmoid  # noqa: F401

        m = self.model
        img, txt = find_input.img_ids, find_input.text_ids
        text = backbone_out["language_features"].transpose(0, 1)[txt]
        text_mask = backbone_out["language_mask"][txt]
        fpn = [f[img] for f in backbone_out["backbone_fpn"]]
        pos = [p[img] for p in backbone_out["vision_pos_enc"]]
        n = len(txt)
        geometry = m.geometry_encoder(box_embeddings=torch.zeros(n, 0, 4), box_mask=torch.zeros(n, 0, dtype=torch.bool),
                                      box_labels=torch.zeros(n, 0, dtype=torch.long), img_feats=fpn,
                                      img_pos_embeds=pos).last_hidden_state
        prompt = torch.cat([text, geometry], dim=1)
        mask = torch.cat([text_mask, torch.ones(n, geometry.shape[1], dtype=torch.bool)], dim=1)
        enc = m.detr_encoder(vision_features=[fpn[-1]], text_features=prompt, vision_pos_embeds=[pos[-1]], text_mask=mask)
        dec = m.detr_decoder(vision_features=enc.last_hidden_state, text_features=enc.text_features,
                             vision_pos_encoding=enc.pos_embeds_flattened, text_mask=mask,
                             spatial_shapes=enc.spatial_shapes)
        offsets = m.detr_decoder.box_head(dec.intermediate_hidden_states)
        boxes = (inverse_sigmoid(dec.reference_boxes) + offsets).sigmoid()
        logits = m.dot_product_scoring(decoder_hidden_states=dec.intermediate_hidden_states,
                                       text_features=enc.text_features, text_mask=mask)
        masks = m.mask_decoder(decoder_queries=dec.intermediate_hidden_states[-1], backbone_features=list(fpn),
                               encoder_hidden_states=enc.last_hidden_state, prompt_features=prompt, prompt_mask=mask)
        return {"pred_logits": logits[-1], "pred_boxes": boxes[-1], "pred_masks": masks.pred_masks,
                "presence_logit_dec": dec.presence_logits[-1].reshape(n, 1), "semantic_seg": masks.semantic_seg}


# -- the peers' segmentors, imported verbatim with stand-ins for mmseg and mmengine ---------------
class _BaseSegmentor(torch.nn.Module):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()


class _Data:
    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


class _Registry:
    def register_module(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        return lambda cls: cls


class DataSample:
    """mmseg's SegDataSample, as far as the segmentors' ``predict`` uses it."""

    def __init__(self, path: Path, shape: tuple[int, int]) -> None:
        self.metainfo = {"img_path": str(path), "ori_shape": shape}
        self.data: dict[str, Any] = {}

    def set_data(self, data: dict[str, Any]) -> None:
        self.data.update(data)


_PEER_MODULES = ("sam3", "mmseg", "mmengine", "core", "configs", "segearthov3_segmentor", "sam3_segmentor_cached")


@contextlib.contextmanager
def _peer_modules(repo: Path, adapter: Sam3ImageAdapter):
    """The checkout on sys.path, its ``sam3`` package without ``sam3/__init__.py`` (which builds
    the whole model and imports its dependencies), ``build_sam3_image_model`` giving the adapter,
    and mmseg/mmengine stand-ins; everything removed again afterwards (two checkouts both have
    a ``sam3``)."""
    sam3 = types.ModuleType("sam3")
    sam3.__path__ = [str(repo / "sam3")]
    sam3.build_sam3_image_model = lambda *args, **kwargs: adapter
    stubs = {"sam3": sam3}
    for name in ("mmseg", "mmseg.models", "mmengine"):
        stubs[name] = types.ModuleType(name)
        stubs[name].__path__ = []
    stubs["mmseg.models.segmentors"] = types.SimpleNamespace(BaseSegmentor=_BaseSegmentor)
    stubs["mmseg.models.data_preprocessor"] = types.SimpleNamespace(SegDataPreProcessor=object)
    stubs["mmseg.registry"] = types.SimpleNamespace(MODELS=_Registry())
    stubs["mmengine.structures"] = types.SimpleNamespace(PixelData=_Data, InstanceData=_Data)
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in _PEER_MODULES}
    for k in saved:
        del sys.modules[k]
    sys.modules.update(stubs)  # type: ignore[arg-type]
    sys.path.insert(0, str(repo))
    try:
        yield
    finally:
        sys.path.remove(str(repo))
        for k in [k for k in sys.modules if k.split(".")[0] in _PEER_MODULES]:
            del sys.modules[k]
        sys.modules.update(saved)


def segearth_peer(repo: Path, adapter: Sam3ImageAdapter, cls_file: Path, **kwargs: Any) -> Any:
    with _peer_modules(repo, adapter):
        from segearthov3_segmentor import SegEarthOV3Segmentation

        seg = SegEarthOV3Segmentation(classname_path=str(cls_file), device=torch.device("cpu"), **kwargs)
        # its Sam3Processor at the model's input size (it passes none, and SAM 3's default is 1008)
        seg.processor = type(seg.processor)(adapter, resolution=adapter.resolution,
                                            confidence_threshold=kwargs["confidence_threshold"], device=torch.device("cpu"))
        return seg


def proc_peer(repo: Path, adapter: Sam3ImageAdapter, cls_file: Path, **kwargs: Any) -> Any:
    with _peer_modules(repo, adapter), contextlib.redirect_stdout(None):  # it prints every prompt
        from sam3_segmentor_cached import CachedSAM3OpenSegmentor

        # cfg_loveda.py's engine settings; prob_thd, bg_idx, confidence_threshold given
        return CachedSAM3OpenSegmentor(
            classname_path=str(cls_file), device="cpu", slide_stride=0, slide_crop=0, use_sem_seg=True,
            use_presence_score=True, use_transformer_decoder=True, prompt_batch_size=15, image_batch_size=4,
            slot_batch_size=0, auto_tune_slot_batch=False, execution_mode="per_image", mask_query_chunk_size=32,
            slot_chunk_size=4, max_cross_image_slots=15, max_mask_tensor_mb=1024, group_images_by_size=True,
            shared_image_encoder_batch=True, compile_model=False, processor_resolution=adapter.resolution,
            inference_dtype="fp32",
            image_encoder_dtype="bf16", class_aggregation="max", cache_text_embeddings=True,
            enable_expanded_prompt=True, expanded_prompt_pool_path=None, semantic_instance_fusion="pgrf", **kwargs)


def peer_labels(segmentor: Any, path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    sample = DataSample(path, shape)
    with contextlib.redirect_stdout(None):
        segmentor.predict(None, [sample])
    return sample.data["pred_sem_seg"].data[0].numpy(), sample.data["seg_logits"].data.numpy()


# -- resegzoo ------------------------------------------------------------------------------------
def resegzoo_segmenter(folder: Path, method: str, threshold: float, prob_thd: float, slide: bool) -> Any:
    from resegzoo.api import Segmenter, load_recipe

    inference: dict[str, Any] = {"background_threshold": prob_thd}
    inference.update({"window": 512, "stride": 512, "window_placement": "shift"} if slide
                     else {"window_placement": "image"})
    from resegzoo.segmenter.recipe import shipped_recipe

    recipe = load_recipe(shipped_recipe(f"method-{method}"), inference=inference,
                         method={"name": method, "settings": {"confidence_threshold": threshold}},
                         text={"prompt_pool": "none"})
    return Segmenter.from_recipe(recipe, model=f"local-dir:{folder}")


def resegzoo_labels(seg: Any, path: Path, names: list[str], bg_idx: int, clear_text: bool) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    from resegzoo.api import Vocabulary

    if clear_text:
        seg.method.scorer._text.clear()
    result = seg.segment(np.asarray(Image.open(path).convert("RGB")), Vocabulary([[n] for n in names]))
    labels = result.labels
    labels = np.where(labels == len(names), bg_idx, labels)  # the background class is the dataset's bg_idx
    return labels, result.probs


# -- timing --------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """fn's result, wall seconds, user and system CPU seconds of this process."""
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    out = fn()
    t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    return out, t1 - t0, r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime


def test_image(size: int, seed: int = 0) -> np.ndarray:
    """Blocks of colour with smooth noise: regions for the model, not flat."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (8, 8, 3)).astype(np.float32)
    image = np.kron(cells, np.ones((size // 8 + 1, size // 8 + 1, 1), np.float32))[:size, :size]
    return np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)


def main() -> None:
    from PIL import Image

    from resegzoo.methods.proc_sam3.fusion import ProcSwitches
    from resegzoo.methods.segearth_ov3.fusion import instance_scores
    from resegzoo.methods.segearth_ov3.model import load_scorer
    from resegzoo.methods.segearth_ov3.tokenizer import open_clip_tokenize

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segearth-repo", type=Path, help="a checkout of earth-insights/SegEarth-OV-3")
    ap.add_argument("--proc-repo", type=Path, help="a checkout of YanghuiSong/ProC-SAM3")
    ap.add_argument("--config", choices=("small", "full"), default="small")
    ap.add_argument("--names", type=int, default=8)
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kept", type=float, default=0.05, help="share of queries above confidence_threshold")
    ap.add_argument("--background", type=float, default=0.1, help="share of pixels below prob_thd")
    ap.add_argument("--rows", default="segearth-image,segearth-slide,proc-image",
                    help="comma-separated: segearth-image, segearth-slide, proc-image")
    args = ap.parse_args()
    rows = args.rows.split(",")
    # SAM 3's processor resizes with torchvision's v2.Resize; on a CPU torchvision takes its uint8
    # kernel, on a GPU (where the peers run) the float path, which resegzoo follows: the peers take
    # the float path here too (on random weights the other rounding flips ~1 % of the labels)
    from torchvision.transforms.v2.functional import _geometry

    _geometry._do_native_uint8_resize_on_cpu = lambda interpolation: False
    names = NAMES[:args.names]
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = tmp / "sam3"
        model = build_model(args.config)
        model.save_pretrained(str(folder))
        image_path = tmp / "scene.png"
        Image.fromarray(test_image(args.size)).save(image_path)
        cls_file = tmp / "cls.txt"
        cls_file.write_text("\n".join(names))  # no cls_exp.txt: ProC-SAM3 prompts the names alone
        shape = (args.size, args.size)

        scorer = load_scorer(folder)
        pixels = torch.from_numpy(np.asarray(Image.open(image_path).convert("RGB"))).permute(2, 0, 1)
        raw = scorer.raw_outputs(pixels, names)
        scores = instance_scores(raw.pred_logits, raw.presence_logits)
        thr = float(scores.quantile(1 - args.kept))
        probs = scorer.score_window(pixels, names, ProcSwitches(confidence_threshold=thr))
        prob_thd = float(probs.amax(0).quantile(args.background))
        del scorer, raw, probs
        adapter = Sam3ImageAdapter(model, open_clip_tokenize)
        runs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {}
        for row in rows:
            method, mode = row.split("-")
            if method == "segearth":
                if args.segearth_repo is None:
                    continue
                peer = segearth_peer(args.segearth_repo, adapter, cls_file, prob_thd=prob_thd, bg_idx=0,
                                     confidence_threshold=thr, slide_stride=512 if mode == "slide" else 0,
                                     slide_crop=512 if mode == "slide" else 0)
                ours = resegzoo_segmenter(folder, "segearth-ov3", thr, prob_thd, mode == "slide")
                clear = True  # SegEarth-OV3 encodes every name's text on every window
            else:
                if args.proc_repo is None:
                    continue
                peer = proc_peer(args.proc_repo, adapter, cls_file, prob_thd=prob_thd, bg_idx=0,
                                 confidence_threshold=thr)
                ours = resegzoo_segmenter(folder, "proc-sam3", thr, prob_thd, False)
                clear = False  # ProC-SAM3 encodes the prompts once, when it is built
            runs[row] = (lambda peer=peer: peer_labels(peer, image_path, shape),
                         lambda ours=ours, clear=clear: resegzoo_labels(ours, image_path, names, 0, clear))
        print(f"config {args.config}, {len(names)} names, {args.size} x {args.size} px, confidence_threshold "
              f"{thr:.4f} (~{args.kept:.0%} of queries kept), prob_thd {prob_thd:.4f} (~{args.background:.0%} "
              f"background), {torch.get_num_threads()} threads, {args.repeats} interleaved repeats")
        print("| row | peer s (median) | resegzoo s (median) | ratio (median) | per-repeat ratios | CPU ratio | "
              "sys s peer / ours | labels equal | max abs prob diff |")
        print("|---|---|---|---|---|---|---|---|---|")
        with torch.inference_mode():
            for row, (peer_fn, ours_fn) in runs.items():
                times: dict[str, list[tuple[float, float, float]]] = {"peer": [], "ours": []}
                results: dict[str, Any] = {}
                peer_fn()  # warm-up: first calls pay for allocations and lazy imports
                ours_fn()
                for _ in range(args.repeats):
                    for key, fn in (("peer", peer_fn), ("ours", ours_fn)):
                        out, wall, user, system = timed(fn)
                        results[key] = out
                        times[key].append((wall, user, system))
                (pl, pp), (ol, op) = results["peer"], results["ours"]
                equal = float((pl == ol).mean())
                diff = float(np.abs(pp - op).max())
                med = {k: statistics.median(t[0] for t in v) for k, v in times.items()}
                cpu = {k: statistics.median(t[1] + t[2] for t in v) for k, v in times.items()}
                sys_s = {k: statistics.median(t[2] for t in v) for k, v in times.items()}
                ratios = [o[0] / p[0] for p, o in zip(times["peer"], times["ours"])]
                print(f"| {row} | {med['peer']:.2f} | {med['ours']:.2f} | {med['ours'] / med['peer']:.2f} | "
                      f"{min(ratios):.2f}-{max(ratios):.2f} | {cpu['ours'] / cpu['peer']:.2f} | "
                      f"{sys_s['peer']:.1f} / {sys_s['ours']:.1f} | {equal:.5f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
