"""The REST routes of the GitHub fake: one handler per operation, and the route table.

Every route is an operation of `devstack/openapi/github-api.trimmed.json`; its key
("METHOD /template") names it in the request log, rate limits and fault injection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from devstack import github_render as render
from devstack.github_api import (
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    ApiReply,
    ApiRequest,
    Principal,
    Route,
    paginate,
    query_int,
)
from devstack.github_deliveries import render_delivery
from devstack.github_records import ApiError
from devstack.github_releases import latest_release, release_list

if TYPE_CHECKING:
    from devstack.github_fake import GitHubFake


def _owner_access(principal: Principal, owner: str, org_route: bool) -> None:
    """An installation token works only for its own account; org routes only for an org."""
    installation = principal.installation
    if installation is None or installation.owner.lower() != owner.lower():
        # GitHub hides repositories it won't show you, and refuses org resources.
        raise (
            ApiError(403, "Resource not accessible by integration")
            if org_route
            else ApiError(404, "Not Found")
        )
    if org_route and installation.account_type != "Organization":
        raise ApiError(404, "Not Found")


def _scope(params: dict[str, str], principal: Principal) -> str:
    """The runner scope of a runners route (org, or owner/repo), after checking access."""
    if "org" in params:
        _owner_access(principal, params["org"], org_route=True)
        return params["org"]
    _owner_access(principal, params["owner"], org_route=False)
    return f"{params['owner']}/{params['repo']}"


def _int_param(value: str) -> int:
    if not value.isdigit():
        raise ApiError(404, "Not Found")
    return int(value)


# -- handlers ----------------------------------------------------------------------------------


def get_app(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """GET /app: the App calling."""
    app = fake.app(who.app_id)
    return ApiReply(
        200, render.app(app.app_id, app.client_id, app.created_at, fake.url, fake.api_url)
    )


def get_installation(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """GET the calling App's installation on an org, a repository's owner or a user."""
    owner = params.get("org") or params.get("owner") or params["username"]
    record = fake.installation_for(owner, who.app_id)
    if record is None or ("org" in params and record.account_type != "Organization"):
        raise ApiError(404, "Not Found")
    return ApiReply(200, render.installation(record, record.app_id, fake.url, fake.api_url))


def create_access_token(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """POST /app/installations/{installation_id}/access_tokens, optionally limited to the
    `permissions` of the body."""
    asked = request.json().get("permissions") if request.body else None
    if asked is not None and (not isinstance(asked, dict)
                              or not all(isinstance(v, str) for v in asked.values())):
        raise ApiError(422, "Invalid request.")
    token, expires_at, permissions = fake.mint_installation_token(
        _int_param(params["installation_id"]), asked, app_id=who.app_id)
    body = render.token(token, expires_at)
    body.update(permissions=permissions, repository_selection="all")
    return ApiReply(201, body)


def list_deliveries(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """GET /app/hook/deliveries: newest first, cursor-paginated, optionally by `status`."""
    per_page = query_int(request.query, "per_page", DEFAULT_PER_PAGE)
    per_page = min(per_page, MAX_PER_PAGE) if per_page >= 1 else DEFAULT_PER_PAGE
    status = request.query.get("status")
    if status not in (None, "success", "failure"):
        raise ApiError(422, "Invalid status")
    records, cursor = fake.deliveries.page(request.query.get("cursor"), per_page, status)
    if who.app_id != fake.app_id:
        records, cursor = [], None  # only the first App's webhook is delivered
    headers = {}
    if cursor is not None:
        query = {**request.query, "per_page": str(per_page), "cursor": cursor}
        headers["Link"] = f'<{fake.api_url}{request.path}?{urlencode(query)}>; rel="next"'
    return ApiReply(200, [render_delivery(r, render.iso) for r in records], headers)


def redeliver(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """POST /app/hook/deliveries/{delivery_id}/attempts."""
    if who.app_id != fake.app_id:
        raise ApiError(404, "Not Found")
    fake.deliveries.redeliver(_int_param(params["delivery_id"]), fake.clock())
    return ApiReply(202, {})


def get_job(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """GET /repos/{owner}/{repo}/actions/jobs/{job_id}."""
    _owner_access(who, params["owner"], org_route=False)
    record = fake.job_in_repo(params["owner"], params["repo"], _int_param(params["job_id"]))
    with fake.lock:
        return ApiReply(200, render.job(record, fake.url, fake.api_url))


def rerun_job(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun: 403 while its run still runs."""
    _owner_access(who, params["owner"], org_route=False)
    fake.rerun_job(params["owner"], params["repo"], _int_param(params["job_id"]))
    return ApiReply(201, {})


