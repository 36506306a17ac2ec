"""The GitHub client against devstack: App auth, caches, base URLs and the domain calls."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests
from github_client_support import ORG, ManualClock, RecordingSession, make_client, token_calls

from chalicelib import wiring
from chalicelib.aws.ssm import Ssm
from chalicelib.errors import ConfigError, PermanentError
from chalicelib.github.client import GitHubClient
from chalicelib.settings import load_settings
from chalicelib.wiring import github_config

INSTALLATION_ROUTE = "GET /orgs/{org}/installation"
RUNNERS_ROUTE = "GET /orgs/{org}/actions/runners"


@pytest.fixture
def client(stack: Any, clock: ManualClock) -> GitHubClient:
    return make_client(stack, clock)


# -- App credentials, JWT and installations -------------------------------------------------------


def test_installation_id_when_org_then_looked_up_with_a_verified_jwt_and_cached(
    stack: Any, client: GitHubClient
) -> None:
    installation = stack.github.add_installation(ORG)
    assert client.installation_id(ORG, "Org") == installation
    assert client.installation_id(ORG, "Org") == installation
    assert stack.github.count(route=INSTALLATION_ROUTE) == 1
    assert stack.github.count(route=INSTALLATION_ROUTE, prefix=f"/orgs/{ORG}/") == 1
    assert len(stack.github.jwt_ids) == 1 and stack.github.jwt_ids[0]


def test_installation_id_when_repo_runners_then_repository_installation_route(
    stack: Any, client: GitHubClient
) -> None:
    installation = stack.github.add_installation("octo", "User")
    assert client.installation_id("octo/hello", "Repo") == installation
    assert stack.github.count(route="GET /repos/{owner}/{repo}/installation") == 1


def test_installation_id_when_hint_given_then_no_lookup(stack: Any, client: GitHubClient) -> None:
    installation = stack.github.add_installation(ORG)
    assert client.installation_id(ORG, "Org", hint=installation) == installation
    client.registration_token(ORG, "Org", installation_id=installation)
    assert stack.github.count(route=INSTALLATION_ROUTE) == 0


def test_installation_id_when_app_not_installed_then_permanent_error(client: GitHubClient) -> None:
    expected = r"GET /orgs/\{org\}/installation: 404 .*not installed"
    with pytest.raises(PermanentError, match=expected):
        client.installation_id("nobody", "Org")


def test_jwts_minted_for_each_app_call_carry_distinct_jti(stack: Any, client: GitHubClient) -> None:
    for owner in ("a1", "a2", "a3"):
        stack.github.add_installation(owner)
        client.registration_token(owner, "Org")
    ids = stack.github.jwt_ids
    assert len(ids) == 6 and len(set(ids)) == 6


def test_credentials_when_many_calls_then_one_get_parameters_with_decryption(
    stack: Any, client: GitHubClient
) -> None:
    for owner in ("b1", "b2"):
        stack.github.add_installation(owner)
        client.registration_token(owner, "Org")
    assert stack.aws_faults.count("ssm", "GetParameters") == 1
    assert stack.aws_faults.count("ssm", "GetParameter") == 0


def test_credentials_when_key_base64_holds_literal_newlines_then_loads(
    stack: Any, client: GitHubClient
) -> None:
    wrapped = base64.encodebytes(stack.github.private_key_pem.encode()).decode()
    stack.boto("ssm").put_parameter(Name=stack.deployment.app_key_parameter, Type="SecureString",
                                    Value=wrapped.replace("\n", "\\n"), Overwrite=True)
    stack.github.add_installation(ORG)
    assert client.registration_token(ORG, "Org")


def test_credentials_when_parameter_missing_then_config_error_naming_it(
    stack: Any, client: GitHubClient
) -> None:
    stack.boto("ssm").delete_parameter(Name=stack.deployment.app_key_parameter)
    stack.github.add_installation(ORG)
    with pytest.raises(ConfigError) as raised:
        client.registration_token(ORG, "Org")
    assert f"{stack.deployment.app_key_parameter}: SSM parameter not found" in str(raised.value)


def test_credentials_when_malformed_then_config_error_without_the_values(
    stack: Any, client: GitHubClient
) -> None:
    ssm = stack.boto("ssm")
    garbage = base64.b64encode(b"not a key, but secret-ish 0123456789").decode()
    ssm.put_parameter(Name=stack.deployment.app_key_parameter, Type="SecureString",
                      Value=garbage, Overwrite=True)
    ssm.put_parameter(Name=stack.deployment.app_id_parameter, Type="String",
                      Value="my-app", Overwrite=True)
    with pytest.raises(ConfigError) as raised:
        client.installation_id(ORG, "Org")
    message = str(raised.value)
    assert "invalid GitHub App private key format" in message
    assert f"{stack.deployment.app_id_parameter}: GitHub App id must be numeric" in message
    assert garbage not in message and "my-app" not in message


# -- installation tokens --------------------------------------------------------------------------


def test_warm_container_handling_10_jobs_makes_no_token_call_beyond_the_first_invocation(
    stack: Any, env: dict[str, str]
) -> None:
    installation = stack.github.add_installation(ORG)
    jobs = [stack.github.add_job(ORG, "web", ["self-hosted"]) for _ in range(11)]
    runner_type = wiring.settings("scale_up").runner_type
    owner = ORG if runner_type == "Org" else f"{ORG}/web"
    cold = wiring.github("scale_up")
    cold.set_deadline(60)
    assert cold.job_status(f"{ORG}/web", jobs[0], installation, runner_type) == "queued"
    cold.registration_token(owner, runner_type, installation)
    assert token_calls(stack) == 1

    warm = wiring.github("scale_up")
    warm.set_deadline(60)
    for job in jobs[1:]:
        assert warm.job_status(f"{ORG}/web", job, installation, runner_type) == "queued"
        warm.registration_token(owner, runner_type, installation)
    assert warm is cold
    assert token_calls(stack) == 1


def test_token_when_cached_then_reused_until_5_minutes_before_expiry(
    stack: Any, client: GitHubClient, clock: ManualClock
) -> None:
    stack.github.add_installation(ORG)
    client.registration_token(ORG, "Org")
    clock.advance(54 * 60)  # expires at 60 min: 6 min left
    client.registration_token(ORG, "Org")
    assert token_calls(stack) == 1
    clock.advance(2 * 60)  # 4 min left: renew before it can expire in flight
    client.registration_token(ORG, "Org")
    assert token_calls(stack) == 2


def test_token_when_given_installation_id_is_stale_then_resolved_again_once(
    stack: Any, client: GitHubClient
) -> None:
    installation = stack.github.add_installation(ORG)
    assert client.registration_token(ORG, "Org", installation_id=installation + 999)
    assert stack.github.count(route=INSTALLATION_ROUTE) == 1
    assert client.installation_id(ORG, "Org") == installation


def test_token_when_app_reinstalled_then_rejected_token_and_cached_id_replaced(
    stack: Any, client: GitHubClient
) -> None:
    first = stack.github.add_installation(ORG)
    client.registration_token(ORG, "Org")
    stack.github.remove_installation(ORG)
    second = stack.github.add_installation(ORG)
    assert client.registration_token(ORG, "Org")
    assert client.installation_id(ORG, "Org") == second != first
    assert stack.github.count(route=INSTALLATION_ROUTE) == 2


def test_token_when_installation_gone_for_good_then_permanent_error(
    stack: Any, client: GitHubClient
) -> None:
    stack.github.add_installation(ORG)
    client.registration_token(ORG, "Org")
    stack.github.remove_installation(ORG)
    with pytest.raises(PermanentError, match="not installed on acme"):
        client.registration_token(ORG, "Org")


# -- endpoints, TLS and timeouts ------------------------------------------------------------------


def test_ghes_url_when_set_then_api_v3_with_explicit_timeouts_and_verification(
    stack: Any, clock: ManualClock
) -> None:
    session = RecordingSession()
    client = make_client(stack, clock, session=session)
    stack.github.add_installation(ORG)
    client.list_runners(ORG, "Org")
    assert client.http.base_url == stack.github_url + "/api/v3"
    assert session.calls and all(call["url"].startswith(stack.github_url + "/api/v3/")
                                 for call in session.calls)
    for call in session.calls:
        connect, read = call["timeout"]
        assert 0 < connect <= 5 and 0 < read <= 10
        assert call["verify"] is True


def test_ghes_ssl_verify_false_then_only_this_clients_requests_skip_verification(
    stack: Any, clock: ManualClock
) -> None:
    session = RecordingSession()
    client = make_client(stack, clock, session=session, GHES_SSL_VERIFY="false")
    stack.github.add_installation(ORG)
    client.registration_token(ORG, "Org")
    assert all(call["verify"] is False for call in session.calls)
    assert session.verify is True  # the session's default is untouched


class _RedirectAdapter(requests.adapters.HTTPAdapter):
    """Sends what the client addresses to https://api.acme.ghe.com to devstack's API instead."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.urls: list[str] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.urls.append(str(request.url))
        request.url = str(request.url).replace("https://api.acme.ghe.com", self.target, 1)
        return super().send(request, *args, **kwargs)


