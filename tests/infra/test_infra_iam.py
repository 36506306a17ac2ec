"""The IAM of the generated templates, read as specifications: who may launch, tag, terminate,
and read which parameter and key. Resources are checked by matching concrete ARNs of a sample
deployment against the statements' patterns, the way IAM matches them."""

from __future__ import annotations

from typing import Any

from infra_support import as_list, iam_matches, render, statements

ACCOUNT = "123456789012"
NAMES = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": ACCOUNT,
         "AWS::URLSuffix": "amazonaws.com", "SsmPathRoot": "github-action-runners",
         "Prefix": "dev", "RunnerLaunchTemplate": "lt-0123456789abcdef0"}
PARAMETER = f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter"
TEMPLATE_ARN = f"arn:aws:ec2:eu-west-1:{ACCOUNT}:launch-template/lt-0123456789abcdef0"
IAM_TYPES = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


def covers(statement: dict[str, Any], action: str, arn: str) -> bool:
    """Whether `statement` names `action` on `arn` (its conditions aside)."""
    actions = [a.lower() for a in as_list(statement["Action"])]
    resources = [render(r, NAMES) for r in as_list(statement["Resource"])]
    return (any(iam_matches(a, action.lower()) for a in actions)
            and any(iam_matches(r, arn) for r in resources))


def denied(template: dict[str, Any], role: str, action: str, arn: str) -> list[str]:
    """The Sids of the role's Deny statements naming `action` on `arn`."""
    return [sid for sid, s in statements(template, role).items()
            if s["Effect"] == "Deny" and covers(s, action, arn)]


def policies_of(template: dict[str, Any], role: str) -> list[str]:
    """The role itself and every policy resource attached to it."""
    found = [role]
    for name, resource in template["Resources"].items():
        if resource["Type"] in IAM_TYPES[1:] and {"Ref": role} in resource["Properties"].get(
                "Roles", []):
            found.append(name)
    return found


def allows(template: dict[str, Any], role: str, action: str) -> list[dict[str, Any]]:
    """Every Allow statement of the role's policies naming `action`."""
    return [s for name in policies_of(template, role)
            for s in statements(template, name).values()
            if s["Effect"] == "Allow"
            and any(iam_matches(a.lower(), action.lower()) for a in as_list(s["Action"]))]


def test_no_job_on_a_runner_reads_or_changes_the_github_app(
        stack_template: dict[str, Any]) -> None:
    for name in ("github_app_key_base64", "github_app_id", "github_app_webhook_secret"):
        for prefix in ("dev", "prod"):
            arn = f"{PARAMETER}/github-action-runners/{prefix}/app/{name}"
            for action in ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParameterHistory",
                           "ssm:PutParameter", "ssm:DeleteParameter"):
                assert denied(stack_template, "RunnerRole", action, arn) == ["DenyGitHubApp"]
    config = f"{PARAMETER}/github-action-runners/dev/runners/config/run_as"
    assert denied(stack_template, "RunnerRole", "ssm:GetParameter", config) == []


def test_no_recursive_path_read_reaches_the_app_or_the_tokens(
        stack_template: dict[str, Any]) -> None:
    # GetParametersByPath is authorized against the requested path, not what it returns.
    for path in ("", "/github-action-runners", "/github-action-runners/dev",
                 "/github-action-runners/dev/runners", "/github-action-runners/dev/app",
                 "/github-action-runners/dev/runners/tokens"):
        assert denied(stack_template, "RunnerRole", "ssm:GetParametersByPath",
                      PARAMETER + (path or "/")) != [], path
    assert [s["Sid"] for s in allows(stack_template, "RunnerRole", "ssm:GetParametersByPath")
            ] == []


