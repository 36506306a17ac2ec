"""Structured logs: constant messages, data in fields, one JSON object per line.

`get_logger(__name__).info("scale-up plan", owner="acme", launching=3)`. Never pass a secret.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

_context: ContextVar[dict[str, Any] | None] = ContextVar("log_context", default=None)
_ROOT = "ghr"


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line with its fields and the invocation's context."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context.get() or {})
        entry.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__
            entry["error"] = str(record.exc_info[1])
        return json.dumps(entry, default=str)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout` is now (Lambda's, or a test's capture)."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class Logger:
    """A thin wrapper over `logging` taking fields as keyword arguments."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def _log(self, level: int, message: str, exc_info: bool, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, message, exc_info=exc_info, extra={"fields": fields},
                             stacklevel=3)

    def debug(self, message: str, **fields: Any) -> None:
        """Log at DEBUG."""
        self._log(logging.DEBUG, message, False, fields)

    def info(self, message: str, **fields: Any) -> None:
        """Log at INFO."""
        self._log(logging.INFO, message, False, fields)

    def warning(self, message: str, **fields: Any) -> None:
        """Log at WARNING."""
        self._log(logging.WARNING, message, False, fields)

    def error(self, message: str, exc_info: bool = False, **fields: Any) -> None:
        """Log at ERROR, with the current exception's type and text when `exc_info`."""
        self._log(logging.ERROR, message, exc_info, fields)


def get_logger(name: str) -> Logger:
    """A structured logger under the project's root logger."""
    short = name.split(".")[-1]
    return Logger(f"{_ROOT}.{short}")


def configure(level: str = "INFO") -> None:
    """Install the JSON handler once per container and set the project's level; pin the
    libraries that print secrets at DEBUG to WARNING, on every call."""
    root = logging.getLogger(_ROOT)
    name = level.upper()
    root.setLevel("WARNING" if name == "WARN" else name)
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    # Our handler writes every line. Lambda's runtime installs a handler on the root logger,
    # as `chalice local` does: a propagated record would be written twice (tests capture from
    # this logger itself, see tests/conftest.py).
    root.propagate = False
    _pin_libraries()


# At DEBUG, botocore prints request and response bodies (decrypted parameter values, tokens),
# urllib3 and requests their URLs and headers. Lambda's log-level setting turns the root
# logger to DEBUG, so these stay at WARNING whatever the root level (docs/REFERENCE.md §5.6).
PINNED_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "requests")


def _pin_libraries() -> None:
    """Each pinned logger, and any of its descendants given a lower level, at WARNING."""
    for name in PINNED_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if (isinstance(logger, logging.Logger) and name.split(".")[0] in PINNED_LOGGERS
                and logging.NOTSET < logger.level < logging.WARNING):
            logger.setLevel(logging.WARNING)


def bind(**fields: Any) -> None:
    """Add fields (function name, request id) to every line of the current invocation."""
    _context.set({**(_context.get() or {}), **fields})


def clear() -> None:
    """Forget the invocation's bound fields."""
    _context.set(None)
