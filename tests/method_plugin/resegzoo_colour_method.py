"""A method plugin that lives in the test suite only (never shipped): ``colour`` scores each name by
how close a pixel's colour is to the name's colour. Exact answers, no model, no masks: the tests run
it through ``resegzoo segment``, ``resegzoo eval`` and ``--engine ray`` to check the method seam
carries any method. tests/test_methods.py makes it an installed plugin (a ``.dist-info`` folder with
a ``resegzoo`` entry point beside this folder on the path), so Ray actors find it like a real one."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pluggy

hookimpl = pluggy.HookimplMarker("resegzoo")

NAME = "colour"
#: the colours the tests paint their classes with
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 230), "yellow": (240, 230, 20),
           "white": (250, 250, 250)}


def colour_of(name: str) -> tuple[int, int, int]:
    """A name's colour: the table's, else one derived from the name's hash."""
    if name in COLOURS:
        return COLOURS[name]
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return digest[0], digest[1], digest[2]


@dataclass(frozen=True)
class ColourSettings:
    #: how fast a name's score falls with the colour distance (0..1 of the RGB cube's diagonal)
    width: float = 0.1
    #: a name's own colour ([r, g, b]) instead of the table's or its hash's (docs/images/change_pictures.py)
    colours: dict = field(default_factory=dict)
    #: colour-change's features: the colour in 0..1 minus ``feature_offset``, and a channel of ``feature_bias``
    feature_offset: float = 0.0
    feature_bias: float = 1.0

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise ValueError(f"width must be positive, got {self.width}")


class ColourMethod:
    """Probabilities exp(-(distance / width)^2) per name; built once per process or actor."""

    window = 32
    window_multiple = 1
    #: beside its scores: per window, one instance per patch of a name's colour (segment --objects)
    outputs = frozenset({"instances"})

    def __init__(self, settings: ColourSettings, device: str, colours=colour_of) -> None:
        import torch

        self.settings = settings
        self.colours = colours
        self.device = torch.device(device)
        self.calls = 0  # windows batches scored (tests read it)
        self.notes = ["colour: a test method, not a segmentation model"]

    def window_scores(self, windows, vocab, per_name, maps=None):
        import torch

        from resegzoo.methods.base import class_of_names, names_to_classes, vocabulary_names

        assert maps is None  # a method without masks is never given segments
        self.calls += 1
        names = vocabulary_names(vocab)
        x = torch.from_numpy(np.asarray(windows)).to(self.device).float()  # (B, S, S, 3)
        colours = torch.tensor([self.colours(n) for n in names], dtype=torch.float32, device=self.device)
        dist = (x[:, None] - colours[None, :, None, None]).norm(dim=-1) / (255.0 * 3 ** 0.5)  # (B, N, S, S)
        scores = torch.exp(-(dist / self.settings.width) ** 2)
        return scores if per_name else names_to_classes(scores, class_of_names(vocab), len(vocab), dim=1)

    def window_outputs(self, windows, vocab, per_name, maps=None, want=frozenset()):
        """The scores and, with ``instances`` wanted, per window one instance per 4-connected patch of
        pixels whose score for a name is above 0.5 (what a window sees of it: an object cut by the
        window's edge is cut here too); score: the patch's mean score; presence: the name's best
        score in the window."""
        from scipy import ndimage

        from resegzoo.methods.base import WindowOutputs, class_of_names, names_to_classes, vocabulary_names
        from resegzoo.objects.instances import Instance

        names = vocabulary_names(vocab)
        per_name_scores = self.window_scores(windows, vocab, True, maps)
        found = None
        if "instances" in want:
            found = []
            for window in per_name_scores.cpu().numpy():
                instances = []
                for name, score in zip(names, window):
                    patches, count = ndimage.label(score > 0.5)
                    for k in range(1, count + 1):
                        mask = patches == k
                        instances.append(Instance(name, round(float(score[mask].mean()), 4), float(score.max()), mask))
                found.append(instances)
        scores = per_name_scores if per_name else names_to_classes(per_name_scores, class_of_names(vocab), len(vocab),
                                                                  dim=1)
        return WindowOutputs(scores, instances=found)

    def describe(self):
        own = {"colours": dict(self.settings.colours)} if self.settings.colours else {}
        return {"colour_width": self.settings.width, **own}


def _colours(settings: ColourSettings):
    return lambda name: tuple(settings.colours[name]) if name in settings.colours else colour_of(name)


def build(context) -> ColourMethod:
    return ColourMethod(context.settings, context.device, _colours(context.settings))


class ColourChangeMethod(ColourMethod):
    """The colour method with image features from the same pass (the method seam's ``features``
    output): each pixel's colour in 0..1 (less ``feature_offset``) and a constant (``feature_bias``,
    1 by default), at the window's own resolution, so two dates' feature distance is exact
    arithmetic on their colours."""

    outputs = frozenset({"features"})

    def window_outputs(self, windows, vocab, per_name, maps=None, want=frozenset()):
        import torch

        from resegzoo.methods.base import WindowOutputs

        scores = self.window_scores(windows, vocab, per_name, maps)
        features = None
        if "features" in want:
            x = torch.from_numpy(np.asarray(windows)).to(self.device).float().permute(0, 3, 1, 2) / 255.0
            bias = torch.full_like(x[:, :1], self.settings.feature_bias)
            features = torch.cat([x - self.settings.feature_offset, bias], dim=1)  # (B, 4, S, S)
        return WindowOutputs(scores, features=features)


def build_change(context) -> ColourChangeMethod:
    return ColourChangeMethod(context.settings, context.device, _colours(context.settings))


# -- the same method with a "model": a YAML file of name colours (a method whose model is not CLIP) --
def _table_path(spec: str):
    from pathlib import Path

    return Path(spec.removeprefix("table:"))


def check_table(spec: str) -> None:
    if not spec.startswith("table:") or not _table_path(spec).is_file():
        raise ValueError(f"{spec!r} is no colour table; give table:FILE.yaml")


def table_fingerprint(spec: str) -> dict:
    return {"sha256": hashlib.sha256(_table_path(spec).read_bytes()).hexdigest()}


def build_table(context) -> ColourMethod:
    import yaml

    table = yaml.safe_load(_table_path(context.model).read_text())
    return ColourMethod(context.settings, context.device, lambda name: tuple(table.get(name, colour_of(name))))


@hookimpl
def resegzoo_register_methods(register):
    from resegzoo.methods.base import MethodSpec

    register(MethodSpec(NAME, build, "colour distance to each name's colour (a test method)", model=None,
                        masks=False, scores="probabilities", settings=ColourSettings, outputs={"instances"}))
    register(MethodSpec("colour-change", build_change, "the colour method with its features (a test method)",
                        model=None, masks=False, scores="probabilities", settings=ColourSettings,
                        outputs=frozenset({"features"})))
    register(MethodSpec("colour-table", build_table, "colour distance to the colours of a table (a test method)",
                        model="colour-table", masks=False, scores="probabilities", settings=ColourSettings,
                        check_model=check_table, fingerprint=table_fingerprint))