def test_an_instance_is_denied_every_token_but_its_own(stack_template: dict[str, Any]) -> None:
    runner = statements(stack_template, "RunnerRole")
    token = f"{PARAMETER}/github-action-runners/dev/runners/tokens/i-0fedcba987654321"
    assert sorted(denied(stack_template, "RunnerRole", "ssm:GetParameter", token)) == [
        "DenyOtherInstancesTokens", "DenyUntaggedTokens"]
    # Its own token (tagged InstanceId=<its id>) makes the first false; only untagged ones
    # meet the second, so a missing tag cannot turn the comparison off.
    assert runner["DenyOtherInstancesTokens"]["Condition"] == {
        "StringNotLike": {"ec2:SourceInstanceARN": "*/${aws:ResourceTag/InstanceId}"}}
    assert runner["DenyUntaggedTokens"]["Condition"] == {
        "Null": {"aws:ResourceTag/InstanceId": "true"}}
    own = runner["ReadAndDeleteOwnToken"]
    assert own["Condition"] == {
        "StringLike": {"ec2:SourceInstanceARN": "*/${aws:ResourceTag/InstanceId}"}}
    assert sorted(own["Action"]) == ["ssm:DeleteParameter", "ssm:GetParameter"]


def test_the_runner_role_never_decrypts_with_the_app_keys_key(
        stack_template: dict[str, Any]) -> None:
    kms_key = {"Ref": "KmsKeyArn"}
    granted = [s["Sid"] for s in allows(stack_template, "RunnerRole", "kms:Decrypt")
               if kms_key in as_list(s["Resource"])]
    assert granted == []
    policy = stack_template["Resources"]["RunnerDenyAppKeyDecryptPolicy"]
    assert policy["Condition"] == "HasKmsKey"
    [deny] = statements(stack_template, "RunnerDenyAppKeyDecryptPolicy").values()
    assert deny["Effect"] == "Deny" and "kms:Decrypt" in deny["Action"]
    assert deny["Resource"] == kms_key
    [token_key] = [s for s in allows(stack_template, "RunnerRole", "kms:Decrypt")]
    assert token_key["Resource"] == {"Ref": "RunnerTokenKmsKeyArn"}
    assert render(token_key["Condition"]["StringLike"]["kms:EncryptionContext:PARAMETER_ARN"],
                  NAMES) == f"{PARAMETER}/github-action-runners/dev/runners/tokens/*"
    rule = stack_template["Rules"]["SeparateRunnerTokenKey"]["Assertions"][0]["Assert"]
    assert rule == {"Fn::Not": [{"Fn::Equals": [{"Ref": "RunnerTokenKmsKeyArn"}, kms_key]}]}


def test_a_runner_may_tag_itself_only_with_its_runner_id_and_only_once(
        stack_template: dict[str, Any]) -> None:
    [tagging] = allows(stack_template, "RunnerRole", "ec2:CreateTags")
    condition = tagging["Condition"]
    assert condition["ForAllValues:StringEquals"] == {"aws:TagKeys": ["ghr:github_runner_id"]}
    assert condition["Null"] == {"aws:TagKeys": "false",
                                 "aws:RequestTag/ghr:github_runner_id": "false",
                                 "aws:ResourceTag/ghr:github_runner_id": "true"}
    itself = condition["ArnLike"]["ec2:SourceInstanceARN"]
    assert render(itself, NAMES) == f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/${{ec2:InstanceID}}"
    assert allows(stack_template, "RunnerRole", "ec2:DeleteTags") == []


def test_scale_down_writes_and_removes_only_the_orphan_mark(
        stack_template: dict[str, Any]) -> None:
    for action in ("ec2:CreateTags", "ec2:DeleteTags"):
        [statement] = allows(stack_template, "ScaleDownRole", action)
        condition = statement["Condition"]
        assert condition["ForAllValues:StringEquals"] == {"aws:TagKeys": ["ghr:orphan-suspected"]}
        assert condition["Null"]["aws:TagKeys"] == "false"
        assert condition["StringEquals"] == {
            "aws:ResourceTag/ghr:Application": "github-action-runner",
            "aws:ResourceTag/ghr:environment": {"Ref": "Prefix"}}
    [mark] = allows(stack_template, "ScaleDownRole", "ec2:CreateTags")
    assert mark["Condition"]["Null"]["aws:RequestTag/ghr:orphan-suspected"] == "false"


