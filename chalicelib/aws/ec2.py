"""The EC2 adapter: list this environment's runner instances, launch fleets, terminate, find
the newest image of a filter.

Raw EC2 dictionaries stop here; callers get `Instance`, `FleetResult` and the project's errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import is_retryable_code, translate
from chalicelib.logs import get_logger
from chalicelib.models import (
    APPLICATION,
    LIVE_STATES,
    TAG_APPLICATION,
    TAG_ENVIRONMENT,
    TAG_OWNER,
    TAG_TYPE,
    CapacityType,
    Instance,
    RunnerType,
)

log = get_logger(__name__)

# CreateFleet capacity and limits that pass with time (the reference system's `scale_errors`),
# beyond the throttling every service shares.
CAPACITY_CODES = frozenset({
    "UnfulfillableCapacity",
    "MaxSpotInstanceCountExceeded",
    "TargetCapacityLimitExceededException",
    "MaxSpotFleetRequestCountExceeded",
    "InsufficientInstanceCapacity",
    "InsufficientCapacityOnHost",
    "InsufficientHostCapacity",
    "InsufficientReservedInstanceCapacity",
    "ResourceLimitExceeded",
    "InstanceLimitExceeded",
    "VcpuLimitExceeded",
    "SpotMaxPriceTooLow",
})
SPOT_STRATEGIES = ("lowest-price", "diversified", "capacity-optimized",
                   "capacity-optimized-prioritized", "price-capacity-optimized")
ON_DEMAND_STRATEGIES = ("lowest-price", "prioritized")
PRIORITIZED = ("prioritized", "capacity-optimized-prioritized")


@dataclass(frozen=True)
class FleetRequest:
    """One instant fleet: how many instances, where, of which types, with which tags."""

    launch_template_name: str
    subnet_ids: tuple[str, ...]
    instance_types: tuple[str, ...]
    count: int
    tags: tuple[tuple[str, str], ...]
    capacity_type: CapacityType = "spot"
    allocation_strategy: str = "lowest-price"
    max_spot_price: str | None = None
    image_id: str | None = None
    # Same token, same answer: EC2 does not launch twice for a repeated request (R-Q-06).
    client_token: str | None = None


@dataclass(frozen=True)
class FleetError:
    """One entry of CreateFleet's `Errors[]`: capacity that could not be launched, and why."""

    code: str
    message: str

    @property
    def retryable(self) -> bool:
        """Capacity, limit and throttling errors pass with time; configuration errors do not."""
        return is_retryable_code(self.code, extra=CAPACITY_CODES)


@dataclass(frozen=True)
class FleetResult:
    """What an instant fleet launched, and the errors for the part it could not."""

    instance_ids: tuple[str, ...]
    errors: tuple[FleetError, ...] = ()


def allocation_strategy(strategy: str, capacity_type: CapacityType) -> str:
    """`strategy` corrected to one CreateFleet accepts for `capacity_type`."""
    if capacity_type == "on-demand":
        # On-demand knows only two; a prioritized spot strategy keeps its meaning.
        return "prioritized" if strategy in PRIORITIZED else "lowest-price"
    if strategy == "prioritized":
        return "capacity-optimized-prioritized"
    return strategy if strategy in SPOT_STRATEGIES else "lowest-price"


