"""The answers devstack's fault layer writes in moto's place: moto's answer passed through a
change, a DescribeInstances without the newest instances, a CreateFleet cut short with errors,
and the empty fleet EC2 answers when it launches nothing."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def rewrite(app: WsgiApp, environ: dict[str, Any], start_response: Callable[..., Any],
            change: Callable[[bytes], bytes]) -> list[bytes]:
    """moto's answer to the request in `environ`, its body passed through `change`."""
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], *_: Any) -> Any:
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    content = b"".join(app(environ, capture))
    if captured["status"].startswith("200"):
        content = change(content)
    headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(content))))
    start_response(captured["status"], headers)
    return [content]


def hide_new_instances(content: bytes, seconds: float) -> bytes:
    """A DescribeInstances answer without the instances launched in the last `seconds`."""
    root = ET.fromstring(content)  # noqa: S314 - moto's own answer, on loopback
    namespace = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if namespace:
        ET.register_namespace("", namespace[1:-1])
    now = datetime.now(UTC)
    for reservations in root.iter(f"{namespace}reservationSet"):
        for reservation in list(reservations):
            for instances in reservation.iter(f"{namespace}instancesSet"):
                for instance in list(instances):
                    text = instance.findtext(f"{namespace}launchTime") or ""
                    launched = datetime.fromisoformat(text.replace("Z", "+00:00"))
                    if (now - launched).total_seconds() < seconds:
                        instances.remove(instance)
                if len(instances) == 0:
                    reservations.remove(reservation)
    answer: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return answer



def limit_fleet(body: bytes, launched: int) -> bytes:
    """A CreateFleet request body whose target capacities ask for at most `launched`."""
    pairs = parse_qsl(body.decode(), keep_blank_values=True)
    out = []
    for key, value in pairs:
        if key in ("TargetCapacitySpecification.TotalTargetCapacity",
                   "TargetCapacitySpecification.OnDemandTargetCapacity",
                   "TargetCapacitySpecification.SpotTargetCapacity"):
            value = str(min(int(value), launched))
        out.append((key, value))
    return urlencode(out).encode()


def add_fleet_errors(content: bytes, errors: list[tuple[str, str]]) -> bytes:
    """A CreateFleet answer with `errors` (code, message) added, as EC2 reports a shortfall."""
    items = "".join(
        f"<item><errorCode>{code}</errorCode><errorMessage>{message}</errorMessage>"
        "<lifecycle>spot</lifecycle></item>" for code, message in errors
    )
    text = content.decode()
    return text.replace("</CreateFleetResponse>",
                        f"<errorSet>{items}</errorSet></CreateFleetResponse>").encode()


def empty_fleet(errors: list[tuple[str, str]]) -> bytes:
    """What EC2 answers when an instant fleet launches nothing: no instances, only errors."""
    body = (f"<CreateFleetResponse><requestId>{uuid.uuid4()}</requestId>"
            f"<fleetId>fleet-{uuid.uuid4()}</fleetId><fleetInstanceSet/></CreateFleetResponse>")
    return add_fleet_errors(body.encode(), errors)
