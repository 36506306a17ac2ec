"""Speed-ups of moto that keep its answers, for the thousand instances and queued messages of a
burst.

- moto's EC2 finds one resource's tags by scanning every tag of every resource with a regular
  expression, and it does so for each instance it filters or renders: a DescribeInstances of 50
  instances among 700 cost 0.7 s of CPU (measured), growing with the square of the instances.
  Here a resource reads its own tags from the backend's tag table.
- moto's SQS reads its clock through a datetime round trip for every message of a queue whenever
  it counts messages, and it counts them often: every SendMessage computes all the queue's
  attributes, and every message a ReceiveMessage returns computes them again to read the
  retention period. With a thousand messages queued a ReceiveMessage of ten cost most of a
  second of CPU. Here the clock is `time.time()` (what moto's arrives at; devstack never freezes
  time) and the retention check reads the one attribute it needs.

Both slowed every call behind them (devstack answers from one process), which drowned what the
benchmarks measure.
"""

from __future__ import annotations

import time
from typing import Any

_applied: list[bool] = []


def apply() -> None:
    """Patch moto's EC2 tags and SQS backend once per process (idempotent)."""
    if _applied:
        return
    _ec2_tags()
    _sqs_clock()
    _applied.append(True)


def _ec2_tags() -> None:
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    def get_tags(self: Any) -> list[dict[str, str]]:
        """What `describe_tags(filters={"resource-id": [self.id]})` answers, without the scan."""
        if not self.id:
            return []
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
        return [{"resource_id": self.id, "key": key, "value": value, "resource_type": kind}
                for key, value in self.ec2_backend.tags.get(self.id, {}).items()]

    TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]


def _sqs_clock() -> None:
    from moto.core import utils
    from moto.sqs import models

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else utils.unix_time(dt)

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    def retained(self: Any, queue_name: str, message: Any) -> bool:
        queue = self.get_queue(queue_name)
        return bool(int(queue.message_retention_period) + message.sent_timestamp / 1000
                    > unix_time())

    models.unix_time = unix_time  # type: ignore[assignment]
    models.unix_time_millis = unix_time_millis  # type: ignore[assignment]
    models.SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]
