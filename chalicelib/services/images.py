"""Which AMI a launch overrides the launch template's with, shared by scale-up and the pool.

Precedence (docs/REFERENCE.md §2): the id held in `AMI_ID_SSM_PARAMETER_NAME`, then the newest
image matching `AMI_FILTER` owned by one of `AMI_OWNERS`, then none (the launch template's own
image). A filter lookup is one DescribeImages, remembered per container for 15 minutes: a
Packer build published meanwhile is picked up within that, and a busy scale-up does not call
DescribeImages for every batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from chalicelib.aws.ec2 import Ec2
from chalicelib.aws.ssm import Ssm
from chalicelib.errors import ConfigError, RetryableError
from chalicelib.logs import get_logger
from chalicelib.settings import AmiFilter, Settings

log = get_logger(__name__)

CACHE_SECONDS = 15 * 60


class ImageNotFound(RetryableError):
    """No image matches AMI_FILTER: the launch waits (its messages are retried) for one to be
    published, rather than falling back to an image the deployment did not ask for."""


class ImageResolver:
    """Resolves the AMI of a launch; one per container (`wiring.image_resolver`)."""

    def __init__(self, ec2: Ec2, ssm: Ssm,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ec2, self.ssm, self.clock = ec2, ssm, clock
        self._found: dict[tuple[AmiFilter, tuple[str, ...]], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def image_id(self, settings: Settings) -> str | None:
        """The AMI id to launch, or None for the launch template's.

        ConfigError when the SSM parameter is named but missing or empty; ImageNotFound (a
        RetryableError) when the filter matches no image.
        """
        if settings.ami_id_ssm_parameter_name:
            return self._from_parameter(settings.ami_id_ssm_parameter_name)
        if settings.ami_filter:
            return self._from_filter(settings.ami_filter, settings.ami_owners)
        return None

    def _from_parameter(self, parameter: str) -> str:
        value = self.ssm.get_string(parameter)
        if not value or not value.strip():
            raise ConfigError(f"{parameter}: SSM parameter with the runner AMI id not found")
        return value.strip()

    def _from_filter(self, filters: AmiFilter, owners: tuple[str, ...]) -> str:
        key = (filters, owners)
        now = self.clock()
        with self._lock:
            found = self._found.get(key)
        if found is not None and now - found[1] < CACHE_SECONDS:
            return found[0]
        image = self.ec2.newest_image(filters, owners)
        if image is None:
            # Not cached: the next batch looks again.
            log.error("no AMI matches the filter", ami_filter=dict(filters),
                      ami_owners=list(owners))
            raise ImageNotFound(f"ec2 DescribeImages: no image matches AMI_FILTER "
                                f"{dict(filters)} owned by {', '.join(owners)}")
        if found is None or found[0] != image:
            log.info("runner AMI resolved", image_id=image, ami_filter=dict(filters),
                     ami_owners=list(owners))
        with self._lock:
            self._found[key] = (image, now)
        return image
