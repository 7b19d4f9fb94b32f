"""Dataset records (read strictly from registry/datasets/*.yaml), label decoding and image reading."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np

from resegzoo.errors import EXIT_USAGE, ResegzooError
from resegzoo.eval.metrics import IGNORE_INDEX
from resegzoo.schema import from_mapping, load_yaml


class DatasetError(ResegzooError, ValueError):
    """A dataset is missing, incomplete or malformed; the message says what was expected where."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class LabelEncoding:
    """How one layout's label files encode classes.

    Single-channel labels (indexed PNG, palette PNG read as indices, 1-band TIFF) go through
    ``index``; RGB labels through ``color``. Both map a raw value to a class index, or to 255 to
    ignore the pixel. A raw value that is listed nowhere is an error when ``unlisted`` is
    ``error`` (it usually means the wrong layout or a corrupt file), or ignored.
    """

    index: Optional[dict[int, int]] = None
    #: "#rrggbb" -> class index
    color: Optional[dict[str, int]] = None
    unlisted: Literal["error", "ignore"] = "error"

    def __post_init__(self) -> None:
        if self.index is None and self.color is None:
            raise ValueError("a label encoding needs an 'index' map, a 'color' map, or both")
        for key in self.color or {}:
            _parse_color(key)


def _parse_color(text: str) -> int:
    """'#rrggbb' -> 0xRRGGBB."""
    if not (isinstance(text, str) and len(text) == 7 and text.startswith("#")):
        raise ValueError(f"colours are written '#rrggbb', got {text!r}")
    return int(text[1:], 16)


@dataclass(frozen=True)
class MethodDatasetSettings:
    """A method's own protocol on one dataset (e.g. SegEarth-OV3's ``configs/cfg_*.py``): its
    prompt names and recipe settings, used instead of the dataset's CLIP ones for that method."""

    #: prompt names per class (same classes, same order); None: the dataset's ``classes``
    classes: Optional[list[list[str]]] = None
    #: recipe sections that fill in what a recipe does not set (as ``recipe_settings``); they
    #: replace the dataset's ``recipe_settings`` for this method
    recipe_settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChangeProtocol:
    """What makes a dataset a change dataset (pairs of dates and a change label, :mod:`resegzoo.change`):
    its evaluation protocol and SegEarth-OV3's change settings for it (``configs/cfg_*.py``). Its
    ``classes`` are then the vocabulary the method is prompted with; the evaluation classes are
    :data:`CHANGE_CLASSES`."""

    #: tiles of this side cut from each image, row by row (SegEarth-OV3's ``cd.py``: LEVIR-CD's and
    #: WHU-CD's 1024 px images as four 512 px crops, ``NAME_i_j``); images not larger, or whose sides
    #: are no multiple of it, are evaluated whole. None: whole images
    crop: Optional[int] = None
    #: the change rule's settings (resegzoo.change.rule.ChangeSettings)
    background_threshold: float = 0.4
    coverage: float = 0.3
    min_area: int = 0
    #: numbers published on this dataset, quoted beside the results: source -> {metric: percent}
    #: (metrics: iou, f1 of the change class; miou, mf1)
    published: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.crop is not None and self.crop < 16:
            raise ValueError(f"change.crop must be at least 16 px, got {self.crop}")
        for source, numbers in self.published.items():
            unknown = set(numbers) - {"iou", "f1", "miou", "mf1"}
            if unknown:
                raise ValueError(f"change.published.{source}: unknown metrics {sorted(unknown)} (iou, f1, miou, mf1)")

    def settings(self, background_classes: tuple[str, ...] = ("background",)) -> Any:
        """The change rule's settings (a :class:`resegzoo.change.rule.ChangeSettings`)."""
        from resegzoo.change.rule import ChangeSettings

        return ChangeSettings(background_threshold=self.background_threshold, coverage=self.coverage,
                              min_area=self.min_area, background_classes=background_classes)


#: the evaluation classes of a change dataset (label 0 and 1)
CHANGE_CLASSES = ("unchanged", "changed")


