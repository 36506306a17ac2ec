"""Point a chalice stage at a deployed infra stack, for the `chalice deploy` path.

    python -m infra.configure_stage --stack-name ghr-dev --stage dev

Reads the stack's parameters and outputs and writes into `.chalice/config.json`, stage `dev`:
the functions' environment (infra/envmap.py, the same table the packaged template uses), the
stack's role of each function (`manage_iam_role: false`), timeouts, reserved concurrency and
Lambda VPC settings. A new stage starts as a copy of the placeholder stage `sample`, for its
memory sizes and API Gateway stage name. It also writes `out/<stage>.env`, the variables
`app.py` reads while chalice imports it (queue name and schedules), to `source` before
`chalice deploy`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.envmap import stack_environment

ROOT = Path(__file__).resolve().parent.parent
# chalice function name -> (role output, timeout parameter, reserved concurrency parameter)
FUNCTIONS: dict[str, tuple[str, str, str | None]] = {
    "api_handler": ("WebhookRoleArn", "WebhookTimeout", None),
    "scale_up": ("ScaleUpRoleArn", "ScaleUpTimeout", "ScaleUpReservedConcurrency"),
    "scale_down": ("ScaleDownRoleArn", "ScaleDownTimeout", None),
    "adjust_pool": ("PoolRoleArn", "PoolTimeout", "PoolReservedConcurrency"),
    "sync_runner_binaries": ("SyncerRoleArn", "RunnerBinariesSyncerTimeout", None),
    "ec2_events": ("Ec2EventsRoleArn", "Ec2EventsTimeout", None),
}
# Fixed at one in the packaged template too: overlapping runs would judge the same runners.
SINGLE_INSTANCE = ("scale_down", "sync_runner_binaries")
# The stage of .chalice/config.json that `make package` uses; its values are placeholders.
SAMPLE_STAGE = "sample"


class StageError(Exception):
    """The stack and the chalice stage do not fit together."""


def configure(config: dict[str, Any], stage: str, parameters: Mapping[str, str],
              outputs: Mapping[str, str]) -> dict[str, Any]:
    """`config` with stage `stage` pointed at the stack's resources (a new dict)."""
    expected = f"{config['app_name']}-{stage}"
    if parameters["FunctionNamePrefix"] != expected:
        raise StageError(
            f"the stack's FunctionNamePrefix is {parameters['FunctionNamePrefix']!r}, but chalice "
            f"names the functions of stage {stage!r} {expected}-*: redeploy the stack with "
            f"FunctionNamePrefix={expected} so its log groups and pool schedules match"
        )
    result = json.loads(json.dumps(config))
    stages = result.setdefault("stages", {})
    if stage not in stages:
        stages[stage] = json.loads(json.dumps(stages.get(SAMPLE_STAGE, {})))
    settings = stages[stage]
    settings["environment_variables"] = {
        **settings.get("environment_variables", {}), **stack_environment(parameters, outputs)
    }
    settings["manage_iam_role"] = False
    settings["iam_role_arn"] = outputs["WebhookRoleArn"]
    # Chalice's own switch for the functions and the API stage; the roles' permission to send
    # traces comes with the stack (XrayTracingPolicy).
    settings["xray"] = parameters.get("EnableXrayTracing", "false") == "true"
    subnets = [s for s in parameters.get("LambdaSubnetIds", "").split(",") if s]
    groups = [g for g in parameters.get("LambdaSecurityGroupIds", "").split(",") if g]
    functions = settings.setdefault("lambda_functions", {})
    for name, (role, timeout, concurrency) in FUNCTIONS.items():
        function = functions.setdefault(name, {})
        function["iam_role_arn"] = outputs[role]
        function["lambda_timeout"] = int(parameters[timeout])
        if name in SINGLE_INSTANCE:
            function["reserved_concurrency"] = 1
        elif concurrency is not None and parameters[concurrency] != "-1":
            function["reserved_concurrency"] = int(parameters[concurrency])
        else:
            function.pop("reserved_concurrency", None)
        if subnets and groups:
            function["subnet_ids"], function["security_group_ids"] = subnets, groups
        else:
            function.pop("subnet_ids", None)
            function.pop("security_group_ids", None)
    return result


def deploy_time_environment(parameters: Mapping[str, str],
                            outputs: Mapping[str, str]) -> dict[str, str]:
    """What app.py reads while chalice imports it: decorator arguments, not runtime settings."""
    return {
        "BUILD_QUEUE_NAME": outputs["BuildQueueName"],
        "SCALE_DOWN_SCHEDULE_EXPRESSION": parameters["ScaleDownScheduleExpression"],
        "RUNNER_BINARIES_SYNC_SCHEDULE": parameters["RunnerBinariesSyncSchedule"],
    }


def env_file(values: Mapping[str, str]) -> str:
    """Shell `export` lines, quoted."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())


def describe(cloudformation: Any, stack_name: str) -> tuple[dict[str, str], dict[str, str]]:
    """(parameters, outputs) of a deployed stack."""
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack["Parameters"]}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return parameters, outputs


def main(argv: list[str] | None = None) -> int:
    """Write the stage's configuration from the stack; print the next steps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--config", type=Path, default=ROOT / ".chalice" / "config.json")
    parser.add_argument("--env-file", type=Path, help="default: out/<stage>.env")
    args = parser.parse_args(argv)
    import boto3

    parameters, outputs = describe(boto3.client("cloudformation"), args.stack_name)
    try:
        config = configure(json.loads(args.config.read_text()), args.stage, parameters, outputs)
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.config.write_text(json.dumps(config, indent=2) + "\n")
    env_path = args.env_file or ROOT / "out" / f"{args.stage}.env"
    env_path.parent.mkdir(parents=True, exist_ok=True)
    env_path.write_text(env_file(deploy_time_environment(parameters, outputs)))
    function = f"{config['app_name']}-{args.stage}-scale_up"
    print(f"wrote stage {args.stage} of {args.config} and {env_path}; next:\n"
          f"  source {env_path} && chalice deploy --stage {args.stage}\n"
          f"  scripts/enable-batch-failures.sh {function}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
