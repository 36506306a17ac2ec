"""The placeholder stage of .chalice/config.json: named so that no chalice default picks it up,
and the seed of the stage `infra.configure_stage` writes for `chalice deploy`."""

from __future__ import annotations

import json
from typing import Any

from infra_support import ROOT

from infra import build, configure_stage

CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())


def _stack_values(stack_template: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """A deployed stack's parameters (the template's defaults) and outputs, as describe-stacks
    would return them for stage `dev`."""
    parameters = {name: str(spec.get("Default", "x"))
                  for name, spec in stack_template["Parameters"].items()}
    parameters["FunctionNamePrefix"] = "github-runners-dev"
    outputs = {name: f"value-of-{name}" for name in stack_template["Outputs"]}
    return parameters, outputs


def test_the_placeholder_stage_is_not_chalices_default_stage() -> None:
    # chalice.test.Client, `chalice local` and `chalice deploy` all default to stage `dev`.
    assert configure_stage.SAMPLE_STAGE in CONFIG["stages"]
    assert "dev" not in CONFIG["stages"]


def test_a_new_stage_starts_from_the_sample_and_gets_the_stacks_values() -> None:
    stack_template = build.stack_template()
    parameters, outputs = _stack_values(stack_template)

    result = configure_stage.configure(CONFIG, "dev", parameters, outputs)

    sample, dev = result["stages"]["sample"], result["stages"]["dev"]
    assert sample == CONFIG["stages"]["sample"]
    assert dev["api_gateway_stage"] == sample["api_gateway_stage"]
    assert dev["lambda_memory_size"] == sample["lambda_memory_size"]
    for name, function in sample["lambda_functions"].items():
        assert dev["lambda_functions"][name]["lambda_memory_size"] == function[
            "lambda_memory_size"], name
    assert dev["environment_variables"]["SQS_URL_WEBHOOK"] == "value-of-BuildQueueUrl"
    assert dev["lambda_functions"]["scale_up"]["iam_role_arn"] == "value-of-ScaleUpRoleArn"
    assert "123456789012" not in json.dumps(dev["environment_variables"])
