"""THE raster reader: every image resegzoo reads (segment, eval, image-agreement) comes through here.

Anything GDAL opens is an image (GeoTIFF, COG, VRT, JP2, PNG/JPEG with or without world files,
...): what rasterio reports decides, never the file suffix. :func:`open_raster` reads the header
once and decides everything per raster (bands, palette expansion, nodata, the 8-bit stretch,
georeferencing) into a picklable :class:`Raster`; :meth:`Raster.read` then reads any window as
``(3, h, w)`` uint8 plus a boolean valid mask.

Valid pixels: GDAL's mask (nodata value, internal mask, alpha band), finite values (NaN/Inf are
never valid), or, with an explicit ``nodata``, every pixel whose chosen bands are not all that
value. Non-8-bit data is stretched per band between the 2nd and 98th percentile of the VALID
pixels of a decimated read (GDAL serves it from overviews when the file has them), so a huge
raster is never read whole for it: of the file, or of every input of a batch (one stretch for the
tiles of one scene, :func:`shared_stretch`), or between values the user gives.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from resegzoo.errors import ResegzooError

#: label of pixels without valid data in every label map resegzoo writes (the GeoTIFF's nodata)
NODATA_LABEL = 255
#: longest side of the decimated read used to estimate the stretch (and draw overview overlays)
OVERVIEW_SIDE = 1024
#: files GDAL can open that are parts of another raster, never images of their own
SIDECAR_SUFFIXES = (".aux.xml", ".ovr", ".msk", ".tfw", ".tifw", ".pgw", ".pngw", ".jgw", ".jpgw", ".wld",
                    ".prj", ".xml", ".json", ".qml", ".txt", ".yaml", ".yml")


class ImageError(ResegzooError, ValueError):
    """An input that is not a usable image; the message names the file and the problem."""


# -- files that reach other files -----------------------------------------------------------------
#
# A VRT (and a few other XML "datasets") is a recipe for reading other files: a mosaic of local
# rasters is what it is for, but a raw band reads the bytes of ANY file (a key, a password file) as
# pixels, and a /vsicurl/ or http source makes requests to any host. Untrusted (the default), a VRT
# may reference local raster files only (nested VRTs are checked the same way), and GDAL is told
# not to run pixel-function code and not to fetch anything over HTTP.
# ``trust_vrt=True`` (``--trust-vrt``) lifts all of it for files the user vouches for.

#: how deep VRTs may nest (a VRT of VRTs of ...); cycles are refused too
MAX_VRT_DEPTH = 8
#: how much of a file is looked at to tell a VRT (GDAL itself looks at the first 1024 bytes)
_HEADER_BYTES = 4096
#: XML datasets that describe a network service: each open makes requests
_SERVICE_MARKERS = (b"<GDAL_WMS", b"<GDAL_WMTS", b"<GDAL_WCS", b"<WCS_GDAL", b"<GDAL_DAAS", b"<GDALTileIndexDataset",
                    b"<GDAL_TMS", b"<OGCAPI")
#: GDAL configuration for every read of an untrusted file: no pixel-function code, no HTTP(S)
#: through /vsicurl/ and the cloud file systems built on it (an extension no file has is the one
#: switch GDAL offers). Raw bands have no run-time switch (GDAL_VRT_ENABLE_RAWRASTERBAND is a build
#: option of GDAL, and rasterio's wheels build it in): :func:`check_sources` is their guard.
#: Directory listing stays on: world files, .ovr and .msk sidecars are found through it, and with
#: the network off it only lists local folders.
UNTRUSTED_GDAL_OPTIONS = {"GDAL_VRT_ENABLE_PYTHON": "NO", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".resegzoo-network-off"}


def _is_remote(path: str) -> bool:
    """A path the USER gave that names a network or virtual file system (their explicit choice)."""
    return "://" in path or path.startswith("/vsi")


@contextlib.contextmanager
def gdal_env(path: str, trust_vrt: bool = False) -> Iterator[None]:
    """rasterio's environment for reading ``path``: :data:`UNTRUSTED_GDAL_OPTIONS` unless trusted
    (a remote path the user typed keeps the network: it is what they asked for)."""
    import rasterio

    if trust_vrt:
        yield
        return
    options = dict(UNTRUSTED_GDAL_OPTIONS)
    if _is_remote(path):
        options.pop("CPL_VSIL_CURL_ALLOWED_EXTENSIONS")
    with rasterio.Env(**options):
        yield


@contextlib.contextmanager
def gdal_name(path: str | Path) -> Iterator[str]:
    """A name GDAL can be given for the local file ``path``. rasterio encodes names as strict
    UTF-8, so a name that is not (bytes a Linux file name may hold) is reached through a
    temporary folder of links with UTF-8 names (see :func:`resegzoo.raster.names.output_stem`):
    the file and its siblings of the same stem, so world files, .aux.xml, .ovr and .msk are found."""
    import os
    import tempfile

    from resegzoo.raster.names import is_utf8, output_stem

    path = str(path)
    if is_utf8(path) or _is_remote(path):
        yield path
        return
    target = Path(path).absolute()
    folder, name = os.fsencode(target.parent), os.fsencode(target.name)
    stem = name.split(b".", 1)[0]
    with tempfile.TemporaryDirectory(prefix="resegzoo-names-") as links:
        for sibling in os.listdir(folder):
            if sibling == name or (stem and sibling.startswith(stem + b".")):
                os.symlink(os.path.join(folder, sibling), os.path.join(links, output_stem(os.fsdecode(sibling))))
        yield os.path.join(links, output_stem(target.name))


def _header(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(_HEADER_BYTES)
    except OSError:
        return b""  # not a local readable file: GDAL's own open reports it


def reaches_other_files(path: str | Path) -> bool:
    """Whether the local file ``path`` is a VRT or a network-service XML dataset (GDAL decides by
    content, not by name): files :func:`check_sources` looks into before GDAL may open them."""
    header = _header(str(path))
    return b"<VRTDataset" in header or any(m in header for m in _SERVICE_MARKERS)


def _source_problem(source: str) -> str | None:
    """Why a VRT's source may not be read untrusted, or None for a plain local path."""
    lowered = source.strip().lower()
    if lowered.startswith("/vsi"):
        kind = lowered[1:].split("/", 1)[0]
        family = "an archive" if kind in ("vsizip", "vsitar", "vsigzip", "vsi7z", "vsirar") else "a network or virtual"
        return f"reads through {family} file system (/{kind}/)"
    if "://" in lowered:
        return "is a network address"
    if lowered.startswith("<"):
        return "is an inline dataset"
    head = lowered.split(":", 1)[0]
    if ":" in lowered and head.replace("_", "").isalnum():
        return f"uses a GDAL driver prefix ({head.upper()}:)"
    return None


