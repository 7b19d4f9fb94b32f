"""Issue 22 item 4: the method base class gives the defaults, the pipeline does names to classes and
the softmax, so a method is its scores and its settings; the shared pipeline imports no method."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from resegzoo.api import Segmenter, Vocabulary, load_recipe
from resegzoo.methods.base import MethodBase, MethodError, method_attribute
from resegzoo.plugin import MethodBase as PluginMethodBase
from test_import_graph import ROOT, import_graph

VOCAB = Vocabulary.parse("a; b1, b2; c")
#: each name's constant score (a flat method): class b's best name is b1
NAME_SCORES = [0.1, 0.5, 0.3, 0.2]


class Flat(MethodBase):
    """Only what a method must give: a window side and its names' scores (constant per name)."""

    window = 8

    def __init__(self, scores: list[float]) -> None:
        self.values = scores
        self.asked: list[bool] = []

    def window_scores(self, windows, vocab, per_name, maps=None):
        self.asked.append(per_name)
        values = torch.tensor(self.values, dtype=torch.float32)[None, :, None, None]
        return values.expand(len(windows), -1, *windows.shape[1:3]).clone()


def segment(method: MethodBase, scores: str, **recipe) -> tuple[np.ndarray, np.ndarray, Segmenter]:
    seg = Segmenter(None, None, load_recipe(None, method="flat", window=8, stride=4, **recipe), method=method,
                    scores=scores)
    result = seg.segment(np.zeros((8, 12, 3), np.uint8), VOCAB)
    return result.labels, result.probs, seg


def test_the_base_class_gives_every_default():
    method = Flat(NAME_SCORES)
    assert (method.window_multiple, method.names_only, method.window_softmax, method.random_weights) == (1, True,
                                                                                                        False, False)
    assert (list(method.notes), method.facts(), method.describe(), method.mask_levels()) == ([], {}, {}, None)
    labels = np.zeros((2, 2), np.int32)
    assert method.refine_labels(None, labels, lambda: None) is labels
    assert PluginMethodBase is MethodBase  # plugins import it from resegzoo.plugin
    with pytest.raises(NotImplementedError):
        MethodBase().window_scores(np.zeros((1, 8, 8, 3), np.uint8), VOCAB, True)


def test_a_names_only_cosine_method_gets_class_probabilities_from_the_pipeline():
    """softmax over classes of each class's best name (``probabilities: class``), the same formula
    the clip method's class rows give; the method was only ever asked for names."""
    scale = 50.0
    method = Flat(NAME_SCORES)
    labels, probs, _ = segment(method, "cosine")
    expected = torch.softmax(scale * torch.tensor([0.1, 0.5, 0.2]), 0).numpy()
    np.testing.assert_allclose(probs[:, 3, 5], expected, rtol=1e-6)
    assert (labels == 1).all() and set(method.asked) == {True}
    # probabilities: name: the softmax over every name, then each class's best name
    _, probs, _ = segment(Flat(NAME_SCORES), "cosine", probabilities="name")
    by_name = torch.softmax(scale * torch.tensor(NAME_SCORES), 0).numpy()
    np.testing.assert_allclose(probs[:, 3, 5], [by_name[0], by_name[1:3].max(), by_name[3]], rtol=1e-6)
    # average: probabilities: each window's softmax (of the classes' best names), averaged
    _, probs, _ = segment(Flat(NAME_SCORES), "cosine", average="probabilities")
    np.testing.assert_allclose(probs[:, 3, 5], expected, rtol=1e-6)


def test_a_names_only_probability_method_is_averaged_by_name_then_each_class_takes_its_best_name():
    """The peers' order (SegEarth-OV3): overlapping windows average each NAME's probability, then a
    class takes its best name; a class whose names win in different windows is not favoured."""

    class Sides(Flat):
        def window_scores(self, windows, vocab, per_name, maps=None):
            out = torch.zeros(len(windows), 4, *windows.shape[1:3])
            for i, window in enumerate(windows):
                red = window[..., 0].mean() > window[..., 2].mean()
                out[i, 0] = 0.5  # a
                out[i, 1 if red else 2] = 0.8  # b1 on the red side, b2 on the blue side
            return out

    image = np.zeros((8, 12, 3), np.uint8)
    image[:, :4] = (255, 0, 0)
    image[:, 4:8] = (128, 128, 128)
    image[:, 8:] = (0, 0, 255)
    seg = Segmenter(None, None, load_recipe(None, method="flat", window=8, stride=4), method=Sides(NAME_SCORES),
                    scores="probabilities")
    result = seg.segment(image, VOCAB)
    assert (result.labels[:, :4] == 1).all() and (result.labels[:, 8:] == 1).all()
    assert (result.labels[:, 4:8] == 0).all()  # b1 and b2 average to 0.4 there: a (0.5) wins
    np.testing.assert_allclose(result.probs[:, 0, 5], [0.5, 0.4, 0.0], rtol=1e-6)


