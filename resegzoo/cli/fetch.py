"""``resegzoo fetch``: download zoo weights ahead of time (e.g. before going offline)."""
from __future__ import annotations

import json

import click


@click.command("fetch")
@click.argument("names", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object {name: local path} at the end.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def fetch(names: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Download the weights of CLIP variants, SAM checkpoints and SAM 3 models NAMES into the caches.

    Hugging Face files go into the Hugging Face cache (HF_HUB_CACHE); URL downloads (SAM, SkyCLIP
    archives) into RESEGZOO_CACHE (default ~/.cache/resegzoo), resumable and verified where a
    sha256 is known. Names come from `resegzoo list variants` and `resegzoo list sam`.
    With HF_HUB_OFFLINE=1 nothing is downloaded: cached files are reported, missing ones explained.
    Without network each host is tried once: cached names are reported, and one line lists every
    name that could not be fetched (no retries).
    """
    from resegzoo.weights.hub import cache_dir, fetch_record
    from resegzoo.weights.zoo import FetchError, NoNetworkError
    from resegzoo.plugins.registry import RegistryError, UnknownNameError, get_registry
    from resegzoo.weights.zoo import get_sam3_model, get_sam_checkpoint, sam3_models, sam_checkpoints

    try:
        variants = get_registry().variants
    except RegistryError as exc:
        from resegzoo.cli import user_error

        raise user_error(exc) from exc
    records = []
    for name in names:  # resolve every name before downloading anything
        if name in variants:
            records.append(variants.get(name))
            continue
        if name in sam3_models():
            records.append(get_sam3_model(name))
            continue
        try:
            records.append(get_sam_checkpoint(name))
        except UnknownNameError:
            import difflib

            known = list(variants) + list(sam_checkpoints()) + list(sam3_models())
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise click.UsageError(
                f"unknown variant or SAM checkpoint {name!r}.{hint} See `resegzoo list variants` "
                f"and `resegzoo list sam`."
            ) from None
    paths, failed, no_network = {}, [], {}
    for record in records:
        if getattr(record, "format", None) == "custom":
            click.echo(f"{record.name}: built by its plugin, nothing to download", err=True)
            continue
        try:  # an unreachable host is probed once; its other names then fail at once, or come from the caches
            path = fetch_record(record, progress=not quiet)
        except NoNetworkError as exc:
            no_network[record.name] = exc.reason
            failed.append(record.name)
            continue
        except FetchError as exc:
            failed.append(record.name)
            reason = str(exc) if str(exc).startswith(f"{record.name}:") else f"{record.name}: {exc}"
            if len(records) == 1:  # the one name asked for: its reason is the whole message
                raise click.ClickException(reason) from None
            click.echo(reason, err=True)
            continue
        paths[record.name] = str(path)
        if not as_json:
            click.echo(f"{record.name}: {path}")
    if as_json:
        click.echo(json.dumps(paths, indent=2))
    if no_network:
        hosts = "; ".join(dict.fromkeys(no_network.values()))
        missing = " ".join(no_network)
        raise click.ClickException(
            f"no network ({hosts}): not fetched: {', '.join(no_network)}"
            + (f"; fetched or cached: {', '.join(paths)}" if paths else "")
            + (f"; failed otherwise: {', '.join(n for n in failed if n not in no_network)}"
               if len(failed) > len(no_network) else "")
            + f". On a machine with internet run `resegzoo fetch {missing}` and copy the Hugging Face "
              f"cache (~/.cache/huggingface/hub) and resegzoo's ({cache_dir()}) here."
        )
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(records)} not fetched: {', '.join(failed)} (reasons above)")


COMMANDS = [fetch]
