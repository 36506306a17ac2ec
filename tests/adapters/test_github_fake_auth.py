"""Contract of the GitHub fake: App JWT verification, installations and installation tokens."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.github_auth import AppKey
from devstack.github_fake import GitHubFake
from devstack.github_testing import FakeGitHubClient, app_jwt


def test_app_jwt_with_string_or_integer_iss_gets_the_app(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    for iss in (str(fake.app_id), fake.app_id):
        answer = client.call("GET", "/app", app_jwt(fake, iss=iss), scheme="Bearer")
        assert answer.status_code == 200
        assert answer.json()["id"] == fake.app_id


def test_app_jwt_ids_are_recorded(fake: GitHubFake, client: FakeGitHubClient) -> None:
    client.call("GET", "/app", app_jwt(fake, jti="first"), scheme="Bearer")
    client.call("GET", "/app", app_jwt(fake, jti=None), scheme="Bearer")
    assert fake.jwt_ids == ["first", None]


def test_private_key_is_pkcs1_pem(fake: GitHubFake) -> None:
    assert fake.private_key_pem.startswith("-----BEGIN RSA PRIVATE KEY-----")


@pytest.mark.parametrize(
    ("make_token", "message"),
    [
        pytest.param(
            lambda f: app_jwt(f, private_key_pem=AppKey.generate().private_key_pem),
            "A JSON web token could not be decoded",
            id="bad-signature",
        ),
        pytest.param(
            lambda f: app_jwt(f, iss=str(f.app_id + 1)), "Integration not found", id="other-app"
        ),
        pytest.param(
            lambda f: app_jwt(f, iss="not-a-number"),
            "'Issuer' claim ('iss') must be an Integer",
            id="iss-not-integer",
        ),
        pytest.param(
            lambda f: app_jwt(f, iat_offset=-60, lifetime=660),
            "'Expiration time' claim ('exp') is too far in the future",
            id="exp-too-far",
        ),
        pytest.param(
            lambda f: app_jwt(f, iat_offset=-700, lifetime=600),
            "'Expiration time' claim ('exp') must be a numeric value representing the future time "
            "at which the assertion expires",
            id="expired",
        ),
        pytest.param(
            lambda f: app_jwt(f, iat_offset=+120, lifetime=300),
            "'Issued at' claim ('iat') must be an Integer representing the time that the "
            "assertion was issued",
            id="issued-in-future",
        ),
        pytest.param(lambda f: "garbage", "A JSON web token could not be decoded", id="garbage"),
        pytest.param(
            lambda f: "a.b.c", "A JSON web token could not be decoded", id="three-garbage-parts"
        ),
    ],
)
def test_app_route_with_bad_jwt_answers_401_with_githubs_message(
    fake: GitHubFake, client: FakeGitHubClient, make_token: Any, message: str
) -> None:
    fake.add_installation("acme")
    answer = client.call("GET", "/orgs/acme/installation", make_token(fake), scheme="Bearer")
    assert answer.status_code == 401
    assert answer.json()["message"] == message
    assert "x-ratelimit-remaining" in answer.headers


def test_app_route_without_authorization_answers_401(client: FakeGitHubClient) -> None:
    answer = client.call("GET", "/app")
    assert answer.status_code == 401
    assert answer.json()["message"] == "A JSON web token is required to access this endpoint."


def test_app_route_with_installation_token_answers_401(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    fake.add_installation("acme")
    token = client.installation_token("acme")
    assert client.call("GET", "/app", token).status_code == 401


def test_installation_lookup_by_org_repo_and_user(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    org_id = fake.add_installation("acme")
    user_id = fake.add_installation("octocat", account_type="User")
    assert client.as_app("GET", "/orgs/acme/installation").json()["id"] == org_id
    assert client.as_app("GET", "/repos/acme/app/installation").json()["id"] == org_id
    assert client.as_app("GET", "/users/octocat/installation").json()["id"] == user_id
    repo = client.as_app("GET", "/repos/octocat/dotfiles/installation").json()
    assert repo["id"] == user_id and repo["target_type"] == "User"


def test_installation_lookup_of_unknown_owner_or_user_as_org_answers_404(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    fake.add_installation("octocat", account_type="User")
    assert client.as_app("GET", "/orgs/nobody/installation").status_code == 404
    assert client.as_app("GET", "/repos/nobody/x/installation").status_code == 404
    assert client.as_app("GET", "/orgs/octocat/installation").status_code == 404


def test_access_token_is_created_for_one_hour(fake: GitHubFake, client: FakeGitHubClient) -> None:
    installation_id = fake.add_installation("acme", installation_id=77)
    fake.clock = lambda: 1_700_000_000.0
    answer = client.as_app("POST", "/app/installations/77/access_tokens")
    assert installation_id == 77
    assert answer.status_code == 201
    assert answer.json()["token"].startswith("ghs_")
    assert answer.json()["expires_at"] == "2023-11-14T23:13:20Z"  # 1_700_003_600


def test_access_token_of_unknown_installation_answers_404(client: FakeGitHubClient) -> None:
    assert client.as_app("POST", "/app/installations/999/access_tokens").status_code == 404


@pytest.mark.parametrize("scheme", ["token", "Bearer"])
def test_installation_token_is_accepted_with_either_scheme(
    fake: GitHubFake, client: FakeGitHubClient, scheme: str
) -> None:
    fake.add_installation("acme")
    token = client.installation_token("acme")
    answer = client.call("GET", "/orgs/acme/actions/runners", token, scheme=scheme)
    assert answer.status_code == 200


def test_installation_token_works_only_for_its_owner(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    fake.add_installation("acme")
    fake.add_installation("other")
    job = fake.add_job("other", "app", ["self-hosted"])
    token = client.installation_token("acme")
    org = client.call("POST", "/orgs/other/actions/runners/registration-token", token)
    repo = client.call("GET", f"/repos/other/app/actions/jobs/{job}", token)
    assert org.status_code == 403
    assert org.json()["message"] == "Resource not accessible by integration"
    assert repo.status_code == 404


def test_expired_installation_token_answers_401(fake: GitHubFake, client: FakeGitHubClient) -> None:
    fake.add_installation("acme")
    now = [1_700_000_000.0]
    fake.clock = lambda: now[0]
    token = client.installation_token("acme")
    now[0] += 3599
    assert client.call("GET", "/orgs/acme/actions/runners", token).status_code == 200
    now[0] += 2
    answer = client.call("GET", "/orgs/acme/actions/runners", token)
    assert answer.status_code == 401
    assert answer.json()["message"] == "Bad credentials"


def test_revoked_tokens_answer_401(fake: GitHubFake, client: FakeGitHubClient) -> None:
    installation_id = fake.add_installation("acme")
    token = client.installation_token("acme")
    fake.revoke_tokens(installation_id)
    assert client.call("GET", "/orgs/acme/actions/runners", token).status_code == 401


def test_reinstalled_app_has_a_new_id_and_the_old_one_is_gone(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    old = fake.add_installation("acme")
    token = client.installation_token("acme")
    fake.remove_installation("acme")
    new = fake.add_installation("acme")
    assert new != old
    assert client.as_app("POST", f"/app/installations/{old}/access_tokens").status_code == 404
    assert client.call("GET", "/orgs/acme/actions/runners", token).status_code == 401
    assert client.as_app("GET", "/orgs/acme/installation").json()["id"] == new


def test_reset_keeps_the_app_key_and_forgets_installations(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    fake.add_installation("acme")
    key = fake.private_key_pem
    fake.reset()
    assert fake.private_key_pem == key
    assert client.as_app("GET", "/orgs/acme/installation").status_code == 404


def test_a_second_key_works_beside_the_first_until_the_first_is_revoked(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    first = fake.key
    second = fake.add_app_key()

    def status(key: AppKey) -> int:
        token = app_jwt(fake, private_key_pem=key.private_key_pem)
        return client.call("GET", "/app", token, scheme="Bearer").status_code

    assert (status(first), status(second)) == (200, 200)
    fake.revoke_app_key(first)
    assert (status(first), status(second)) == (401, 200)
    fake.reset()  # the App's own key again, alone
    assert (status(first), status(second)) == (200, 401)
