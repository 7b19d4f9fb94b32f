"""Resumable evaluation of one segmenter setting over one dataset.

Each finished image leaves its confusion matrix in ``<run dir>/confusion/<id>.npy`` (written
atomically), so a crash or Ctrl-C loses no finished image and a rerun continues where it stopped.
The run folder's name is made of the settings alone: the model's and the masks' names and a hash
of everything that decides the numbers (dataset, split, root, classes, label encoding, recipe (its
method included), model, masks, and the fingerprints of :mod:`resegzoo.eval.fingerprints`: the
weights' contents, SAM's, the method's plugin, resegzoo's version, the dataset's file list). A rerun
with other settings or other weights lands in another folder and never mixes its images with these;
the same settings under another row label (one recipe or several, any --recipe spelling) find their
stored results.

Where the dataset has instance labels for every image and the method gives objects (its
``instances`` output), each image also leaves its objects and true instances in
``<run dir>/objects/<id>.npz`` and the run's objects are counted per class and scored by mask AP
(:mod:`resegzoo.eval.objects`).
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from resegzoo.outputs import atomic
from resegzoo.outputs.reading import load_npy, read_text
from resegzoo.eval.datasets import Dataset, DatasetError, Sample
from resegzoo.eval.metrics import Scores, confusion_matrix, scores
from resegzoo.eval.overlay import save_overlay

#: bump when the stored per-image results change meaning
RESULTS_FORMAT = 1
#: the most bytes an image's stored objects may take (a file larger than that is not resegzoo's)
OBJECTS_FILE_LIMIT = 1 << 30


@dataclass(frozen=True)
class RunSpec:
    """One setting to evaluate: a recipe (its method in ``recipe.method``), a model ("" for a method
    without one) and a mask generator, with a row label."""

    label: str
    recipe: Any  # resegzoo.segmenter.recipe.SegmentRecipe
    model: str
    masks: str
    #: where the recipe came from (a path or a shipped recipe name), for the report
    recipe_source: str = ""
    #: prompt names per class when the method has its own on this dataset (its
    #: ``method_settings``); None: the dataset's ``classes``
    classes: Optional[list[list[str]]] = None
    #: the model resolved once (``resegzoo.weights.zoo.ResolvedModel``; :func:`resegzoo.eval.ablation.plan_runs`
    #: resolves each model once for every run, :class:`EvalRun` any run made without it); None
    #: for a method without a model
    resolved: Any = None
    #: the torch device the run's segmenter is built on (not part of the run's key)
    device: str = "cpu"
    #: ``method.settings`` as the check parsed them (:func:`resegzoo.eval.ablation.plan_runs`);
    #: None: a hand-made spec, checked when its segmenter is built
    method_settings: Any = field(default=None, compare=False)

    @property
    def segmenter(self) -> Any:
        """The :class:`~resegzoo.segmenter.spec.SegmenterSpec` every engine builds this run's segmenter
        from (its model resolved: no engine resolves it again)."""
        from resegzoo.segmenter.spec import SegmenterSpec

        return SegmenterSpec(self.recipe, self.model or None, self.masks, self.device,
                             settings=self.method_settings, resolved=self.resolved)

    def prompts(self, info: Any) -> list[list[str]]:
        """The names each class is prompted with in this run."""
        return [list(names) for names in (self.classes or info.classes)]

    @property
    def recipe_name(self) -> str:
        """The recipe as a report names it: a shipped recipe's name, a file's name, else "-"."""
        if not self.recipe_source:
            return "-"
        path = Path(self.recipe_source)
        return self.recipe_source if path.suffix.lower() not in (".yaml", ".yml") else path.name


@dataclass
class RunResult:
    spec: RunSpec
    run_dir: Path
    key: str
    class_names: list[str]
    confusion: np.ndarray
    scores: Scores
    #: images scored (all of the split, or the first --limit)
    images: int
    #: images segmented in this call (the rest came from an earlier, interrupted call)
    newly_done: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: with instance labels and a method that gives objects: their counts and mask AP
    #: (:class:`resegzoo.eval.objects.ObjectScores`); None otherwise
    objects: Any = None


@dataclass
class ImageOutcome:
    """What segmenting one image gives, whichever engine ran it: its confusion matrix and, when the
    run counts objects, its objects and true instances as plain arrays (:func:`resegzoo.eval.objects.image_arrays`)."""

    confusion: np.ndarray
    objects: Optional[dict[str, np.ndarray]] = None


def resolved_run(spec: RunSpec) -> RunSpec:
    """``spec`` with its model resolved (once; :func:`resegzoo.methods.base.resolve_method_model`)."""
    import dataclasses

    from resegzoo.methods.base import MethodError, method_spec, resolve_method_model
    from resegzoo.segmenter.models import ModelLoadError

    try:
        resolved = resolve_method_model(method_spec(spec.recipe.method.name), spec.model)
    except MethodError as exc:
        raise ModelLoadError(str(exc)) from exc  # the chain keeps the error's kind (the exit status)
    return dataclasses.replace(spec, resolved=resolved)


def safe_id(sample_id: str) -> str:
    """A sample id as a file name (ids may hold slashes or odd characters)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", sample_id)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:40] or "run"


