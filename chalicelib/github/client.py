"""The GitHub adapter: the domain calls the functions make, as a GitHub App installation. Raw
GitHub JSON stops here; callers get `Runner`, `JitConfig`, plain strings and our errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import requests

from chalicelib import metrics
from chalicelib.aws.ssm import Ssm
from chalicelib.errors import GhrError, PermanentError, RetryableError
from chalicelib.github.app_key import AppKeyring
from chalicelib.github.apps import GitHubApps
from chalicelib.github.auth import InstallationToken
from chalicelib.github.http import GitHubHttp, github_message
from chalicelib.github.limits import api_base_url, classify_rate_limit
from chalicelib.logs import get_logger
from chalicelib.models import JitConfig, Runner, RunnerType

if TYPE_CHECKING:
    from chalicelib.github.deliveries import WebhookDeliveries

log = get_logger(__name__)

DeleteOutcome = Literal["deleted", "busy", "not_found"]
RerunOutcome = Literal["requested", "run_in_progress", "forbidden", "not_found", "refused"]

JIT_PATH = "/actions/runners/generate-jitconfig"


@dataclass(frozen=True)
class GitHubConfig:
    """What the GitHub adapter needs to know of the deployment."""

    # The SSM parameters of each App's id and key, the webhook's App first (REFERENCE §10).
    app_id_parameters: tuple[str, ...]
    app_key_parameters: tuple[str, ...]
    # None: github.com. A GHES base URL otherwise (the API is under it, see github.limits).
    ghes_url: str | None = None
    ssl_verify: bool = True
    # SSM prefix of the runner-group id cache (`<SSM_CONFIG_PATH>/runner-group`).
    runner_group_cache_path: str = ""
    # What installation tokens are limited to (None: all the installation grants).
    permissions: Mapping[str, str] | None = field(default=None, hash=False)


def _scope(owner: str, runner_type: RunnerType) -> tuple[str, dict[str, str | int]]:
    """The path prefix and parameters of an owner's runners: an org, or `owner/repo`."""
    if runner_type == "Org":
        return "/orgs/{org}", {"org": owner}
    repo_owner, _, repo = owner.partition("/")
    if not repo_owner or not repo:
        raise PermanentError(f"repository runners need an owner of the form owner/repo: {owner!r}")
    return "/repos/{owner}/{repo}", {"owner": repo_owner, "repo": repo}


def _still_running(message: str) -> bool:
    """GitHub's 403 to a re-run while the job's workflow run is still going ("The workflow run
    containing this job is already running")."""
    lowered = message.lower()
    return any(words in lowered for words in ("already running", "still running",
                                              "in progress", "not completed"))


def _runner(data: Mapping[str, Any]) -> Runner:
    labels = tuple(str(label.get("name", "")) for label in data.get("labels", []))
    return Runner(id=int(data["id"]), name=str(data.get("name", "")),
                  status=str(data.get("status", "")), busy=bool(data.get("busy", False)),
                  labels=labels)


