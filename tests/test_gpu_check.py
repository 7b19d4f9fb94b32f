"""benchmarks/gpu_check.py runs end to end on the CPU (--cpu-dry-run) and says what it checks."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(SCRIPT.parents[1])}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=900)


def test_help_names_every_check():
    out = run("--help").stdout
    for words in ("fp32 on CUDA against fp32 on the CPU", "bf16 / fp16", "SDPA", "math", "plain CLIP",
                  "ReSeg-CLIP", "reference schedule", "ViT-L-14", "SAM 2.1 Hiera-T", "peak GPU memory",
                  "8 minutes", "--cpu-dry-run", "SAM 3"):
        assert words in out, words


def test_cpu_dry_run_prints_the_whole_table():
    proc = run("--cpu-dry-run", "--image-side", "64")
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout[proc.stdout.index("| check | setting | result |"):]
    rows = [line for line in table.splitlines() if line.startswith("| (")]
    assert any(r.startswith("| (a) numbers | tiny bf16 vs fp32 (cpu) | max |d logit|") for r in rows)
    assert any("fp16 cpu | refused" in r for r in rows)
    assert any(r.startswith("| (b) SDPA | boolean mask forces the math kernel | ") for r in rows)
    speed = [r for r in rows if r.startswith("| (c, d) speed |")]
    for name in ("plain CLIP", "ReSeg-CLIP + SAM vit_b", "reference schedule", "ReSeg-CLIP + SAM 2.1 Hiera-T",
                 "SegEarth-OV3, SAM 3 tiny", "ProC-SAM3, SAM 3 tiny"):
        assert any(name in r and " s/MP" in r for r in speed), name
