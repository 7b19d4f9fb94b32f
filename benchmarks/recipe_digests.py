"""sha256 of the labels and probabilities every CLIP-method recipe gives, for comparing two commits.

Issue 22 moved the CLIP method's settings from top-level recipe sections (``schedule:``, ``text:``,
``extras:``, ``inference.readout`` ...) under ``method.settings``; recipes in the old form must give
byte-identical outputs. Run this script on the commit before and on the commit after (each with its
own tree first on PYTHONPATH), then compare the two JSON files with ``--compare``::

    PYTHONPATH=OLD_TREE:... python benchmarks/recipe_digests.py --out old.json
    PYTHONPATH=NEW_TREE:... python benchmarks/recipe_digests.py --out new.json
    python benchmarks/recipe_digests.py --compare old.json new.json

Each recipe of ``registry/recipes/`` and ``benchmarks/recipes/`` that runs the ``clip`` method, and a
few recipes written as users write them (old-form keys over a shipped ``base:``), runs on the tiny
random CLIP of the example plugin (``example-tiny``, 64 px, 8 blocks) over one generated 96 x 128
image, with the recipe's mask generator, or SLIC where it names SAM (no SAM weights here). A recipe
the tiny model cannot run (a 24-block schedule) records its error message, which must match too.
Runs in one CPU thread, so both runs do the same arithmetic in the same order.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "example-tiny"
CLASSES = "building; road, street; tree, forest; water; grass"

#: recipes written the way users wrote them before issue 22: top-level CLIP sections over a shipped base
USER_RECIPES = {
    "user-eval-default-reference-vote": "base: eval-default\ntext: {templates: reference}\n"
                                        "extras: {majority_vote: true}\nmasks: {generator: slic}\n",
    "user-segearth-ov-features": "base: method-segearth-ov\ninference: {readout: features, average: probabilities,"
                                 " background_threshold: 0.3}\n",
    "user-standalone-schedule": "masks: {generator: felzenszwalb}\nschedule: {rules: ['global*', 'segment:0', "
                                "'neighbor:1'], uncovered: self}\nextras: {cls_token_lambda: -0.2}\n"
                                "inference: {window: 48, stride: 32, position_interpolation: scale-factor}\n",
}


def image():
    import numpy as np

    y, x = np.mgrid[0:96, 0:128]
    rgb = np.stack([(x * 2) % 256, (y * 3) % 256, ((x + y) * 5) % 256], axis=-1)
    rgb[20:60, 30:90] = [200, 40, 40]  # a block the segments can find
    return rgb.astype(np.uint8)


def recipe_files(tmp: Path) -> dict[str, Path]:
    files = {f"registry/{p.stem}": p for p in sorted((ROOT / "registry" / "recipes").glob("*.yaml"))}
    files.update({f"benchmarks/{p.stem}": p for p in sorted((ROOT / "benchmarks" / "recipes").glob("*.yaml"))})
    for name, text in USER_RECIPES.items():
        path = tmp / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        files[name] = path
    return files


def digest(array) -> str:
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def run(out: Path) -> None:
    import torch
    import yaml

    from resegzoo.api import Segmenter, Vocabulary, load_recipe

    torch.set_num_threads(1)
    vocab, img = Vocabulary.parse(CLASSES), image()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in recipe_files(Path(tmp)).items():
            if "inputs" in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}):
                continue  # a composition recipe (reseg-clip-l14), not a segment recipe
            recipe = load_recipe(path)
            if recipe.method.name != "clip":
                continue
            masks = "slic" if recipe.masks.generator in ("sam", "sam2") else None
            try:
                seg = Segmenter.from_recipe(recipe, model=MODEL, masks=masks)
                result = seg.segment(img, vocab)
            except Exception as exc:  # recorded: the same recipe must fail the same way on both commits
                rows[name] = {"error": f"{type(exc).__name__}: {exc}"}
            else:
                rows[name] = {"labels": digest(result.labels.astype("int32")),
                              "probs": digest(result.probs.astype("float32")),
                              "classes": result.class_names}
            print(f"{name:44s} {rows[name].get('labels', rows[name].get('error'))[:60]}", flush=True)
    out.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def compare(old: Path, new: Path) -> int:
    a, b = json.loads(old.read_text()), json.loads(new.read_text())
    print(f"| recipe | labels sha256 (first 12) | probabilities sha256 (first 12) | same |")
    print("|---|---|---|---|")
    bad = 0
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        same = x == y
        bad += not same
        shown = y or x
        cells = (shown["labels"][:12], shown["probs"][:12]) if "labels" in shown else (shown["error"][:60], "")
        print(f"| {name} | {cells[0]} | {cells[1]} | {'yes' if same else 'NO'} |")
    print(f"\n{len(set(a) | set(b)) - bad} of {len(set(a) | set(b))} identical")
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the digests here (JSON)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"), help="compare two digest files")
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    if not args.out:
        parser.error("give --out FILE or --compare OLD NEW")
    run(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