class GitHubClient:
    """GitHub as the functions use it: jobs, runner registration, runners."""

    def __init__(
        self,
        config: GitHubConfig,
        ssm: Ssm,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self._ssm = ssm
        self.http = GitHubHttp(api_base_url(config.ghes_url), verify=config.ssl_verify,
                               session=session, clock=clock, sleep=sleep)
        keyring = AppKeyring(ssm, list(zip(config.app_id_parameters, config.app_key_parameters,
                                           strict=True)))
        # Every installation call goes through the App selection; `_auth` is the webhook's App
        # (installation ids of messages, the webhook's delivery log).
        self._calls = GitHubApps(self.http, keyring, clock, config.permissions)
        self._auth = self._calls.primary
        self._groups: dict[tuple[str, str], int] = {}
        self._clock = clock
        self._registration: dict[tuple[str, str], tuple[str, float]] = {}
        self._registration_lock = threading.Lock()
        self._registration_locks: dict[tuple[str, str], threading.Lock] = {}

    def set_deadline(self, remaining_seconds: float) -> None:
        """Bound waits and retries by the invocation's remaining time; past it: RetryableError."""
        self.http.set_deadline(remaining_seconds)

    @property
    def rate_limit(self) -> dict[str, int | str]:
        """The last seen x-ratelimit-* values: remaining, limit, reset, resource, used."""
        return dict(self.http.last_rate_limit)

    def log_summary(self) -> None:
        """Log this container's GitHub usage, with the App each owner's calls went to, and
        publish the remaining rate-limit budget: last seen, and last seen per App."""
        seen = self.http.last_rate_limit
        log.info("github usage", **self.http.stats,
                 rate_limit_remaining=seen.get("remaining"), rate_limit_limit=seen.get("limit"),
                 rate_limit_reset=seen.get("reset"), rate_limit_resource=seen.get("resource"),
                 **self._calls.summary())
        remaining = seen.get("remaining")
        if isinstance(remaining, int):
            metrics.put("GitHubAppRateLimitRemaining", remaining, unit="Count")
        for app_id, left in self._calls.remaining_by_app().items():
            metrics.put("GitHubAppRateLimitRemaining", left, unit="Count", App=str(app_id))

    def installation_id(self, owner: str, runner_type: RunnerType, hint: int = 0) -> int:
        """The App's installation id for `owner`; `hint` (the message's id) when non-zero."""
        return self._auth.installation_id(owner, runner_type, hint)

    def installation_token(self, owner: str, runner_type: RunnerType,
                           installation_id: int = 0) -> InstallationToken:
        """A valid installation token of `owner`, minted when none is cached: for warming a
        container up and for checks of what GitHub granted; the domain calls use it
        themselves."""
        return self._auth.token(owner, runner_type, installation_id)

    def job_status(self, repo_full_name: str, job_id: int, installation_id: int = 0,
                   runner_type: RunnerType = "Repo") -> str:
        """The status of workflow job `job_id` ("queued", "in_progress", "completed", ...), asked
        as the installation that serves `runner_type` runners of the repository's owner."""
        repo_owner, _, repo = repo_full_name.partition("/")
        owner = repo_owner if runner_type == "Org" else repo_full_name
        response = self._calls.call(owner, runner_type, installation_id, "GET",
                                    "/repos/{owner}/{repo}/actions/jobs/{job_id}",
                                    {"owner": repo_owner, "repo": repo, "job_id": job_id})
        return str(response.json()["status"])

    def registration_token(self, owner: str, runner_type: RunnerType, installation_id: int = 0,
                           *, reuse_for: float = 0.0) -> str:
        """A runner registration token for `owner` (valid one hour). With `reuse_for`, a token
        this client minted less than that many seconds ago is handed out again: one token
        registers any number of runners, and each mint is a write that counts against GitHub's
        secondary limit."""
        key = (runner_type, owner)
        # One mint at a time per owner: its groups in several configurations run side by side.
        with self._lock_of(key):
            cached = self._registration.get(key)
            if cached is not None and self._clock() - cached[1] < reuse_for:
                return cached[0]
            prefix, path = _scope(owner, runner_type)
            response = self._calls.call(owner, runner_type, installation_id, "POST",
                                        prefix + "/actions/runners/registration-token", path)
            token = str(response.json()["token"])
            self._registration[key] = (token, self._clock())
        return token

    def jit_capacity(self, runner_type: RunnerType) -> int:
        """JIT configs that can still be created before the deadline without meeting GitHub's
        secondary limit (each is a write: 5 of the endpoint's 900 points a minute)."""
        prefix = "/orgs/{org}" if runner_type == "Org" else "/repos/{owner}/{repo}"
        return self.http.write_capacity("POST", prefix + JIT_PATH)

    def jit_config(self, owner: str, runner_type: RunnerType, name: str, runner_group_id: int,
                   labels: Sequence[str], installation_id: int = 0) -> JitConfig:
        """Create a just-in-time runner `name` and return its id and encoded configuration."""
        prefix, path = _scope(owner, runner_type)
        body = {"name": name, "runner_group_id": runner_group_id, "labels": list(labels),
                "work_folder": "_work"}
        response = self._calls.call(owner, runner_type, installation_id, "POST",
                                    prefix + JIT_PATH, path, body=body)
        data = response.json()
        return JitConfig(runner_id=int(data["runner"]["id"]),
                         encoded_jit_config=str(data["encoded_jit_config"]))

    def runner_group_id(self, org: str, group_name: str, installation_id: int = 0) -> int:
        """The id of `org`'s runner group `group_name`, cached in SSM and in memory."""
        with self._lock_of(("group:" + org, group_name)):  # one look-up at a time
            if (org, group_name) not in self._groups:
                self._groups[(org, group_name)] = self._group_id(org, group_name, installation_id)
        return self._groups[(org, group_name)]

    def _lock_of(self, key: tuple[str, str]) -> threading.Lock:
        with self._registration_lock:
            return self._registration_locks.setdefault(key, threading.Lock())

    def _group_id(self, org: str, group_name: str, installation_id: int) -> int:
        parameter = f"{self.config.runner_group_cache_path}/{group_name}"
        group_id = self._cached_group(parameter)
        if group_id is None:
            groups = self._calls.pages(org, "Org", installation_id,
                                       "/orgs/{org}/actions/runner-groups", {"org": org},
                                       "runner_groups")
            found = [g for g in groups if g.get("name") == group_name]
            if not found:
                raise PermanentError(
                    f"GET /orgs/{{org}}/actions/runner-groups: runner group {group_name!r} "
                    f"not found in {org}"
                )
            group_id = int(found[0]["id"])
            self._store_group(parameter, group_id)
        return group_id

    def _cached_group(self, parameter: str) -> int | None:
        try:
            value = self._ssm.get_string(parameter)
            return int(value) if value is not None else None
        except (GhrError, ValueError) as error:
            log.warning("runner group cache unreadable", parameter=parameter, error=str(error))
        return None

    def _store_group(self, parameter: str, group_id: int) -> None:
        try:
            self._ssm.put_string(parameter, str(group_id))
        except GhrError as error:
            # Only a cache: the next container looks the group up again.
            log.warning("runner group cache not written", parameter=parameter, error=str(error))

    def list_runners(self, owner: str, runner_type: RunnerType,
                     installation_id: int = 0) -> list[Runner]:
        """Every self-hosted runner of `owner`, across all pages."""
        prefix, path = _scope(owner, runner_type)
        items = self._calls.pages(owner, runner_type, installation_id, prefix + "/actions/runners",
                                  path, "runners")
        return [_runner(item) for item in items]

    def get_runner(self, owner: str, runner_type: RunnerType, runner_id: int,
                   installation_id: int = 0) -> Runner | None:
        """Runner `runner_id` of `owner`, or None when GitHub does not know it (404)."""
        prefix, path = _scope(owner, runner_type)
        response = self._calls.call(owner, runner_type, installation_id, "GET",
                                    prefix + "/actions/runners/{runner_id}",
                                    {**path, "runner_id": runner_id}, accept=(404,))
        return None if response.status_code == 404 else _runner(response.json())

    def find_runner(self, owner: str, runner_type: RunnerType, name: str,
                    installation_id: int = 0) -> Runner | None:
        """`owner`'s runner named exactly `name`, asked directly (the listing filtered by
        `name`), or None when GitHub has none."""
        prefix, path = _scope(owner, runner_type)
        response = self._calls.call(owner, runner_type, installation_id, "GET",
                                    prefix + "/actions/runners", path, query={"name": name})
        found = [_runner(item) for item in response.json().get("runners") or []]
        return next((runner for runner in found if runner.name == name), None)

    def delete_runner(self, owner: str, runner_type: RunnerType, runner_id: int,
                      installation_id: int = 0) -> DeleteOutcome:
        """Deregister runner `runner_id`: "deleted", "busy" (422, running a job) or "not_found"."""
        prefix, path = _scope(owner, runner_type)
        response = self._calls.call(owner, runner_type, installation_id, "DELETE",
                                    prefix + "/actions/runners/{runner_id}",
                                    {**path, "runner_id": runner_id}, accept=(404, 422))
        outcome: DeleteOutcome = "deleted"
        if response.status_code == 404:
            outcome = "not_found"
        elif response.status_code == 422:
            outcome = "busy"  # "Runner is still running a job": the caller keeps its instance
        log.info("github runner delete", owner=owner, runner_id=runner_id, outcome=outcome)
        return outcome

    def rerun_job(self, repo_full_name: str, job_id: int, installation_id: int = 0,
                  runner_type: RunnerType = "Repo") -> RerunOutcome:
        """POST .../actions/jobs/{job_id}/rerun: "requested" (201); "run_in_progress" (403: its
        workflow run is still running, try later); "forbidden" (403 otherwise: the App lacks
        `actions: write`); "not_found" (404); "refused" (422). A rate limit raises RetryableError.
        The 403s are answers here: neither a reason to switch Apps nor to widen the token."""
        repo_owner, _, repo = repo_full_name.partition("/")
        owner = repo_owner if runner_type == "Org" else repo_full_name
        response = self._calls.call(owner, runner_type, installation_id, "POST",
                                    "/repos/{owner}/{repo}/actions/jobs/{job_id}/rerun",
                                    {"owner": repo_owner, "repo": repo, "job_id": job_id},
                                    accept=(403, 404, 422))
        status, message = response.status_code, github_message(response)
        if status == 403 and classify_rate_limit(403, response.headers, message,
                                                 self._clock()) is not None:
            raise RetryableError(f"POST .../actions/jobs/{{job_id}}/rerun: 403 {message}")
        outcome: RerunOutcome = "requested" if status < 300 else "not_found" if status == 404 \
            else "refused" if status == 422 else "run_in_progress" if _still_running(message) \
            else "forbidden"
        log.info("github job rerun", repository=repo_full_name, job_id=job_id, status=status,
                 outcome=outcome, reason=None if status < 300 else message)
        return outcome

    def webhook_deliveries(self) -> WebhookDeliveries:
        """The App webhook's delivery log, read and redelivered as the App itself."""
        from chalicelib.github.deliveries import WebhookDeliveries

        return WebhookDeliveries(self._auth)