def test_every_tag_write_names_its_keys_or_happens_at_launch(
        stack_template: dict[str, Any]) -> None:
    for name, resource in stack_template["Resources"].items():
        if resource["Type"] not in IAM_TYPES:
            continue
        for sid, statement in statements(stack_template, name).items():
            actions = as_list(statement["Action"])
            if statement["Effect"] != "Allow" or not {"ec2:CreateTags", "ec2:DeleteTags"} & set(
                    actions):
                continue
            condition = statement["Condition"]
            at_launch = condition.get("StringEquals", {}).get("ec2:CreateAction")
            keys = condition.get("ForAllValues:StringEquals", {}).get("aws:TagKeys")
            assert at_launch or (keys and condition["Null"]["aws:TagKeys"] == "false"), sid


def test_launching_is_pinned_to_the_runner_launch_template_and_request_tags(
        stack_template: dict[str, Any]) -> None:
    launch = statements(stack_template, "LaunchRunnersPolicy")
    for sid, statement in launch.items():
        if "ec2:RunInstances" not in as_list(statement["Action"]):
            continue
        resources = [render(r, NAMES) for r in as_list(statement["Resource"])]
        pinned = statement.get("Condition", {}).get("ArnLike", {}).get("ec2:LaunchTemplate")
        assert resources == [TEMPLATE_ARN] or render(pinned, NAMES) == TEMPLATE_ARN, sid
    for sid in ("LaunchTaggedRunnerInstances", "FleetOfTaggedRunnerInstances"):
        assert launch[sid]["Condition"]["StringEquals"] == {
            "aws:RequestTag/ghr:Application": "github-action-runner",
            "aws:RequestTag/ghr:environment": {"Ref": "Prefix"}}
    templates = [render(r, NAMES) for s in launch.values() for r in as_list(s["Resource"])
                 if ":launch-template/" in render(r, NAMES)]
    assert set(templates) == {TEMPLATE_ARN}
    assert launch["PassOnlyTheRunnerRole"]["Resource"] == {"Fn::GetAtt": ["RunnerRole", "Arn"]}
    assert launch["TagOnlyAtLaunch"]["Condition"] == {
        "StringEquals": {"ec2:CreateAction": ["RunInstances", "CreateFleet"]}}
    runner_id = launch["TagRunnerIdOfOwnRunners"]["Condition"]
    assert runner_id["ForAllValues:StringEquals"] == {"aws:TagKeys": ["ghr:github_runner_id"]}


def test_terminating_is_limited_to_this_environments_runners(
        stack_template: dict[str, Any]) -> None:
    for resource in ("LaunchRunnersPolicy", "ScaleDownRole"):
        condition = statements(stack_template, resource)["TerminateOwnRunners"]["Condition"]
        assert condition["StringEquals"] == {
            "aws:ResourceTag/ghr:Application": "github-action-runner",
            "aws:ResourceTag/ghr:environment": {"Ref": "Prefix"}}
    itself = statements(stack_template, "RunnerRole")["TerminateItself"]["Condition"]
    assert itself["ArnLike"]["ec2:SourceInstanceARN"]["Fn::Sub"].endswith(
        ":instance/${!ec2:InstanceID}")


def test_no_write_action_is_allowed_on_every_resource(stack_template: dict[str, Any]) -> None:
    reads = ("Describe", "List", "Get")
    # X-Ray has no resource-level permissions: its two write actions only ever name "*".
    resourceless = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    for name, resource in stack_template["Resources"].items():
        if resource["Type"] not in IAM_TYPES:
            continue
        for statement in statements(stack_template, name).values():
            actions = as_list(statement["Action"])
            assert "*" not in actions
            if statement["Resource"] == "*" and "Condition" not in statement:
                writes = [a for a in actions
                          if not a.split(":")[1].startswith(reads) and a not in resourceless]
                assert writes == [], f"{name}/{statement['Sid']}"


