"""devstack's AWS: moto in server mode on 127.0.0.1, behind a small fault-injection layer.

moto never answers CreateFleet with `Errors[]` and never throttles, so the WSGI layer in front of
it can be told to answer the next N calls of an action with an AWS error, to cut a CreateFleet
short and report fleet errors, the way EC2 does when capacity runs out, or to leave new instances
out of DescribeInstances for a while, as EC2's eventual consistency can. It also counts every call
by (service, action), which is how tests and benchmarks count AWS calls, and holds each call for
the delay its latency profile names (devstack/latency.py), in the request's own thread.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from devstack import moto_speedups
from devstack.aws_answers import (
    WsgiApp,
    add_fleet_errors,
    empty_fleet,
    hide_new_instances,
    limit_fleet,
    rewrite,
)
from devstack.latency import OFF, LatencyProfile

_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/aws4_request")


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
    # The stack's latency profile, kept by reset(); `sleep` holds each call (a test records).
    latency: LatencyProfile = OFF
    sleep: Callable[[float], None] = time.sleep
    # Calls signed with these access key ids are served but not counted: a benchmark's own calls
    # (its stand-in for Lambda's SQS poller) are not the functions' calls.
    uncounted_keys: set[str] = field(default_factory=set)
    # Seconds moto spent answering each serialized service, one call at a time (below): a
    # lower bound on any burst's wall time that no AWS service has.
    busy_seconds: Counter[str] = field(default_factory=Counter)

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
        """Forget the counts and every pending fault, and hold calls with `time.sleep` again;
        the latency profile and the uncounted keys stay (they are the stack's settings)."""
        with self._lock:
            self.calls.clear()
            self.busy_seconds.clear()
            self._faults.clear()
            self._fleets.clear()
            self.hidden_seconds = 0.0
            self.sleep = time.sleep

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


# moto's backends are not thread-safe: with ten containers launching at once, CreateFleet calls
# met in a subnet's address generator and failed with 500s ("generator already executing"), and
# two ReceiveMessage calls at once could hand out the same messages. So moto runs one call of a
# service at a time, after the latency hold (held calls still overlap; moto's own work holds
# the GIL anyway). A long poll (ReceiveMessage with WaitTimeSeconds) is left out: it waits
# inside moto and would hold every other SQS call; devstack's own callers poll short.
SERIALIZED_SERVICES = ("ec2", "ssm", "dynamodb", "s3", "sqs")


class FaultLayer:
    """WSGI middleware: identify the AWS call, count it, maybe fail it, else pass it to moto."""

    def __init__(self, app: WsgiApp, faults: FaultInjector) -> None:
        self.moto = app
        self.faults = faults
        self._locks = {service: threading.Lock() for service in SERIALIZED_SERVICES}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        service, action = identify(environ, body)
        if service == "moto-api":
            environ["wsgi.input"] = io.BytesIO(body)
            return self.moto(environ, start_response)
        if _access_key(environ) not in self.faults.uncounted_keys:
            with self.faults._lock:
                self.faults.calls[(service, action)] += 1
        delay = self.faults.latency.aws_delay(service, action)
        if delay > 0:
            self.faults.sleep(delay)  # this request's thread only: the server is threaded
        app = self.moto if _long_poll(action, body) else self._one_at_a_time(service)
        fault = self.faults._take_fault(service, action)
        if fault is not None:
            return _error_response(service, environ, fault, start_response)
        hidden = self.faults.hidden_seconds if (service, action) == ("ec2",
                                                                      "DescribeInstances") else 0
        if hidden > 0:
            environ["wsgi.input"] = io.BytesIO(body)
            return rewrite(app, environ, start_response,
                           lambda content: hide_new_instances(content, hidden))
        partial = self.faults._take_fleet() if (service, action) == ("ec2", "CreateFleet") else None
        if partial is not None and partial.launched == 0:
            content = empty_fleet(partial.errors)
            start_response("200 OK", [("Content-Type", "text/xml"),
                                      ("Content-Length", str(len(content)))])
            return [content]
        if partial is not None:
            body = limit_fleet(body, partial.launched)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        if partial is None:
            return app(environ, start_response)
        errors = partial.errors
        return rewrite(app, environ, start_response,
                       lambda content: add_fleet_errors(content, errors))

    def _one_at_a_time(self, service: str) -> WsgiApp:
        """moto, called under `service`'s lock when it has one (its answer read in full)."""
        lock = self._locks.get(service)
        if lock is None:
            return self.moto

        def locked(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            with lock:
                started = time.perf_counter()
                try:
                    return list(self.moto(environ, start_response))
                finally:
                    with self.faults._lock:
                        self.faults.busy_seconds[service] += time.perf_counter() - started

        return locked


def identify(environ: dict[str, Any], body: bytes) -> tuple[str, str]:
    """(service, action) of an AWS request, from its signature scope and protocol."""
    if environ.get("PATH_INFO", "").startswith("/moto-api"):
        return "moto-api", ""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(2) if match else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rpartition(".")[2]
    if body and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        for key, value in parse_qsl(body.decode("utf-8", "replace")):
            if key == "Action":
                return service, value
    method = environ.get("REQUEST_METHOD", "GET")
    return service, f"{method} {environ.get('PATH_INFO', '/')}"


def _long_poll(action: str, body: bytes) -> bool:
    """Whether this is a ReceiveMessage that waits for messages (JSON or query protocol)."""
    if action != "ReceiveMessage" or not body:
        return False
    try:
        wait = json.loads(body).get("WaitTimeSeconds", 0)
    except ValueError:
        wait = dict(parse_qsl(body.decode("utf-8", "replace"))).get("WaitTimeSeconds", 0)
    return bool(int(wait or 0))


def _access_key(environ: dict[str, Any]) -> str:
    """The access key id a request was signed with ("" when unsigned)."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else ""


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



class _Handler(MotoRequestHandler):
    # Without this every keep-alive response waits for the peer's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True


# werkzeug logs every request at INFO; devstack's request log is the call counter instead.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


class AwsServer:
    """moto's server app behind the fault layer, served by werkzeug on 127.0.0.1."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        moto_speedups.apply()
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
