"""``resegzoo publish``: upload a composed model folder to the Hugging Face Hub."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("publish")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--repo-id", required=True, metavar="USER/NAME", help="Hub model repository to upload to (created if needed).")
@click.option("--private", is_flag=True, help="Create the repository as private (no effect if it exists).")
@click.option("--revision", metavar="BRANCH", help="Upload to this branch (created if needed) instead of main.")
@click.option("--token", envvar="HF_TOKEN", help="Hub token; default: $HF_TOKEN or the token saved by `hf auth login`.")
@click.option("--dry-run", is_flag=True, help="Validate the folder, repeat compose's warnings (inputs far apart, unknown "
                                              "licences) and list what would be uploaded; upload nothing.")
def publish_command(folder: Path, repo_id: str, private: bool, revision: str | None, token: str | None,
                    dry_run: bool) -> None:
    """Upload FOLDER, written by `resegzoo compose`, to the Hugging Face Hub.

    The folder must be a complete composed model (open_clip_config.json, open_clip_model.safetensors
    with resegzoo metadata, recipe.yaml, README.md model card); anything else is refused.
    """
    from resegzoo.compose.publish import PublishError, publish
    from resegzoo.weights.hf import hub_errors, hub_failure

    try:
        result = publish(folder, repo_id, private=private, revision=revision, dry_run=dry_run, token=token,
                         warn=lambda message: click.secho(f"warning: {message}", fg="yellow", err=True))
    except PublishError as exc:
        from resegzoo.cli import user_error

        raise user_error(exc) from exc
    except hub_errors() as exc:  # network, auth (no token is an OSError), quota
        raise click.ClickException(f"upload to {repo_id} failed: {hub_failure(exc)}") from exc
    target = f"{repo_id}" + (f"@{revision}" if revision else "")
    if dry_run:
        click.echo(f"dry run: would upload to {target}:")
        for name in result.files:
            size = (folder / name).stat().st_size
            click.echo(f"  {name}  ({size} bytes)")
    else:
        click.echo(f"uploaded {len(result.files)} files to {target}: {result.url}")


COMMANDS = [publish_command]
