"""Domain values shared by the planners, the adapters and the services.

Raw AWS and GitHub dictionaries stop at the adapters; everything past them speaks these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

RunnerType = Literal["Org", "Repo"]
CapacityType = Literal["spot", "on-demand"]
# EC2 states of an instance that runs or is about to: what the cap counts and what is decided on.
LIVE_STATES = frozenset({"pending", "running"})

# Tag keys of docs/REFERENCE.md §4.
TAG_APPLICATION = "ghr:Application"
TAG_ENVIRONMENT = "ghr:environment"
TAG_TYPE = "ghr:Type"
TAG_OWNER = "ghr:Owner"
TAG_CREATED_BY = "ghr:created_by"
# Set by scale-down on an instance first seen without a runner after the boot time (§4).
TAG_ORPHAN_SUSPECTED = "ghr:orphan-suspected"
TAG_BYPASS_REMOVAL = "ghr:bypass-removal"
TAG_RUNNER_ID = "ghr:github_runner_id"
# The cap reservation an instance was launched under (services/capacity.py).
TAG_RESERVATION = "ghr:reservation"
# Set by ec2_events on an instance whose spot interruption warning came, to the event's time.
TAG_INTERRUPTED = "ghr:interrupted"
# An EC2 instance id, as runner names end with one (`<RUNNER_NAME_PREFIX><instance id>`).
INSTANCE_ID_PATTERN = r"i-[0-9a-f]{8,17}"
APPLICATION = "github-action-runner"


@dataclass(frozen=True)
class Instance:
    """A runner instance of this environment as EC2 describes it."""

    instance_id: str
    launch_time: datetime
    state: str = "running"
    owner: str = ""
    runner_type: RunnerType = "Org"
    tags: tuple[tuple[str, str], ...] = ()
    instance_type: str = ""
    availability_zone: str = ""

    def tag(self, key: str) -> str | None:
        """The value of tag `key`, or None."""
        for name, value in self.tags:
            if name == key:
                return value
        return None

    @property
    def bypass_removal(self) -> bool:
        """`ghr:bypass-removal=true`: the system never terminates or deregisters it."""
        return (self.tag(TAG_BYPASS_REMOVAL) or "").lower() == "true"


@dataclass(frozen=True)
class Runner:
    """A self-hosted runner as GitHub lists it."""

    id: int
    name: str
    status: Literal["online", "offline"] | str
    busy: bool
    labels: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class JitConfig:
    """A just-in-time runner configuration: the runner GitHub created and its secret config."""

    runner_id: int
    encoded_jit_config: str = field(repr=False)


@dataclass(frozen=True)
class RunnerRelease:
    """One downloadable `actions/runner` release asset, and the SHA-256 published with it."""

    version: str
    filename: str
    download_url: str
    sha256: str | None = None
