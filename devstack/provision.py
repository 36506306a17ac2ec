"""Lay down in devstack's AWS what a deployment of infra/ would have created."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from dataclasses import dataclass
from typing import Any

ENVIRONMENT = "devstack"
# One of moto's built-in Amazon Linux images; listing images costs moto over a second.
IMAGE_ID = "ami-03cf127a"


@dataclass(frozen=True)
class Deployment:
    """Names and ids of one devstack deployment, as the functions' environment refers to them."""

    environment: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    launch_template_name: str
    image_id: str
    queue_url: str
    dead_letter_queue_url: str
    webhook_secret: str
    token_path: str
    config_path: str
    app_id_parameter: str
    app_key_parameter: str
    webhook_secret_parameter: str
    state_table: str
    # The (id, key) parameters of the Apps after the first, in list order (REFERENCE §10).
    more_apps: tuple[tuple[str, str], ...] = ()
    # Several runner configurations (REFERENCE §6): the SSM parameter holding their JSON list,
    # and the list as written there (each with its own launch template).
    runner_configs_parameter: str | None = None
    runner_configs: tuple[dict[str, Any], ...] = ()

    @property
    def app_parameters(self) -> tuple[tuple[str, str], ...]:
        """Every App's (id, key) parameter names, the webhook's App first."""
        return ((self.app_id_parameter, self.app_key_parameter), *self.more_apps)

    def env(self) -> dict[str, str]:
        """The deployment's part of the functions' environment (docs/REFERENCE.md §2, §10)."""
        return {
            "ENVIRONMENT": self.environment,
            "LAUNCH_TEMPLATE_NAME": self.launch_template_name,
            "SUBNET_IDS": ",".join(self.subnet_ids),
            "SSM_TOKEN_PATH": self.token_path,
            "SSM_CONFIG_PATH": self.config_path,
            "PARAMETER_GITHUB_APP_ID_NAME": ",".join(i for i, _ in self.app_parameters),
            "PARAMETER_GITHUB_APP_KEY_BASE64_NAME": ",".join(k for _, k in self.app_parameters),
            "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_NAME": self.webhook_secret_parameter,
            "SQS_URL_WEBHOOK": self.queue_url,
            "STATE_TABLE_NAME": self.state_table,
            **({"RUNNER_CONFIGS_PARAMETER_NAME": self.runner_configs_parameter}
               if self.runner_configs_parameter else {}),
        }

    @property
    def runner_environments(self) -> dict[str, str]:
        """Each runner configuration's `ghr:environment` tag, by id (REFERENCE §6: its
        `ENVIRONMENT`, by default `<ENVIRONMENT>-<id>`); `{"default": ENVIRONMENT}` without a
        list."""
        if not self.runner_configs:
            return {"default": self.environment}
        return {c["id"]: config_environment(self.environment, c) for c in self.runner_configs}

    @property
    def machine_labels(self) -> dict[str, tuple[str, ...]]:
        """The labels config.sh gives a runner of each environment on its own (self-hosted, OS,
        architecture), from each configuration's `RUNNER_OS` and `RUNNER_ARCHITECTURE`."""
        found = {self.environment: machine_labels({})}
        for config in self.runner_configs:
            found[config_environment(self.environment, config)] = machine_labels(
                config.get("environment", {}))
        return found


def deploy(clients: Any, app_id: int, private_key_pem: str,
           environment: str = ENVIRONMENT, queue_delay_seconds: int = 0) -> Deployment:
    """Create the VPC, subnets, launch template, App parameters and build queues."""
    ec2, ssm, sqs = clients("ec2"), clients("ssm"), clients("sqs")
    state_table = create_state_table(clients("dynamodb"), f"{environment}-state")
    prefix = f"/github-action-runners/{environment}"
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    subnet_ids = tuple(
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{n}.0/24",
                          AvailabilityZone=zones[n % len(zones)])["Subnet"]["SubnetId"]
        for n in (1, 2)
    )
    image_id = IMAGE_ID
    template = f"{environment}-action-runner"
    ec2.create_launch_template(
        LaunchTemplateName=template,
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": "m5.large",
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
        },
    )
    ids = {
        "id": f"{prefix}/app/github_app_id",
        "key": f"{prefix}/app/github_app_key_base64",
        "secret": f"{prefix}/app/github_app_webhook_secret",
    }
    webhook_secret = secrets.token_hex(32)
    ssm.put_parameter(Name=ids["id"], Value=str(app_id), Type="String", Overwrite=True)
    ssm.put_parameter(Name=ids["key"], Type="SecureString", Overwrite=True,
                      Value=base64.b64encode(private_key_pem.encode()).decode())
    ssm.put_parameter(Name=ids["secret"], Value=webhook_secret, Type="SecureString",
                      Overwrite=True)
    dlq_url = sqs.create_queue(QueueName=f"{environment}-queued-builds-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=f"{environment}-queued-builds",
        Attributes={
            "DelaySeconds": str(queue_delay_seconds),
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
        },
    )["QueueUrl"]
    return Deployment(
        environment=environment,
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
        launch_template_name=template,
        image_id=image_id,
        queue_url=queue_url,
        dead_letter_queue_url=dlq_url,
        webhook_secret=webhook_secret,
        token_path=f"{prefix}/runners/tokens",
        config_path=f"{prefix}/runners/config",
        app_id_parameter=ids["id"],
        app_key_parameter=ids["key"],
        webhook_secret_parameter=ids["secret"],
        state_table=state_table,
    )


