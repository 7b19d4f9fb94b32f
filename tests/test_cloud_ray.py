"""--engine ray over a bucket (issue 27): each worker reads its blocks from the URL itself (the driver
reads no block of pixels), and the labels are byte-identical to the same files on disk, locally
segmented. A module of its own: its embedded Ray starts after the S3 server, so the workers
inherit the S3 settings from the environment, as a cluster's workers get theirs (docs/cluster.md)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from resegzoo.cli import build_cli
from servers import ServerProcess
from test_cloud_inputs import CLASSES, FAST_RECIPE, cog_bytes

import ray  # noqa: E402  (the ray extra is part of the test install)


@pytest.fixture(scope="module")
def bucket_and_ray():
    import boto3

    with pytest.MonkeyPatch.context() as patch, ServerProcess.s3() as server:
        env = {"AWS_ACCESS_KEY_ID": "AKIATESTKEY", "AWS_SECRET_ACCESS_KEY": "test-secret-do-not-log",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_S3_ENDPOINT": server.host_port, "AWS_HTTPS": "NO",
               "AWS_VIRTUAL_HOSTING": "FALSE"}
        for key, value in env.items():
            patch.setenv(key, value)
        client = boto3.client("s3", endpoint_url=f"http://{server.host_port}", region_name="us-east-1")
        client.create_bucket(Bucket="ray-bucket")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield client
        finally:
            ray.shutdown()


def test_segment_on_ray_reads_a_bucket_on_the_workers(bucket_and_ray, tmp_path, monkeypatch):
    from resegzoo.raster.opening import Raster

    scenes = {"north": cog_bytes(300, 420, seed=4), "south": cog_bytes(260, 300, seed=5)}
    (tmp_path / "disk").mkdir()
    for name, data in scenes.items():
        bucket_and_ray.put_object(Bucket="ray-bucket", Key=f"scenes/{name}.tif", Body=data)
        (tmp_path / "disk" / f"{name}.tif").write_bytes(data)
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST_RECIPE)
    args = ["--recipe", str(recipe), "--model", "oracle", "--classes", CLASSES, "--tile-size", "256"]
    local = CliRunner().invoke(build_cli(), ["segment", str(tmp_path / "disk"), *args, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    driver_reads = []
    original = Raster.read_raw

    def counted(self, box=None, out_shape=None):
        driver_reads.append((box, out_shape))
        return original(self, box, out_shape)

    monkeypatch.setattr(Raster, "read_raw", counted)  # this process only: the workers are others
    on_ray = CliRunner().invoke(build_cli(), ["segment", "s3://ray-bucket/scenes/", *args, "--out",
                                              str(tmp_path / "ray"), "--engine", "ray", "--actors", "2"])
    assert on_ray.exit_code == 0, on_ray.output
    for name in scenes:
        assert (tmp_path / "ray" / f"{name}.labels.tif").read_bytes() == \
            (tmp_path / "local" / f"{name}.labels.tif").read_bytes()
        side = json.loads((tmp_path / "ray" / f"{name}.json").read_text())
        assert side["input"] == f"s3://ray-bucket/scenes/{name}.tif"
        assert side["time"]["read"] > 0 and side["time"]["encode"] > 0  # the workers' own split came back
    # the driver read no block at full resolution: only decimated looks (the overlay's background)
    assert all(out_shape is not None for _, out_shape in driver_reads), driver_reads
