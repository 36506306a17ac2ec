"""CloudWatch metrics in the Embedded Metric Format: printed, so they cost no API call.

The namespace is `METRICS_NAMESPACE` (default the module's `GitHub Runners`); with
`ENABLE_METRICS=false` nothing is printed. `wiring.settings` applies both once per container.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import defaultdict
from typing import Any

NAMESPACE = "GitHub Runners"

_lock = threading.Lock()
_values: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[float]] = defaultdict(list)
_sink: dict[str, Any] = {"namespace": NAMESPACE, "enabled": True}


def configure(namespace: str = NAMESPACE, *, enabled: bool = True) -> None:
    """Publish under `namespace`, or (not `enabled`) nothing at all; no arguments: defaults."""
    with _lock:
        _sink.update(namespace=namespace, enabled=enabled)


def put(name: str, value: float, unit: str = "Count", **dimensions: str) -> None:
    """Record one value of metric `name`; flushed at the end of the invocation."""
    key = (name, unit, tuple(sorted(dimensions.items())))
    with _lock:
        _values[key].append(float(value))


def pending() -> dict[str, float]:
    """Sum of values recorded and not yet flushed, by metric name (for tests and summaries)."""
    totals: dict[str, float] = defaultdict(float)
    with _lock:
        for (name, _, _), values in _values.items():
            totals[name] += sum(values)
    return dict(totals)


def flush(**context: str) -> None:
    """Print one EMF document per dimension set, then forget what was printed."""
    with _lock:
        items = list(_values.items())
        _values.clear()
        namespace, enabled = _sink["namespace"], _sink["enabled"]
    if not enabled:
        return
    for (name, unit, dims), values in items:
        dimensions = {**context, **dict(dims)}
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [sorted(dimensions)],
                    "Metrics": [{"Name": name, "Unit": unit}],
                }],
            },
            name: values if len(values) > 1 else values[0],
            **dimensions,
        }
        sys.stdout.write(json.dumps(document) + "\n")
