"""devstack's AWS: moto in server mode on 127.0.0.1, behind a small fault-injection layer.

moto never answers CreateFleet with `Errors[]` and never throttles, so the WSGI layer in front of
it can be told to answer the next N calls of an action with an AWS error, to cut a CreateFleet
short and report fleet errors, the way EC2 does when capacity runs out, or to leave new instances
out of DescribeInstances for a while, as EC2's eventual consistency can. It also counts every call
by (service, action), which is how tests and benchmarks count AWS calls.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_SERVICE_IN_AUTH = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


@dataclass
class _Fault:
    service: str
    action: str
    code: str
    remaining: int
    status: int
    message: str


@dataclass
class _PartialFleet:
    launched: int
    errors: list[tuple[str, str]]
    remaining: int


@dataclass
class FaultInjector:
    """Counts AWS calls and injects the faults a test asks for, in the order asked."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    _faults: list[_Fault] = field(default_factory=list)
    _fleets: list[_PartialFleet] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    hidden_seconds: float = 0.0

    def fail_next(self, service: str, action: str, code: str, times: int = 1,
                  status: int = 400, message: str = "") -> None:
        """Answer the next `times` calls of `service`/`action` with the AWS error `code`."""
        with self._lock:
            self._faults.append(_Fault(service, action, code, times, status,
                                       message or f"injected {code}"))

    def partial_fleet(self, launched: int, errors: list[tuple[str, str]], times: int = 1) -> None:
        """Make the next CreateFleet calls launch at most `launched` and report `errors`."""
        with self._lock:
            self._fleets.append(_PartialFleet(launched, list(errors), times))

    def hide_new_instances(self, seconds: float) -> None:
        """Leave instances launched in the last `seconds` out of DescribeInstances answers, as
        EC2's eventual consistency can just after a launch (0 shows them all again)."""
        with self._lock:
            self.hidden_seconds = seconds

    def count(self, service: str | None = None, action: str | None = None) -> int:
        """Calls seen, optionally of one service and action."""
        with self._lock:
            return sum(n for (s, a), n in self.calls.items()
                       if (service is None or s == service) and (action is None or a == action))

    def reset(self) -> None:
        """Forget the counts and every pending fault."""
        with self._lock:
            self.calls.clear()
            self._faults.clear()
            self._fleets.clear()
            self.hidden_seconds = 0.0

    def _take_fault(self, service: str, action: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.service == service and fault.action == action and fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _take_fleet(self) -> _PartialFleet | None:
        with self._lock:
            for fleet in self._fleets:
                fleet.remaining -= 1
                if fleet.remaining == 0:
                    self._fleets.remove(fleet)
                return fleet
        return None


class FaultLayer:
    """WSGI middleware: identify the AWS call, count it, maybe fail it, else pass it to moto."""

    def __init__(self, app: WsgiApp, faults: FaultInjector) -> None:
        self.app = app
        self.faults = faults
        # moto's DynamoDB checks a condition and then writes without a lock, and rolls a failed
        # transaction back by restoring a copy of the whole table: two requests at once could
        # both pass one condition, or one could undo the other. DynamoDB itself applies each
        # conditional write and transaction atomically; one at a time here gives the same.
        self._dynamodb = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        service, action = identify(environ, body)
        if service == "moto-api":
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        with self.faults._lock:
            self.faults.calls[(service, action)] += 1
        fault = self.faults._take_fault(service, action)
        if fault is not None:
            return _error_response(service, environ, fault, start_response)
        hidden = self.faults.hidden_seconds if (service, action) == ("ec2",
                                                                      "DescribeInstances") else 0
        if hidden > 0:
            environ["wsgi.input"] = io.BytesIO(body)
            return _rewrite(self.app, environ, start_response,
                            lambda content: _hide_new_instances(content, hidden))
        partial = self.faults._take_fleet() if (service, action) == ("ec2", "CreateFleet") else None
        if partial is not None and partial.launched == 0:
            content = _empty_fleet(partial.errors)
            start_response("200 OK", [("Content-Type", "text/xml"),
                                      ("Content-Length", str(len(content)))])
            return [content]
        if partial is not None:
            body = _limit_fleet(body, partial.launched)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        if service == "dynamodb":
            with self._dynamodb:
                return list(self.app(environ, start_response))
        if partial is None:
            return self.app(environ, start_response)
        errors = partial.errors
        return _rewrite(self.app, environ, start_response,
                        lambda content: _add_fleet_errors(content, errors))


def _rewrite(app: WsgiApp, environ: dict[str, Any], start_response: Callable[..., Any],
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


def _hide_new_instances(content: bytes, seconds: float) -> bytes:
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


def identify(environ: dict[str, Any], body: bytes) -> tuple[str, str]:
    """(service, action) of an AWS request, from its signature scope and protocol."""
    if environ.get("PATH_INFO", "").startswith("/moto-api"):
        return "moto-api", ""
    match = _SERVICE_IN_AUTH.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(1) if match else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rpartition(".")[2]
    if body and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        for key, value in parse_qsl(body.decode("utf-8", "replace")):
            if key == "Action":
                return service, value
    method = environ.get("REQUEST_METHOD", "GET")
    return service, f"{method} {environ.get('PATH_INFO', '/')}"


def _error_response(service: str, environ: dict[str, Any], fault: _Fault,
                    start_response: Callable[..., Any]) -> list[bytes]:
    status = f"{fault.status} Injected"
    if environ.get("HTTP_X_AMZ_TARGET"):
        # JSON protocols (SSM, SQS, ...): botocore reads the code from __type.
        payload = json.dumps({"__type": fault.code, "message": fault.message}).encode()
        start_response(status, [("Content-Type", "application/x-amz-json-1.1"),
                                ("x-amzn-query-error", f"{fault.code};Sender"),
                                ("Content-Length", str(len(payload)))])
        return [payload]
    if service == "ec2":
        payload = (f"<Response><Errors><Error><Code>{fault.code}</Code><Message>{fault.message}"
                   f"</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>")
    else:
        payload = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault.code}</Code><Message>"
                   f"{fault.message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
                   "</ErrorResponse>")
    data = payload.encode()
    start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))])
    return [data]


