"""STAC inputs: an item (a file or a URL), an item collection, or a search of a STAC API, each item
turned into one input: its visual/RGB asset (or ``--asset NAME``), read through the asset's URL,
with the asset's red, green and blue bands by their common names.

The STAC document is the user's choice, so its assets' URLs are followed (that is what a STAC input
means). A remote document's asset that names a local file is not: a file on a server does not get
to read this machine's files (unless ``--trust-vrt``). Each input's sidecar records the item id,
its collection, the asset's key and its href (without query string: a signature stays out).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urljoin

from resegzoo.batch.errors import BatchInputError

#: assets tried in turn when no --asset is given (keys), then any asset whose roles include "visual"
VISUAL_KEYS = ("visual", "rgb", "image", "tci", "TCI")
#: the most a STAC document read from a file may hold
MAX_STAC_BYTES = 64 * 1024 * 1024
#: the most items a search turns into inputs unless --max-items says otherwise
DEFAULT_MAX_ITEMS = 100


@dataclass(frozen=True)
class StacSearch:
    """``--stac URL --collection C --bbox W,S,E,N --datetime A/B --max-items N``."""

    url: str
    collections: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    datetime: str | None = None
    max_items: int = DEFAULT_MAX_ITEMS


@dataclass(frozen=True)
class StacInput:
    """One item's chosen asset: the URL (or file) to read, the bands to read as R, G, B (None:
    the file's own choice), and what the sidecar records."""

    href: str
    bands: tuple[int, int, int] | None
    origin: dict[str, str] = field(default_factory=dict)


def looks_like_stac(text: str) -> bool:
    """Whether an input argument names a STAC document (an item or item collection, ``.json``)."""
    return text.split("?", 1)[0].lower().endswith((".json", ".geojson"))


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not (values[0] <= values[2] and values[1] <= values[3]):
        raise BatchInputError(f"--bbox {text!r}: give WEST,SOUTH,EAST,NORTH in degrees, e.g. 11.5,48.1,11.6,48.2")
    return values  # type: ignore[return-value]


def _shown(href: str) -> str:
    from resegzoo.raster.remote import public_url

    return public_url(href)


def read_document(source: str) -> dict[str, Any]:
    """A STAC JSON document from a local file or a URL (one line naming it on failure)."""
    from resegzoo.raster.remote import is_url

    if is_url(source) and not source.startswith("/vsi"):
        import pystac

        try:
            return pystac.StacIO.default().read_json(source)
        except Exception as exc:  # noqa: BLE001 (urllib, JSON and pystac errors alike: one line)
            from resegzoo.raster.remote import scrub

            detail = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise BatchInputError(f"{_shown(source)}: cannot read this STAC document ({detail})") from None
    from resegzoo.outputs.reading import read_text

    try:
        text = read_text(Path(source), MAX_STAC_BYTES)
        return json.loads(text)
    except (OSError, ValueError) as exc:
        raise BatchInputError(f"{source}: not a readable STAC document ({exc})") from None


def items_of(document: dict[str, Any], source: str) -> list[Any]:
    """The pystac Items of an item or an item collection document."""
    import pystac

    kind = document.get("type") if isinstance(document, dict) else None
    try:
        if kind == "Feature":
            return [pystac.Item.from_dict(document, href=source if "://" in source else None, migrate=True)]
        if kind == "FeatureCollection":
            return [pystac.Item.from_dict(f, migrate=True) for f in document.get("features", [])]
    except Exception as exc:  # noqa: BLE001 (pystac raises many kinds for a malformed item)
        raise BatchInputError(f"{_shown(source)}: not a valid STAC item ({type(exc).__name__}: {exc})") from None
    raise BatchInputError(f"{_shown(source)}: not a STAC item or item collection (its type is {kind!r})")