def config_environment(top: str, config: dict[str, Any]) -> str:
    """The `ENVIRONMENT` of one runner configuration (REFERENCE §6)."""
    return str(config.get("environment", {}).get("ENVIRONMENT") or f"{top}-{config['id']}")


def machine_labels(environment: dict[str, str]) -> tuple[str, ...]:
    """GitHub's default labels of a runner on the machine a configuration launches."""
    system = environment.get("RUNNER_OS", "linux").lower()
    architecture = environment.get("RUNNER_ARCHITECTURE", "x64").lower()
    return ("self-hosted", "Windows" if system == "windows" else "Linux",
            "ARM64" if architecture == "arm64" else "X64")


def add_runner_configs(clients: Any, deployment: Deployment,
                       configs: list[dict[str, Any]] | tuple[dict[str, Any], ...],
                       parameter_type: str = "String") -> Deployment:
    """What infra/ lays down for several runner configurations (REFERENCE §6): one launch
    template per configuration (named by its `LAUNCH_TEMPLATE_NAME`, by default
    `<ENVIRONMENT>-<id>-action-runner`, which is then written into its `environment`), and the
    SSM parameter holding the list; returns the deployment whose `env()` names the parameter.

    The list is written as given otherwise: the functions validate it, so a bad list here is a
    bad list there (with one error naming every problem)."""
    ec2, ssm = clients("ec2"), clients("ssm")
    written: list[dict[str, Any]] = []
    for config in configs:
        entry = json.loads(json.dumps(config))  # a copy the caller's list never sees change
        environment = entry.setdefault("environment", {})
        if isinstance(environment, dict):
            template = environment.setdefault(
                "LAUNCH_TEMPLATE_NAME",
                f"{deployment.environment}-{entry.get('id')}-action-runner")
            instance_type = str(environment.get("INSTANCE_TYPES", "m5.large")).split(",")[0]
            create_launch_template(ec2, str(template), deployment.image_id,
                                   instance_type.strip() or "m5.large")
        written.append(entry)
    name = f"/github-action-runners/{deployment.environment}/runner-configs"
    ssm.put_parameter(Name=name, Value=json.dumps(written), Type=parameter_type, Overwrite=True)
    return dataclasses.replace(deployment, runner_configs_parameter=name,
                               runner_configs=tuple(written))


def create_launch_template(ec2: Any, name: str, image_id: str,
                           instance_type: str = "m5.large") -> None:
    """A runner launch template as infra/ makes it (IMDSv2 only); an existing one is kept."""
    existing = ec2.describe_launch_templates(Filters=[
        {"Name": "launch-template-name", "Values": [name]}])["LaunchTemplates"]
    if existing:
        return
    ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": instance_type,
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
        },
    )


def add_app_parameters(ssm: Any, deployment: Deployment, app_id: int,
                       private_key_pem: str) -> Deployment:
    """Put another App's id and key in SSM, as an operator adding an App does (docs/DEPLOY.md),
    and the deployment that lists them after the others."""
    number = len(deployment.app_parameters) + 1
    prefix = deployment.app_id_parameter.rsplit("/", 1)[0]
    names = (f"{prefix}/github_app_{number}_id", f"{prefix}/github_app_{number}_key_base64")
    ssm.put_parameter(Name=names[0], Value=str(app_id), Type="String", Overwrite=True)
    ssm.put_parameter(Name=names[1], Type="SecureString", Overwrite=True,
                      Value=base64.b64encode(private_key_pem.encode()).decode())
    return dataclasses.replace(deployment, more_apps=(*deployment.more_apps, names))


def create_state_table(dynamodb: Any, name: str) -> str:
    """The state table as infra/ creates it: pk/sk strings, on-demand, `expiresAt` as TTL."""
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "expiresAt"})
    return name
