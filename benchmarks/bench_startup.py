"""CPU seconds a command pays before it does its job: imports and checks (issue 27, start-up).

Each command runs in a fresh interpreter, several times; the table gives the least user+system CPU
seconds (getrusage of the child: what the command itself cost, not the machine's load) and the
ratio to a bare ``python -c pass`` measured in the same run. Goals: ``segment --help`` and a
failing option check under 0.5 CPU-s; a real segment's fixed start, up to the point where the
model would load, under 2 CPU-s.

    python benchmarks/bench_startup.py [--repeat 5]

"fixed start" runs ``resegzoo segment`` on the demo tile with a model name the zoo does not have:
every check, the input scan and the plan run, torch and the method's modules are imported, then
the model lookup fails before any weights are read.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "tests" / "data" / "demo_tile.png"


def cpu_seconds(args: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("resegzoo")
    cli = [str(exe)] if exe.exists() else [sys.executable, "-c", "from resegzoo.cli import main; main()"]
    out = tempfile.mkdtemp(prefix="bench-startup-")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "resegzoo --help": cli + ["--help"],
        "resegzoo segment --help": cli + ["segment", "--help"],
        "segment: failing option check": cli + ["segment", str(DEMO), "--classes", "a; b", "--model", "oracle",
                                                "--bands", "9,9,9", "--out", out],
        "segment: fixed start (unknown model)": cli + ["segment", str(DEMO), "--classes", "a; b", "--model",
                                                       "no-such-model", "--out", out],
    }
    rows = {name: min(cpu_seconds(c, env) for _ in range(args.repeat)) for name, c in commands.items()}
    base = rows["python -c pass"]
    print(f"| command | CPU-s (least of {args.repeat}) | x python -c pass |")
    print("|---|---|---|")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.2f} | {seconds / base:.1f} |")


if __name__ == "__main__":
    main()