def check_sources(path: str | Path, trust_vrt: bool = False) -> None:
    """Refuse (ImageError naming ``path``) a local file that would make GDAL read other files than
    local rasters: a VRT with a raw band, a pixel function in Python, a network / archive /
    virtual-file-system source, a source that is not a local file, VRTs nested too deep or in a
    cycle; an XML dataset of a network service (WMS, WMTS, WCS, tile index, ...). Nothing to do
    when ``trust_vrt``."""
    if not trust_vrt:
        _check_sources(str(path), str(path), ())


def _check_sources(top: str, path: str, seen: tuple[str, ...]) -> None:
    import xml.etree.ElementTree as ET

    header = _header(path)
    where = top if path == top else f"{top} (through {path})"
    refuse = "; give --trust-vrt if you trust the file"
    service = next((m.decode()[1:] for m in _SERVICE_MARKERS if m in header), None)
    if service is not None:
        raise ImageError(f"{where}: a {service} dataset reads from the network{refuse}")
    if b"<VRTDataset" not in header:
        return
    real = str(Path(path).resolve())
    if real in seen:
        raise ImageError(f"{where}: VRTs that include each other")
    if len(seen) >= MAX_VRT_DEPTH:
        raise ImageError(f"{where}: VRTs nested deeper than {MAX_VRT_DEPTH}")
    try:
        # expat refuses entity amplification and never fetches external entities
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ImageError(f"{where}: a VRT that cannot be checked ({exc})") from None
    for element in root.iter():
        # GDAL's XML reader matches element and attribute names ignoring case: so does this check
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        attrs = {k.lower(): v for k, v in element.attrib.items()}
        text = (element.text or "").strip()
        if tag == "vrtrawrasterband" or "raw" in attrs.get("subclass", "").lower():
            raise ImageError(f"{where}: a VRT raw band reads the bytes of any file as pixels{refuse}")
        if tag == "pixelfunctionlanguage" and text.lower() == "python":
            raise ImageError(f"{where}: a VRT pixel function in Python runs code{refuse}")
        hidden = next((v for v in (text, *attrs.values()) if v.strip().lower().startswith("/vsi")), None)
        if tag not in ("sourcefilename", "sourcedataset", "indexdataset"):
            if hidden is not None:
                raise ImageError(f"{where}: {hidden[:80]!r} {_source_problem(hidden)}{refuse}")
            continue
        source = text
        problem = _source_problem(source)
        if problem is not None:
            raise ImageError(f"{where}: the source {source[:80]!r} {problem}{refuse}")
        relative = attrs.get("relativetovrt", "0").strip().lower() in ("1", "true", "yes", "on")
        target = Path(path).parent / source if relative and not Path(source).is_absolute() else Path(source)
        if not target.is_file():
            raise ImageError(f"{where}: the source {source[:80]!r} is not a file")
        _check_sources(top, str(target), seen + (real,))


