"""Overlapped stages: the prefetch queue keeps order, values and errors, runs ahead by a bounded
number of items, and the segmenter and eval give the same numbers with it as without it."""
from __future__ import annotations

import threading

import numpy as np
import open_clip
import pytest
import torch

from resegzoo.api import Segmenter, Vocabulary, load_recipe
from resegzoo.eval.datasets.generic import load_classes_file, open_generic
from resegzoo.eval.runner import EvalRun, RunSpec
from resegzoo.eval.synthetic import write_dataset
from resegzoo.masks.superpixels import build_slic
from resegzoo.runtime.prefetch import prefetched
from resegzoo.segmenter import core
from resegzoo.methods.clip.encoder import MaskedClipEncoder
from resegzoo.testing import make_tiny_clip


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_same_items_same_results_same_order(depth):
    got = list(prefetched(lambda x: x * x, range(20), depth))
    assert got == [(i, i * i) for i in range(20)]
    assert list(prefetched(lambda x: x, [], depth)) == []


def test_the_next_item_is_made_while_the_consumer_holds_this_one():
    started = {i: threading.Event() for i in range(3)}

    def make(i):
        started[i].set()
        return i

    items = prefetched(make, range(3), depth=1)
    first, _ = next(items)
    assert first == 0
    # the consumer has not asked for item 1 yet, but it is being made in the background
    assert started[1].wait(timeout=10)
    assert list(items) == [(1, 1), (2, 2)]


@pytest.mark.parametrize("depth", [1, 2])
def test_no_more_than_depth_items_run_ahead(depth):
    made: list[int] = []
    lock = threading.Lock()

    def make(i):
        with lock:
            made.append(i)
        return i

    consumed = 0
    for i, _ in prefetched(make, range(12), depth):
        threading.Event().wait(0.02)  # give the background thread every chance to run ahead
        with lock:
            ahead = len(made) - (consumed + 1)
        assert ahead <= depth, (i, made)
        consumed += 1
    assert made == list(range(12))


def test_an_error_surfaces_at_its_items_turn_and_stops_the_rest():
    made: list[int] = []

    def make(i):
        made.append(i)
        if i == 2:
            raise ValueError("bad item 2")
        return i

    seen = []
    with pytest.raises(ValueError, match="bad item 2"):
        for i, _ in prefetched(make, range(50), depth=2):
            seen.append(i)
    assert seen == [0, 1]
    assert max(made) <= 4  # item 2 + depth, nothing after: the queue stops with the consumer


def tiny_segmenter(prefetch: int, generator=None) -> Segmenter:
    encoder = MaskedClipEncoder(make_tiny_clip(), open_clip.get_tokenizer("ViT-B-16"))
    return Segmenter(encoder, generator or build_slic(), load_recipe(None, window=64, stride=32, prefetch=prefetch))


def test_segmenter_gives_identical_logits_with_and_without_prefetch(monkeypatch):
    monkeypatch.setattr(core, "MASK_BAND_PX", 64)  # one band per window row: 4 bands to overlap
    rng = np.random.default_rng(0)
    image = (rng.random((150, 100, 3)) * 255).astype(np.uint8)
    vocab = Vocabulary.parse("building; road; tree")
    calls = []

    def counting_slic(pixels, inner=build_slic()):
        calls.append(threading.current_thread().name)
        return inner(pixels)

    results = {}
    for depth in (0, 1, 2):
        calls.clear()
        results[depth], _ = tiny_segmenter(depth, counting_slic).logits(image, vocab)
        if depth:
            assert any(name.startswith("resegzoo-prefetch") for name in calls)  # really in the background
        else:
            assert set(calls) == {threading.current_thread().name}
    assert len(calls) == 4 * 3  # 4 x 3 windows, each segmented once
    torch.testing.assert_close(results[1], results[0], rtol=0, atol=0)
    torch.testing.assert_close(results[2], results[0], rtol=0, atol=0)
    prepared = tiny_segmenter(1).prepare(image)  # first band made ahead, as eval and segment do
    assert prepared.has_first_masks
    torch.testing.assert_close(tiny_segmenter(1).logits(prepared, vocab)[0], results[0], rtol=0, atol=0)


def test_eval_gives_identical_confusion_matrices_with_and_without_prefetch(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes: [red, green, blue]\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root,
                  lambda n: {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}[n], images=3)
    dataset = open_generic(root)
    matrices = {}
    for depth in (0, 1):
        spec = RunSpec(label=f"p{depth}", recipe=load_recipe(None, window=64, stride=32, prefetch=depth),
                       model="oracle", masks="slic")  # names the run; the segmenter below is used
        result = EvalRun(dataset, spec, tmp_path / f"out{depth}").run(lambda s: tiny_segmenter(depth),
                                                                      overlays=0, progress=False)
        matrices[depth] = result.confusion
        assert result.newly_done == 3
    np.testing.assert_array_equal(matrices[1], matrices[0])
    assert matrices[0].sum() > 0
