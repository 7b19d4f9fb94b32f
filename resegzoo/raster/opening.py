"""Opening a raster: :func:`open_raster` reads the header once and decides everything per raster
(bands, palette expansion, nodata, the 8-bit stretch, georeferencing) into a picklable
:class:`Raster`; :meth:`Raster.read` then reads any window as ``(3, h, w)`` uint8 plus a boolean
valid mask.

Valid pixels: GDAL's mask (nodata value, internal mask, alpha band), finite values (NaN/Inf are
never valid), or, with an explicit ``nodata``, every pixel whose chosen bands are not all that
value.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from resegzoo.raster.errors import ImageError
from resegzoo.raster.georef import Georeference, check_georeference, quiet_georef
from resegzoo.raster.names import is_remote
from resegzoo.raster.remote import explain, is_url, public_url, scrub
from resegzoo.raster.sandbox import check_sources, not_regular, open_dataset
from resegzoo.raster.stretch import OVERVIEW_SIDE, Stretch, estimate_stretch
from resegzoo.raster.warp import warped

#: label of pixels without valid data in every label map resegzoo writes (the GeoTIFF's nodata)
NODATA_LABEL = 255


@contextlib.contextmanager
def _gdal_errors(path: str | Path, action: str = "read") -> Iterator[None]:
    """rasterio/GDAL failures (unreadable, truncated, corrupt files) become one-line ImageErrors."""
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError

    try:
        with quiet_georef():
            yield
    except (RasterioError, CPLE_BaseError) as exc:
        detail = scrub(str(exc).strip().splitlines()[0]) if str(exc).strip() else type(exc).__name__
        if is_url(str(path)):
            raise ImageError(f"{path}: cannot {'open' if action == 'open' else 'read'} this URL ({explain(detail)})") \
                from None
        if action == "open":
            raise ImageError(f"{path}: not a readable image ({detail})") from None
        raise ImageError(f"{path}: cannot read the image; is the file truncated or corrupt? ({detail})") from None


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
    #: what GDAL opens when it differs from ``path``: a URL as the user gave it, query string
    #: (a signature) included; ``path`` is then its public form, the one shown and recorded
    source: str = ""
    #: where the raster came from beyond its path (e.g. a STAC item's id and asset), for the sidecar
    origin: tuple[tuple[str, str], ...] = ()
    #: how the bands were chosen without --bands, when the file does not say (a note for the user)
    bands_note: str = ""
    #: read on another raster's grid (``resegzoo.raster.warp.onto_grid``: the second date of a change
    #: pair); ``height``, ``width`` and ``georef`` are then that grid's
    warp: Any = None

    @property
    def gdal_source(self) -> str:
        """The name the pixels are read from (``source``, else ``path``)."""
        return self.source or self.path

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
                "stretch": None if self.stretch is None else self.stretch.to_dict(),
                **({"origin": dict(self.origin)} if self.origin else {})}

    # -- pixels ---------------------------------------------------------------------------------
    def read_raw(self, box: tuple[int, int, int, int] | None = None,
                 out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(3, h, w) band values (colours for a palette band; not stretched) and the (h, w) valid
        mask, of the whole raster or ``box`` = (y0, x0, y1, x1), optionally decimated."""
        from rasterio.windows import Window

        window = None if box is None else Window(box[1], box[0], box[3] - box[1], box[2] - box[0])
        unique = sorted(set(self.bands))
        with _gdal_errors(self.path), open_dataset(self.gdal_source, self.trust_vrt, self.path) as opened, \
                warped(opened, self.warp) as src:
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


def _choose_bands(path: str, src: Any, bands: Sequence[int] | None) -> tuple[tuple[int, int, int], str]:
    """The three bands read as R, G, B, and a note when the file did not say which they are:
    --bands as given; else the bands whose colour interpretation is red, green and blue; else the
    first three that are not alpha (named in the note when the file has more)."""
    from rasterio.enums import ColorInterp

    count = src.count
    if bands is not None:
        bad = [b for b in bands if b > count]
        if bad:
            raise ImageError(f"{path}: --bands asks for band {bad[0]} but the image has {count} band(s) (1..{count})")
        return (tuple(bands) * 3 if len(bands) == 1 else tuple(bands)), ""  # type: ignore[return-value]
    interp = list(src.colorinterp)
    rgb = [interp.index(c) + 1 for c in (ColorInterp.red, ColorInterp.green, ColorInterp.blue) if c in interp]
    if len(rgb) == 3:
        return tuple(rgb), ""  # type: ignore[return-value]
    image_bands = [b for b in range(1, count + 1) if interp[b - 1] != ColorInterp.alpha]
    if len(image_bands) >= 3:
        chosen = tuple(image_bands[:3])
        note = ""
        if len(image_bands) > 3:
            note = (f"{len(image_bands)} bands and no red/green/blue colour interpretation: read bands "
                    f"{','.join(map(str, chosen))} as R,G,B; choose others with --bands (e.g. --bands 3,2,1)")
        return chosen, note  # type: ignore[return-value]
    if len(image_bands) == 1:
        return (image_bands[0],) * 3, ""  # type: ignore[return-value]
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



def open_raster(path: str | Path, bands: Sequence[int] | None = None, nodata: float | None = None,
                alpha_mask: bool = True, trust_vrt: bool = False, stretch: bool = True) -> Raster:
    """Read ``path``'s header, check it, and decide bands, palette, nodata and stretch
    (``alpha_mask=False``: an alpha band is data, not a validity mask; ``trust_vrt``: a VRT may
    read raw bands, the network and archives, see :func:`check_sources`; ``stretch=False``: no
    stretch yet, a batch gives one with :func:`with_stretch`)."""
    source = str(path)
    if source.lstrip().startswith("<"):
        raise ImageError(f"{source[:40]}...: an inline XML dataset, not a file name")
    url = is_url(source)
    path = public_url(source) if url else source  # what messages and the sidecar show: no signature
    if not Path(path).exists() and not is_remote(path):
        raise ImageError(f"{path}: no such file")
    kind = not_regular(path)
    if kind is not None:
        raise ImageError(f"{path}: is {kind}, not a raster file; resegzoo reads regular files only")
    check_sources(path, trust_vrt)
    with _gdal_errors(path, "open"), open_dataset(source, trust_vrt, path) as src:
        h, w, count = src.height, src.width, src.count
        if count < 1:
            raise ImageError(f"{path}: the file holds no raster bands")
        if h < 2 or w < 2:
            raise ImageError(f"{path}: the image is {h}x{w} px; at least 2x2 is needed")
        chosen, bands_note = _choose_bands(path, src, bands)
        palette = _palette_of(src, chosen)
        file_nodata = src.nodatavals[chosen[0] - 1]
        georef = Georeference.of(src)
        check_georeference(path, georef)
        raster = Raster(path=path, driver=src.driver, height=h, width=w, count=count,
                        dtype=src.dtypes[chosen[0] - 1], bands=chosen, georef=georef,
                        palette=palette, nodata=nodata,
                        file_nodata=None if file_nodata is None else float(file_nodata), alpha_mask=alpha_mask,
                        trust_vrt=trust_vrt, source=source if url else "", bands_note=bands_note)
    if raster.driver == "PNG" and not url:
        _check_png_stream(path)
    from dataclasses import replace

    return replace(raster, stretch=estimate_stretch(raster)) if stretch else raster



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


