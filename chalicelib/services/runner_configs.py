"""The runner configurations of a container (docs/REFERENCE.md §6): read from their SSM
parameter once, then looked at again at most once a minute.

The look is one GetParameter: when the parameter's version is the one already parsed, nothing
is parsed again. A caller that meets a configuration id it does not know asks for a fresh read
(`get(fresh=True)`), at most once per invocation. Without `RUNNER_CONFIGS_PARAMETER_NAME`, the
one configuration of the environment is returned and SSM is never called.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from chalicelib.aws.ssm import Ssm
from chalicelib.errors import ConfigError, RetryableError
from chalicelib.logs import get_logger
from chalicelib.runner_configs import PARAMETER, RunnerConfigs, parse_runner_configs, single
from chalicelib.settings import FunctionName, Settings

log = get_logger(__name__)

# How long a read list is used before the parameter's version is looked at again.
RECHECK_SECONDS = 60.0


class RunnerConfigSource:
    """The configurations of one function in one container; safe to share between threads."""

    def __init__(self, top: Settings, env: Mapping[str, str], function: FunctionName,
                 ssm: Ssm | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.top, self.env, self.function, self.ssm, self.clock = top, env, function, ssm, clock
        self._lock = threading.Lock()
        self._current: RunnerConfigs | None = None
        self._checked = 0.0
        self._failed: ConfigError | None = None  # the last list read was bad
        if top.runner_configs_parameter_name is None:
            self._current = single(top)

    def get(self, fresh: bool = False) -> RunnerConfigs:
        """The configurations, read again when a minute has passed (`fresh`: now)."""
        name = self.top.runner_configs_parameter_name
        with self._lock:
            current = self._current
            if name is None and current is not None:
                return current
            if not fresh and self.clock() - self._checked < RECHECK_SECONDS:
                if self._failed is not None:
                    raise self._failed  # a bad list: looked at again after a minute, not per call
                if current is not None:
                    return current
            assert name is not None and self.ssm is not None
            try:
                found = self.ssm.get_versioned(name)
            except RetryableError as error:
                if current is None or fresh or self._failed is not None:
                    raise
                # SSM throttled or failed: the list read a minute ago still holds.
                log.warning("runner configurations not looked at; the last read is used",
                            parameter=name, error=str(error))
                return current
            self._checked = self.clock()
            self._failed = None
            try:
                current = self._parsed(name, found, current)
            except ConfigError as error:
                self._failed = error
                raise
            self._current = current
            return current

    def _parsed(self, name: str, found: tuple[str, int] | None,
                current: RunnerConfigs | None) -> RunnerConfigs:
        """The list of `found` (its text and version), parsed unless its version is current's."""
        if found is None:
            raise ConfigError(f"{PARAMETER}: parameter {name} does not exist")
        text, version = found
        if current is not None and current.version == version:
            return current
        parsed = parse_runner_configs(text, self.env, self.function, self.top, version)
        log.info("runner configurations read", parameter=name, version=version,
                 ids=[c.id for c in parsed.configs])
        return parsed
