"""The deployment examples the docs walk through: the parameters sample and the Terraform file."""

from __future__ import annotations

import json
import re
from typing import Any

import hcl2
from infra_support import ROOT

SAMPLE = ROOT / "infra" / "params" / "dev.sample.json"
TERRAFORM = ROOT / "infra" / "terraform" / "main.tf"


def _unquote(value: str) -> str:
    return value[1:-1] if value.startswith('"') and value.endswith('"') else value


def _blocks(document: dict[str, Any], kind: str) -> dict[str, Any]:
    return {_unquote(name): body
            for block in document.get(kind, []) for name, body in block.items()}


def _resource(document: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = {_unquote(n): b for n, b in _blocks(document, "resource")[kind].items()}[
        name]
    return body


def test_the_parameters_sample_is_valid_for_the_template(stack_template: dict[str, Any]) -> None:
    values = json.loads(SAMPLE.read_text())["Parameters"]
    parameters = stack_template["Parameters"]

    assert set(values) <= set(parameters)
    assert {n for n, p in parameters.items() if "Default" not in p} <= set(values)
    for name, value in values.items():
        assert isinstance(value, str), name
        spec = parameters[name]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], name
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), name
    # The sample is for `chalice deploy` stage dev too: chalice names its functions so.
    assert values["FunctionNamePrefix"] == "github-runners-dev"


def test_the_terraform_example_deploys_the_packaged_template_with_the_parameters_file(
        merge_template: dict[str, Any]) -> None:
    document = hcl2.load(TERRAFORM.open())
    variables = _blocks(document, "variable")
    stack = _resource(document, "aws_cloudformation_stack", "runners")

    default_parameters = _unquote(variables["parameters_file"]["default"])
    assert (TERRAFORM.parent / default_parameters).resolve() == SAMPLE
    assert "jsondecode(file(var.parameters_file)).Parameters" in stack["parameters"]
    assert {"CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"} <= {
        _unquote(c) for c in stack["capabilities"]}
    assert "aws_s3_object.template.key" in stack["template_url"]
    # Stack tags reach every resource that takes tags, as the module's `tags` do.
    assert stack["tags"] == "${var.tags}"
    assert variables["tags"]["default"] == {}
    for output in _blocks(document, "output").values():
        [key] = re.findall(r'outputs\["(\w+)"\]', output["value"])
        assert key in merge_template["Outputs"]


def test_the_terraform_example_uploads_the_packaged_template() -> None:
    document = hcl2.load(TERRAFORM.open())
    upload = _resource(document, "aws_s3_object", "template")

    assert upload["source"] == "${var.packaged_template}"
    assert "filesha256(var.packaged_template)" in upload["key"]
