"""Issue 22: the CLIP method moved into resegzoo/methods/clip/ and the vocabulary into
resegzoo/vocabulary.py; every old module path and name keeps working, with a DeprecationWarning
that names the new path (public interfaces are contracts)."""
from __future__ import annotations

import importlib
import sys

import pytest

MOVED_MODULES = {
    "resegzoo.segmenter.clip_method": "resegzoo.methods.clip.method",
    "resegzoo.segmenter.encoder": "resegzoo.methods.clip.encoder",
    "resegzoo.segmenter.schedule": "resegzoo.methods.clip.schedule",
    "resegzoo.segmenter.last_block": "resegzoo.methods.clip.last_block",
    "resegzoo.segmenter.extras": "resegzoo.methods.clip.extras",
}

MOVED_NAMES = [
    ("resegzoo.segmenter.text", "Vocabulary", "resegzoo.vocabulary"),
    ("resegzoo.segmenter.text", "VocabularyError", "resegzoo.vocabulary"),
    ("resegzoo.segmenter.text", "MAX_NAMES", "resegzoo.vocabulary"),
    ("resegzoo.segmenter.text", "load_templates", "resegzoo.methods.clip.text"),
    ("resegzoo.segmenter.text", "TextEmbeddings", "resegzoo.methods.clip.text"),
    ("resegzoo.segmenter.text", "TextCache", "resegzoo.methods.clip.text"),
    ("resegzoo.segmenter.text", "embed_vocabulary", "resegzoo.methods.clip.text"),
    ("resegzoo.segmenter.models", "build_encoder", "resegzoo.methods.clip.build"),
    ("resegzoo.segmenter.models", "fit_schedule", "resegzoo.methods.clip.build"),
    ("resegzoo.segmenter.models", "text_tower_key", "resegzoo.methods.clip.build"),
    ("resegzoo.segmenter.models", "mask_level_count", "resegzoo.methods.base"),
    ("resegzoo.segmenter.models", "random_weights_note", "resegzoo.weights.resolve"),
    ("resegzoo.segmenter.windows", "upsample_patch_logits", "resegzoo.methods.base"),
    ("resegzoo.segmenter.windows", "patch_padding", "resegzoo.methods.clip.method"),
]


@pytest.mark.parametrize("old,new", sorted(MOVED_MODULES.items()))
def test_an_old_module_path_imports_the_new_module_with_a_warning(old, new, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)  # a first import, whatever ran before
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)  # the same object: patching through the old path works


def test_from_imports_through_an_old_module_path(monkeypatch):
    monkeypatch.delitem(sys.modules, "resegzoo.segmenter.encoder", raising=False)
    with pytest.warns(DeprecationWarning, match="resegzoo.methods.clip.encoder"):
        from resegzoo.segmenter.encoder import MaskedClipEncoder, _interpolate_pos  # private names too
    from resegzoo.methods.clip import encoder

    assert MaskedClipEncoder is encoder.MaskedClipEncoder and _interpolate_pos is encoder._interpolate_pos


@pytest.mark.parametrize("old,name,new", MOVED_NAMES)
def test_an_old_name_still_imports_with_a_warning(old, name, new):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"{old}.{name} moved to {new}.{name}"):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)


def test_from_import_of_a_moved_name():
    with pytest.warns(DeprecationWarning, match="resegzoo.vocabulary.Vocabulary"):
        from resegzoo.segmenter.text import Vocabulary
    import resegzoo.vocabulary

    assert Vocabulary is resegzoo.vocabulary.Vocabulary


def test_model_load_error_stays_where_the_api_began_without_a_warning(recwarn):
    from resegzoo.methods.base import ModelLoadError
    from resegzoo.segmenter import core, models

    assert models.ModelLoadError is ModelLoadError and core.ModelLoadError is ModelLoadError
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]


def test_an_unknown_name_is_still_an_attribute_error():
    from resegzoo.segmenter import models, text

    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        models.nothing_here  # noqa: B018
    with pytest.raises(ImportError):
        from resegzoo.segmenter.text import nothing_here  # noqa: F401


def test_one_vocabulary_class():
    """The pipeline, the methods, eval and the API all name the same class."""
    import resegzoo.api
    import resegzoo.methods.clip.method
    import resegzoo.segmenter.core
    from resegzoo.vocabulary import Vocabulary

    assert resegzoo.api.Vocabulary is Vocabulary
    assert resegzoo.segmenter.core.Vocabulary is Vocabulary
    assert resegzoo.methods.clip.method.Vocabulary is Vocabulary
    vocab = Vocabulary.parse("building; road, street; tree")
    assert vocab.names == ["building", "road", "street", "tree"]
    assert vocab.class_of_names == [0, 1, 1, 2]


def test_the_compose_prompt_set_is_no_second_vocabulary_class():
    """compose's ``vocabulary:`` section (classes + templates for weighting) is PromptSet; its old
    name still works with a warning, and its classes are checked by the one Vocabulary."""
    from resegzoo.compose import recipe
    from resegzoo.vocabulary import VocabularyError

    for module in ("resegzoo.compose.recipe", "resegzoo.compose"):
        with pytest.warns(DeprecationWarning, match="PromptSet"):
            old = getattr(importlib.import_module(module), "Vocabulary")
        assert old is recipe.PromptSet
    assert recipe.PromptSet(["tree", "water"]).classes == ["tree", "water"]
    with pytest.raises(VocabularyError, match="vocabulary.classes: the name 'Tree' appears in classes 1 and 2"):
        recipe.PromptSet(["tree", "Tree"])
    with pytest.raises(VocabularyError, match="vocabulary.classes: class 2 has an empty name"):
        recipe.PromptSet(["tree", " "])