def test_ghe_com_url_then_api_host_without_api_v3(stack: Any, clock: ManualClock) -> None:
    adapter = _RedirectAdapter(stack.github.api_url)
    session = requests.Session()
    session.mount("https://api.acme.ghe.com", adapter)
    client = make_client(stack, clock, session=session, GHES_URL="https://acme.ghe.com")
    stack.github.add_installation(ORG)
    client.registration_token(ORG, "Org")
    assert adapter.urls[0] == "https://api.acme.ghe.com/orgs/acme/installation"
    assert all(url.startswith("https://api.acme.ghe.com/") and "/api/v3" not in url
               for url in adapter.urls)


def test_github_com_when_ghes_url_unset_then_api_github_com(stack: Any) -> None:
    values = {k: v for k, v in stack.env().items() if k != "GHES_URL"}
    settings = load_settings(values, "scale_down")
    client = GitHubClient(github_config(settings, "scale_down"), Ssm(stack.boto("ssm")))
    assert client.http.base_url == "https://api.github.com"


# -- domain calls ---------------------------------------------------------------------------------


def test_job_status_when_org_runners_then_uses_the_orgs_installation(
    stack: Any, client: GitHubClient
) -> None:
    stack.github.add_installation(ORG)
    job = stack.github.add_job(ORG, "web", ["self-hosted"], status="in_progress")
    assert client.job_status(f"{ORG}/web", job, runner_type="Org") == "in_progress"
    assert stack.github.count(route=INSTALLATION_ROUTE) == 1