def fleet_parameters(request: FleetRequest) -> dict[str, Any]:
    """The CreateFleet parameters of `request` (pure: tested without EC2)."""
    strategy = allocation_strategy(request.allocation_strategy, request.capacity_type)
    overrides: list[dict[str, Any]] = []
    for subnet_id in request.subnet_ids:
        for priority, instance_type in enumerate(request.instance_types):
            override: dict[str, Any] = {"SubnetId": subnet_id, "InstanceType": instance_type}
            if request.image_id:
                override["ImageId"] = request.image_id
            if strategy in PRIORITIZED:
                # Lower is preferred: the order of INSTANCE_TYPES is the order of preference.
                override["Priority"] = float(priority)
            overrides.append(override)
    tags = [{"Key": key, "Value": value} for key, value in request.tags]
    parameters: dict[str, Any] = {
        "Type": "instant",
        "LaunchTemplateConfigs": [{
            "LaunchTemplateSpecification": {
                "LaunchTemplateName": request.launch_template_name, "Version": "$Default",
            },
            "Overrides": overrides,
        }],
        "TargetCapacitySpecification": {
            "TotalTargetCapacity": request.count,
            "DefaultTargetCapacityType": request.capacity_type,
        },
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    }
    if request.capacity_type == "spot":
        spot: dict[str, Any] = {"AllocationStrategy": strategy}
        if request.max_spot_price:
            spot["MaxTotalPrice"] = request.max_spot_price
        parameters["SpotOptions"] = spot
    else:
        parameters["OnDemandOptions"] = {"AllocationStrategy": strategy}
    if request.client_token:
        parameters["ClientToken"] = request.client_token
    return parameters


def _instance(data: Mapping[str, Any]) -> Instance:
    tags = tuple((str(t.get("Key", "")), str(t.get("Value", ""))) for t in data.get("Tags", []))
    values = dict(tags)
    runner_type: RunnerType = "Repo" if values.get(TAG_TYPE) == "Repo" else "Org"
    return Instance(
        instance_id=str(data["InstanceId"]),
        launch_time=data["LaunchTime"],
        state=str(data.get("State", {}).get("Name", "")),
        owner=values.get(TAG_OWNER, ""),
        runner_type=runner_type,
        tags=tags,
        instance_type=str(data.get("InstanceType", "")),
        availability_zone=str(data.get("Placement", {}).get("AvailabilityZone", "")),
    )


