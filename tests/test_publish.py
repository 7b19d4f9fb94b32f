"""`resegzoo publish`: validation of the folder and card, dry run, and the upload at the Hub boundary."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from compose_helpers import related_models, save_folder, save_folders

from resegzoo.testing import make_tiny_clip
from huggingface_hub import HfApi, ModelCard

from resegzoo.cli import build_cli
from resegzoo.compose import compose, recipe_from_mapping
from resegzoo.compose.card import CardError, validate_card

FILES = ["open_clip_config.json", "open_clip_model.safetensors", "recipe.yaml", "README.md"]


@pytest.fixture(scope="module")
def composed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("publish")
    folders = save_folders(related_models(2, seed=5), root)
    out = root / "composed"
    compose(recipe_from_mapping({"inputs": folders, "name": "tiny-soup"}), out, progress=False)
    return out


def publish(*args: str):
    return CliRunner().invoke(build_cli(), ["publish", *args])


def test_card_validates_and_says_what_users_need(composed):
    validate_card(composed / "README.md")
    card = ModelCard.load(composed / "README.md")
    assert card.data.library_name == "open_clip"
    assert card.data.license == "other" and card.data.license_name  # unknown licences of local inputs
    assert "tiny-soup" in card.text and "| 0.5000 |" in card.text
    assert 'create_model_and_transforms("local-dir:' in card.text and "resegzoo segment" in card.text


def test_card_licence_and_base_models_from_the_zoo():
    from resegzoo.compose.card import build_card, hub_license

    assert hub_license(["Apache-2.0", "apache-2.0"]) == {"license": "apache-2.0"}
    assert hub_license(["Apache-2.0", "CC-BY-4.0"])["license"] == "other"
    summary = {
        "inputs": [{"label": "RemoteCLIP", "spec": "remoteclip-vit-l-14", "sha256": "a" * 64, "license": "Apache-2.0",
                    "hf_repo": "chendelong/RemoteCLIP", "citation": "Liu et al."},
                   {"label": "GeoRSCLIP", "spec": "georsclip-vit-l-14", "sha256": "b" * 64, "license": "CC-BY-4.0",
                    "hf_repo": "Zilun/GeoRSCLIP", "citation": "Zhang et al."}],
        "weights": [0.6, 0.4], "scores": {"quality": [0.2, 0.1]}, "recipe": {"name": "x", "description": ""},
        "weighting": {"strategy": "prompt-quality", "params": {"tau": 0.05}}, "resegzoo_version": "0.1.0",
        "architecture": "ViT-L-14-quickgelu",
    }
    card = build_card(summary, repo_id="me/soup")
    assert card.data.base_model == ["chendelong/RemoteCLIP", "Zilun/GeoRSCLIP"]
    assert "Apache-2.0; CC-BY-4.0" in card.text and "hf-hub:me/soup" in card.text
    assert "Liu et al." in card.text and "| 0.6000 | 0.2000 |" in card.text


def test_card_missing_a_section_is_invalid(composed, tmp_path):
    broken = tmp_path / "README.md"
    broken.write_text((composed / "README.md").read_text().replace("## How to load", "## Usage"))
    with pytest.raises(CardError, match="How to load"):
        validate_card(broken)


def test_dry_run_lists_the_files(composed):
    result = publish(str(composed), "--repo-id", "me/tiny-soup", "--dry-run")
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.splitlines() if line.startswith("  ")]
    assert listed == FILES


def test_incomplete_or_foreign_folders_are_refused(composed, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(composed, partial)
    (partial / "README.md").unlink()
    result = publish(str(partial), "--repo-id", "me/x", "--dry-run")
    assert result.exit_code == 1 and "missing README.md" in result.output
    # an open_clip folder that resegzoo did not compose (no composition metadata)
    foreign = save_folder(related_models(1)[0], tmp_path / "foreign")
    for name in ("recipe.yaml", "README.md"):
        shutil.copy(composed / name, foreign / name)
    result = publish(str(foreign), "--repo-id", "me/x", "--dry-run")
    assert result.exit_code == 1 and "not a resegzoo composition" in result.output
    result = publish(str(composed), "--repo-id", "not a repo id", "--dry-run")
    assert result.exit_code == 1 and "USER/NAME" in result.output


def test_upload_goes_through_hfapi(composed, monkeypatch):
    calls = []

    class Commit:
        commit_url = "https://huggingface.co/me/tiny-soup/commit/abc"

    def fake(name, result=None):
        def method(self, **kwargs):
            calls.append((name, kwargs, self.token))
            return result
        return method

    monkeypatch.setattr(HfApi, "create_repo", fake("create_repo", "https://huggingface.co/me/tiny-soup"))
    monkeypatch.setattr(HfApi, "create_branch", fake("create_branch"))
    monkeypatch.setattr(HfApi, "upload_folder", fake("upload_folder", Commit()))
    result = publish(str(composed), "--repo-id", "me/tiny-soup", "--private", "--revision", "v1", "--token", "hf_x")
    assert result.exit_code == 0, result.output
    assert [c[0] for c in calls] == ["create_repo", "create_branch", "upload_folder"]
    assert all(c[2] == "hf_x" for c in calls)
    assert calls[0][1] == {"repo_id": "me/tiny-soup", "repo_type": "model", "private": True, "exist_ok": True}
    assert calls[1][1]["branch"] == "v1" and calls[1][1]["exist_ok"] is True
    upload = calls[2][1]
    assert upload["repo_id"] == "me/tiny-soup" and upload["revision"] == "v1"
    assert Path(upload["folder_path"]) == composed and upload["allow_patterns"] == FILES
    assert "commit/abc" in result.output


def test_upload_failure_is_reported_without_traceback(composed, monkeypatch):
    def no_token(self, **kwargs):
        raise OSError("You are not logged in: run `hf auth login` or set HF_TOKEN")

    monkeypatch.setattr(HfApi, "create_repo", no_token)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    result = publish(str(composed), "--repo-id", "me/tiny-soup")
    assert result.exit_code == 1 and "upload to me/tiny-soup failed: You are not logged in" in result.output
    assert "Traceback" not in result.output and "no network" not in result.output


def test_upload_without_network_is_one_line(composed, refusing_hub, resegzoo_command):
    # huggingface_hub >= 1.0 raises its HTTP client's ConnectError (not an OSError) when the Hub refuses
    result = subprocess.run(resegzoo_command + ["publish", str(composed), "--repo-id", "me/tiny-soup"],
                            env=refusing_hub, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert [line for line in result.stderr.strip().splitlines() if not line.startswith("warning: ")] == [
        f"Error: upload to me/tiny-soup failed: no network (cannot connect to "
        f"{refusing_hub['HF_ENDPOINT'].removeprefix('http://')} (Connection refused))"]


def test_recipe_card_and_metadata_state_the_same_parameters(tmp_path):
    import json

    import yaml

    from resegzoo.compose import read_metadata

    folders = save_folders(related_models(2, seed=7), tmp_path)
    recipe = {"inputs": folders, "name": "soup", "weighting": {"strategy": "prompt-quality"},  # defaults only
              "vocabulary": {"classes": ["tree", "water"], "templates": ["a photo of {}.", "an aerial image of {}."]}}
    out = tmp_path / "soup"
    compose(recipe_from_mapping(recipe), out, progress=False)
    written = yaml.safe_load((out / "recipe.yaml").read_text())["weighting"]
    meta = read_metadata(out)["weighting"]
    assert written == meta and written["params"]["tau"] == 0.05  # the default in effect, not {}
    card = (out / "README.md").read_text()
    assert f"with parameters `{json.dumps(written['params'])}`" in card
    assert card.endswith("\n") and not card.endswith("\n\n")


def test_dry_run_repeats_the_warnings_that_matter(tmp_path, composed):
    """Inputs far apart and unknown licences, as compose said them, again before an upload; a folder
    of close inputs gets only the licence warning."""
    import warnings

    from resegzoo.compose import DistanceWarning

    folders = [str(save_folder(make_tiny_clip(seed), tmp_path / f"m{seed}")) for seed in (0, 1)]
    far = tmp_path / "far"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DistanceWarning)
        compose(recipe_from_mapping({"inputs": folders, "name": "far-soup"}), far, progress=False)
    result = publish(str(far), "--repo-id", "me/far", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    far_line = next(line for line in lines if "far apart" in line)
    assert far_line.startswith("warning: inputs ") and "do not share an initialisation" in far_line
    assert any(line.startswith("warning: the licence of ") and "is unknown" in line for line in lines)
    assert lines.index(far_line) < lines.index("dry run: would upload to me/far:")
    close = publish(str(composed), "--repo-id", "me/close", "--dry-run")
    assert close.exit_code == 0 and "far apart" not in close.output and "licence of " in close.output