def test_registration_token_and_jit_config_for_repo_runners(
    stack: Any, clock: ManualClock
) -> None:
    client = make_client(stack, clock, org=False)
    stack.github.add_installation("octo", "User")
    assert client.registration_token("octo/hello", "Repo")
    jit = client.jit_config("octo/hello", "Repo", "i-0abc", 1, ["self-hosted", "linux"])
    runner = client.get_runner("octo/hello", "Repo", jit.runner_id)
    assert runner is not None and runner.name == "i-0abc"
    assert set(runner.labels) >= {"self-hosted", "linux"}
    assert jit.encoded_jit_config not in repr(jit)


def test_runner_group_id_when_unknown_locally_then_looked_up_and_cached_in_ssm(
    stack: Any, client: GitHubClient, clock: ManualClock
) -> None:
    stack.github.add_installation(ORG)
    group = stack.github.add_runner_group(ORG, "linux-pool")
    assert client.runner_group_id(ORG, "linux-pool") == group
    parameter = f"{stack.deployment.config_path}/runner-group/linux-pool"
    stored = stack.boto("ssm").get_parameter(Name=parameter)["Parameter"]
    assert stored["Type"] == "String" and stored["Value"] == str(group)
    fresh = make_client(stack, clock)  # a new container reads the SSM cache
    assert fresh.runner_group_id(ORG, "linux-pool") == group
    assert stack.github.count(route="GET /orgs/{org}/actions/runner-groups") == 1


