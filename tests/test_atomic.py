"""resegzoo.outputs.atomic (issue 8, items 11, 12, 14): temporaries a later run can recognise and clean,
permissions from the umask, folders fsynced where durability is promised, and one helper that
lists temporaries for every "nothing left behind" assertion."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resegzoo.outputs import atomic
from resegzoo.outputs.atomic import TEMPORARY_NAME, is_stale, owner_tag, temporaries


@pytest.fixture
def umask_027():
    """A umask that differs from every default (0o022, 0o002) and from mkstemp's 0600."""
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _python(code: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(atomic.__file__).parents[1]), *sys.path])}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, **kwargs)


def _killed_while_writing(target: Path) -> Path:
    """Run a process that starts an atomic write of ``target`` and dies by SIGKILL midway; returns
    the temporary it left behind."""
    proc = _python(f"""
        import os, signal
        from resegzoo.outputs.atomic import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_bytes(b"half of it")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    left = temporaries(target.parent)
    assert len(left) == 1 and left[0].read_bytes() == b"half of it"
    return left[0]


# -- item 12: permissions and durability --------------------------------------------------------


def test_atomic_files_get_the_umask_not_0600(tmp_path, umask_027):
    atomic.write_text(tmp_path / "a.json", "{}")
    atomic.save_png(tmp_path / "b.png", np.zeros((4, 4), np.uint8))
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what any ordinary write gives under this umask
    assert _mode(plain) == 0o640
    assert _mode(tmp_path / "a.json") == _mode(plain)
    assert _mode(tmp_path / "b.png") == _mode(plain)


def test_segment_outputs_get_the_umask(tmp_path, umask_027):
    from click.testing import CliRunner

    from resegzoo.cli import build_cli

    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(tmp_path / "scene.png")
    result = CliRunner().invoke(build_cli(), ["segment", str(tmp_path / "scene.png"), "--model", "oracle", "--masks",
                                              "none", "--classes", "red; blue", "--out", str(tmp_path / "out")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    outputs = sorted((tmp_path / "out").iterdir())
    assert len(outputs) == 3
    assert {p.name: _mode(p) for p in outputs} == {p.name: 0o640 for p in outputs}


def test_composed_model_folder_gets_the_umask(tmp_path, umask_027):
    from compose_helpers import related_models, save_folders

    from resegzoo.compose import compose, recipe_from_mapping

    inputs = save_folders(related_models(2, seed=3), tmp_path / "in")
    out = compose(recipe_from_mapping({"inputs": inputs}), tmp_path / "soup", progress=False).output
    assert _mode(out) == 0o750
    assert {p.name: _mode(p) for p in out.iterdir()} == {p.name: 0o640 for p in out.iterdir()}


@pytest.fixture
def fsynced_folders(monkeypatch):
    """The inodes of folders passed to os.fsync during the test."""
    seen: list[tuple[int, int]] = []
    real = os.fsync

    def recording(fd):
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            seen.append((st.st_dev, st.st_ino))
        return real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return lambda folder: (folder.stat().st_dev, folder.stat().st_ino) in seen


def test_durable_writes_fsync_the_folder_and_plain_ones_do_not(tmp_path, fsynced_folders):
    (tmp_path / "plain").mkdir()
    atomic.write_text(tmp_path / "plain" / "x.txt", "x")
    assert not fsynced_folders(tmp_path / "plain")
    atomic.write_text(tmp_path / "durable" / "x.txt", "x", durable=True)
    assert fsynced_folders(tmp_path / "durable")


def test_checkpoints_and_caches_are_durable(tmp_path, fsynced_folders, tiny_clip, resegzoo_cache):
    import io
    import zipfile

    import torch

    from compose_helpers import related_models, save_folders
    from resegzoo.compose import compose, recipe_from_mapping
    from resegzoo.weights.st_io import write_state_dict
    from resegzoo.weights.archive import extract_member
    from resegzoo.masks.cache import MapCache

    write_state_dict(tmp_path / "ckpt" / "model.safetensors", {"w": torch.ones(3)})
    assert fsynced_folders(tmp_path / "ckpt")

    cache = MapCache(tmp_path / "maps")
    cache.save("ab" + "0" * 62, [np.zeros((2, 2), np.int32)])
    assert fsynced_folders(cache.path("ab" + "0" * 62).parent)

    buf = io.BytesIO()
    torch.save(tiny_clip.state_dict(), buf)
    with zipfile.ZipFile(tmp_path / "sky.zip", "w") as zf:
        zf.writestr("ckpt/epoch_1.pt", buf.getvalue())
    member = extract_member(tmp_path / "sky.zip", "ckpt/epoch_1.pt")
    assert fsynced_folders(member.parent)

    inputs = save_folders(related_models(2, seed=4), tmp_path / "in")
    (tmp_path / "composed").mkdir()
    out = compose(recipe_from_mapping({"inputs": inputs}), tmp_path / "composed" / "soup", progress=False).output
    assert fsynced_folders(out) and fsynced_folders(out.parent)


# -- item 11: stale temporaries -----------------------------------------------------------------


def test_temporary_names_carry_their_owner(tmp_path):
    with atomic.atomic_path(tmp_path / "scene.labels.png") as tmp:
        match = TEMPORARY_NAME.match(tmp.name)
        assert match is not None and match["name"] == "scene.labels.png" and match["suffix"] == ".png"
        assert int(match["pid"]) == os.getpid()
        assert f"{match['host']}-{match['pid']}-{match['start']}" == owner_tag()
        assert temporaries(tmp_path) == [tmp] and not is_stale(tmp)
    assert temporaries(tmp_path) == []


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    left = _killed_while_writing(tmp_path / "scene.labels.png")
    assert is_stale(left)
    atomic.write_text(tmp_path / "other.json", "{}")  # the next run that writes into the folder
    assert temporaries(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json"]


def test_a_live_writers_temporary_is_kept(tmp_path):
    proc = _python(f"""
        import sys, time
        from resegzoo.outputs.atomic import atomic_path
        with atomic_path({str(tmp_path / 'slow.bin')!r}) as tmp:
            print(tmp, flush=True)
            sys.stdin.read()  # wait until the test is done
    """, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        live = Path(proc.stdout.readline().strip())
        assert live.exists() and not is_stale(live)
        atomic.write_text(tmp_path / "other.json", "{}")
        assert live.exists(), "a temporary of a running process must never be removed"
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert (tmp_path / "slow.bin").exists() and temporaries(tmp_path) == []


def test_reused_pids_and_other_hosts(tmp_path):
    host, pid, start = owner_tag().split("-")
    reused = tmp_path / f".a.bin.part-{host}-{pid}-{int(start) + 1}-0123abcd.bin"  # our pid, another start
    ours = tmp_path / f".b.bin.part-{host}-{pid}-{start}-0123abcd.bin"
    other_host = tmp_path / f".c.bin.part-{'f' * 8 if host != 'f' * 8 else '0' * 8}-{pid}-1-0123abcd.bin"
    for path in (reused, ours, other_host):
        path.write_bytes(b"x")
    assert [is_stale(p) for p in (reused, ours, other_host)] == [True, False, False]
    assert atomic.remove_stale_temporaries(tmp_path) == [reused]
    assert temporaries(tmp_path) == [ours, other_host]


def test_a_killed_compose_leaves_a_folder_the_next_compose_removes(tmp_path):
    from compose_helpers import related_models, save_folders

    from resegzoo.compose import compose, recipe_from_mapping

    (tmp_path / "models").mkdir()
    proc = _python(f"""
        import os, signal
        from pathlib import Path
        from resegzoo.compose.output import write_output_folder

        def write_weights(path):
            path.write_bytes(b"x" * 4096)
            os.kill(os.getpid(), signal.SIGKILL)

        write_output_folder(Path({str(tmp_path / 'models' / 'soup')!r}), False, write_weights, {{}}, {{}}, None)
    """)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    left = temporaries(tmp_path / "models")
    assert [p.name.split(".partial-")[0] for p in left] == [".soup"] and left[0].is_dir()
    inputs = save_folders(related_models(2, seed=5), tmp_path / "in")
    compose(recipe_from_mapping({"inputs": inputs}), tmp_path / "models" / "soup", progress=False)
    assert temporaries(tmp_path / "models") == []
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["soup"]


def test_a_killed_segment_leaves_a_temporary_the_next_segment_removes(tmp_path):
    from click.testing import CliRunner

    from resegzoo.cli import build_cli

    out = tmp_path / "out"
    left = _killed_while_writing(out / "first.labels.png")
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(tmp_path / "scene.png")
    result = CliRunner().invoke(build_cli(), ["segment", str(tmp_path / "scene.png"), "--model", "oracle", "--masks",
                                              "none", "--classes", "red; blue", "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert not left.exists() and temporaries(out) == []


def test_a_compose_killed_between_its_two_renames_gets_the_old_model_back(tmp_path):
    """--force replaces OUT by two renames; killed between them, OUT is missing and the old model
    sits in a stale .OUT.old-* folder: the next run puts it back instead of deleting it."""
    from compose_helpers import related_models, save_folders

    from resegzoo.compose import compose, recipe_from_mapping

    models = tmp_path / "models"
    (models / "soup").mkdir(parents=True)
    (models / "soup" / "keep.txt").write_text("the old model")
    proc = _python(f"""
        import os, signal
        from pathlib import Path
        from resegzoo.outputs.atomic import temporary_dir
        out = Path({str(models / 'soup')!r})
        old = temporary_dir(out, "old")
        os.replace(out, old / out.name)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert not (models / "soup").exists() and len(temporaries(models)) == 1
    inputs = save_folders(related_models(2, seed=6), tmp_path / "in")
    with pytest.raises(Exception, match="already exists"):  # the old model is back, so --force is needed
        compose(recipe_from_mapping({"inputs": inputs}), models / "soup", progress=False)
    assert (models / "soup" / "keep.txt").read_text() == "the old model"
    assert temporaries(models) == []
