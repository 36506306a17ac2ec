"""`chalice package --merge-template infra/template.yaml` of the sample stage, and the static
checks of what it produces: its dependencies, the SAM transform, cfn-lint and checkov.

Every test here uses the one session-wide package (tests/infra/conftest.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from infra_support import PACKAGE_ENV, ROOT, Package, tool

from infra import build

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
MAX_PACKAGE_BYTES = 10 * 1024 * 1024
# The Lambda runtime provides these; shipping them would triple the package and the cold start.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath")
# checkov findings accepted on purpose, each with its reason. (CKV_AWS_27, SQS encryption, no
# longer fails: the queues name KmsKeyArn when it is set.)
CHECKOV_SKIPS = {
    "CKV_AWS_116": "no Lambda DLQ: scale_up's messages go to the build queue's dead-letter queue, "
                   "adjust_pool's undelivered events to the pool schedules' one; the scheduled "
                   "functions carry no payload and run again on their schedule",
    "CKV_AWS_173": "the environment holds names and flags only; secrets stay in SSM "
                   "SecureStrings, and Lambda encrypts the environment at rest anyway",
    "CKV_AWS_115": "only the webhook is unreserved: a cap would turn GitHub deliveries into "
                   "errors that GitHub does not redeliver (the API stage is throttled instead)",
    "CKV_AWS_73": "API X-Ray tracing is an option (EnableXrayTracing), off by default as in the "
                  "reference module",
    "CKV_AWS_76": "API Gateway access logs need the account-wide API Gateway logging role; the "
                  "webhook function logs every delivery itself",
    "CKV_AWS_120": "a webhook POST must never be answered from a cache",
    "CKV_AWS_119": "the state table uses KmsKeyArn when one is given, DynamoDB's own "
                   "encryption at rest otherwise (no key of ours to create and pay for)",
    "CKV_AWS_18": "the binaries bucket holds the public runner tarball, written only by the "
                  "syncer; access logs would need a second bucket",
}


def requirement_pins() -> dict[str, str]:
    """name -> version of every pinned runtime dependency in requirements.txt."""
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned"
            pins[normalize(name)] = version
    return pins


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def dist_infos(path: Path) -> dict[str, str]:
    """name -> version of every *.dist-info directory in the deployment package."""
    found: dict[str, str] = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            top = name.split("/", 1)[0]
            if top.endswith(".dist-info"):
                dist, _, version = top[: -len(".dist-info")].rpartition("-")
                found[normalize(dist)] = version
    return found


def sam_transform(packaged: dict[str, Any]) -> dict[str, Any]:
    """A packaged template through the SAM transform, as CloudFormation will see it."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = json.loads(json.dumps(packaged))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            # What `aws cloudformation package` puts there after uploading deployment.zip.
            resource["Properties"]["CodeUri"] = "s3://artifacts/deployment.zip"
    session = boto3.session.Session(region_name=PACKAGE_ENV["AWS_DEFAULT_REGION"],
                                    aws_access_key_id="testing", aws_secret_access_key="testing")
    translator = Translator(None, Parser(), boto_session=session)
    result: dict[str, Any] = translator.translate(
        template, parameter_values={"AWS::Partition": "aws"},
        get_managed_policy_map=dict)
    return result


@pytest.fixture(scope="module")
def transformed(package: Package) -> dict[str, Any]:
    """The packaged template through the SAM transform."""
    result = sam_transform(package.template)
    (package.directory / "transformed.json").write_text(json.dumps(result, indent=1))
    return result


@pytest.fixture(scope="module")
def runner_configs_package(package: Package, runner_configs_dir: Path) -> list[Path]:
    """The package as `make package RUNNER_CONFIGS=... INFRA_CONFIG=...` makes it (chalice's
    merge is build.deep_merge, so the merge template goes over the packaged one), and its SAM
    transform, as files."""
    merged = build.deep_merge(package.template, build.load(runner_configs_dir / "template.yaml"))
    packaged = runner_configs_dir / "sam.json"
    packaged.write_text(json.dumps(merged, indent=1))
    transformed_path = runner_configs_dir / "transformed.json"
    transformed_path.write_text(json.dumps(sam_transform(merged), indent=1))
    return [runner_configs_dir / "runners-stack.yaml", packaged, transformed_path]


def test_package_holds_every_pinned_runtime_dependency(package: Package) -> None:
    shipped = dist_infos(package.zip_path)
    pins = requirement_pins()
    assert {name: shipped.get(name) for name in pins} == pins


def test_package_leaves_out_what_the_runtime_provides_and_stays_small(package: Package) -> None:
    shipped = dist_infos(package.zip_path)
    assert [name for name in RUNTIME_PROVIDED if name in shipped] == []
    assert package.zip_path.stat().st_size < MAX_PACKAGE_BYTES
    with zipfile.ZipFile(package.zip_path) as archive:
        names = archive.namelist()
    # Native code built for the Lambda platform, not only the pure-Python parts.
    assert any(n.startswith("cryptography/") and n.endswith(".so") for n in names)
    assert any(n.startswith("_cffi_backend.") and "x86_64-linux" in n for n in names)
    assert "app.py" in names and "chalicelib/settings.py" in names


