"""`resegzoo segment`'s STAC options: a search of a STAC API whose items become inputs, and the asset
read from each item (also for items and item collections given as inputs). See docs/segmenting.md."""
from __future__ import annotations

from typing import Any, Callable

import click

_OPTIONS = [
    click.option("--stac", "stac_url", metavar="URL", help="Search this STAC API and segment the items it finds "
                 "(with --collection, --bbox, --datetime). Items and item collections (.json files or URLs) "
                 "may also be given as INPUTS."),
    click.option("--collection", "collections", multiple=True, metavar="ID",
                 help="--stac: a collection to search (repeat for several)."),
    click.option("--bbox", metavar="W,S,E,N", help="--stac: the area, in degrees (WEST,SOUTH,EAST,NORTH)."),
    click.option("--datetime", "stac_datetime", metavar="WHEN",
                 help="--stac: a date or range, e.g. 2024-06-01/2024-06-30 (RFC 3339, as STAC APIs take it)."),
    click.option("--max-items", type=click.IntRange(min=1), default=None, metavar="N",
                 help="--stac: segment at most N of the items found (default 100)."),
    click.option("--asset", metavar="NAME", help="The asset of each STAC item to segment. Default: its visual/RGB "
                 "asset (keys visual, rgb, image, tci, or role visual), else one whose bands include red, green "
                 "and blue by common name (read as R, G, B)."),
]


def stac_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def stac_search(stac_url: str | None, collections: tuple[str, ...], bbox: str | None, stac_datetime: str | None,
                max_items: int | None) -> Any:
    """The search the options ask for (a :class:`resegzoo.batch.stac.StacSearch`), or None."""
    from resegzoo.batch.errors import BatchInputError
    from resegzoo.batch.stac import DEFAULT_MAX_ITEMS, StacSearch, parse_bbox

    if stac_url is None:
        given = [name for name, value in (("--collection", collections), ("--bbox", bbox),
                                          ("--datetime", stac_datetime), ("--max-items", max_items)) if value]
        if given:
            raise click.UsageError(f"{', '.join(given)} go with --stac URL (a STAC API to search)")
        return None
    try:
        box = None if bbox is None else parse_bbox(bbox)
    except BatchInputError as exc:
        raise click.UsageError(str(exc)) from None
    return StacSearch(stac_url, tuple(collections), box, stac_datetime, max_items or DEFAULT_MAX_ITEMS)
