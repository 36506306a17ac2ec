"""Pure rules of one launch: the runner's registration arguments and tags, and what a fleet's
shortfall means.

No I/O: the launcher (services/launcher.py) applies them.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from chalicelib.models import (
    APPLICATION,
    TAG_APPLICATION,
    TAG_CREATED_BY,
    TAG_ENVIRONMENT,
    TAG_OWNER,
    TAG_TYPE,
    RunnerType,
)
from chalicelib.settings import Settings


def web_base_url(ghes_url: str | None) -> str:
    """The web root runners register against: `GHES_URL`, or https://github.com."""
    return ghes_url.strip().rstrip("/") if ghes_url else "https://github.com"


def config_arguments(settings: Settings, owner: str, runner_type: RunnerType, token: str) -> str:
    """The `config.sh` arguments of docs/REFERENCE.md §4, every value shell-quoted where it needs
    it: the start script refuses a value holding an unquoted shell character (a GHES URL with
    `?` or `&`) rather than guess what it meant."""
    parts = ["--url " + shlex.quote(f"{web_base_url(settings.ghes_url)}/{owner}"),
             "--token " + shlex.quote(token)]
    if settings.runner_labels:
        parts.append("--labels " + shlex.quote(",".join(settings.runner_labels)))
    if runner_type == "Org":
        parts.append("--runnergroup " + shlex.quote(settings.runner_group_name))
    if settings.disable_runner_autoupdate:
        parts.append("--disableupdate")
    if settings.enable_ephemeral_runners:
        parts.append("--ephemeral")
    return " ".join(parts)


def runner_tags(settings: Settings, owner: str, runner_type: RunnerType,
                created_by: str) -> tuple[tuple[str, str], ...]:
    """The tags of a runner instance and its volumes: the docs/REFERENCE.md §4 ones, then the
    user's `RUNNER_EC2_TAGS` (which settings keep out of ghr:, so none overrides ours)."""
    return ((TAG_APPLICATION, APPLICATION), (TAG_ENVIRONMENT, settings.environment),
            (TAG_TYPE, runner_type), (TAG_OWNER, owner), (TAG_CREATED_BY, created_by),
            *settings.runner_ec2_tags)


def shortfall_retryable(errors_retryable: Sequence[bool]) -> bool:
    """Whether capacity a fleet did not launch is worth retrying, given whether each of its
    errors is.

    EC2 reports errors per launch-template override, so one fleet can mix a capacity error in
    one subnet with a configuration error in another: any retryable one, or none at all,
    means the capacity may come later.
    """
    return not errors_retryable or any(errors_retryable)


def wants_on_demand_failover(capacity_type: str, error_codes: Sequence[str],
                             failover_codes: Sequence[str]) -> bool:
    """A spot fleet short of capacity with an error listed in the failover setting."""
    return capacity_type == "spot" and any(code in failover_codes for code in error_codes)