@dataclass(frozen=True)
class DatasetInfo:
    """One evaluation dataset: its classes, label conventions and default evaluation recipe."""

    name: str
    title: str
    #: synonyms per class, in evaluation order (class index = position); the first name is the
    #: class's display name. Peers' name lists (SegEarth-OV's configs/cls_*.txt) are the reference.
    classes: list[list[str]]
    #: layout name -> label encoding (layouts are defined by the dataset's Python module)
    encodings: dict[str, LabelEncoding]
    #: names shown in reports, when the prompt names differ from the dataset's official ones
    display_names: Optional[list[str]] = None
    default_split: str = "val"
    #: class index that stands for "everything else" (clutter, other, background), if any
    background: Optional[int] = None
    #: evaluation recipe (a file in registry/recipes, without .yaml), and per-dataset settings
    #: that fill in what a recipe does not set (e.g. the background threshold peers tune per
    #: dataset), as recipe sections: {inference: {background_threshold: 0.3}}
    recipe: str = "eval-default"
    recipe_settings: dict[str, Any] = field(default_factory=dict)
    #: method name -> its own prompt names and recipe settings on this dataset (the method's
    #: published protocol); methods not listed use ``classes`` and ``recipe_settings``
    method_settings: dict[str, MethodDatasetSettings] = field(default_factory=dict)
    homepage: str = ""
    citation: str = ""
    notes: str = ""
    #: a prompt pool (ProC-SAM3's ``cls_<dataset>_exp.txt``): one line per class, its name first,
    #: then its prompts; a recipe's ``text.prompt_pool: dataset`` merges it into the classes
    #: (:mod:`resegzoo.prompt_pools`). Last: DatasetInfo is plugin API (resegzoo.plugin), and a field
    #: added before others would shift plugins' positional arguments (tests/plugin_api.json)
    prompt_pool: Optional[list[list[str]]] = None
    #: a change dataset's protocol (pairs of dates; :class:`ChangeProtocol`); None: segmentation
    change: Optional[ChangeProtocol] = None

    def __post_init__(self) -> None:
        if not self.classes or any(not names or any(not n.strip() for n in names) for names in self.classes):
            raise ValueError("classes must be a non-empty list of non-empty name lists")
        if len(self.classes) >= IGNORE_INDEX:
            raise ValueError(f"at most {IGNORE_INDEX - 1} classes are supported")
        for layout, enc in self.encodings.items():
            targets = list((enc.index or {}).values()) + list((enc.color or {}).values())
            bad = [t for t in targets if t != IGNORE_INDEX and not 0 <= t < self.num_classes]
            if bad:
                raise ValueError(f"encodings.{layout}: class indices {bad} are outside 0..{self.num_classes - 1}"
                                 f" (use {IGNORE_INDEX} to ignore a value)")
        if self.display_names is not None and len(self.display_names) != len(self.classes):
            raise ValueError(f"display_names has {len(self.display_names)} entries for {len(self.classes)} classes")
        for method, own in self.method_settings.items():
            if own.classes is not None and (len(own.classes) != len(self.classes)
                                            or any(not names or any(not n.strip() for n in names) for names in own.classes)):
                raise ValueError(f"method_settings.{method}.classes must give non-empty names for each of the "
                                 f"{len(self.classes)} classes")
        if self.prompt_pool is not None and any(not line or any(not isinstance(p, str) or not p.strip() for p in line)
                                                for line in self.prompt_pool):
            raise ValueError("prompt_pool lines must be non-empty lists of names (a class name, then its prompts)")
        if self.background is not None and not 0 <= self.background < len(self.classes):
            raise ValueError(f"background {self.background} is not a class index")

    @property
    def class_names(self) -> list[str]:
        """The evaluation classes' names (a change dataset's: unchanged, changed)."""
        if self.change is not None:
            return list(CHANGE_CLASSES)
        return list(self.display_names) if self.display_names else [names[0] for names in self.classes]

    def for_method(self, method: str) -> tuple[list[list[str]], dict[str, Any]]:
        """The prompt names and the recipe settings a method uses on this dataset."""
        own = self.method_settings.get(method)
        if own is None:
            return [list(n) for n in self.classes], dict(self.recipe_settings)
        return [list(n) for n in (own.classes or self.classes)], dict(own.recipe_settings)

    @property
    def num_classes(self) -> int:
        """The evaluation classes (a change dataset's: 2, whatever its prompt classes)."""
        return len(CHANGE_CLASSES) if self.change is not None else len(self.classes)


def load_dataset_info(path: str | Path) -> DatasetInfo:
    """Read a dataset record; unknown or missing keys raise SchemaError naming file and key."""
    return from_mapping(DatasetInfo, load_yaml(path), str(path))


@dataclass(frozen=True)
class Sample:
    """One evaluation image and its label file; ``id`` is unique within the dataset."""

    id: str
    image: Path
    label: Path
    #: the image's alpha channel holds data (e.g. infrared in an RGBA PNG), not a validity mask
    alpha_is_band: bool = False
    #: its instance labels (iSAID's ``*_instance_id_RGB.png``: every colour but black one object),
    #: where the dataset ships them: ``resegzoo eval`` then counts a method's objects against them
    instances: Optional[Path] = None


