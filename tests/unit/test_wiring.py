"""The wiring module: dependencies cached per container, rebuilt from the environment on reset."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from chalicelib import wiring

pytestmark = pytest.mark.usefixtures("aws_env")


def test_after_reset_clients_follow_the_environment_even_if_os_environ_was_swapped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a client built while os.environ was a copy (as chalice's test client does it)
    with pytest.MonkeyPatch.context() as swap:
        swap.setattr(os, "environ", os.environ.copy())
        assert wiring.aws("ec2").meta.region_name == "eu-west-1"
    # When the environment changes and the container's caches are forgotten
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    wiring.reset()
    # Then the next client reads the environment as it is now
    client = wiring.aws("ec2")
    assert client.meta.region_name == "us-east-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:9"


def test_a_client_is_built_once_per_container() -> None:
    assert wiring.aws("ssm") is wiring.aws("ssm")
    assert wiring.aws("ssm", quick=True) is not wiring.aws("ssm")


def test_the_s3_client_uses_botocores_whole_s3_model() -> None:
    # The binaries sync streams with boto3's managed transfers, which call operations (multipart
    # uploads) that are not in chalicelib/aws_models.
    s3 = wiring.aws("s3")
    assert "CreateMultipartUpload" in s3.meta.service_model.operation_names
    assert s3.meta.region_name == "eu-west-1"


def test_when_the_trimmed_models_lack_a_file_the_client_uses_botocores_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A runtime's newer botocore may look for data the trimmed models do not hold.
    shutil.copytree(wiring.AWS_MODELS, tmp_path / "models")
    (tmp_path / "models" / "partitions.json").unlink()
    monkeypatch.setattr(wiring, "AWS_MODELS", tmp_path / "models")
    monkeypatch.setattr(wiring, "_loaders", {})

    client = wiring.aws("ssm")

    assert client.meta.region_name == "eu-west-1"
    assert "trimmed AWS models incomplete" in caplog.text


def test_the_settings_of_a_container_set_where_its_metrics_go(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from chalicelib import metrics

    for name, value in {"ENVIRONMENT": "dev", "RUNNER_BINARIES_BUCKET": "b",
                        "METRICS_NAMESPACE": "Platform/CI", "ENABLE_METRICS": "false"}.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    capsys.readouterr()

    wiring.settings("sync_runner_binaries")
    metrics.put("RunnersLaunched", 1)
    metrics.flush(function="sync_runner_binaries")
    assert capsys.readouterr().out == ""  # turned off

    monkeypatch.setenv("ENABLE_METRICS", "true")
    wiring.reset()
    wiring.settings("sync_runner_binaries")
    metrics.put("RunnersLaunched", 1)
    metrics.flush(function="sync_runner_binaries")
    assert '"Namespace": "Platform/CI"' in capsys.readouterr().out
    wiring.reset()
