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
from chalicelib.errors import ConfigError
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
        if top.runner_configs_parameter_name is None:
            self._current = single(top)

    def get(self, fresh: bool = False) -> RunnerConfigs:
        """The configurations, read again when a minute has passed (`fresh`: now)."""
        name = self.top.runner_configs_parameter_name
        with self._lock:
            current = self._current
            if name is None and current is not None:
                return current
            if current is not None and not fresh \
                    and self.clock() - self._checked < RECHECK_SECONDS:
                return current
            assert name is not None and self.ssm is not None
            found = self.ssm.get_versioned(name)
            if found is None:
                raise ConfigError(f"{PARAMETER}: parameter {name} does not exist")
            text, version = found
            if current is None or current.version != version:
                # A bad list raises here, on every invocation until it is fixed.
                current = parse_runner_configs(text, self.env, self.function, self.top, version)
                log.info("runner configurations read", parameter=name, version=version,
                         ids=[c.id for c in current.configs])
            self._current, self._checked = current, self.clock()
            return current
