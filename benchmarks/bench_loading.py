"""Loading cost of resegzoo.weights.loading against open_clip's own loader, on the same files.

Builds a random ViT-B-32 (QuickGELU) model, saves it as a pickled state dict and as safetensors,
then times (median of --repeat runs, CPU):

* ``open_clip.create_model(arch, pretrained=file)``   (baseline; runs alternate with resegzoo's)
* ``resegzoo.weights.loading.load_clip(file, architecture=arch)`` (strict key/shape report, weights_only)
* sha256 verification of a registry record: first fetch (hashes the file) and later fetches
  (a marker in the cache remembers the verified size and mtime).

Run: python benchmarks/bench_loading.py [--arch ViT-B-32-quickgelu] [--repeat 3]
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired_medians(baseline, candidate, repeat: int) -> tuple[float, float]:
    """Alternate the two so that page cache and machine load affect both alike."""
    pairs = [(median_seconds(baseline, 1), median_seconds(candidate, 1)) for _ in range(repeat)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-32-quickgelu", help="open_clip architecture to build")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # open_clip logs "initialized randomly"

    import open_clip
    import torch
    from safetensors.torch import save_file

    from resegzoo.weights.fetch import fetch_record as fetch
    from resegzoo.weights.loading import load_clip
    from resegzoo.weights.zoo import ClipVariant

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RESEGZOO_CACHE"] = str(Path(tmp) / "cache")
        state = {k: v.contiguous() for k, v in open_clip.create_model(args.arch).state_dict().items()}
        files = {"pickle (.pt)": Path(tmp) / "w.pt", "safetensors": Path(tmp) / "w.safetensors"}
        torch.save(state, files["pickle (.pt)"])
        save_file(state, str(files["safetensors"]))
        size_mb = files["pickle (.pt)"].stat().st_size / 1e6

        rows = []
        for label, path in files.items():
            base, ours = paired_medians(lambda p=path: open_clip.create_model(args.arch, pretrained=str(p)),
                                        lambda p=path: load_clip(str(p), architecture=args.arch), args.repeat)
            rows.append((f"load {label}", base, ours))

        digest = hashlib.sha256(files["safetensors"].read_bytes()).hexdigest()
        record = ClipVariant(name="bench", architecture=args.arch, format="safetensors", license="-",
                             citation="-", sha256=digest, fetcher=lambda: files["safetensors"])
        first = median_seconds(lambda: fetch(record), 1)
        later = median_seconds(lambda: fetch(record), args.repeat)

    print(f"{args.arch}, {size_mb:.0f} MB of weights, median of {args.repeat} runs, CPU\n")
    print(f"| {'what':<24} | {'open_clip (s)':>13} | {'resegzoo (s)':>12} | {'ratio':>6} |")
    print(f"|{'-' * 26}|{'-' * 15}|{'-' * 14}|{'-' * 8}|")
    for label, base, ours in rows:
        print(f"| {label:<24} | {base:>13.3f} | {ours:>12.3f} | {ours / base:>5.2f}x |")
    print(f"| {'sha256 verify, first':<24} | {'-':>13} | {first:>12.3f} | {'':>6} |")
    print(f"| {'sha256 verify, cached':<24} | {'-':>13} | {later:>12.4f} | {later / first:>5.3f}x |")


if __name__ == "__main__":
    main()