def _limit_fleet(body: bytes, launched: int) -> bytes:
    pairs = parse_qsl(body.decode(), keep_blank_values=True)
    out = []
    for key, value in pairs:
        if key in ("TargetCapacitySpecification.TotalTargetCapacity",
                   "TargetCapacitySpecification.OnDemandTargetCapacity",
                   "TargetCapacitySpecification.SpotTargetCapacity"):
            value = str(min(int(value), launched))
        out.append((key, value))
    return urlencode(out).encode()


def _add_fleet_errors(content: bytes, errors: list[tuple[str, str]]) -> bytes:
    items = "".join(
        f"<item><errorCode>{code}</errorCode><errorMessage>{message}</errorMessage>"
        "<lifecycle>spot</lifecycle></item>" for code, message in errors
    )
    text = content.decode()
    return text.replace("</CreateFleetResponse>",
                        f"<errorSet>{items}</errorSet></CreateFleetResponse>").encode()


def _empty_fleet(errors: list[tuple[str, str]]) -> bytes:
    """What EC2 answers when an instant fleet launches nothing: no instances, only errors."""
    body = (f"<CreateFleetResponse><requestId>{uuid.uuid4()}</requestId>"
            f"<fleetId>fleet-{uuid.uuid4()}</fleetId><fleetInstanceSet/></CreateFleetResponse>")
    return _add_fleet_errors(body.encode(), errors)


class _Handler(MotoRequestHandler):
    # Without this every keep-alive response waits for the peer's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True


# werkzeug logs every request at INFO; devstack's request log is the call counter instead.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


class AwsServer:
    """moto's server app behind the fault layer, served by werkzeug on 127.0.0.1."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.faults = FaultInjector()
        app = FaultLayer(DomainDispatcherApplication(create_backend_app), self.faults)
        # Always bind loopback explicitly: moto's own default is 0.0.0.0.
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True,
                                                   request_handler=_Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="devstack-aws")

    @property
    def endpoint(self) -> str:
        """The URL to put in AWS_ENDPOINT_URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> AwsServer:
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._thread.join(timeout=5)
