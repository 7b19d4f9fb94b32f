#!/usr/bin/env python
"""Render resegzoo's results beside the peers' published mIoU (benchmarks/peers.yaml) as Markdown.

    python benchmarks/render_peer_table.py eval-*/results.json [--out table.md]

Each results.json is what `resegzoo eval` wrote for one dataset; every run in it becomes a row
("resegzoo: <run label> [<protocol>]", or --name when a file holds a single run). Rows with the
same label and protocol across datasets are merged, so evaluating one setting on all eight
datasets gives one row. The protocol is the one results.json records for the run: "peers"
(SegEarth-OV's protocol exactly, registry/recipes/eval-default.yaml), "resegzoo" (the earlier
eval-resegzoo.yaml) or "custom". Only peers-protocol rows compete for a column's best (bold); a
result on a subset of the split (--limit) is marked *.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def load_peers(path: Path) -> dict:
    with path.open(encoding="utf-8") as fh:
        peers = yaml.safe_load(fh)
    for key in ("datasets", "methods"):
        if key not in peers:
            raise SystemExit(f"{path}: missing key {key!r}")
    return peers


def collect_ours(paths: list[Path], name: str | None) -> tuple[dict[str, dict[str, float]], set[tuple[str, str]], set[str]]:
    """row label -> dataset -> mIoU, and the (row, dataset) cells not comparable with the peers
    (computed on a subset, or under another protocol than theirs)."""
    rows: dict[str, dict[str, float]] = {}
    partial: set[tuple[str, str]] = set()
    other_protocol: set[str] = set()
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            dataset = data["dataset"]["dataset"]
            runs = data["runs"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"{path}: not a results.json written by `resegzoo eval` ({exc})") from None
        for run in runs:
            label = name if (name and len(runs) == 1) else run["label"]
            protocol = run.get("protocol") or "unrecorded"  # results.json files before protocols
            row = f"resegzoo: {label} [{protocol}]"
            if dataset in rows.get(row, {}):
                raise SystemExit(f"{path}: row {row!r} already has a {dataset} result from another file")
            rows.setdefault(row, {})[dataset] = run["miou"] if run["miou"] is not None else math.nan
            if run["images"] < data["dataset"].get("images_in_split", run["images"]):
                partial.add((row, dataset))
            if protocol != "peers":
                other_protocol.add(row)
    return rows, partial, other_protocol


def render(peers: dict, ours: dict[str, dict[str, float]], partial: set[tuple[str, str]],
           other_protocol: set[str] = frozenset()) -> str:
    datasets = list(peers["datasets"])
    table = {method: {d: v for d, v in values.items() if v is not None} for method, values in peers["methods"].items()}
    table.update(ours)
    unknown = sorted({d for values in ours.values() for d in values} - set(datasets))
    # subsets (--limit) and other protocols are not comparable: they never count as a column's best
    def comparable(m: str, d: str) -> bool:
        return (m, d) not in partial and m not in other_protocol

    best = {d: max((v[d] for m, v in table.items() if d in v and not math.isnan(v[d]) and comparable(m, d)),
                   default=None) for d in datasets}
    header = "| method | " + " | ".join(peers["datasets"][d] for d in datasets) + " |"
    lines = [header, "|" + "---|" * (len(datasets) + 1)]
    for method, values in table.items():
        cells = []
        for d in datasets:
            v = values.get(d)
            if v is None or math.isnan(v):
                cells.append("-")
                continue
            text = f"{v:.1f}" + ("*" if (method, d) in partial else "")
            is_best = comparable(method, d) and best[d] is not None and round(v, 1) == round(best[d], 1)
            cells.append(f"**{text}**" if is_best else text)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", f"mIoU (%). Peers: {peers.get('backbone', '')} backbones, as published (benchmarks/peers.yaml)."]
    if ours:
        lines.append("resegzoo rows name the protocol that produced them in brackets: peers = SegEarth-OV's "
                     "evaluation protocol exactly (eval-default), resegzoo = resegzoo's earlier protocol "
                     "(eval-resegzoo), custom = neither; only [peers] rows are comparable and can be best.")
    if partial:
        lines.append("* evaluated on a subset of the split (--limit); not comparable.")
    for d, note in (peers.get("notes") or {}).items():
        lines.append(f"{peers['datasets'].get(d, d)}: {note}.")
    if unknown:
        lines.append(f"Not shown (no peer column): {', '.join(unknown)}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="*", type=Path, help="results.json files written by `resegzoo eval`")
    parser.add_argument("--peers", type=Path, default=HERE / "peers.yaml", help="peer numbers (default: %(default)s)")
    parser.add_argument("--name", default=None, help="row name for files holding a single run")
    parser.add_argument("--out", type=Path, default=None, help="write the table here (atomically) instead of stdout")
    args = parser.parse_args(argv)
    ours, partial, other_protocol = collect_ours(args.results, args.name)
    text = render(load_peers(args.peers), ours, partial, other_protocol)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    fd, tmp = tempfile.mkstemp(dir=args.out.resolve().parent, prefix=f".{args.out.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