def test_a_protocol_method_without_the_base_class_gets_the_same_defaults():
    class Bare:
        window = 8

        def window_scores(self, windows, vocab, per_name, maps=None):
            rows = 4 if per_name else 3
            return torch.full((len(windows), rows, *windows.shape[1:3]), 0.5)

    method = Bare()
    assert method_attribute(method, "names_only") is False  # asked for class rows, as before MethodBase
    assert method_attribute(method, "describe")() == {} and method_attribute(method, "mask_levels")() is None
    labels, probs, seg = segment(method, "probabilities")
    assert seg.describe()["method"] == "flat" and seg.notes == []
    np.testing.assert_allclose(probs, 0.5)


def test_a_method_without_a_window_is_a_one_line_error():
    class NoWindow(MethodBase):
        def window_scores(self, windows, vocab, per_name, maps=None):
            raise AssertionError("never asked")

    with pytest.raises(MethodError, match="method 'flat' declares no window"):
        Segmenter(None, None, load_recipe(None, method="flat"), method=NoWindow(), scores="probabilities")


def test_a_method_that_refines_labels_is_checked():
    class Refines(Flat):
        def refine_labels(self, image, labels, segments):
            assert segments() is None  # no mask generator here
            return labels[:, :3]

    with pytest.raises(MethodError, match="method 'flat' refined the labels into int32 \\(8, 3\\), expected"):
        segment(Refines(NAME_SCORES), "probabilities")


def test_the_pipeline_imports_no_method():
    """segmenter/core.py and windows.py (windows, stitching, names to classes, background, nodata)
    import nothing of resegzoo.methods but the seam; the clip method is built through its spec."""
    graph = import_graph(ROOT)
    for module in ("resegzoo.segmenter.core", "resegzoo.segmenter.windows"):
        methods = {m for m in graph[module] if m.startswith("resegzoo.methods")}
        assert methods <= {"resegzoo.methods.base"}, (module, methods)


def test_the_encoder_form_builds_the_clip_method_through_its_spec(model_folder=None):
    from resegzoo.methods.clip.encoder import MaskedClipEncoder
    from resegzoo.methods.clip.method import ClipMethod
    from resegzoo.testing import make_tiny_clip
    import open_clip

    encoder = MaskedClipEncoder(make_tiny_clip(), open_clip.tokenize)
    recipe = load_recipe(None, templates="imagenet", generator="none")
    seg = Segmenter(encoder, None, recipe, masks_name="none")
    assert isinstance(seg.method, ClipMethod) and seg.method_name == "clip" and seg.encoder is encoder
    assert seg.method.masks_name == "none" and len(seg.method.templates) == 80  # the recipe's settings
    with pytest.warns(DeprecationWarning, match="Segmenter.templates is deprecated: it is the method's"):
        assert seg.templates == seg.method.templates
    with pytest.warns(DeprecationWarning, match="Segmenter.text is deprecated"):
        assert seg.text is seg.method.text
    with pytest.warns(DeprecationWarning, match="Segmenter.text_embeddings is deprecated"):
        names = seg.text_embeddings(VOCAB).names
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(seg.method.text_embeddings(VOCAB).names, names)


def test_names_to_classes_against_a_loop():
    """The max over each class's names, checked against a loop; one name per class in order is the
    values themselves (no copy), any other order or grouping is not."""
    from resegzoo.methods.base import names_to_classes

    values = torch.randn(3, 4, 5)
    for class_of_name, k in (([0, 1, 2], 3), ([1, 0, 2], 3), ([2, 0, 1], 3), ([0, 0, 1], 2), ([1, 0, 1], 2)):
        expected = torch.stack([values[[i for i, c in enumerate(class_of_name) if c == j]].amax(0) for j in range(k)])
        torch.testing.assert_close(names_to_classes(values, class_of_name, k), expected, rtol=0, atol=0)
        moved = names_to_classes(values.movedim(0, -1), class_of_name, k, dim=-1)
        torch.testing.assert_close(moved, expected.movedim(0, -1), rtol=0, atol=0)
    assert names_to_classes(values, [0, 1, 2], 3) is values