@contextlib.contextmanager
def quiet_georef() -> Iterator[None]:
    """Plain PNG/JPEG (and label maps of them) have no georeferencing; rasterio would warn about
    it on every open."""
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


@contextlib.contextmanager
def _gdal_errors(path: str | Path, action: str = "read") -> Iterator[None]:
    """rasterio/GDAL failures (unreadable, truncated, corrupt files) become one-line ImageErrors."""
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError

    try:
        with quiet_georef():
            yield
    except (RasterioError, CPLE_BaseError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if action == "open":
            raise ImageError(f"{path}: not a readable image ({detail})") from None
        raise ImageError(f"{path}: cannot read the image; is the file truncated or corrupt? ({detail})") from None


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    """``"4,3,2"`` -> (4, 3, 2); 1-based band numbers; one band means grey."""
    if text is None or not text.strip():
        return None
    try:
        bands = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise ImageError(f"--bands {text!r}: give band numbers separated by commas, e.g. 4,3,2") from None
    if len(bands) not in (1, 3) or any(b < 1 for b in bands):
        raise ImageError(f"--bands {text!r}: give 3 band numbers (R,G,B) or 1 (grey), counting from 1")
    return bands


def parse_nodata(text: str | None) -> float | None:
    """``--nodata`` text -> a number (``nan`` allowed)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ImageError(f"--nodata {text!r}: give a number, e.g. 0, -9999 or nan") from None


@dataclass(frozen=True)
class Stretch:
    """How non-8-bit data is mapped to 0..255: per band, low -> 0 and high -> 255.

    ``scope``: where low and high come from: ``file`` (percentiles of this file's valid pixels),
    ``batch`` (percentiles of every input's valid pixels: tiles of one scene share one stretch) or
    ``given`` (values the user gave; ``percentiles`` is then None)."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    percentiles: tuple[float, float] | None = (2.0, 98.0)
    scope: str = "file"

    def apply(self, data: np.ndarray) -> np.ndarray:
        lo = np.asarray(self.low, dtype=np.float64)[:, None, None]
        hi = np.asarray(self.high, dtype=np.float64)[:, None, None]
        scaled = (data.astype(np.float64) - lo) / np.maximum(hi - lo, 1e-12) * 255.0
        return np.clip(np.round(scaled), 0, 255).astype(np.uint8)

    def describe(self) -> str:
        values = f"low {_rounded(self.low)}, high {_rounded(self.high)}"
        if self.percentiles is None:
            return f"stretch per band between given values ({values})"
        p0, p1 = self.percentiles
        pixels = "every input's valid pixels" if self.scope == "batch" else "the valid pixels"
        return f"{p0:g}-{p1:g} percentile stretch per band of {pixels} ({values})"

    def to_dict(self) -> dict[str, Any]:
        return {"method": "given" if self.percentiles is None else "percentile", "scope": self.scope,
                "percentiles": None if self.percentiles is None else list(self.percentiles),
                "low": list(self.low), "high": list(self.high)}


def _rounded(values: Sequence[float]) -> str:
    """Stretch values for people: 6 significant digits, not 3263.0599999999395."""
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


#: the stretch choices besides given values (see :func:`parse_stretch`)
STRETCH_SCOPES = ("batch", "file")


def parse_stretch(text: str | None) -> str | Stretch:
    """``--stretch``: ``batch`` (the default: one percentile stretch over every input), ``file``
    (one per file), or given values ``LOW:HIGH`` for every band or ``L1:H1,L2:H2,L3:H3`` per band."""
    if text is None or text.strip().lower() in ("", "batch"):
        return "batch"
    if text.strip().lower() == "file":
        return "file"
    usage = (f"--stretch {text!r}: give batch, file, LOW:HIGH for every band or L1:H1,L2:H2,L3:H3 per band "
             "(e.g. 0:3000)")
    try:
        pairs = [tuple(float(v) for v in part.split(":")) for part in text.split(",")]
    except ValueError:
        raise ImageError(usage) from None
    if len(pairs) not in (1, 3) or any(len(p) != 2 for p in pairs):
        raise ImageError(usage)
    if any(not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo for lo, hi in pairs):
        raise ImageError(f"--stretch {text!r}: each HIGH must be above its LOW, both finite numbers")
    pairs = pairs * 3 if len(pairs) == 1 else pairs
    return Stretch(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), percentiles=None, scope="given")


@dataclass(frozen=True)
class Georeference:
    """Where the pixels are on Earth, as plain data: an affine transform (rotation included) with
    a CRS, or GCPs with their CRS, and/or RPCs. Copied unchanged onto every output raster."""

    crs_wkt: str | None = None
    transform: tuple[float, ...] | None = None  # (a, b, c, d, e, f); None = none/identity
    gcps: tuple[tuple[float, float, float, float, float, str], ...] = ()  # (row, col, x, y, z, id)
    gcps_crs_wkt: str | None = None
    rpcs: tuple[tuple[str, str], ...] = ()  # GDAL RPC metadata items

    @property
    def is_georeferenced(self) -> bool:
        return self.crs_wkt is not None or self.transform is not None or bool(self.gcps) or bool(self.rpcs)

    @property
    def crs_string(self) -> str | None:
        from rasterio.crs import CRS

        wkt = self.crs_wkt or self.gcps_crs_wkt
        return None if wkt is None else CRS.from_wkt(wkt).to_string()

    def profile(self) -> dict[str, Any]:
        """Creation keywords for rasterio.open(..., 'w')."""
        from affine import Affine
        from rasterio.crs import CRS

        out: dict[str, Any] = {}
        if self.crs_wkt is not None:
            out["crs"] = CRS.from_wkt(self.crs_wkt)
        if self.transform is not None:
            out["transform"] = Affine(*self.transform)
        return out

    def apply(self, dst: Any) -> None:
        """Set the GCPs and RPCs of an open output dataset (the profile carries CRS and transform)."""
        from rasterio.control import GroundControlPoint
        from rasterio.crs import CRS
        from rasterio.rpc import RPC

        if self.gcps:
            points = [GroundControlPoint(row=r, col=c, x=x, y=y, z=z, id=i) for r, c, x, y, z, i in self.gcps]
            dst.gcps = (points, CRS.from_wkt(self.gcps_crs_wkt) if self.gcps_crs_wkt else None)
        if self.rpcs:
            dst.rpcs = RPC.from_gdal(dict(self.rpcs))

    @classmethod
    def of(cls, src: Any) -> "Georeference":
        gcps, gcps_crs = src.gcps
        transform = None if (src.transform.is_identity or gcps) else tuple(src.transform)[:6]
        rpcs = () if src.rpcs is None else tuple(sorted((k, str(v)) for k, v in src.rpcs.to_gdal().items()))
        return cls(crs_wkt=None if src.crs is None else src.crs.to_wkt(), transform=transform,
                   gcps=tuple((g.row, g.col, g.x, g.y, g.z or 0.0, str(g.id)) for g in gcps),
                   gcps_crs_wkt=None if gcps_crs is None else gcps_crs.to_wkt(), rpcs=rpcs)


@dataclass(frozen=True)
class Raster:
    """One input raster, decided once: plain data (picklable), pixels read on demand by window."""

    path: str
    driver: str
    height: int
    width: int
    count: int
    dtype: str
    bands: tuple[int, int, int]
    georef: Georeference
    #: colour table (index -> (r, g, b, a)) of a palette band: its indices are expanded to colours
    palette: tuple[tuple[int, int, int, int], ...] | None = None
    #: the user's nodata value (overrides what the file says); None = use the file's masks
    nodata: float | None = None
    #: the file's own nodata value of the first chosen band (reported only)
    file_nodata: float | None = None
    stretch: Stretch | None = None
    #: False: an alpha band is data (e.g. infrared in an RGBA PNG), not a validity mask
    alpha_mask: bool = True
    #: True: the user vouched for the file (``--trust-vrt``): VRT raw bands, network, archives
    trust_vrt: bool = False

    @property
    def is_georeferenced(self) -> bool:
        return self.georef.is_georeferenced

    @property
    def crs(self) -> Any:
        """The rasterio CRS of the transform or of the GCPs; None without one."""
        from rasterio.crs import CRS

        wkt = self.georef.crs_wkt or self.georef.gcps_crs_wkt
        return None if wkt is None else CRS.from_wkt(wkt)

    def describe(self) -> dict[str, Any]:
        """Facts for a sidecar (strict JSON: no NaN)."""
        def number(v: float | None) -> float | str | None:
            return None if v is None else ("nan" if math.isnan(v) else v)

        return {"driver": self.driver, "size": [self.height, self.width], "bands": list(self.bands),
                "source_dtype": self.dtype, "palette_expanded": self.palette is not None,
                "nodata": number(self.nodata if self.nodata is not None else self.file_nodata),
                "nodata_from": "option" if self.nodata is not None else "file",
                "stretch": None if self.stretch is None else self.stretch.to_dict()}

    # -- pixels ---------------------------------------------------------------------------------
    def read_raw(self, box: tuple[int, int, int, int] | None = None,
                 out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(3, h, w) band values (colours for a palette band; not stretched) and the (h, w) valid
        mask, of the whole raster or ``box`` = (y0, x0, y1, x1), optionally decimated."""
        import rasterio
        from rasterio.windows import Window

        window = None if box is None else Window(box[1], box[0], box[3] - box[1], box[2] - box[0])
        unique = sorted(set(self.bands))
        with _gdal_errors(self.path), gdal_env(self.path, self.trust_vrt), gdal_name(self.path) as name, \
                rasterio.open(name) as src:
            shape = None if out_shape is None else (len(unique), *out_shape)
            data = src.read(unique, window=window, out_shape=shape)
            masks = None if self.nodata is not None or not self.alpha_mask else \
                src.read_masks(unique, window=window, out_shape=shape)
        nodata = self.nodata if self.alpha_mask else (self.nodata if self.nodata is not None else self.file_nodata)
        if self.palette is not None:
            table = np.zeros((256, 4), dtype=np.uint8)
            table[:len(self.palette)] = np.asarray(self.palette, dtype=np.uint8)[:256]
            idx = np.clip(data[0], 0, 255).astype(np.intp)
            colours = table[idx]  # (h, w, 4)
            valid = (masks[0] > 0) if masks is not None else (data[0] != nodata)
            return np.moveaxis(colours[..., :3], -1, 0), valid & (colours[..., 3] > 0)
        chosen = np.stack([data[unique.index(b)] for b in self.bands])
        if masks is not None:
            valid = (masks > 0).any(axis=0)
        elif nodata is not None:
            per_band = np.isnan(data) if math.isnan(nodata) else data == nodata
            valid = ~per_band.all(axis=0)
        else:
            valid = np.ones(data.shape[1:], dtype=bool)
        if np.issubdtype(data.dtype, np.floating):
            valid &= np.isfinite(data).all(axis=0)
        return chosen, valid

    def read(self, box: tuple[int, int, int, int] | None = None,
             out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(3, h, w) uint8 (stretched when not 8-bit; invalid pixels 0) and the (h, w) valid mask."""
        data, valid = self.read_raw(box, out_shape)
        if self.stretch is not None:
            low = np.asarray(self.stretch.low, dtype=np.float64)[:, None, None]
            data = self.stretch.apply(np.where(valid[None], data, low))
        return np.where(valid[None], data, 0).astype(np.uint8, copy=False), valid

    def read_rgb(self, box: tuple[int, int, int, int] | None = None,
                 out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(h, w, 3) uint8 RGB and the valid mask (see :meth:`read`)."""
        data, valid = self.read(box, out_shape)
        return np.ascontiguousarray(np.moveaxis(data, 0, -1)), valid

    def overview_shape(self, side: int = OVERVIEW_SIDE) -> tuple[int, int]:
        scale = min(1.0, side / max(self.height, self.width))
        return max(1, round(self.height * scale)), max(1, round(self.width * scale))


def _choose_bands(path: str, src: Any, bands: Sequence[int] | None) -> tuple[int, int, int]:
    from rasterio.enums import ColorInterp

    count = src.count
    if bands is not None:
        bad = [b for b in bands if b > count]
        if bad:
            raise ImageError(f"{path}: --bands asks for band {bad[0]} but the image has {count} band(s) (1..{count})")
        return tuple(bands) * 3 if len(bands) == 1 else tuple(bands)  # type: ignore[return-value]
    image_bands = [b for b in range(1, count + 1) if src.colorinterp[b - 1] != ColorInterp.alpha]
    if len(image_bands) >= 3:
        return tuple(image_bands[:3])  # type: ignore[return-value]
    if len(image_bands) == 1:
        return (image_bands[0],) * 3  # type: ignore[return-value]
    raise ImageError(f"{path}: {count} bands; choose three (or one, grey) with --bands, e.g. --bands 1,1,2")


def _palette_of(src: Any, bands: tuple[int, int, int]) -> tuple[tuple[int, int, int, int], ...] | None:
    """The colour table when the one chosen band is a palette band (palette PNG/TIFF)."""
    from rasterio.enums import ColorInterp

    band = bands[0]
    if len(set(bands)) != 1 or src.colorinterp[band - 1] != ColorInterp.palette:
        return None
    try:
        cmap = src.colormap(band)
    except ValueError:  # rasterio: "NULL color table" -- a palette interpretation without a table
        return None
    size = max(cmap) + 1
    return tuple(tuple(int(v) for v in cmap.get(i, (0, 0, 0, 0))) for i in range(size))  # type: ignore[misc]


def needs_stretch(raster: Raster) -> bool:
    """Whether the raster's data is not 8-bit colour already (palette bands are colours)."""
    return raster.dtype != "uint8" and raster.palette is None


def estimate_stretch(raster: Raster, side: int = OVERVIEW_SIDE) -> Stretch | None:
    """2-98 % per band of the VALID pixels of a decimated read; None for 8-bit or palette data."""
    return shared_stretch([raster], side, scope="file")


#: at most this many decimated pixels are read (per band) for a stretch shared by a batch
STRETCH_SAMPLE = 8_000_000


def shared_stretch(rasters: Sequence[Raster], side: int = OVERVIEW_SIDE, scope: str = "batch",
                   sample: int = STRETCH_SAMPLE) -> Stretch | None:
    """2-98 % per band of the VALID pixels of all ``rasters`` that need a stretch, each read
    decimated by ONE factor (the largest to ``side`` px, as for one file), so every input weighs
    by its area; beyond ``sample`` pixels every k-th is kept. None when none needs a stretch."""
    chosen = [r for r in rasters if needs_stretch(r)]
    if not chosen:
        return None
    factor = min(1.0, side / max(max(r.height, r.width) for r in chosen))
    shapes = [(max(1, round(r.height * factor)), max(1, round(r.width * factor))) for r in chosen]
    step = max(1, math.ceil(sum(h * w for h, w in shapes) / sample))
    parts = []
    for raster, shape in zip(chosen, shapes):
        data, valid = raster.read_raw(out_shape=shape)
        parts.append(data.reshape(3, -1)[:, valid.ravel()][:, ::step].astype(np.float64))
    values = np.concatenate(parts, axis=1)
    if values.shape[1] == 0:  # nothing valid: nothing will be segmented; any finite stretch will do
        return Stretch((0.0,) * 3, (1.0,) * 3, scope=scope)
    low, high = np.percentile(values, [2.0, 98.0], axis=1)
    return Stretch(tuple(float(v) for v in low), tuple(float(v) for v in high), scope=scope)


def with_stretch(rasters: Sequence[Raster], choice: str | Stretch) -> list[Raster]:
    """``rasters`` (opened with ``stretch="batch"`` or any) with the stretch ``choice`` of
    :func:`parse_stretch`: ``file`` each its own, ``batch`` one over all, or given values (for
    every raster but palette ones: the user asked for them)."""
    from dataclasses import replace

    if choice == "file":
        return [r if r.stretch is not None and r.stretch.scope == "file" else replace(r, stretch=estimate_stretch(r))
                for r in rasters]
    if choice == "batch":
        shared = shared_stretch(rasters)
        return [replace(r, stretch=shared if needs_stretch(r) else None) for r in rasters]
    if not isinstance(choice, Stretch):
        raise ValueError(f"unknown stretch {choice!r}; use {', '.join(STRETCH_SCOPES)} or a Stretch")
    return [replace(r, stretch=None if r.palette is not None else choice) for r in rasters]


def open_raster(path: str | Path, bands: Sequence[int] | None = None, nodata: float | None = None,
                alpha_mask: bool = True, trust_vrt: bool = False, stretch: bool = True) -> Raster:
    """Read ``path``'s header, check it, and decide bands, palette, nodata and stretch
    (``alpha_mask=False``: an alpha band is data, not a validity mask; ``trust_vrt``: a VRT may
    read raw bands, the network and archives, see :func:`check_sources`; ``stretch=False``: no
    stretch yet, a batch gives one with :func:`with_stretch`)."""
    import rasterio

    path = str(path)
    if path.lstrip().startswith("<"):
        raise ImageError(f"{path[:40]}...: an inline XML dataset, not a file name")
    if not Path(path).exists() and not _is_remote(path):
        raise ImageError(f"{path}: no such file")
    check_sources(path, trust_vrt)
    with _gdal_errors(path, "open"), gdal_env(path, trust_vrt), gdal_name(path) as name, rasterio.open(name) as src:
        h, w, count = src.height, src.width, src.count
        if count < 1:
            raise ImageError(f"{path}: the file holds no raster bands")
        if h < 2 or w < 2:
            raise ImageError(f"{path}: the image is {h}x{w} px; at least 2x2 is needed")
        chosen = _choose_bands(path, src, bands)
        palette = _palette_of(src, chosen)
        file_nodata = src.nodatavals[chosen[0] - 1]
        georef = Georeference.of(src)
        _check_georeference(path, georef)
        raster = Raster(path=path, driver=src.driver, height=h, width=w, count=count,
                        dtype=src.dtypes[chosen[0] - 1], bands=chosen, georef=georef,
                        palette=palette, nodata=nodata,
                        file_nodata=None if file_nodata is None else float(file_nodata), alpha_mask=alpha_mask,
                        trust_vrt=trust_vrt)
    if raster.driver == "PNG":
        _check_png_stream(path)
    from dataclasses import replace

    return replace(raster, stretch=estimate_stretch(raster)) if stretch else raster


def _check_georeference(path: str, georef: Georeference) -> None:
    """A transform or GCPs with NaN or Inf place no pixel anywhere: every output's georeferencing,
    the sidecar (strict JSON) and the vectors would be broken; refuse before any work."""
    if georef.transform is not None and not all(math.isfinite(v) for v in georef.transform):
        raise ImageError(f"{path}: the geotransform {list(georef.transform)} is not finite (NaN or Inf)")
    if georef.transform is not None and georef.transform[0] * georef.transform[4] - \
            georef.transform[1] * georef.transform[3] == 0:
        raise ImageError(f"{path}: the geotransform {list(georef.transform)} is degenerate (pixel size 0)")
    bad = next((g for g in georef.gcps if not all(math.isfinite(v) for v in g[:5])), None)
    if bad is not None:
        raise ImageError(f"{path}: a ground control point is not finite: {list(bad[:5])}")


def _check_png_stream(path: str) -> None:
    """GDAL's PNG driver fills the missing rows of a truncated PNG with zeros and says nothing;
    walking the chunks (CRCs, the end chunk) without decoding the pixels catches it."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
    except Image.DecompressionBombError:
        return  # a very large picture: Pillow declines to look, GDAL reads it by windows anyway
    except Exception as exc:  # Pillow raises OSError, SyntaxError, struct.error ... for broken streams
        raise ImageError(f"{path}: cannot read the image; is the file truncated or corrupt? ({exc})") from None


def read_image(path: str | Path, bands: Sequence[int] | None = None, nodata: float | None = None,
               alpha_mask: bool = True, trust_vrt: bool = False) -> tuple[np.ndarray, np.ndarray, Raster]:
    """The whole image as (H, W, 3) uint8, its valid mask, and the :class:`Raster` it came from."""
    raster = open_raster(path, bands, nodata, alpha_mask, trust_vrt)
    rgb, valid = raster.read_rgb()
    return rgb, valid, raster


def fill_invalid(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(H, W, C) with every invalid pixel replaced by its nearest valid pixel: no flat colour of
    its own that the mask generator or the encoder would take for a segment. Needs a valid pixel."""
    if valid.all():
        return image
    from scipy import ndimage

    _, (iy, ix) = ndimage.distance_transform_edt(~valid, return_indices=True)
    return image[iy, ix]


def is_raster(path: str | Path) -> bool:
    """Whether GDAL opens ``path`` as a raster with bands (sidecar files of other rasters excluded)."""
    import rasterio
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    name = Path(path).name.lower()
    if name.startswith(".") or name.endswith(SIDECAR_SUFFIXES):
        return False
    if reaches_other_files(path):
        return True  # a raster by intent; whether it may be opened is open_raster's decision
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with gdal_env(str(path)), gdal_name(path) as name, rasterio.open(name) as src:
                return src.count > 0
    except (RasterioError, CPLE_BaseError, NotGeoreferencedWarning):
        return False


def find_rasters(folder: str | Path, recursive: bool = False) -> list[Path]:
    """The rasters in ``folder`` (and below, if ``recursive``), by what GDAL opens, sorted."""
    folder = Path(folder)
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in candidates if p.is_file() and is_raster(p))