def test_runner_group_id_when_group_unknown_then_permanent_error(
    stack: Any, client: GitHubClient
) -> None:
    stack.github.add_installation(ORG)
    with pytest.raises(PermanentError, match="runner group 'gpu' not found in acme"):
        client.runner_group_id(ORG, "gpu")


def test_jit_config_in_a_runner_group(stack: Any, client: GitHubClient) -> None:
    stack.github.add_installation(ORG)
    group = client.runner_group_id(ORG, "Default")
    jit = client.jit_config(ORG, "Org", "i-0def", group, ["self-hosted"])
    assert jit.runner_id and jit.encoded_jit_config


def test_list_runners_when_250_then_all_three_pages_of_100(
    stack: Any, clock: ManualClock
) -> None:
    session = RecordingSession()
    client = make_client(stack, clock, session=session)
    stack.github.add_installation(ORG)
    for index in range(250):
        stack.github.create_runner(ORG, f"r-{index}", ["self-hosted"], 1,
                                   ephemeral=False, jit=False)
    runners = client.list_runners(ORG, "Org")
    assert len(runners) == len({runner.id for runner in runners}) == 250
    assert stack.github.count(route=RUNNERS_ROUTE) == 3
    pages = [call["params"] for call in session.calls if call["url"].endswith("/runners")]
    assert pages == [{"per_page": 100, "page": 1}, {"per_page": 100, "page": 2},
                     {"per_page": 100, "page": 3}]


def test_get_runner_when_unknown_then_none(stack: Any, client: GitHubClient) -> None:
    stack.github.add_installation(ORG)
    assert client.get_runner(ORG, "Org", 987654) is None


def test_find_runner_asks_for_the_name_and_matches_it_exactly(
        stack: Any, clock: ManualClock) -> None:
    session = RecordingSession()
    client = make_client(stack, clock, session=session)
    stack.github.add_installation(ORG)
    runner = stack.github.create_runner(ORG, "i-0abc", [], 1, ephemeral=False, jit=False)
    stack.github.create_runner(ORG, "i-0abcd", [], 1, ephemeral=False, jit=False)
    stack.github.leave_out_of_listings(runner.id)  # a listing may; a look-up by name does not

    found = client.find_runner(ORG, "Org", "i-0abc")

    assert found is not None and found.id == runner.id
    assert client.find_runner(ORG, "Org", "i-0fff") is None
    assert client.list_runners(ORG, "Org")[0].name == "i-0abcd"
    assert [call["params"] for call in session.calls if call["url"].endswith("/runners")] == [
        {"name": "i-0abc"}, {"name": "i-0fff"}, {"per_page": 100, "page": 1}]


def test_delete_runner_outcomes_deleted_busy_not_found(stack: Any, client: GitHubClient) -> None:
    stack.github.add_installation(ORG)
    idle = stack.github.create_runner(ORG, "idle", [], 1, ephemeral=False, jit=False)
    busy = stack.github.create_runner(ORG, "busy", [], 1, ephemeral=False, jit=False)
    stack.github.set_runner_busy(busy.id, True)
    assert client.delete_runner(ORG, "Org", idle.id) == "deleted"
    assert client.delete_runner(ORG, "Org", busy.id) == "busy"
    assert client.delete_runner(ORG, "Org", idle.id) == "not_found"
    assert client.get_runner(ORG, "Org", busy.id) is not None
    deletes = stack.github.count(route="DELETE /orgs/{org}/actions/runners/{runner_id}")
    assert deletes == 3  # the 422 is an outcome, not retried


def test_registration_token_reused_within_its_window_then_minted_again(
    stack: Any, client: GitHubClient, clock: ManualClock
) -> None:
    stack.github.add_installation(ORG)
    route = "POST /orgs/{org}/actions/runners/registration-token"
    first = client.registration_token(ORG, "Org", reuse_for=1200)
    clock.advance(1199)
    assert client.registration_token(ORG, "Org", reuse_for=1200) == first
    assert stack.github.count(route=route) == 1
    clock.advance(2)
    assert client.registration_token(ORG, "Org", reuse_for=1200) != first
    assert client.registration_token(ORG, "Org") != first  # no reuse unless asked
    assert stack.github.count(route=route) == 3
