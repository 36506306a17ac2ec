"""The embedded local stack: moto (AWS) and a GitHub Enterprise Server fake on 127.0.0.1.

Used by the tests, the demo and the benchmarks; never deployed. The code under test reaches it
only through the standard `AWS_ENDPOINT_URL` and `GHES_URL`, and `RUNNER_RELEASES_API_URL` (the
fake stands in for github.com's release API too, as a mirror would), so no code path knows it is
a fake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import requests
from botocore.config import Config

from devstack.latency import LatencyProfile, resolve
from devstack.provision import Deployment, add_app_parameters, add_runner_configs, deploy

if TYPE_CHECKING:
    # moto's server costs a third of a second to import: `python -m devstack status` and the
    # other commands that only talk to a running devstack never need it.
    from devstack.aws import AwsServer, FaultInjector

REGION = "eu-west-1"

# Dummy credentials, and no instance-metadata probing: nothing may leave the machine.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass
class Devstack:
    """A running devstack: the AWS endpoint, the GitHub fake, and the deployment laid down."""

    aws: AwsServer
    github: Any  # devstack.github_fake.GitHubFake
    deployment: Deployment | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, validate_github: bool = True,
              latency: str | LatencyProfile | None = None) -> Devstack:
        """Start moto and the GitHub fake on free loopback ports, with the latency profile named
        (None: the one `DEVSTACK_LATENCY` names, off when unset)."""
        from devstack.aws import AwsServer
        from devstack.github_fake import GitHubFake

        profile = resolve(latency)  # a bad name fails before anything is started
        aws = AwsServer().start()
        github = GitHubFake(validate=validate_github)
        github.start()
        stack = cls(aws=aws, github=github)
        stack.set_latency(profile)
        return stack

    @property
    def latency(self) -> LatencyProfile:
        """The latency profile both servers apply."""
        return self.aws.faults.latency

    def set_latency(self, profile: str | LatencyProfile) -> LatencyProfile:
        """Apply a latency profile (or its name, e.g. "realistic" or "off") to AWS and GitHub
        from their next call on; it stays through `reset()`."""
        chosen = resolve(profile)
        self.aws.faults.latency = chosen
        self.github.latency = chosen
        return chosen

    @property
    def aws_endpoint(self) -> str:
        """What `AWS_ENDPOINT_URL` points at."""
        return self.aws.endpoint

    @property
    def aws_faults(self) -> FaultInjector:
        """Call counts and fault injection of the AWS endpoint."""
        return self.aws.faults

    @property
    def github_url(self) -> str:
        """What `GHES_URL` points at (the API is under `/api/v3`)."""
        return str(self.github.url)

    def boto(self, service: str) -> Any:
        """A boto3 client of `service` pointed at devstack (for tests and the simulation)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service, endpoint_url=self.aws_endpoint, region_name=REGION,
                aws_access_key_id="testing", aws_secret_access_key="testing",
                config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
            )
        return self._clients[service]

    def deploy(self, **overrides: Any) -> Deployment:
        """Lay down the VPC, launch template, App parameters and queues of a deployment."""
        self.deployment = deploy(self.boto, self.github.app_id, self.github.private_key_pem,
                                 **overrides)
        return self.deployment

    def add_app(self, *owners: str) -> Any:
        """Another GitHub App in the fake, its id and key put in SSM and listed in the
        functions' environment after the others (REFERENCE §10), installed on `owners`;
        returns the fake's App (`.app_id`, `.key`)."""
        if self.deployment is None:
            raise RuntimeError("deploy() first: the App's parameters belong to a deployment")
        app = self.github.add_app()
        self.deployment = add_app_parameters(self.boto("ssm"), self.deployment, app.app_id,
                                             app.private_key_pem)
        for owner in owners:
            account = self.github.installation_for(owner)
            self.github.add_installation(
                owner, account.account_type if account else "Organization", app_id=app.app_id)
        return app

    def add_runner_configs(self, configs: list[dict[str, Any]] | tuple[dict[str, Any], ...],
                           parameter_type: str = "String") -> Deployment:
        """Several runner configurations (REFERENCE §6): one launch template each and the SSM
        parameter holding their JSON list, named by `RUNNER_CONFIGS_PARAMETER_NAME` in `env()`
        from now on."""
        if self.deployment is None:
            raise RuntimeError("deploy() first: the configurations belong to a deployment")
        self.deployment = add_runner_configs(self.boto, self.deployment, configs,
                                             parameter_type)
        return self.deployment

    def env(self, **overrides: str) -> dict[str, str]:
        """The whole environment a function needs to run against devstack."""
        values = {**AWS_ENV, "AWS_ENDPOINT_URL": self.aws_endpoint, "GHES_URL": self.github_url,
                  # actions/runner's releases come from github.com even on GHES: the fake
                  # serves them as a mirror of github.com's API would.
                  "RUNNER_RELEASES_API_URL": str(self.github.api_url)}
        if self.deployment is not None:
            values.update(self.deployment.env())
        values.update(overrides)
        return values

    def reset(self) -> None:
        """Empty moto and the GitHub fake, and forget faults and counts."""
        requests.post(f"{self.aws_endpoint}/moto-api/reset", timeout=10).raise_for_status()
        self.aws_faults.reset()
        self.github.reset()
        self.deployment = None

    def stop(self) -> None:
        """Stop both servers."""
        self.github.stop()
        self.aws.stop()


def export_lines(stack: Devstack) -> list[str]:
    """Shell `export` lines pointing `chalice local` or the AWS CLI at `stack`."""
    return [f"export {name}={value}" for name, value in sorted(stack.env().items())]


__all__ = ["AWS_ENV", "Deployment", "Devstack", "LatencyProfile", "export_lines"]
