"""The records the GitHub fake keeps: installations, workflow jobs, self-hosted runners, groups."""

from __future__ import annotations

from dataclasses import dataclass, field


class ApiError(Exception):
    """A GitHub API error answer: HTTP `status` and GitHub's `message` (never holds a secret)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.headers = headers or {}


# What the App asks for when installed (its manifest): what every installation grants unless a
# test grants less.
APP_PERMISSIONS = {
    "actions": "write",
    "administration": "write",
    "metadata": "read",
    "organization_self_hosted_runners": "write",
}
LEVELS = {"read": 1, "write": 2}


def grants(granted: dict[str, str], name: str, level: str) -> bool:
    """Whether the permissions `granted` allow `level` ("read" or "write") on `name`."""
    return LEVELS.get(granted.get(name, ""), 0) >= LEVELS[level]


@dataclass
class InstallationRecord:
    """The App installed on an account (organization or user)."""

    id: int
    owner: str
    account_type: str
    account_id: int
    created_at: float
    permissions: dict[str, str] = field(default_factory=lambda: dict(APP_PERMISSIONS))
    app_id: int = 0  # the App installed (the fake may hold several)


@dataclass
class JobRecord:
    """A workflow job of `owner/repo` that asks for a runner carrying all of `labels`."""

    id: int
    owner: str
    repo: str
    labels: list[str]
    duration: float
    status: str
    created_at: float
    run_id: int
    started_at: float | None = None
    completed_at: float | None = None
    conclusion: str | None = None
    runner_id: int | None = None
    runner_name: str | None = None
    runner_group_id: int | None = None
    runner_group_name: str | None = None
    run_attempt: int = 1
    rerun_of: int | None = None  # the job this one re-runs (POST .../jobs/{job_id}/rerun)

    @property
    def full_repo(self) -> str:
        """`owner/repo`."""
        return f"{self.owner}/{self.repo}"


@dataclass
class RunnerRecord:
    """A self-hosted runner registered at org scope (`scope` = org) or repo scope (`owner/repo`)."""

    id: int
    name: str
    scope: str
    labels: list[str]
    runner_group_id: int
    ephemeral: bool
    jit: bool
    created_at: float
    status: str = "offline"
    busy: bool = False
    job_id: int | None = None
    os: str = "Linux"

    @property
    def owner(self) -> str:
        """The org (org scope) or repository owner (repo scope)."""
        return self.scope.split("/", 1)[0]

    @property
    def repo(self) -> str | None:
        """The repository name of a repo-scope runner, else None."""
        parts = self.scope.split("/", 1)
        return parts[1] if len(parts) == 2 else None

    def serves(self, job: JobRecord) -> bool:
        """Whether this runner may take `job`: same org or repo, and every job label carried."""
        if self.repo is None:
            in_scope = self.owner.lower() == job.owner.lower()
        else:
            in_scope = self.scope.lower() == job.full_repo.lower()
        carried = {label.lower() for label in self.labels}
        return in_scope and all(label.lower() in carried for label in job.labels)


@dataclass
class RunnerGroupRecord:
    """A runner group of an organization; id 1 is the built-in `Default`."""

    id: int
    name: str
    default: bool = False


@dataclass(frozen=True)
class ScopeToken:
    """A registration or remove token of one runner scope."""

    scope: str
    kind: str
    expires_at: float


@dataclass(frozen=True)
class InstallationToken:
    """An installation access token, and the permissions it carries."""

    installation_id: int
    expires_at: float
    permissions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake answered. `path` is relative to `/api/v3` for API calls."""

    method: str
    route: str
    path: str
    status: int
    time: float
    # The App calling (with its JWT or an installation's token); None: anonymous.
    app_id: int | None = None


@dataclass(frozen=True)
class Violation:
    """A response that does not conform to GitHub's OpenAPI description."""

    route: str
    status: int
    message: str


@dataclass
class Counters:
    """Id sequences; start values look like GitHub's so ids are not mistaken for indexes."""

    installation: int = 40_000_000
    account: int = 9_000_000
    job: int = 20_000_000_000
    run: int = 8_000_000_000
    runner: int = 1
    group: int = 1
    label: int = 0
    labels: dict[str, int] = field(default_factory=dict)

    def next(self, name: str) -> int:
        """The next id of sequence `name`."""
        value: int = getattr(self, name) + 1
        setattr(self, name, value)
        return value

    def label_id(self, label: str) -> int:
        """A stable id for a label name (GitHub ids labels, case-insensitively)."""
        key = label.lower()
        if key not in self.labels:
            self.labels[key] = self.next("label")
        return self.labels[key]