def get_latest_release(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """GET /repos/{owner}/{repo}/releases/latest; only actions/runner has releases."""
    if f"{params['owner']}/{params['repo']}".lower() != "actions/runner":
        raise ApiError(404, "Not Found")
    return ApiReply(200, latest_release(fake.runner_version, fake.url, fake.api_url))


def list_releases(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """GET /repos/{owner}/{repo}/releases (one page: actions/runner's newest two at most)."""
    if f"{params['owner']}/{params['repo']}".lower() != "actions/runner":
        raise ApiError(404, "Not Found")
    with fake.lock:
        version, prerelease = fake.runner_version, fake.runner_prerelease
    return ApiReply(200, release_list(version, prerelease, fake.url, fake.api_url))


def list_runner_groups(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """GET /orgs/{org}/actions/runner-groups."""
    _owner_access(who, params["org"], org_route=True)
    groups = [
        render.runner_group(g, params["org"], fake.api_url)
        for g in fake.runner_groups(params["org"])
    ]
    page, headers = paginate(fake, request, groups)
    return ApiReply(200, {"total_count": len(groups), "runner_groups": page}, headers)


def registration_token(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """POST .../actions/runners/registration-token."""
    return ApiReply(201, render.token(*fake.mint_scope_token(_scope(params, who), "registration")))


def remove_token(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """POST .../actions/runners/remove-token."""
    return ApiReply(201, render.token(*fake.mint_scope_token(_scope(params, who), "remove")))


def generate_jitconfig(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """POST .../actions/runners/generate-jitconfig: the runner exists at once, offline."""
    scope = _scope(params, who)
    body = request.json()
    name, group_id, labels = body.get("name"), body.get("runner_group_id"), body.get("labels")
    problems = []
    if not isinstance(name, str) or not name:
        problems.append('"name" wasn\'t supplied.')
    if not isinstance(group_id, int) or isinstance(group_id, bool):
        problems.append('"runner_group_id" wasn\'t supplied.')
    if not isinstance(labels, list) or not 1 <= len(labels) <= 100:
        problems.append('"labels" must have between 1 and 100 items.')
    elif not all(isinstance(label, str) and label for label in labels):
        problems.append('"labels" must be non-empty strings.')
    if problems:
        raise ApiError(422, "Invalid request.\n\n" + "\n".join(problems))
    assert isinstance(name, str) and isinstance(group_id, int) and isinstance(labels, list)
    runner, encoded = fake.create_jit_runner(scope, name, labels, group_id, fake.url)
    with fake.lock:
        return ApiReply(
            201, {"runner": render.runner(runner, fake.counters), "encoded_jit_config": encoded}
        )


def list_runners(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """GET .../actions/runners, optionally filtered by `name`."""
    scope = _scope(params, who)
    wanted = request.query.get("name")
    with fake.lock:
        runners = [
            render.runner(r, fake.counters)
            for r in fake.runners(scope)
            if (r.name == wanted if wanted is not None else r.id not in fake.unlisted)
        ]
    page, headers = paginate(fake, request, runners)
    return ApiReply(200, {"total_count": len(runners), "runners": page}, headers)


def get_runner(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """GET .../actions/runners/{runner_id}."""
    scope = _scope(params, who)
    with fake.lock:
        runner = fake.runner_in_scope(scope, _int_param(params["runner_id"]))
        return ApiReply(200, render.runner(runner, fake.counters))


def delete_runner(
    fake: GitHubFake, request: ApiRequest, params: dict[str, str], who: Principal
) -> ApiReply:
    """DELETE .../actions/runners/{runner_id}: 422 while the runner runs a job."""
    fake.delete_runner(_scope(params, who), _int_param(params["runner_id"]))
    return ApiReply(204)


ORG_RUNNERS = "/orgs/{org}/actions/runners"
REPO_RUNNERS = "/repos/{owner}/{repo}/actions/runners"

# The permission an installation token needs on each runners route (GitHub's "Permissions
# required for GitHub Apps" of each operation).
RUNNERS_PERMISSION = {ORG_RUNNERS: "organization_self_hosted_runners",
                      REPO_RUNNERS: "administration"}

ROUTES: tuple[Route, ...] = (
    Route("GET", "/app", "jwt", get_app),
    Route("GET", "/orgs/{org}/installation", "jwt", get_installation),
    Route("GET", "/repos/{owner}/{repo}/installation", "jwt", get_installation),
    Route("GET", "/users/{username}/installation", "jwt", get_installation),
    Route("POST", "/app/installations/{installation_id}/access_tokens", "jwt", create_access_token),
    Route("GET", "/app/hook/deliveries", "jwt", list_deliveries),
    Route("POST", "/app/hook/deliveries/{delivery_id}/attempts", "jwt", redeliver),
    Route("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}", "token", get_job,
          ("actions", "read")),
    Route("POST", "/repos/{owner}/{repo}/actions/jobs/{job_id}/rerun", "token", rerun_job,
          ("actions", "write")),
    Route("GET", "/repos/{owner}/{repo}/releases", "public", list_releases),
    Route("GET", "/repos/{owner}/{repo}/releases/latest", "public", get_latest_release),
    Route("GET", "/orgs/{org}/actions/runner-groups", "token", list_runner_groups,
          ("organization_self_hosted_runners", "read")),
    *(
        route
        for base, name in RUNNERS_PERMISSION.items()
        for route in (
            Route("POST", f"{base}/registration-token", "token", registration_token,
                  (name, "write")),
            Route("POST", f"{base}/remove-token", "token", remove_token, (name, "write")),
            Route("POST", f"{base}/generate-jitconfig", "token", generate_jitconfig,
                  (name, "write")),
            Route("GET", base, "token", list_runners, (name, "read")),
            Route("GET", f"{base}/{{runner_id}}", "token", get_runner, (name, "read")),
            Route("DELETE", f"{base}/{{runner_id}}", "token", delete_runner, (name, "write")),
        )
    ),
)
ROUTE_KEYS = frozenset(route.key for route in ROUTES)
_COMPILED = [(route, route.pattern) for route in ROUTES]


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route answering `method path` and its path parameters, or None."""
    for route, pattern in _COMPILED:
        if route.method == method.upper():
            found = pattern.match(path)
            if found:
                return route, found.groupdict()
    return None
