"""The trimmed botocore models in chalicelib/aws_models are current, complete and faithful."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.session
import pytest
from botocore.model import Shape

from chalicelib import wiring

ROOT = Path(__file__).resolve().parents[2]


def trimmer() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "trim_botocore_models", ROOT / "scripts" / "trim_botocore_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def structure(shape: Shape | None, depth: int = 0) -> Any:
    """A comparable rendering of a shape: its type, serialization and members, recursively."""
    if shape is None or depth > 12:
        return None
    members = getattr(shape, "members", {})
    inner = [getattr(shape, k, None) for k in ("member", "key", "value")]
    return (shape.name, shape.type_name, sorted(shape.serialization.items()),
            [(name, structure(m, depth + 1)) for name, m in members.items()],
            [structure(s, depth + 1) for s in inner if s is not None])


def test_trimmed_models_on_disk_are_what_the_script_writes() -> None:
    files = trimmer().render()
    assert files
    for path, text in files.items():
        assert path.read_text() == text, f"{path} is stale: run scripts/trim_botocore_models.py"


@pytest.mark.parametrize("service", ["ec2", "ssm", "sqs"])
def test_trimmed_operations_match_botocores_full_model(
    service: str, aws_env: pytest.MonkeyPatch
) -> None:
    trimmed = wiring.aws(service).meta.service_model
    full = botocore.session.get_session().get_service_model(service)
    operations = trimmer().OPERATIONS[service]
    assert sorted(trimmed.operation_names) == sorted(operations)
    for name in operations:
        ours, theirs = trimmed.operation_model(name), full.operation_model(name)
        assert structure(ours.input_shape) == structure(theirs.input_shape), name
        assert structure(ours.output_shape) == structure(theirs.output_shape), name
        assert ours.http == theirs.http and ours.metadata == theirs.metadata


def test_the_loader_reads_only_the_trimmed_data(aws_env: pytest.MonkeyPatch) -> None:
    wiring.aws("ssm")
    loader = wiring._botocore_session().get_component("data_loader")
    assert loader.search_paths == [str(wiring.AWS_MODELS)]
    assert sorted(loader.list_available_services("service-2")) == sorted(
        trimmer().OPERATIONS)


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1", "cn-north-1", "us-gov-west-1",
                                    "us-iso-east-1", "ap-southeast-7"])
@pytest.mark.parametrize("service", ["ec2", "ssm", "sqs"])
def test_endpoints_resolve_as_with_botocores_own_data(
    service: str, region: str, aws_env: pytest.MonkeyPatch
) -> None:
    aws_env.setenv("AWS_DEFAULT_REGION", region)
    ours = wiring.aws(service).meta
    theirs = botocore.session.get_session().create_client(service).meta
    assert ours.endpoint_url == theirs.endpoint_url
    assert ours.partition == theirs.partition
    assert ours.service_model.signing_name == theirs.service_model.signing_name