def test_package_ships_bytecode_that_lambda_uses_without_checking_sources(
    package: Package, tmp_path: Path
) -> None:
    with zipfile.ZipFile(package.zip_path) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path)
    tag = sys.implementation.cache_tag
    for module in ("app", "chalicelib/services/scale_up", "requests/sessions", "chalice/app"):
        folder, _, name = module.rpartition("/")
        prefix = f"{folder}/" if folder else ""
        assert f"{prefix}__pycache__/{name}.{tag}.pyc" in names, module
    # Break a source after unpacking: the unchecked-hash bytecode is still what gets imported,
    # as it would be on Lambda, where sources keep the zip's two-second timestamps.
    (tmp_path / "chalicelib" / "settings.py").write_text("this is not python\n")
    done = subprocess.run([sys.executable, "-S", "-B", "-c", "import chalicelib.settings"],
                          cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_packaged_functions_get_the_stacks_values_not_the_sample_stages(
        package: Package) -> None:
    for name in ("APIHandler", "ScaleUp", "ScaleDown", "AdjustPool", "SyncRunnerBinaries",
                 "Ec2Events"):
        properties = package.template["Resources"][name]["Properties"]
        assert isinstance(properties["Role"], dict), name
        text = json.dumps(properties["Environment"])
        assert "123456789012" not in text and "subnet-0000" not in text, name


def test_the_scale_up_mapping_reports_batch_item_failures_from_the_stack_queue(
        transformed: dict[str, Any]) -> None:
    [mapping] = [r["Properties"] for r in transformed["Resources"].values()
                 if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["EventSourceArn"] == {"Fn::Sub": "${BuildQueue.Arn}"}
    assert mapping["FunctionName"] == {"Ref": "ScaleUp"}
    assert mapping["BatchSize"] == 10
    # As many pollers as scale-up containers may run, 2 at least (Lambda's minimum).
    assert mapping["ScalingConfig"] == {"Fn::If": [
        "ScaleUpConcurrencyAtLeastTwo",
        {"MaximumConcurrency": {"Ref": "ScaleUpReservedConcurrency"}},
        {"Fn::If": ["ScaleUpConcurrencyLimited", {"MaximumConcurrency": 2},
                    {"Ref": "AWS::NoValue"}]}]}


def test_the_schedules_come_from_the_template_parameters(transformed: dict[str, Any]) -> None:
    schedules = sorted(json.dumps(r["Properties"]["ScheduleExpression"])
                       for r in transformed["Resources"].values()
                       if r["Type"] == "AWS::Events::Rule"
                       and "ScheduleExpression" in r["Properties"])
    assert schedules == ['{"Ref": "RunnerBinariesSyncSchedule"}',
                         '{"Ref": "ScaleDownScheduleExpression"}']


def test_ec2_events_gets_one_rule_of_interruption_warnings_and_ending_states(
        transformed: dict[str, Any]) -> None:
    from chalicelib.rules.ec2_events import EVENT_PATTERN

    rules = [r["Properties"] for r in transformed["Resources"].values()
             if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]]
    [rule] = rules
    assert rule["EventPattern"] == EVENT_PATTERN
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["Ec2Events", "Arn"]}
    function = transformed["Resources"]["Ec2Events"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["Ec2EventsRole", "Arn"]}
    assert function["Timeout"] == {"Ref": "Ec2EventsTimeout"}


def test_the_webhook_stage_is_throttled_and_traced_by_parameters(
        transformed: dict[str, Any]) -> None:
    [stage] = [r["Properties"] for r in transformed["Resources"].values()
               if r["Type"] == "AWS::ApiGateway::Stage"]
    assert stage["MethodSettings"] == [{
        "ResourcePath": "/*", "HttpMethod": "*",
        "ThrottlingRateLimit": {"Ref": "WebhookThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "WebhookThrottlingBurstLimit"}}]
    assert stage["TracingEnabled"] == {"Fn::If": ["XrayTracingEnabled", True, False]}


def test_cfn_lint_finds_nothing(package: Package, transformed: dict[str, Any],
                                configured_stack: Path, runner_configs_package: list[Path]) -> None:
    files = [build.STACK, package.template_path, package.directory / "transformed.json",
             configured_stack, *runner_configs_package]
    result = subprocess.run([tool("cfn-lint"), "--format", "parseable", *map(str, files)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_checkov_fails_no_check_outside_the_skip_list(package: Package,
                                                      transformed: dict[str, Any],
                                                      configured_stack: Path,
                                                      runner_configs_package: list[Path]) -> None:
    assert CHECKOV.exists(), "checkov lives in .venv-checkov: run `make .venv-checkov`"
    result = subprocess.run(
        [str(CHECKOV), "--skip-download", "--quiet", "--compact", "--output", "json",
         "--framework", "cloudformation", "--skip-check", ",".join(CHECKOV_SKIPS),
         "-f", str(build.STACK), "-f", str(package.directory / "transformed.json"),
         "-f", str(configured_stack),
         *(arg for path in runner_configs_package[::2] for arg in ("-f", str(path)))],
        capture_output=True, text=True, timeout=300, check=False,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})"
              for report in reports for c in report["results"]["failed_checks"]]
    passed = sum(report["summary"]["passed"] for report in reports)
    assert failed == []
    assert passed > 100, "checkov scanned nothing"