def decode_label(raw: np.ndarray, encoding: LabelEncoding, where: str = "label") -> np.ndarray:
    """Raw label array (H, W) or (H, W, 3+) -> (H, W) uint8 class indices, 255 = ignore."""
    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[..., 0]
    if raw.ndim == 2:
        if encoding.index is None:
            raise DatasetError(f"{where}: single-channel label, but this layout's labels are RGB colours "
                               f"({len(encoding.color or {})} known colours); is it the right layout?")
        keys = np.array(sorted(encoding.index), dtype=np.int64)
        values = np.array([encoding.index[k] for k in sorted(encoding.index)], dtype=np.uint8)
        flat = raw.astype(np.int64)
    elif raw.ndim == 3 and raw.shape[2] >= 3:
        if encoding.color is None:
            raise DatasetError(f"{where}: RGB label, but this layout's labels are class indices; "
                               "convert the colours to indices or use the dataset's other layout")
        pairs = sorted((_parse_color(c), k) for c, k in encoding.color.items())
        keys = np.array([p[0] for p in pairs], dtype=np.int64)
        values = np.array([p[1] for p in pairs], dtype=np.uint8)
        rgb = raw[..., :3].astype(np.int64)
        flat = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    else:
        raise DatasetError(f"{where}: a label is (H, W) or (H, W, 3); got shape {raw.shape}")
    pos = np.clip(np.searchsorted(keys, flat), 0, len(keys) - 1)
    known = keys[pos] == flat
    if not known.all() and encoding.unlisted == "error":
        unknown = np.unique(flat[~known])[:5]
        shown = [f"#{v:06x}" for v in unknown] if raw.ndim == 3 else [int(v) for v in unknown]
        raise DatasetError(f"{where}: label values {shown} are not in the dataset's encoding "
                           f"(known: {_describe_keys(keys, raw.ndim == 3)}); wrong layout or corrupt file?")
    return np.where(known, values[pos], np.uint8(IGNORE_INDEX)).astype(np.uint8)


def _describe_keys(keys: np.ndarray, colours: bool) -> str:
    shown = [f"#{int(k):06x}" if colours else str(int(k)) for k in keys[:10]]
    return ", ".join(shown) + (", ..." if len(keys) > 10 else "")


def _read_array(path: Path, palette_as_rgb: bool = False) -> np.ndarray:
    """An image file as an array: (H, W) for single-band/indexed files, (H, W, B) otherwise.

    TIFFs go through rasterio (GeoTIFF tiles, e.g. OpenEarthMap, ISPRS); everything else through
    Pillow, which keeps palette PNGs as their indices (or expands them to RGB when asked).
    """
    if path.suffix.lower() in (".tif", ".tiff"):
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        from resegzoo.raster.names import gdal_name
        from resegzoo.raster.sandbox import check_sources, gdal_env

        check_sources(path)  # a ".tif" holding a VRT is a VRT to GDAL: the reader's rules apply
        with warnings.catch_warnings():
            # Plain (non-geo) TIFFs are normal here: the ISPRS tiles carry no georeference.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with gdal_env(str(path)), gdal_name(path) as name, rasterio.open(name) as src:
                data = src.read()
        return data[0] if data.shape[0] == 1 else np.moveaxis(data, 0, -1)
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        if img.mode == "P" and palette_as_rgb:
            return np.asarray(img.convert("RGB"))
        if img.mode in ("P", "L", "I", "I;16", "RGB", "RGBA", "LA"):
            return np.asarray(img)
        return np.asarray(img.convert("RGB"))


def read_label(path: Path, encoding: LabelEncoding) -> np.ndarray:
    try:
        # A layout whose labels are colours only may still store them as a palette PNG.
        raw = _read_array(path, palette_as_rgb=encoding.index is None)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the label file: {exc}") from exc
    if raw.ndim == 3 and raw.shape[2] == 2:  # grey + alpha
        raw = raw[..., 0]
    return decode_label(raw, encoding, str(path))


def read_image(path: Path, alpha_is_band: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 through the one raster reader (bands 1-3, palette colours, 16-bit/float
    stretch) and the (H, W) valid mask (nodata, mask, alpha unless ``alpha_is_band``, NaN)."""
    from resegzoo.raster.errors import ImageError
    from resegzoo.raster.opening import read_image as read_raster_image

    try:
        rgb, valid, _ = read_raster_image(path, alpha_mask=not alpha_is_band)
    except ImageError as exc:
        raise DatasetError(f"cannot read the image: {exc}") from exc
    return rgb, valid
