"""Vocabularies, prompt templates, text embeddings and the once-per-vocabulary cache."""
from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F

from resegzoo.schema import SchemaError
from resegzoo.methods.clip.encoder import MaskedClipEncoder
from resegzoo.methods.clip.text import TextCache, embed_vocabulary, load_templates
from resegzoo.vocabulary import Vocabulary, VocabularyError
from resegzoo.testing import make_tiny_clip


def test_parse_classes_and_synonyms():
    v = Vocabulary.parse("building; road, street ;tree; water;")
    assert v.classes == (("building",), ("road", "street"), ("tree",), ("water",))
    assert v.class_names == ["building", "road", "tree", "water"]
    assert Vocabulary([["a", "b"], "c"]).classes == (("a", "b"), ("c",))


@pytest.mark.parametrize("text, message", [
    ("", "class list is empty"),
    ("  ", "class list is empty"),
    ("building;;road", "class 2 has an empty name"),
    ("road, ; tree", "class 1 has an empty name"),
    ("road; Road", "appears in classes 1 and 2"),
])
def test_bad_class_lists(text, message):
    with pytest.raises(VocabularyError, match=message):
        Vocabulary.parse(text)


def test_vocabulary_files(tmp_path):
    txt = tmp_path / "classes.txt"
    txt.write_text("# classes\nbuilding\nroad, street  # synonyms\n\ntree\n")
    assert Vocabulary.from_file(txt).classes == (("building",), ("road", "street"), ("tree",))
    yml = tmp_path / "classes.yaml"
    yml.write_text("classes:\n  - building\n  - [road, street]\n")
    assert Vocabulary.from_file(yml).classes == (("building",), ("road", "street"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("building: 1\n")
    with pytest.raises(SchemaError, match="expected a list of classes"):
        Vocabulary.from_file(bad)
    with pytest.raises(VocabularyError, match="no such vocabulary file"):
        Vocabulary.from_file(tmp_path / "missing.txt")


def test_template_sets(tmp_path):
    assert load_templates("reference") == ("Aerial photo of a {} in the city",)
    imagenet = load_templates("imagenet")
    assert len(imagenet) == 80 and len(set(imagenet)) == 80
    assert "a photo of a {}." in imagenet
    assert len(load_templates("remote-sensing")) >= 5
    own = tmp_path / "t.txt"
    own.write_text("a {} seen from above\n# comment\n")
    assert load_templates(str(own)) == ("a {} seen from above",)
    own.write_text("no placeholder here\n")
    with pytest.raises(SchemaError, match="exactly one"):
        load_templates(str(own))
    with pytest.raises(SchemaError, match="neither a template set"):
        load_templates("imagenett")


def test_embeddings_follow_method_formula():
    model = make_tiny_clip(seed=1)
    enc = MaskedClipEncoder(model, open_clip.tokenize)
    vocab = Vocabulary.parse("road, street; tree")
    templates = ["a photo of a {}.", "aerial image of {}"]
    emb = embed_vocabulary(enc, vocab, templates)

    def name_embedding(name):
        t = model.encode_text(open_clip.tokenize([tpl.format(name) for tpl in templates]), normalize=True)
        return F.normalize(t.mean(0), dim=0)

    refs = torch.stack([name_embedding(n) for n in ["road", "street", "tree"]])
    torch.testing.assert_close(emb.names, refs, atol=1e-5, rtol=0)
    assert emb.class_of_name.tolist() == [0, 0, 1]
    feats = F.normalize(torch.randn(5, 7, 32), dim=-1)
    scores = emb.class_scores(feats)
    cos = feats @ refs.T
    torch.testing.assert_close(scores[..., 0], torch.maximum(cos[..., 0], cos[..., 1]))
    torch.testing.assert_close(scores[..., 1], cos[..., 2])


class _CountingEncoder:
    def __init__(self):
        self.calls = 0

    def encode_text(self, texts):
        self.calls += 1
        return torch.randn(len(texts), 4)


def test_text_cache_runs_once_per_vocabulary_and_templates():
    enc = _CountingEncoder()
    cache = TextCache(enc)
    v1, v2 = Vocabulary.parse("a; b"), Vocabulary.parse("a; b")
    first = cache.get(v1, ("{}",))
    assert cache.get(v2, ("{}",)) is first and enc.calls == 1
    cache.get(Vocabulary.parse("a; c"), ("{}",))
    cache.get(v1, ("x {}",))
    assert enc.calls == 3 and cache.computed == 3


@pytest.fixture
def text_tower_calls(monkeypatch):
    """Counts the text tower's passes (resegzoo's encode_tokens over open_clip's text tower), one
    per batch of prompts."""
    from resegzoo.methods.clip import text_tower

    calls = []
    original = text_tower.encode_tokens

    def counting(model, tokens, *args, **kwargs):
        calls.append(len(tokens))
        return original(model, tokens, *args, **kwargs)

    monkeypatch.setattr(text_tower, "encode_tokens", counting)
    return calls


def test_text_embeddings_are_stored_and_a_second_run_makes_no_text_pass(tmp_path, resegzoo_cache, text_tower_calls):
    from compose_helpers import save_folder

    from resegzoo.segmenter.core import Segmenter

    folder = str(save_folder(make_tiny_clip(3), tmp_path / "tiny"))
    vocab = Vocabulary.parse("building, roof; road; tree")
    first = Segmenter.from_recipe(model=folder, masks="none")
    embedded = first.method.text_embeddings(vocab)
    assert len(text_tower_calls) == 1 and first.method.text.computed == 1
    stored = list((resegzoo_cache / "text-embeddings").glob("*.safetensors"))
    assert len(stored) == 1
    again = Segmenter.from_recipe(model=folder, masks="none")  # a new process would do the same
    reused = again.method.text_embeddings(vocab)
    assert len(text_tower_calls) == 1 and again.method.text.computed == 0 and again.method.text.loaded == 1
    assert torch.equal(reused.names, embedded.names) and torch.equal(reused.class_of_name, embedded.class_of_name)
    # other names, other templates or other weights are other entries
    again.method.text_embeddings(Vocabulary.parse("building; road; water"))
    again.method.templates = ("a satellite photo of {}.",)
    again.method.text_embeddings(vocab)
    other = str(save_folder(make_tiny_clip(4), tmp_path / "other"))
    Segmenter.from_recipe(model=other, masks="none").method.text_embeddings(vocab)
    assert len(text_tower_calls) == 4 and len(list((resegzoo_cache / "text-embeddings").iterdir())) == 4


def test_a_damaged_cache_entry_is_computed_again(tmp_path, resegzoo_cache, text_tower_calls):
    from compose_helpers import save_folder

    from resegzoo.segmenter.core import Segmenter

    folder = str(save_folder(make_tiny_clip(3), tmp_path / "tiny"))
    vocab = Vocabulary.parse("building; road")
    expected = Segmenter.from_recipe(model=folder, masks="none").method.text_embeddings(vocab).names
    [stored] = (resegzoo_cache / "text-embeddings").glob("*.safetensors")
    stored.write_bytes(stored.read_bytes()[:40])  # truncated
    with pytest.warns(UserWarning, match="unreadable"):
        again = Segmenter.from_recipe(model=folder, masks="none").method.text_embeddings(vocab).names
    assert torch.equal(again, expected) and len(text_tower_calls) == 2
    assert Segmenter.from_recipe(model=folder, masks="none").method.text_embeddings(vocab) is not None
    assert len(text_tower_calls) == 2  # the rewritten entry is read back
