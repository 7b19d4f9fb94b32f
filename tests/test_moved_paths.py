"""Issue 22: the CLIP method moved into resegzoo/methods/clip/ and the vocabulary into
resegzoo/vocabulary.py; every old name keeps working, with a DeprecationWarning that names the new
path (public interfaces are contracts). The moved modules' public names are held by
tests/test_moved_modules.py (tests/data/moved_modules_issue22.json); here: names that left modules
which stay, private names, and the one Vocabulary class."""
from __future__ import annotations

import importlib

import pytest

LEFT_NAMES = [
    ("resegzoo.segmenter.models", "build_encoder", "resegzoo.methods.clip.build"),
    ("resegzoo.segmenter.models", "fit_schedule", "resegzoo.methods.clip.build"),
    ("resegzoo.segmenter.models", "text_tower_key", "resegzoo.methods.clip.build"),
    ("resegzoo.segmenter.models", "mask_level_count", "resegzoo.methods.base"),
    ("resegzoo.segmenter.models", "random_weights_note", "resegzoo.weights.resolve"),
    ("resegzoo.segmenter.windows", "upsample_patch_logits", "resegzoo.methods.base"),
    ("resegzoo.segmenter.windows", "patch_padding", "resegzoo.methods.clip.method"),
]


@pytest.mark.parametrize("old,name,new", LEFT_NAMES)
def test_a_name_that_left_a_module_that_stays_still_imports_with_a_warning(old, name, new):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"^{old}.{name} is deprecated: it moved to {new}; import {name} "
                                                f"from {new}$"):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)


def test_private_names_and_from_imports_through_the_old_clip_paths():
    from resegzoo.methods.clip import encoder

    with pytest.warns(DeprecationWarning, match="resegzoo.segmenter.encoder moved to resegzoo.methods.clip.encoder"):
        from resegzoo.segmenter.encoder import _interpolate_pos  # tests and scripts used private helpers too
    assert _interpolate_pos is encoder._interpolate_pos
    with pytest.warns(DeprecationWarning, match="import Vocabulary from resegzoo.plugin"):
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
