"""Peak memory and wall time of `resegzoo compose` against the naive model soup.

Three ViT-B-16-sized checkpoints (random weights sharing an initialisation, pickled .pt state dicts
as RemoteCLIP ships them) are averaged with uniform weights by
  naive     load all three state dicts, average them, save the result (safetensors)
  resegzoo  resegzoo.compose.compose, first with an empty cache (each pickle converted once to
            safetensors), then again with the cache filled
Each run is a fresh subprocess, so its peak RSS (VmHWM of /proc/self/status, which execve resets;
getrusage's ru_maxrss would carry over the parent's peak) is its own. A subprocess that only
imports torch and resegzoo gives the baseline every run pays.

    python benchmarks/bench_compose.py [--arch ViT-B-16] [--workdir DIR] [--repeats 1]

Goals (issue 4): resegzoo's peak memory <= 0.5x naive's, wall time no worse.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_INPUTS = 3


def make_checkpoints(arch: str, folder: Path) -> list[Path]:
    import open_clip
    import torch

    torch.manual_seed(0)
    base = open_clip.create_model(arch).state_dict()
    paths = []
    for i in range(N_INPUTS):
        gen = torch.Generator().manual_seed(i)
        sd = {k: (v + 0.01 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v) for k, v in base.items()}
        paths.append(folder / f"variant{i}.pt")
        torch.save(sd, paths[-1])
        del sd
    return paths


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def worker(kind: str, arch: str, paths: list[Path], out: Path) -> dict:
    start = time.perf_counter()
    import torch

    if kind == "make":
        make_checkpoints(arch, out)
    elif kind == "baseline":
        import resegzoo.compose  # noqa: F401  (the imports every run pays)
    elif kind == "naive":
        from safetensors.torch import save_file

        sds = [torch.load(p, map_location="cpu", weights_only=True) for p in paths]
        w = 1.0 / len(sds)
        avg = {k: sum(w * sd[k] for sd in sds) if sds[0][k].is_floating_point() else sds[0][k] for k in sds[0]}
        save_file({k: v.contiguous() for k, v in avg.items()}, str(out / "naive.safetensors"))
    else:
        from resegzoo.compose import compose, recipe_from_mapping

        recipe = recipe_from_mapping({"inputs": [str(p) for p in paths], "architecture": arch})
        compose(recipe, out / f"resegzoo-{kind}", force=True, progress=False)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "peak_rss_mb": peak_rss_mb()}


def run_worker(kind: str, arch: str, paths: list[Path], out: Path, cache: Path) -> dict:
    env = dict(os.environ, RESEGZOO_CACHE=str(cache))
    cmd = [sys.executable, __file__, "--worker", kind, "--arch", arch, "--out", str(out), *map(str, paths)]
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="ViT-B-16", help="open_clip architecture of the random checkpoints")
    parser.add_argument("--workdir", type=Path, help="folder for checkpoints and outputs (default: a temp folder)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per method (the best wall time is kept)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.arch, args.paths, args.out)))
        return

    work = Path(tempfile.mkdtemp(prefix="bench-compose-", dir=args.workdir))
    try:
        run_worker("make", args.arch, [], work, work / "cache")  # keeps this parent process small
        paths = sorted(work.glob("variant*.pt"))
        size_mb = sum(p.stat().st_size for p in paths) / N_INPUTS / 2**20
        out, cache = work / "out", work / "cache"
        out.mkdir()
        rows = {"baseline (imports only)": run_worker("baseline", args.arch, paths, out, cache)}
        for name, kind in (("naive: load all, average", "naive"), ("resegzoo, cold cache", "cold"),
                           ("resegzoo, warm cache", "warm")):
            best = None
            for _ in range(args.repeats):
                if kind == "cold":
                    shutil.rmtree(cache, ignore_errors=True)
                r = run_worker(kind, args.arch, paths, out, cache)
                best = r if best is None or r["wall_s"] < best["wall_s"] else best
            rows[name] = best
        naive = rows["naive: load all, average"]
        base = rows["baseline (imports only)"]["peak_rss_mb"]
        print(f"\n{N_INPUTS} x {args.arch} checkpoints, {size_mb:.0f} MB each (pickled .pt); uniform weights; CPU\n")
        print("| method | wall s | peak RSS MB | RSS above baseline MB | RSS ratio vs naive | time ratio vs naive |")
        print("|---|---|---|---|---|---|")
        for name, r in rows.items():
            print(f"| {name} | {r['wall_s']:.2f} | {r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] - base:.0f} | "
                  f"{r['peak_rss_mb'] / naive['peak_rss_mb']:.2f}x | {r['wall_s'] / naive['wall_s']:.2f}x |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