class Ec2:
    """EC2 as the functions use it, over an injected boto3 EC2 client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def runner_instances(
        self,
        environment: str | Sequence[str],
        owner: str | None = None,
        runner_type: RunnerType | None = None,
        states: Sequence[str] = tuple(sorted(LIVE_STATES)),
    ) -> list[Instance]:
        """The runner instances of `environment` (or of any of several, §6) in `states`,
        optionally of one owner (compared without case, as GitHub compares names) and type."""
        environments = [environment] if isinstance(environment, str) else list(environment)
        filters = [
            {"Name": f"tag:{TAG_APPLICATION}", "Values": [APPLICATION]},
            {"Name": f"tag:{TAG_ENVIRONMENT}", "Values": environments},
            {"Name": "instance-state-name", "Values": list(states)},
        ]
        # Not a tag filter for the owner: EC2 compares tag values with case, and `ACME` and
        # `acme` are one owner, with one cap (a job's event may spell it either way).
        if runner_type is not None:
            filters.append({"Name": f"tag:{TAG_TYPE}", "Values": [runner_type]})
        instances: list[Instance] = []
        try:
            # MaxResults 1000 keeps a normal fleet to one page (one API call).
            pages = self.client.get_paginator("describe_instances").paginate(
                Filters=filters, PaginationConfig={"PageSize": 1000})
            for page in pages:
                for reservation in page.get("Reservations", []):
                    instances.extend(_instance(i) for i in reservation.get("Instances", []))
        except (ClientError, BotoCoreError) as error:
            raise translate(error, "ec2 DescribeInstances") from error
        if owner is not None:
            instances = [i for i in instances if i.owner.lower() == owner.lower()]
        return instances

    def instances_by_id(self, instance_ids: Sequence[str]) -> dict[str, Instance]:
        """Each of `instance_ids` that EC2 knows, in any state and environment, with its tags;
        unknown ids are left out."""
        found: dict[str, Instance] = {}
        ids = list(dict.fromkeys(instance_ids))
        try:
            # A filter, not InstanceIds: an unknown id is then simply absent, not an error
            # failing the whole call. A filter takes at most 200 values.
            for start in range(0, len(ids), 200):
                pages = self.client.get_paginator("describe_instances").paginate(
                    Filters=[{"Name": "instance-id", "Values": ids[start:start + 200]}])
                for page in pages:
                    for reservation in page.get("Reservations", []):
                        for item in reservation.get("Instances", []):
                            instance = _instance(item)
                            found[instance.instance_id] = instance
        except (ClientError, BotoCoreError) as error:
            raise translate(error, "ec2 DescribeInstances") from error
        return found

    def terminate(self, instance_ids: Sequence[str]) -> None:
        """Terminate `instance_ids` in one TerminateInstances call (none when empty)."""
        if not instance_ids:
            return
        try:
            self.client.terminate_instances(InstanceIds=list(instance_ids))
        except (ClientError, BotoCoreError) as error:
            raise translate(error, "ec2 TerminateInstances") from error
        log.info("instances terminated", instance_ids=list(instance_ids))

    def tag_instances(self, instance_ids: Sequence[str], key: str, value: str) -> None:
        """Set tag `key=value` on every one of `instance_ids` in one CreateTags call."""
        try:
            self.client.create_tags(Resources=list(instance_ids),
                                    Tags=[{"Key": key, "Value": value}])
        except (ClientError, BotoCoreError) as error:
            raise translate(error, "ec2 CreateTags") from error

    def untag_instances(self, instance_ids: Sequence[str], key: str) -> None:
        """Remove tag `key` (whatever its value) from `instance_ids` in one DeleteTags call."""
        try:
            # The key is named: DeleteTags without Tags would remove every tag.
            self.client.delete_tags(Resources=list(instance_ids), Tags=[{"Key": key}])
        except (ClientError, BotoCoreError) as error:
            raise translate(error, "ec2 DeleteTags") from error

    def launch(self, request: FleetRequest) -> FleetResult:
        """Launch an instant fleet; capacity it could not launch comes back as `errors`.

        A failure of the call itself (throttling past the client's retries, a bad template)
        raises RetryableError or PermanentError.
        """
        if request.count < 1:
            # EC2 rejects a non-positive target; the planner never asks for one (R-UP-02).
            return FleetResult(instance_ids=())
        try:
            answer = self.client.create_fleet(**fleet_parameters(request))
        except (ClientError, BotoCoreError) as error:
            raise translate(error, "ec2 CreateFleet", extra=CAPACITY_CODES) from error
        ids = tuple(instance_id for item in answer.get("Instances", [])
                    for instance_id in item.get("InstanceIds", []))
        errors = tuple(FleetError(code=str(e.get("ErrorCode", "")),
                                  message=str(e.get("ErrorMessage", "")))
                       for e in answer.get("Errors", []))
        return FleetResult(instance_ids=ids, errors=errors)

    def newest_image(self, filters: Sequence[tuple[str, Sequence[str]]],
                     owners: Sequence[str]) -> str | None:
        """The id of the most recently created image matching `filters` owned by one of
        `owners` (one DescribeImages), or None when none matches."""
        try:
            answer = self.client.describe_images(
                Filters=[{"Name": name, "Values": list(values)} for name, values in filters],
                Owners=list(owners))
        except (ClientError, BotoCoreError) as error:
            raise translate(error, "ec2 DescribeImages") from error
        images = [i for i in answer.get("Images", []) if i.get("ImageId")]
        if not images:
            return None
        # CreationDate is ISO 8601 in UTC, so the text orders as the time does.
        return str(max(images, key=lambda i: str(i.get("CreationDate", "")))["ImageId"])

    def tag(self, instance_id: str, tags: Mapping[str, str]) -> None:
        """Add `tags` to one instance (e.g. `ghr:github_runner_id` of a JIT runner)."""
        try:
            self.client.create_tags(Resources=[instance_id],
                                    Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        except (ClientError, BotoCoreError) as error:
            raise translate(error, "ec2 CreateTags") from error
