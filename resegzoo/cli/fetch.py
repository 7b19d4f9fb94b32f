"""``resegzoo fetch``: download zoo weights of any kind ahead of time (e.g. before going offline)."""
from __future__ import annotations

import json

import click


@click.command("fetch")
@click.argument("names", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object {name: local path} at the end.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def fetch(names: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Download the weights of zoo models NAMES, of any kind (CLIP variants, SAM and SAM 2.1
    checkpoints, SAM 3, plugins' models; `resegzoo list models`), into the caches.

    Hugging Face files and repositories go into the Hugging Face cache (HF_HUB_CACHE); URL downloads
    (SAM, SkyCLIP archives) into RESEGZOO_CACHE (default ~/.cache/resegzoo), resumable and verified
    where a sha256 is known. A gated model (sam3) needs its licence accepted on its Hugging Face page
    with your account and a token of that account (HF_TOKEN, or `hf auth login`) first.
    With HF_HUB_OFFLINE=1 nothing is downloaded: cached files are reported, missing ones explained.
    Without network each host is tried once: cached names are reported, and one line lists every
    name that could not be fetched (no retries).

    \b
    Example:
      resegzoo fetch remoteclip-vit-l-14 sam-vit-b sam3
    """
    from resegzoo.plugins.registry import RegistryError, get_registry
    from resegzoo.weights.cache import cache_dir
    from resegzoo.weights.fetch import fetch_record
    from resegzoo.weights.zoo import FetchError, NoNetworkError, get_sam_checkpoint

    try:
        models = get_registry().models
    except RegistryError as exc:
        from resegzoo.cli import user_error

        raise user_error(exc) from exc
    records = []
    for name in names:  # resolve every name before downloading anything
        if name in models:
            records.append(models.get(name))
            continue
        try:
            records.append(get_sam_checkpoint(name))  # a SAM model type (vit_b) names its record too
        except RegistryError:
            import difflib

            close = difflib.get_close_matches(name, list(models), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise click.UsageError(f"unknown model {name!r}.{hint} See `resegzoo list models`.") from None
    paths, failed, no_network = {}, [], {}
    for record in records:
        if record.build is not None:
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
        gated = [r.name for r in records if r.gated and r.name in no_network]
        raise click.ClickException(
            f"no network ({hosts}): not fetched: {', '.join(no_network)}"
            + (f"; fetched or cached: {', '.join(paths)}" if paths else "")
            + (f"; failed otherwise: {', '.join(n for n in failed if n not in no_network)}"
               if len(failed) > len(no_network) else "")
            + f". On a machine with internet run `resegzoo fetch {missing}` and copy the Hugging Face "
              f"cache (~/.cache/huggingface/hub) and resegzoo's ({cache_dir()}) here"
            + (f" ({', '.join(gated)}: gated, accept the licence and give a token (HF_TOKEN, or `hf auth "
               "login`) there first)" if gated else "") + "."
        )
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(records)} not fetched: {', '.join(failed)} (reasons above)")


COMMANDS = [fetch]
