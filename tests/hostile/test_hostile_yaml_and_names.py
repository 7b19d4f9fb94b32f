"""Hostile YAML and class names (issue 17, items 2 and 4).

YAML: every file resegzoo reads goes through ``resegzoo.schema.load_yaml``, which bounds size,
nesting and alias expansion and wants UTF-8; a vocabulary's names must be text. Class names: at
most ``MAX_NAME_CHARS`` characters, ``MAX_NAMES`` names, no control characters, refused before any
model is loaded or any pixel read.
"""
from __future__ import annotations

import ast
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hostile_helpers import refused

import resegzoo
from resegzoo.schema import MAX_YAML_DEPTH, SchemaError, load_yaml
from resegzoo.vocabulary import MAX_NAME_CHARS, MAX_NAMES, Vocabulary, VocabularyError


@pytest.fixture
def workspace(tmp_path, resegzoo_cache):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "in" / "scene.png")
    return tmp_path


def _segment_refused(workspace: Path, *args: str, fragments: tuple[str, ...]) -> str:
    return refused(workspace, "segment", str(workspace / "in" / "scene.png"), "--model", "oracle", "--masks", "none",
                   "--out", str(workspace / "out"), *args, fragments=fragments, out=workspace / "out",
                   allowed=[workspace / "resegzoo-cache"])


def _billion_laughs(levels: int = 9) -> str:
    """429 bytes that expand to 9**9 (387 million) names."""
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    previous = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    lines.append(f"classes: *{previous}")
    return "\n".join(lines) + "\n"


def _deep(depth: int = 1000) -> str:
    return "[" * depth + "x" + "]" * depth + "\n"


HOSTILE_YAML = {
    "alias bomb": (lambda: _billion_laughs(), "expands to more than"),
    "1000-deep nesting": (lambda: _deep(), f"nested deeper than {MAX_YAML_DEPTH}"),
    "1000-deep block nesting": (lambda: "".join("  " * i + "-\n" for i in range(1000)), "nested deeper than"),
    "recursive alias": (lambda: "&a [*a]\n", "recursive alias"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_YAML))
def test_hostile_yaml_is_refused_by_the_one_loader(tmp_path, case):
    make, fragment = HOSTILE_YAML[case]
    path = tmp_path / "file.yaml"
    path.write_text(make())
    with pytest.raises(SchemaError, match=fragment) as info:
        load_yaml(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_vocabulary_bomb_of_429_bytes_is_refused(workspace):
    vocab = workspace / "classes.yaml"
    vocab.write_text(_billion_laughs())
    assert len(vocab.read_bytes()) < 500
    _segment_refused(workspace, "--vocab", str(vocab), fragments=(str(vocab), "expands to more than"))


@pytest.mark.parametrize("command", ["segment-recipe", "vocab", "compose-recipe"])
def test_deep_yaml_is_a_one_line_error_in_every_command(workspace, command):
    path = workspace / "deep.yaml"
    path.write_text("inputs: " + _deep() if command == "compose-recipe" else _deep())
    if command == "compose-recipe":
        (workspace / "out").mkdir()
        refused(workspace, "compose", str(path), "--out", str(workspace / "out" / "soup"),
                fragments=(str(path), "nested deeper"), out=workspace / "out", allowed=[workspace / "resegzoo-cache"])
    else:
        option = "--recipe" if command == "segment-recipe" else "--vocab"
        extra = ("--classes", "red; blue") if option == "--recipe" else ()
        _segment_refused(workspace, option, str(path), *extra, fragments=(str(path), "nested deeper"))


@pytest.mark.parametrize("suffix", [".yaml", ".txt"])
def test_a_latin1_vocabulary_is_a_one_line_error(workspace, suffix):
    vocab = workspace / f"classes{suffix}"
    vocab.write_bytes("- caf\xe9\n- road\n".encode("latin-1") if suffix == ".yaml" else "caf\xe9\nroad\n".encode("latin-1"))
    _segment_refused(workspace, "--vocab", str(vocab), fragments=(str(vocab), "not UTF-8"))


def test_a_latin1_recipe_is_a_one_line_error(workspace):
    recipe = workspace / "recipe.yaml"
    recipe.write_bytes("# r\xe9glages\ninference: {window: 224}\n".encode("latin-1"))
    _segment_refused(workspace, "--classes", "red; blue", "--recipe", str(recipe), fragments=(str(recipe), "not UTF-8"))


@pytest.mark.parametrize("text", ["- 1\n- road\n", "- [road, 2]\n- tree\n", "- {1: [road]}\n- {Tree: [tree]}\n",
                                  "- {a: 1, b: 2}\n- tree\n", "- null\n- tree\n"])
def test_vocabulary_items_that_are_not_text_are_refused(workspace, text):
    vocab = workspace / "classes.yaml"
    vocab.write_text(text)
    _segment_refused(workspace, "--vocab", str(vocab), fragments=(str(vocab),))


def test_no_yaml_is_read_outside_the_bounded_loader():
    """Any yaml.load/safe_load/full_load call in the package would bypass the bounds."""
    package = Path(resegzoo.__file__).parent
    offenders = []
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text("utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "yaml" \
                    and node.attr in ("load", "safe_load", "full_load", "unsafe_load", "load_all", "safe_load_all"):
                offenders.append(f"{source.relative_to(package)}:{node.lineno}")
    assert offenders == []


# -- class names (item 4) -----------------------------------------------------------------------


def test_a_one_megabyte_name_is_refused_at_once(workspace):
    start = time.perf_counter()
    message = _segment_refused(workspace, "--classes", "x" * 1_000_000 + "; road",
                               fragments=("1,000,000 characters", f"at most {MAX_NAME_CHARS}"))
    assert time.perf_counter() - start < 5.0
    assert len(message) < 300


@pytest.mark.parametrize("name, shown", [("road\nway", "'\\n'"), ("ro\x00ad", "'\\x00'"), ("ro\x1bad", "'\\x1b'"),
                                         ("ro\u2028ad", "'\\u2028'"), ("ro\tad", "'\\t'")])
def test_names_with_control_characters_are_refused(workspace, name, shown):
    _segment_refused(workspace, "--classes", f"building; {name}", fragments=("control character", shown))


def test_a_newline_in_a_vocabulary_file_name_is_refused(workspace):
    vocab = workspace / "classes.yaml"
    vocab.write_text('- building\n- "road\\nway"\n')
    _segment_refused(workspace, "--vocab", str(vocab), fragments=(str(vocab), "control character"))


def test_too_many_names_are_refused(workspace):
    vocab = workspace / "classes.txt"
    vocab.write_text("".join(f"c{i}, s{i}\n" for i in range(MAX_NAMES // 2 + 1)))
    _segment_refused(workspace, "--vocab", str(vocab), fragments=(str(vocab), f"more than {MAX_NAMES} names"))


def test_name_limits_in_the_api():
    assert Vocabulary([["a" * MAX_NAME_CHARS], ["b"]]).classes[0][0] == "a" * MAX_NAME_CHARS
    with pytest.raises(VocabularyError, match="at most"):
        Vocabulary([["a" * (MAX_NAME_CHARS + 1)], ["b"]])
    with pytest.raises(VocabularyError, match="label 1"):
        Vocabulary([["a"], ["b"]], labels=["x\ny", "z"])
    # ordinary scripts and joiners are names, not control characters
    Vocabulary([["बिल्डिंग"], ["道路"], ["ถนน"], ["👩\u200d🌾 farm"]])
