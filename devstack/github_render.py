"""JSON bodies of the GitHub fake, shaped as GitHub's OpenAPI description requires."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from devstack.github_records import (
    APP_PERMISSIONS,
    Counters,
    InstallationRecord,
    JobRecord,
    RunnerGroupRecord,
    RunnerRecord,
)

DOCS = "https://docs.github.com/rest"
# Labels GitHub sets itself (config.sh defaults); the API marks them read-only.
READ_ONLY_LABELS = frozenset({"self-hosted", "linux", "windows", "macos", "x64", "arm64", "arm"})


def iso(epoch: float) -> str:
    """GitHub's timestamp form, e.g. 2024-05-01T12:00:00Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error(message: str) -> dict[str, Any]:
    """GitHub's error body."""
    return {"message": message, "documentation_url": DOCS}


def node_id(kind: str, number: int) -> str:
    """An opaque global node id."""
    return base64.b64encode(f"{kind}:{number}".encode()).decode().rstrip("=")


def user(login: str, account_id: int, account_type: str, web: str, api: str) -> dict[str, Any]:
    """A `simple-user` object."""
    url = f"{api}/users/{login}"
    return {
        "login": login,
        "id": account_id,
        "node_id": node_id("User", account_id),
        "avatar_url": f"{web}/avatars/u/{account_id}",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{web}/{login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": account_type,
        "site_admin": False,
    }


def app(app_id: int, client_id: str, created_at: float, web: str, api: str) -> dict[str, Any]:
    """The `integration` object of GET /app."""
    return {
        "id": app_id,
        "slug": "ghr-runners",
        "client_id": client_id,
        "node_id": node_id("App", app_id),
        "owner": user("ghr-admin", 1, "Organization", web, api),
        "name": "ghr-runners",
        "description": "Self-hosted runner autoscaler (devstack)",
        "external_url": web,
        "html_url": f"{web}/apps/ghr-runners",
        "created_at": iso(created_at),
        "updated_at": iso(created_at),
        "permissions": APP_PERMISSIONS,
        "events": ["workflow_job"],
        "installations_count": 0,
    }


def installation(record: InstallationRecord, app_id: int, web: str, api: str) -> dict[str, Any]:
    """The `installation` object."""
    return {
        "id": record.id,
        "account": user(record.owner, record.account_id, record.account_type, web, api),
        "repository_selection": "all",
        "access_tokens_url": f"{api}/app/installations/{record.id}/access_tokens",
        "repositories_url": f"{api}/installation/repositories",
        "html_url": f"{web}/organizations/{record.owner}/settings/installations/{record.id}",
        "app_id": app_id,
        "app_slug": "ghr-runners",
        "target_id": record.account_id,
        "target_type": record.account_type,
        "permissions": record.permissions,
        "events": ["workflow_job"],
        "created_at": iso(record.created_at),
        "updated_at": iso(record.created_at),
        "single_file_name": None,
        "suspended_by": None,
        "suspended_at": None,
    }


def job(record: JobRecord, web: str, api: str) -> dict[str, Any]:
    """The `job` object of GET /repos/{owner}/{repo}/actions/jobs/{job_id}."""
    repo_api = f"{api}/repos/{record.full_repo}"
    return {
        "id": record.id,
        "run_id": record.run_id,
        "run_url": f"{repo_api}/actions/runs/{record.run_id}",
        "run_attempt": record.run_attempt,
        "node_id": node_id("CheckRun", record.id),
        "head_sha": f"{record.run_id:040x}"[-40:],
        "url": f"{repo_api}/actions/jobs/{record.id}",
        "html_url": f"{web}/{record.full_repo}/actions/runs/{record.run_id}/job/{record.id}",
        "status": record.status,
        "conclusion": record.conclusion,
        "created_at": iso(record.created_at),
        # GitHub reports started_at even while queued (it equals created_at then).
        "started_at": iso(record.started_at or record.created_at),
        "completed_at": iso(record.completed_at) if record.completed_at else None,
        "name": "build",
        "steps": [],
        "check_run_url": f"{repo_api}/check-runs/{record.id}",
        "labels": list(record.labels),
        "runner_id": record.runner_id,
        "runner_name": record.runner_name,
        "runner_group_id": record.runner_group_id,
        "runner_group_name": record.runner_group_name,
        "workflow_name": "CI",
        "head_branch": "main",
    }


def runner(record: RunnerRecord, counters: Counters) -> dict[str, Any]:
    """The `runner` object."""
    return {
        "id": record.id,
        "name": record.name,
        "os": record.os,
        "status": record.status,
        "busy": record.busy,
        "ephemeral": record.ephemeral,
        "runner_group_id": record.runner_group_id,
        "labels": [
            {
                "id": counters.label_id(label),
                "name": label,
                "type": "read-only" if label.lower() in READ_ONLY_LABELS else "custom",
            }
            for label in record.labels
        ],
    }


def runner_group(group: RunnerGroupRecord, org: str, api: str) -> dict[str, Any]:
    """The `runner-groups-org` object."""
    url = f"{api}/orgs/{org}/actions/runner-groups/{group.id}"
    return {
        "id": group.id,
        "name": group.name,
        "visibility": "all",
        "default": group.default,
        "runners_url": f"{url}/runners",
        "hosted_runners_url": f"{url}/hosted-runners",
        "inherited": False,
        "allows_public_repositories": False,
        "restricted_to_workflows": False,
        "selected_workflows": [],
        "workflow_restrictions_read_only": False,
    }


def token(value: str, expires_at: float) -> dict[str, Any]:
    """An `installation-token` / `authentication-token` object."""
    return {"token": value, "expires_at": iso(expires_at)}