def test_the_webhook_reads_the_current_and_the_previous_secret_in_one_call(
        stack_template: dict[str, Any]) -> None:
    # REFERENCE.md §2: PARAMETER_GITHUB_APP_WEBHOOK_SECRET_PREVIOUS_NAME, read with the current
    # secret by one GetParameters while a rotation is under way.
    for name in ("github_app_webhook_secret", "github_app_webhook_secret_previous"):
        arn = f"{PARAMETER}/github-action-runners/dev/app/{name}"
        for action in ("ssm:GetParameter", "ssm:GetParameters"):
            assert any(covers(s, action, arn) for s in allows(stack_template, "WebhookRole",
                                                              action)), (action, name)
        assert denied(stack_template, "RunnerRole", "ssm:GetParameters", arn) == ["DenyGitHubApp"]
    # The App key only while re-runs of interrupted jobs are on (REFERENCE.md §9).
    key = f"{PARAMETER}/github-action-runners/dev/app/github_app_key_base64"
    resources = stack_template["Resources"]
    granting = [name for name in policies_of(stack_template, "WebhookRole")
                if any(covers(s, "ssm:GetParameters", key)
                       for s in statements(stack_template, name).values()
                       if "ssm:GetParameters" in as_list(s["Action"]))]
    assert granting == ["WebhookGitHubAppReadPolicy"]
    assert resources["WebhookGitHubAppReadPolicy"]["Condition"] == "SpotInterruptionRerunEnabled"


def test_ec2_events_looks_up_marks_interrupted_runners_and_deletes_their_tokens_only(
        stack_template: dict[str, Any]) -> None:
    [mark] = allows(stack_template, "Ec2EventsRole", "ec2:CreateTags")
    condition = mark["Condition"]
    assert condition["ForAllValues:StringEquals"] == {"aws:TagKeys": ["ghr:interrupted"]}
    assert condition["Null"] == {"aws:TagKeys": "false",
                                 "aws:RequestTag/ghr:interrupted": "false"}
    assert condition["StringEquals"] == {
        "aws:ResourceTag/ghr:Application": "github-action-runner",
        "aws:ResourceTag/ghr:environment": {"Ref": "Prefix"}}
    for action in ("ec2:TerminateInstances", "ec2:DeleteTags", "ec2:RunInstances",
                   "ssm:PutParameter"):
        assert allows(stack_template, "Ec2EventsRole", action) == [], action
    token = f"{PARAMETER}/github-action-runners/dev/runners/tokens/i-0fedcba987654321"
    app_key = f"{PARAMETER}/github-action-runners/dev/app/github_app_key_base64"
    assert any(covers(s, "ssm:DeleteParameters", token)
               for s in allows(stack_template, "Ec2EventsRole", "ssm:DeleteParameters"))
    assert any(covers(s, "ssm:GetParameters", app_key)
               for s in allows(stack_template, "Ec2EventsRole", "ssm:GetParameters"))
    state = statements(stack_template, "Ec2EventsStatePolicy")["StateItems"]
    assert state["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [
        "interrupted#*", "run#*"]


def test_the_webhook_and_scale_down_may_touch_the_re_run_items(
        stack_template: dict[str, Any]) -> None:
    keys = {name: statements(stack_template, f"{name}StatePolicy")["StateItems"]["Condition"][
        "ForAllValues:StringLike"]["dynamodb:LeadingKeys"] for name in ("Webhook", "ScaleDown")}
    assert {"run#*", "interrupted#*", "rerun#*"} <= set(keys["Webhook"])
    assert "rerun#*" in keys["ScaleDown"]