def search(query: StacSearch) -> list[Any]:
    """The items a STAC API search finds (at most ``query.max_items``)."""
    from pystac_client import Client

    try:
        client = Client.open(query.url)
        found = client.search(collections=list(query.collections) or None, bbox=query.bbox,
                              datetime=query.datetime, max_items=query.max_items)
        items = list(found.items())
    except Exception as exc:  # noqa: BLE001 (network, API and JSON errors alike: one line)
        from resegzoo.raster.remote import scrub

        detail = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise BatchInputError(f"{_shown(query.url)}: STAC search failed ({detail})") from None
    if not items:
        raise BatchInputError(f"{_shown(query.url)}: the STAC search found no items "
                              f"(collections {', '.join(query.collections) or 'any'}, bbox {query.bbox}, "
                              f"datetime {query.datetime})")
    return items


def _band_names(asset: Any) -> list[str]:
    """The common names of an asset's bands (STAC 1.1 ``bands`` or the eo extension's ``eo:bands``)."""
    extra = asset.extra_fields
    bands = extra.get("bands") or extra.get("eo:bands") or []
    return [str(b.get("eo:common_name") or b.get("common_name") or "").lower() for b in bands if isinstance(b, dict)]


def _rgb_bands(asset: Any) -> tuple[int, int, int] | None:
    names = _band_names(asset)
    if all(c in names for c in ("red", "green", "blue")):
        return tuple(names.index(c) + 1 for c in ("red", "green", "blue"))  # type: ignore[return-value]
    return None


def choose_asset(item: Any, asset_name: str | None) -> tuple[str, Any]:
    """(key, asset) of the item to segment: ``asset_name``; else a visual one by key or role; else
    the first whose bands hold red, green and blue by common name."""
    assets = item.assets
    if asset_name is not None:
        if asset_name not in assets:
            raise BatchInputError(f"STAC item {item.id!r} has no asset {asset_name!r} (it has: {', '.join(assets)})")
        return asset_name, assets[asset_name]
    for key in VISUAL_KEYS:
        if key in assets:
            return key, assets[key]
    for key, asset in assets.items():
        if "visual" in (asset.roles or []):
            return key, asset
    for key, asset in assets.items():
        if _rgb_bands(asset) is not None:
            return key, asset
    raise BatchInputError(f"STAC item {item.id!r} has no visual or RGB asset (it has: {', '.join(assets)}); "
                          "choose one with --asset NAME")


def _absolute_href(item: Any, href: str, source: str, trust: bool) -> str:
    from resegzoo.raster.remote import is_url

    if is_url(href):
        return href
    base = item.get_self_href() or source
    if is_url(base) and not base.startswith("/vsi"):
        if href.startswith("/") or href.startswith("file:"):
            if not trust:
                raise BatchInputError(f"STAC item {item.id!r} at {_shown(base)} names the local file {href!r}; "
                                      "a remote document is not followed to this machine's files unless --trust-vrt")
            return href.removeprefix("file://")
        return urljoin(base, href)
    href = href.removeprefix("file://")
    return href if Path(href).is_absolute() else str(Path(base).parent / href)


def stac_inputs(items: Sequence[Any], source: str, asset_name: str | None, trust: bool = False) -> list[StacInput]:
    """One input per item: its chosen asset's URL, RGB bands by common name, and its record."""
    found = []
    for item in items:
        key, asset = choose_asset(item, asset_name)
        href = _absolute_href(item, asset.href, source, trust)
        origin = {"stac_item": str(item.id), "stac_asset": key, "stac_href": _shown(href)}
        if item.collection_id:
            origin["stac_collection"] = str(item.collection_id)
        found.append(StacInput(href, _rgb_bands(asset), origin))
    return found


def from_argument(argument: str, asset_name: str | None, trust: bool = False) -> list[StacInput]:
    """The inputs an item or item collection named on the command line stands for."""
    document = read_document(argument)
    return stac_inputs(items_of(document, argument), argument, asset_name, trust)


def from_search(query: StacSearch, asset_name: str | None, trust: bool = False) -> list[StacInput]:
    return stac_inputs(search(query), query.url, asset_name, trust)