def run_settings(dataset: Dataset, spec: RunSpec) -> dict[str, Any]:
    """Everything the numbers depend on; its hash names the run folder."""
    from resegzoo import __version__
    from resegzoo.eval.fingerprints import dataset_fingerprint, method_fingerprints, sam_fingerprint

    method, model = method_fingerprints(spec.recipe, spec.resolved)
    return {
        "format": RESULTS_FORMAT,
        "dataset": dataset.info.name,
        "root": str(dataset.root.resolve()),
        "split": dataset.split,
        "layout": dataset.layout,
        "classes": spec.prompts(dataset.info),
        "background": dataset.info.background,
        "encoding": asdict(dataset.encoding),
        "model": spec.model,
        "masks": spec.masks,
        "recipe": spec.recipe.to_dict(),
        "fingerprints": {
            "resegzoo": __version__,
            "model": model,
            "method": method,
            "sam": sam_fingerprint(spec.recipe, spec.masks),
            "files": dataset_fingerprint(dataset),
        },
        **dataset.key_settings(),  # a dataset kind's own (a change dataset's protocol)
    }


def canonical_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as JSON gives them back: string keys, lists for tuples, str() for the rest.

    Hashing and storing use this one form, so a stored settings.json hashes to the key of the
    settings that wrote it (label encodings have integer keys, which JSON turns into strings).
    """
    return json.loads(json.dumps(settings, default=str))


def settings_key(settings: dict[str, Any]) -> str:
    text = json.dumps(canonical_settings(settings), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EvalRun:
    """The run folder of one (dataset, setting) pair under ``out_dir/runs/``."""

    def __init__(self, dataset: Dataset, spec: RunSpec, out_dir: str | Path) -> None:
        if spec.model and spec.resolved is None:  # a run made by hand, not by plan_runs
            spec = resolved_run(spec)
        self.dataset, self.spec = dataset, spec
        self.settings = canonical_settings(run_settings(dataset, spec))
        self.key = settings_key(self.settings)
        # named by settings only (never the row label), so any label finds the same folder
        # (a method without a model is named by the method)
        first = spec.model or spec.recipe.method.name
        self.run_dir = Path(out_dir) / "runs" / f"{_slug(first)}-{_slug(spec.masks)}-{self.key[:12]}"
        self.confusion_dir = self.run_dir / "confusion"
        self.overlay_dir = self.run_dir / "overlays"
        self.objects_dir = self.run_dir / "objects"
        #: whether images' objects are counted (set by :meth:`run` for its samples)
        self.count_objects = False
        self._adopt_labelled_folder()

    def _adopt_labelled_folder(self) -> None:
        """Rename a folder of these settings that an earlier resegzoo named by its row label
        (``<label>-<key12>``) to this name, so its stored images are reused, not computed again."""
        runs = self.run_dir.parent
        if self.run_dir.exists() or not runs.is_dir():
            return
        for old in sorted(runs.glob(f"*-{self.key[:12]}")):
            settings_file = old / "settings.json"
            try:
                stored = json.loads(settings_file.read_text())
            except (OSError, ValueError):
                continue  # not a run folder of these settings: left alone (the settings check reports it if used)
            if old.is_dir() and settings_key(stored) == self.key:
                old.replace(self.run_dir)
                return

    def _check_stored_settings(self) -> None:
        settings_file = self.run_dir / "settings.json"
        if settings_file.is_file():
            try:
                stored = json.loads(read_text(settings_file))
            except ValueError as exc:
                raise DatasetError(f"{settings_file}: unreadable ({exc}); remove {self.run_dir} or choose "
                                   "another --out") from exc
            if settings_key(stored) != self.key:
                raise DatasetError(f"{self.run_dir} holds results of other settings (its settings.json "
                                   "does not match); remove the folder or choose another --out")

    def _create(self) -> None:
        """The run folder with its settings.json, written before the first per-image result."""
        settings_file = self.run_dir / "settings.json"
        if not settings_file.is_file():
            atomic.write_text(settings_file, json.dumps(self.settings, indent=2, sort_keys=True))
        self.confusion_dir.mkdir(parents=True, exist_ok=True)

    def result_file(self, sample: Sample) -> Path:
        return self.confusion_dir / f"{safe_id(sample.id)}.npy"

    def objects_file(self, sample: Sample) -> Path:
        return self.objects_dir / f"{safe_id(sample.id)}.npz"

    def counts_objects(self, samples: list[Sample]) -> bool:
        """Whether these samples' objects are counted: every one has instance labels and the method
        gives objects."""
        from resegzoo.methods.base import INSTANCES, method_spec

        return bool(samples) and all(getattr(s, "instances", None) is not None for s in samples) \
            and INSTANCES in method_spec(self.spec.recipe.method.name).outputs

    def load_objects(self, sample: Sample) -> tuple[Any, Any, tuple[int, int]]:
        """(found, true, (height, width)) of one image, as stored."""
        from resegzoo.eval.objects import from_image_arrays
        from resegzoo.outputs.reading import load_npz

        path = self.objects_file(sample)
        try:
            return from_image_arrays(load_npz(path, OBJECTS_FILE_LIMIT))
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"{path}: unreadable per-image objects ({exc}); delete it to recompute that image") from exc

    def load_confusion(self, sample: Sample) -> np.ndarray:
        path = self.result_file(sample)
        n = self.dataset.info.num_classes
        try:
            cm = load_npy(path, n * n * 8 + 4096)  # an int64 n x n matrix and its header
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: unreadable per-image result ({exc}); "
                               "delete it to recompute that image") from exc
        if cm.shape != (n, n):
            raise DatasetError(f"{path}: per-image result has shape {cm.shape}, expected {(n, n)}; "
                               "delete it to recompute that image")
        return cm

    def vocabulary(self) -> Any:
        from resegzoo.vocabulary import Vocabulary

        return Vocabulary(classes=self.spec.prompts(self.dataset.info))

    def evaluate_sample(self, segmenter: Any, vocab: Any, sample: Sample, overlay: bool = False,
                        loaded: tuple[np.ndarray, np.ndarray, Any] | None = None) -> ImageOutcome:
        """Segment one image and return its confusion matrix and, when the run counts objects, its
        objects and true instances (saving its overlay if asked): the one per-image step, whichever
        engine runs it. ``loaded``: (image, label, image or prepared image) already read, e.g. by the
        local engine's prefetch thread."""
        info = self.dataset.info
        image, label, ready = loaded if loaded is not None else (*self.dataset.load(sample), None)
        objects = self.count_objects and getattr(sample, "instances", None) is not None
        result = segmenter.segment(image if ready is None else ready, vocab, **({"objects": True} if objects else {}))
        pred = result.labels
        if result.background_index is not None:
            pred = np.where(pred == result.background_index, info.background, pred)
        cm = confusion_matrix(pred, label, info.num_classes)
        if overlay:
            save_overlay(self.overlay_dir / f"{safe_id(sample.id)}.png", image, pred, label, info)
        if not objects:
            return ImageOutcome(cm)
        from resegzoo.eval.objects import image_arrays, read_instances, without_background

        truth = read_instances(sample.instances, label, info.class_names, info.background)
        found = without_background(result.objects, info.background, info.num_classes)
        return ImageOutcome(cm, image_arrays(found, truth, label.shape))

    def read_sample(self, sample: Sample, prepare: Optional[Callable[[Any], Any]] = None) -> Any:
        """What :meth:`evaluate_sample` takes as ``loaded``, read ahead by the local loop: (image,
        label, image made ready by ``prepare``). A dataset kind with other samples overrides both
        (a change pair: :class:`resegzoo.eval.change.ChangeEvalRun`)."""
        image, label = self.dataset.load(sample)
        return image, label, image if prepare is None else prepare(image)

    def store_confusion(self, sample: Sample, cm: np.ndarray) -> None:
        atomic.save_npy(self.result_file(sample), cm)

    def store(self, sample: Sample, outcome: "ImageOutcome | np.ndarray") -> None:
        """One image's results: its objects first, then its confusion matrix (which marks it done);
        a bare confusion matrix (a subclass's evaluate_sample) is stored as it is."""
        if isinstance(outcome, np.ndarray):
            outcome = ImageOutcome(outcome)
        if outcome.objects is not None:
            self.objects_dir.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            np.savez(buf, **outcome.objects)
            atomic.write_bytes(self.objects_file(sample), buf.getvalue())
        self.store_confusion(sample, outcome.confusion)

    def run(self, make_segmenter: Callable[[RunSpec], Any], limit: Optional[int] = None,
            overlays: int = 4, progress: bool = True, engine: Any = None,
            say: Optional[Callable[[str], None]] = None) -> RunResult:
        """Evaluate the images that have no stored result yet, then score all requested images.

        ``engine`` (an open engine of :mod:`resegzoo.engines`; default: this process) segments the
        pending images (:class:`EvalWork`) and hands back each image's confusion matrix in any
        order (:class:`ImageOutcome`: with objects when the run counts them, :meth:`counts_objects`;
        an image without its stored objects is pending then too); each is stored as it arrives. ``make_segmenter(spec)`` gives the segmenter when the
        images are segmented in this process, and only when some image still needs it. ``say(line)``
        is told, on a rerun, how many images earlier runs already finished.
        """
        from resegzoo.engines.local import LocalEngine

        info = self.dataset.info
        samples = list(self.dataset)[:limit]
        file_names = {safe_id(s.id) for s in samples}
        if len(file_names) != len(samples):
            raise DatasetError(f"{self.dataset.root}: two sample ids map to the same result file name; "
                               "rename the images so their ids differ in letters or digits")
        self._check_stored_settings()
        self.count_objects = self.counts_objects(samples)
        pending = [s for s in samples if not self.result_file(s).is_file()
                   or (self.count_objects and not self.objects_file(s).is_file())]
        if say is not None and len(pending) < len(samples):
            done = len(samples) - len(pending)
            rest = f"segmenting the other {len(pending)}" if pending else "nothing left to segment"
            say(f"run {self.spec.label!r}: {done} of {len(samples)} image(s) already done in {self.run_dir}; {rest}")
        if pending and self.spec.recipe.inference.background_threshold is not None and info.background is None:
            raise DatasetError(f"{info.title} has no background class, but the recipe sets "
                               "inference.background_threshold; remove it from the recipe")
        newly_done = 0
        if pending:
            engine = engine or LocalEngine()
            task = eval_task(self, {s.id for s in samples[:overlays]})
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(desc=f"eval {self.spec.label}", unit="image",
                           initial=len(samples) - len(pending), total=len(samples))
            failed: list[str] = []

            def local_segmenter() -> Any:
                segmenter = make_segmenter(self.spec)  # before creating anything: a bad model leaves no folder
                self._create()
                return segmenter

            try:
                # the folder is made once the segmenter is built here, or at the first result of
                # another engine's workers
                for outcome in engine.run(task, pending, segmenter=local_segmenter):
                    if isinstance(outcome.error, BaseException):
                        raise outcome.error
                    if outcome.error is not None:  # a remote worker's message: the other images go on
                        failed.append(f"{outcome.item.id}: {outcome.error}")
                        continue
                    if newly_done == 0:
                        self._create()
                    self.store(outcome.item, outcome.value)
                    newly_done += 1
                    if bar is not None:
                        bar.update(1)
            finally:
                if bar is not None:
                    bar.close()
            if failed:
                raise DatasetError(f"run {self.spec.label!r}: {len(failed)} image(s) failed (the other images' "
                                   f"results are kept; rerun to retry): " + "; ".join(failed))
        total = np.zeros((info.num_classes, info.num_classes), dtype=np.int64)
        for sample in samples:
            total += self.load_confusion(sample)
        objects = None
        if self.count_objects:
            from resegzoo.eval.objects import score_objects

            objects = score_objects((self.load_objects(s) for s in samples), info.class_names, info.background)
        return RunResult(spec=self.spec, run_dir=self.run_dir, key=self.key, class_names=info.class_names,
                         confusion=total, scores=scores(total), images=len(samples),
                         newly_done=newly_done, objects=objects)


