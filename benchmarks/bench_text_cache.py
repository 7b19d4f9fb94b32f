"""Text embeddings with and without resegzoo's disk cache: the first command runs the text tower
over every (template, name) prompt, a second command with the same weights, tokenizer, templates
and names reads them from resegzoo's cache folder.

ViT-B-16 with random weights saved as a local model folder (no download; the text tower's cost
does not depend on the values), eval-default's 80 ImageNet templates and 8 class names
(OpenEarthMap's). Each run builds a new Segmenter as a new command would, in a fresh cache
folder, and is timed in wall and CPU seconds. The first run also hashes the weights file once
(remembered per path, size and mtime), shown on its own row. Last, open_clip's own encode_text
runs the same prompts over all 77 positions (what the first run cost before resegzoo cut the
text tower after the last pooled position, resegzoo.methods.clip.text_tower).

    python benchmarks/bench_text_cache.py [--arch ViT-B-16] [--templates imagenet] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

NAMES = "bareland; rangeland; developed space; road; tree; water; agriculture land; building"


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-16")
    parser.add_argument("--templates", default="imagenet")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RESEGZOO_CACHE"] = str(Path(tmp) / "cache")  # read when used, not at import
        import open_clip
        import torch
        from safetensors.torch import save_file

        from resegzoo.segmenter.core import Segmenter
        from resegzoo.segmenter.recipe import load_recipe
        from resegzoo.vocabulary import Vocabulary
        from resegzoo.weights.loading import weights_fingerprint

        torch.manual_seed(0)
        folder = Path(tmp) / "model"
        folder.mkdir()
        model = open_clip.create_model(args.arch, pretrained=None)
        save_file(model.state_dict(), str(folder / "open_clip_model.safetensors"))
        config = open_clip.get_model_config(args.arch)
        (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
        del model
        vocab = Vocabulary.parse(NAMES)
        recipe = load_recipe(templates=args.templates)
        rows = []
        _, wall, cpu = timed(lambda: weights_fingerprint(str(folder)))
        rows.append(("hash the weights file (first run only)", wall, cpu, "-"))
        for run in ("first run (text tower)", "second run (disk cache)"):
            seg = Segmenter.from_recipe(recipe, model=str(folder), masks="none", device=args.device)
            prompts = len(seg.method.templates) * sum(len(c) for c in vocab.classes)
            _, wall, cpu = timed(lambda: seg.method.text_embeddings(vocab))
            rows.append((run, wall, cpu, seg.method.text.computed))
        print(f"{args.arch}, {prompts} prompts ({len(seg.method.templates)} templates x "
              f"{sum(len(c) for c in vocab.classes)} names), {args.device}, torch threads {torch.get_num_threads()}")
        print("| step | wall s | CPU s | text passes |")
        print("|---|---|---|---|")
        for name, wall, cpu, passes in rows:
            print(f"| {name} | {wall:.2f} | {cpu:.2f} | {passes} |")
        print(f"second / first (CPU): {rows[2][2] / rows[1][2]:.4f}")
        # the same prompts through open_clip's own encode_text (all 77 positions), as resegzoo's
        # first run did before the text tower was cut after the last pooled position
        names = [n for c in vocab.classes for n in c]
        texts = [t.replace("{}", n) for n in names for t in seg.templates]
        tokens = seg.encoder.tokenizer(texts).to(seg.encoder.device)
        with torch.no_grad():
            full, wall, cpu = timed(lambda: seg.encoder.model.encode_text(tokens))
            cut = seg.encoder.encode_text(texts)
        diff = float((torch.nn.functional.normalize(full.float(), dim=-1) - cut).abs().max())
        print(f"open_clip's encode_text on all 77 positions: {wall:.2f} s, {cpu:.2f} CPU-s; first run / that "
              f"(CPU): {rows[1][2] / cpu:.3f}; max |diff| of the normalised embeddings {diff:.1e}")


if __name__ == "__main__":
    main()
