"""Settings of the runners module's inputs (issue 18): user tags, AMI filter and owners, the
binaries syncer, metrics. Defaults, accepted forms, and every bad value named in one error."""

from __future__ import annotations

import pytest

from chalicelib.errors import ConfigError
from chalicelib.rules.launch import runner_tags
from chalicelib.rules.tags import MAX_USER_TAGS, parse_user_tags
from chalicelib.settings import load_settings

BASE = {"ENVIRONMENT": "prod"}


def problems_of(**env: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, **env})
    return caught.value.problems


def test_defaults_keep_todays_behaviour_and_the_modules_names() -> None:
    s = load_settings(BASE)

    assert s.runner_ec2_tags == ()
    assert (s.ami_filter, s.ami_owners) == ((), ("amazon",))
    assert s.enable_runner_binaries_syncer is True
    assert s.runner_allow_prerelease_binaries is False
    assert s.runner_releases_api_url == "https://api.github.com"
    assert (s.enable_metrics, s.metrics_namespace) == (True, "GitHub Runners")


@pytest.mark.parametrize("text", ['{"Team": "ci", "CostCenter": "42"}',
                                  "Team=ci, CostCenter=42", "Team=ci,CostCenter=42,"])
def test_user_tags_are_a_json_object_or_a_key_value_list(text: str) -> None:
    assert load_settings({**BASE, "RUNNER_EC2_TAGS": text}).runner_ec2_tags == (
        ("Team", "ci"), ("CostCenter", "42"))


def test_user_tags_follow_the_system_tags_in_the_launch_request() -> None:
    settings = load_settings({**BASE, "RUNNER_EC2_TAGS": "Team=ci,Name=runner"})

    tags = runner_tags(settings, "acme", "Org", "pool-lambda")

    assert [key for key, _ in tags] == ["ghr:Application", "ghr:environment", "ghr:Type",
                                        "ghr:Owner", "ghr:created_by", "Team", "Name"]


@pytest.mark.parametrize(("text", "problem"), [
    ('{"ghr:bypass-removal": "true"}', "'ghr:bypass-removal': keys under ghr: and aws: are "
                                       "reserved"),
    ("GHR:Owner=me", "'GHR:Owner': keys under ghr: and aws: are reserved"),
    ("aws:cloudformation:stack-name=x", "reserved"),
    ('{"Team": 1}', "'Team': the value must be a string"),
    ('{"team space": "x"}', "'team space': a key is 1 to 128 of"),
    ("kubernetes.io/cluster=x", "a key is 1 to 128 of"),
    ("Team=a,Team=b", "tag 'Team' given twice"),
    ("Team", "expected Key=Value, got 'Team'"),
    ('{"Team": "ci"', "invalid JSON"),
    ('["Team"]', "expected a JSON object"),
    ("Team=" + "x" * 257, "value longer than 256"),
])
def test_a_bad_user_tag_is_a_configuration_problem_never_dropped(text: str,
                                                                 problem: str) -> None:
    [found] = problems_of(RUNNER_EC2_TAGS=text)

    assert found.startswith("RUNNER_EC2_TAGS: ") and problem in found


def test_user_tags_leave_room_for_the_system_tags_within_ec2s_fifty() -> None:
    most = ",".join(f"k{i}=v" for i in range(MAX_USER_TAGS))

    assert len(parse_user_tags(most)) == MAX_USER_TAGS == 39
    assert "at most 39" in problems_of(RUNNER_EC2_TAGS=most + ",one=more")[0]


def test_every_bad_tag_is_named_at_once() -> None:
    [found] = problems_of(RUNNER_EC2_TAGS='{"ghr:Owner": "x", "a b": "c", "n": 1}')

    assert all(name in found for name in ("'ghr:Owner'", "'a b'", "'n'"))


def test_ami_filter_is_a_json_map_of_lists_with_state_available_added() -> None:
    s = load_settings({**BASE, "AMI_FILTER": '{"name": ["runner-*"], "architecture": "arm64"}',
                       "AMI_OWNERS": "self, 123456789012"})

    assert s.ami_filter == (("name", ("runner-*",)), ("architecture", ("arm64",)),
                            ("state", ("available",)))
    assert s.ami_owners == ("self", "123456789012")
    given = load_settings({**BASE, "AMI_FILTER": '{"state": ["pending", "available"]}'})
    assert given.ami_filter == (("state", ("pending", "available")),)


@pytest.mark.parametrize("text", ['["runner-*"]', '{"name": []}', '{"name": [1]}',
                                  '{"name": [""]}', "{"])
def test_a_bad_ami_filter_is_a_configuration_problem(text: str) -> None:
    assert problems_of(AMI_FILTER=text)[0].startswith("AMI_FILTER: ")


def test_syncer_and_metrics_settings() -> None:
    s = load_settings({**BASE, "ENABLE_RUNNER_BINARIES_SYNCER": "false",
                       "RUNNER_ALLOW_PRERELEASE_BINARIES": "true",
                       "RUNNER_RELEASES_API_URL": "https://mirror.example.com/github/api/",
                       "ENABLE_METRICS": "false", "METRICS_NAMESPACE": "Platform/CI Runners"})

    assert (s.enable_runner_binaries_syncer, s.runner_allow_prerelease_binaries) == (False, True)
    assert s.runner_releases_api_url == "https://mirror.example.com/github/api"
    assert (s.enable_metrics, s.metrics_namespace) == (False, "Platform/CI Runners")


def test_bad_syncer_and_metrics_values_are_named_together() -> None:
    found = problems_of(RUNNER_RELEASES_API_URL="mirror.example.com",
                        METRICS_NAMESPACE="AWS/EC2", ENABLE_METRICS="sometimes")

    assert [p.split(":")[0] for p in found] == ["RUNNER_RELEASES_API_URL", "ENABLE_METRICS",
                                                "METRICS_NAMESPACE"]
    assert problems_of(METRICS_NAMESPACE="x" * 256)[0].startswith("METRICS_NAMESPACE: ")
