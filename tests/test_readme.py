"""README's commands: what they write is ignored by git, so a user's `git status` stays clean."""
from __future__ import annotations

import fnmatch
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_folder_readme_writes_is_in_gitignore():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", readme, flags=re.S))
    written = {m.strip("/").split("/")[0] for m in re.findall(r"--out\s+(\S+)", blocks)}
    if 'pathlib.Path(f"tiny{i}")' in blocks:  # the compose example's two input folders
        written |= {"tiny0", "tiny1"}
    assert {"demo-out", "out", "reseg-clip-l14", "tiny-soup", "seg", "tiny0"} <= written
    patterns = [line.strip().strip("/") for line in (REPO / ".gitignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert [w for w in sorted(written) if not any(fnmatch.fnmatch(w, p) for p in patterns)] == []


def test_cpu_only_torch_line_comes_before_the_first_command():
    """A newcomer without an NVIDIA GPU reads the CPU-only torch line before running anything
    (the default wheels bring 3.2 GB of CUDA libraries)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    assert "download.pytorch.org/whl/cpu" in blocks[0]
    first_install = next(i for i, b in enumerate(blocks) if "pip install" in b and "-e " in b)
    assert first_install > 0