class EvalWork:
    """Eval's work on every engine (:mod:`resegzoo.engines.task`): an item is a sample;
    ``prepare`` loads its image and label (and prepares the image for the encoder), ``run``
    segments it and returns its confusion matrix, and its objects when the run counts them
    (:meth:`EvalRun.evaluate_sample`: an :class:`ImageOutcome`)."""

    def __init__(self, segmenter: Any, run: EvalRun, overlay_ids: set[str]) -> None:
        self.segmenter, self.eval_run, self.overlay_ids = segmenter, run, overlay_ids
        self.vocab = run.vocabulary()
        self._prepare = getattr(segmenter, "prepare", None)

    def prepare(self, sample: Sample) -> Any:
        return self.eval_run.read_sample(sample, self._prepare)

    def run(self, sample: Sample, loaded: Any) -> "ImageOutcome":
        return self.eval_run.evaluate_sample(self.segmenter, self.vocab, sample, sample.id in self.overlay_ids,
                                             loaded)


def eval_task(run: EvalRun, overlay_ids: set[str]) -> Any:
    """The engines' :class:`~resegzoo.engines.task.Task` that evaluates ``run``'s images."""
    from resegzoo.engines.task import Task

    return Task(EvalWork, {"run": run, "overlay_ids": overlay_ids}, segmenter=run.spec.segmenter,
                prefetch=run.spec.recipe.inference.prefetch, unit="image")
