"""Moved: the vocabulary to :mod:`resegzoo.vocabulary`, the templates and text embeddings to
:mod:`resegzoo.methods.clip.text` (issue 22: the CLIP method is a package under methods/).

Every name this module held still imports from here, with a DeprecationWarning naming its new home."""
from resegzoo.deprecation import moved_names

_VOCABULARY = ("Vocabulary", "VocabularyError", "MAX_NAME_CHARS", "MAX_NAMES", "_check_name")
_TEXT = ("TEMPLATE_SETS", "load_templates", "TextEmbeddings", "embed_vocabulary", "TEXT_CACHE_VERSION", "TextCache",
         "_load_stored", "_store")

__getattr__ = moved_names(__name__, {**{name: "resegzoo.vocabulary" for name in _VOCABULARY},
                                     **{name: "resegzoo.methods.clip.text" for name in _TEXT}})
