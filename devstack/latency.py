"""Latency profiles: how long devstack holds each AWS and GitHub call before it answers.

On loopback every call answers in a millisecond or two, so nothing that depends on call latency
(how long a burst takes, how much concurrency buys, how often two containers race) can be seen.
A profile names a delay per AWS operation and per GitHub call; the AWS fault layer and the
GitHub fake hold each request for it in the request's own server thread (both servers run a
thread per request), so concurrent calls overlap as they do against AWS and GitHub.

Off by default. `DEVSTACK_LATENCY=realistic` selects a profile for every devstack the process
starts (`Devstack.start(latency=...)` or `stack.set_latency(...)` from Python). Where each figure
comes from, and which are estimates: devstack/README.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

ENVIRONMENT_VARIABLE = "DEVSTACK_LATENCY"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class LatencyProfile:
    """Seconds added to each call: AWS by "service:Action", "service:*" or "*" (the first that
    matches wins); GitHub by route key ("METHOD /template"), else by read or write."""

    name: str
    aws: Mapping[str, float] = field(default_factory=dict)
    github_read: float = 0.0
    github_write: float = 0.0
    github_routes: Mapping[str, float] = field(default_factory=dict)

    def aws_delay(self, service: str, action: str) -> float:
        """Seconds to hold one call of `service` (signing name, e.g. "ec2") `action`."""
        for key in (f"{service}:{action}", f"{service}:*", "*"):
            if key in self.aws:
                return self.aws[key]
        return 0.0

    def github_delay(self, route: str) -> float:
        """Seconds to hold one GitHub API call of `route` ("METHOD /template")."""
        if route in self.github_routes:
            return self.github_routes[route]
        method = route.partition(" ")[0].upper()
        return self.github_write if method in WRITE_METHODS else self.github_read

    @property
    def off(self) -> bool:
        """Whether the profile adds nothing anywhere."""
        return not (any(self.aws.values()) or self.github_read or self.github_write
                    or any(self.github_routes.values()))


OFF = LatencyProfile("off")

# The figures, their sources and which are estimates: devstack/README.md, "Latency profiles".
REALISTIC = LatencyProfile(
    "realistic",
    aws=MappingProxyType({
        "ec2:CreateFleet": 1.5,
        "ec2:RunInstances": 1.5,
        "ec2:DescribeInstances": 0.3,
        "ec2:TerminateInstances": 0.4,
        "ec2:CreateTags": 0.15,
        "ec2:*": 0.2,
        "ssm:PutParameter": 0.04,
        "ssm:GetParameter": 0.03,
        "ssm:GetParameters": 0.03,
        "ssm:*": 0.04,
        "dynamodb:TransactWriteItems": 0.015,
        "dynamodb:Query": 0.01,
        "dynamodb:*": 0.008,
        "sqs:ReceiveMessage": 0.03,
        "sqs:SendMessageBatch": 0.03,
        "sqs:DeleteMessageBatch": 0.03,
        "sqs:*": 0.02,
        "s3:*": 0.03,
    }),
    github_read=0.12,
    github_write=0.2,
)

PROFILES: Mapping[str, LatencyProfile] = MappingProxyType(
    {profile.name: profile for profile in (OFF, REALISTIC)})


def profile_named(name: str) -> LatencyProfile:
    """The profile called `name` ("" is off); ValueError naming the known ones otherwise."""
    key = name.strip().lower() or OFF.name
    if key not in PROFILES:
        raise ValueError(f"unknown latency profile {name!r}; known: {', '.join(PROFILES)}")
    return PROFILES[key]


def resolve(choice: str | LatencyProfile | None,
            environ: Mapping[str, str] = os.environ) -> LatencyProfile:
    """A profile given as itself or by name; None reads `DEVSTACK_LATENCY` (unset: off)."""
    if isinstance(choice, LatencyProfile):
        return choice
    if choice is None:
        choice = environ.get(ENVIRONMENT_VARIABLE, "")
    return profile_named(choice)
