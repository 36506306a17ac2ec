"""In-process state of the GitHub fake and the operations the API routes and test hooks share.

Everything is guarded by one re-entrant lock: the HTTP server answers on many threads while tests
and the runner simulation call the Python hooks.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from devstack.github_auth import random_token
from devstack.github_installations import TOKEN_TTL, GitHubInstallations
from devstack.github_records import (
    ApiError,
    Counters,
    InstallationRecord,
    InstallationToken,
    JobRecord,
    RunnerGroupRecord,
    RunnerRecord,
    ScopeToken,
)

DEFAULT_RUNNER_VERSION = "2.321.0"
# A newer release marked prerelease: listed, never `latest` (GitHub's rule).
DEFAULT_RUNNER_PRERELEASE: str | None = "2.322.0"
DEFAULT_GROUP_ID = 1
# Labels GitHub gives a runner configured with config.sh (unless --no-default-labels).
DEFAULT_RUNNER_LABELS = ("self-hosted", "Linux", "X64")

JobEventHook = Callable[[str, dict[str, Any]], None]


class GitHubState(GitHubInstallations):
    """Installations, tokens, jobs, runners and groups of one fake GitHub, and their rules."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clock: Callable[[], float] = time.time
        self.on_job_event: JobEventHook | None = None
        self._clear()

    def _clear(self) -> None:
        self.counters = Counters()
        self.installations: dict[str, InstallationRecord] = {}
        self.installation_tokens: dict[str, InstallationToken] = {}
        self.scope_tokens: dict[str, ScopeToken] = {}
        self.job_records: dict[int, JobRecord] = {}
        self.runner_records: dict[int, RunnerRecord] = {}
        self.groups: dict[str, list[RunnerGroupRecord]] = {}
        self.jit_configs: dict[str, int] = {}  # encoded config -> runner id, until used
        self.runner_version = DEFAULT_RUNNER_VERSION
        self.runner_prerelease = DEFAULT_RUNNER_PRERELEASE
        self.jwt_ids: list[str | None] = []
        # Runners the plain listing leaves out, as GitHub's eventually consistent, paginated
        # listings sometimes do; a look-up by id or by name still finds them.
        self.unlisted: set[int] = set()

    def mint_scope_token(self, scope: str, kind: str) -> tuple[str, float]:
        """A registration or remove token for runner scope `scope`, valid one hour."""
        with self.lock:
            token = random_token("A", 29).upper()
            expires_at = self.clock() + TOKEN_TTL
            self.scope_tokens[token] = ScopeToken(scope.lower(), kind, expires_at)
            return token, expires_at

    # -- runner groups ----------------------------------------------------------------------------

    def runner_groups(self, org: str) -> list[RunnerGroupRecord]:
        """The groups of `org`, `Default` (id 1) first."""
        with self.lock:
            return self.groups.setdefault(
                org.lower(), [RunnerGroupRecord(DEFAULT_GROUP_ID, "Default", default=True)]
            )

    def add_runner_group(self, org: str, name: str) -> int:
        """Create runner group `name` in `org`; returns its id."""
        with self.lock:
            group = RunnerGroupRecord(self.counters.next("group"), name)
            self.runner_groups(org).append(group)
            return group.id

    def group_name(self, scope: str, group_id: int) -> str | None:
        """The name of group `group_id` of the scope's org, None if it has no such group."""
        groups = self.runner_groups(scope.split("/", 1)[0])
        return next((g.name for g in groups if g.id == group_id), None)

    # -- runners ---------------------------------------------------------------------------

    def create_runner(
        self, scope: str, name: str, labels: list[str], group_id: int, *, ephemeral: bool, jit: bool
    ) -> RunnerRecord:
        """Add a runner (offline) to `scope`; ApiError 409 if the name is taken there."""
        with self.lock:
            if any(
                r.scope.lower() == scope.lower() and r.name == name
                for r in self.runner_records.values()
            ):
                raise ApiError(
                    409, f"Already exists - A runner with the name {name} already exists."
                )
            runner = RunnerRecord(
                id=self.counters.next("runner"),
                name=name,
                scope=scope,
                labels=_unique_labels(labels),
                runner_group_id=group_id,
                ephemeral=ephemeral,
                jit=jit,
                created_at=self.clock(),
            )
            self.runner_records[runner.id] = runner
            return runner

    def create_jit_runner(
        self, scope: str, name: str, labels: list[str], group_id: int, base_url: str
    ) -> tuple[RunnerRecord, str]:
        """A JIT runner (offline, ephemeral) and its single-use encoded config."""
        with self.lock:
            if self.group_name(scope, group_id) is None or ("/" in scope and group_id != 1):
                raise ApiError(404, "Not Found")
            runner = self.create_runner(scope, name, labels, group_id, ephemeral=True, jit=True)
            encoded = _encode_jit_config(runner, base_url)
            self.jit_configs[encoded] = runner.id
            return runner, encoded

    def register_runner(
        self,
        owner_scope: str,
        name: str,
        labels: list[str],
        *,
        token: str,
        runner_group: str | None = None,
        ephemeral: bool = False,
        default_labels: Sequence[str] = DEFAULT_RUNNER_LABELS,
    ) -> int:
        """What config.sh does: check the registration token and add the runner, online, with
        the machine's `default_labels` (self-hosted, OS, architecture) before `labels`."""
        with self.lock:
            minted = self.scope_tokens.get(token)
            if (
                minted is None
                or minted.kind != "registration"
                or minted.scope != owner_scope.lower()
                or minted.expires_at <= self.clock()
            ):
                raise ApiError(404, "Invalid registration token for this scope")
            group_id = DEFAULT_GROUP_ID
            if runner_group and "/" not in owner_scope:
                found = [g for g in self.runner_groups(owner_scope) if g.name == runner_group]
                if not found:
                    raise ApiError(404, f"Could not find runner group {runner_group}")
                group_id = found[0].id
            runner = self.create_runner(
                owner_scope,
                name,
                [*default_labels, *labels],
                group_id,
                ephemeral=ephemeral,
                jit=False,
            )
            runner.status = "online"
            return runner.id

    def jit_runner_online(self, encoded_jit_config: str) -> int:
        """What `run.sh --jitconfig` does: bring the JIT runner online; the config is single-use."""
        with self.lock:
            runner_id = self.jit_configs.pop(encoded_jit_config, None)
            if runner_id is None or runner_id not in self.runner_records:
                raise ApiError(404, "Unknown, used or deleted JIT configuration")
            self.runner_records[runner_id].status = "online"
            return runner_id

    def runners(self, scope: str | None = None) -> list[RunnerRecord]:
        """Copies of the runners of `scope` (org or `owner/repo`), or all, by id."""
        with self.lock:
            return [
                dataclasses.replace(r)
                for r in sorted(self.runner_records.values(), key=lambda r: r.id)
                if scope is None or r.scope.lower() == scope.lower()
            ]

    def leave_out_of_listings(self, runner_id: int) -> None:
        """Make `GET .../actions/runners` without `name` leave runner `runner_id` out."""
        with self.lock:
            self.unlisted.add(runner_id)

    def runner_in_scope(self, scope: str, runner_id: int) -> RunnerRecord:
        """The runner `runner_id` of `scope`; ApiError 404 otherwise."""
        with self.lock:
            runner = self.runner_records.get(runner_id)
            if runner is None or runner.scope.lower() != scope.lower():
                raise ApiError(404, "Not Found")
            return runner

    def delete_runner(self, scope: str, runner_id: int) -> None:
        """Remove a runner; ApiError 422 while it runs a job, as GitHub refuses."""
        with self.lock:
            runner = self.runner_in_scope(scope, runner_id)
            if runner.busy:
                raise ApiError(422, f'Bad request - Runner "{runner.name}" is still running a job')
            del self.runner_records[runner_id]

    def set_runner_busy(self, runner_id: int, busy: bool) -> None:
        """Mark a runner busy or idle (test hook)."""
        with self.lock:
            self.runner_records[runner_id].busy = busy

    def set_runner_status(self, runner_id: int, status: str) -> None:
        """Mark a runner online or offline (test hook)."""
        if status not in ("online", "offline"):
            raise ValueError("status must be 'online' or 'offline'")
        with self.lock:
            self.runner_records[runner_id].status = status

    def set_latest_runner_version(self, version: str) -> None:
        """The version `releases/latest` of actions/runner reports (without the leading v)."""
        with self.lock:
            self.runner_version = version.removeprefix("v")

    def set_runner_prerelease(self, version: str | None) -> None:
        """The prerelease the release list shows first (None: no prerelease) (test hook)."""
        with self.lock:
            self.runner_prerelease = version.removeprefix("v") if version else None


def _unique_labels(labels: list[str]) -> list[str]:
    """Labels in order, the first of each name: GitHub compares label names case-insensitively."""
    seen: set[str] = set()
    unique = []
    for label in labels:
        if label.lower() not in seen:
            seen.add(label.lower())
            unique.append(label)
    return unique


def _encode_jit_config(runner: RunnerRecord, base_url: str) -> str:
    """A config shaped like GitHub's: base64 JSON of base64 JSON parts, with a random secret."""

    def part(value: dict[str, Any]) -> str:
        return base64.b64encode(json.dumps(value).encode()).decode()

    settings = {
        "AgentId": runner.id,
        "AgentName": runner.name,
        "PoolId": runner.runner_group_id,
        "ServerUrl": base_url,
        "GitHubUrl": f"{base_url}/{runner.scope}",
        "WorkFolder": "_work",
        "Ephemeral": "true",
    }
    credentials = {"Scheme": "OAuthAccessToken", "Data": {"clientId": secrets.token_hex(16)}}
    rsa_params = {"d": secrets.token_urlsafe(48), "exponent": "AQAB"}
    return part(
        {
            ".runner": part(settings),
            ".credentials": part(credentials),
            ".credentials_rsaparams": part(rsa_params),
        }
    )
