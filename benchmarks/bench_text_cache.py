"""Text embeddings with and without resegzoo's disk cache: the first command runs the text tower
over every (template, name) prompt, a second command with the same weights, tokenizer, templates
and names reads them from resegzoo's cache folder.

ViT-B-16 with random weights saved as a local model folder (no download; the text tower's cost
does not depend on the values), eval-default's 80 ImageNet templates and 8 class names
(OpenEarthMap's). Each run builds a new Segmenter as a new command would, in a fresh cache
folder, and is timed in wall and CPU seconds. The first run also hashes the weights file once
(remembered per path, size and mtime), shown on its own row.

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
        recipe = load_recipe(text={"templates": args.templates})
        rows = []
        _, wall, cpu = timed(lambda: weights_fingerprint(str(folder)))
        rows.append(("hash the weights file (first run only)", wall, cpu, "-"))
        for run in ("first run (text tower)", "second run (disk cache)"):
            seg = Segmenter.from_recipe(recipe, model=str(folder), masks="none", device=args.device)
            prompts = len(seg.templates) * sum(len(c) for c in vocab.classes)
            _, wall, cpu = timed(lambda: seg.text_embeddings(vocab))
            rows.append((run, wall, cpu, seg.text.computed))
        print(f"{args.arch}, {prompts} prompts ({len(seg.templates)} templates x "
              f"{sum(len(c) for c in vocab.classes)} names), {args.device}, torch threads {torch.get_num_threads()}")
        print("| step | wall s | CPU s | text passes |")
        print("|---|---|---|---|")
        for name, wall, cpu, passes in rows:
            print(f"| {name} | {wall:.2f} | {cpu:.2f} | {passes} |")
        print(f"second / first (CPU): {rows[2][2] / rows[1][2]:.4f}")


if __name__ == "__main__":
    main()
