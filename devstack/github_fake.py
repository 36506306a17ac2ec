"""A GitHub Enterprise Server fake: in-process state plus an HTTP API under `<url>/api/v3`.

It answers the endpoints the system uses the way GitHub does (App JWT and installation-token
auth, runner registration, JIT configs, pagination, 422 on deleting a busy runner, primary and
secondary rate limits), can be told to fail, throttle or slow down a route, holds every call for
its latency profile's delay (devstack/latency.py), logs every request by route, and with
`validate=True` checks every response against GitHub's OpenAPI description
(`.violations`).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer

from devstack import github_render as render
from devstack.github_api import ApiReply, ApiRequest, Principal, Route, authenticate, caller_app
from devstack.github_auth import AppKey, FakeApp, unverified_issuer
from devstack.github_deliveries import WebhookDeliveries
from devstack.github_jobs import GitHubJobs
from devstack.github_limits import Bucket, Fault, Faults, RateLimits
from devstack.github_openapi import check_response
from devstack.github_records import ApiError, LoggedRequest, Violation
from devstack.github_releases import asset_bytes, parse_download_path
from devstack.github_routes import ROUTE_KEYS, match
from devstack.latency import OFF, LatencyProfile

DOWNLOAD_ROUTE = "GET /actions/runner/releases/download/{tag}/{name}"
SECONDARY_DOCS = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
MSG_SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {request_id}."
)


class GitHubFake(GitHubJobs):
    """GitHub Enterprise Server for tests and the demo; `start()` serves it on 127.0.0.1."""

    def __init__(self, *, validate: bool = False, app_id: int = 12345) -> None:
        super().__init__()
        self.validate = validate
        # The Apps, the first being the webhook's; more come with add_app(). Apps a reset
        # removed are kept to be added again as they were (generating a key takes a while).
        self.apps = [FakeApp(app_id, AppKey.generate())]
        self._spare_apps: list[FakeApp] = []
        self.deliveries = WebhookDeliveries()
        self.created_at = self.apps[0].created_at
        self.limits = RateLimits()
        self.faults = Faults()
        # How added latency holds a call: a test may record the holds instead of waiting them.
        self.sleep: Callable[[float], None] = time.sleep
        # The stack's latency profile: a setting, kept by reset().
        self.latency: LatencyProfile = OFF
        self._log: list[LoggedRequest] = []
        self._violations: list[Violation] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    # -- the Apps --------------------------------------------------------------------------------

    @property
    def app_id(self) -> int:
        """The first App's id (the webhook's App)."""
        return self.apps[0].app_id

    @property
    def client_id(self) -> str:
        """The first App's client id."""
        return self.apps[0].client_id

    @property
    def key(self) -> AppKey:
        """The first App's original key."""
        return self.apps[0].key

    @property
    def keys(self) -> list[AppKey]:
        """The first App's active keys."""
        return self.apps[0].keys

    @property
    def private_key_pem(self) -> str:
        """The first App's private key, PKCS#1 PEM (what GitHub lets an App owner download)."""
        return self.apps[0].private_key_pem

    def add_app(self) -> FakeApp:
        """Another App, with its own id, key, installations and budgets (none installed yet)."""
        with self.lock:
            app = (self._spare_apps.pop(0) if self._spare_apps
                   else FakeApp(max(a.app_id for a in self.apps) + 1, AppKey.generate()))
            self.apps.append(app)
            return app

    def app(self, app_id: int | None = None) -> FakeApp:
        """App `app_id`, or the first one."""
        with self.lock:
            if app_id is None:
                return self.apps[0]
            found = next((a for a in self.apps if a.app_id == app_id), None)
        if found is None:
            raise KeyError(f"no App {app_id}")
        return found

    def app_for_jwt(self, token: str) -> FakeApp:
        """The App a JWT's `iss` names, GitHub's way of telling which App calls; the first App
        when it names none (the first App's checks then refuse the token)."""
        issuer = unverified_issuer(token)
        with self.lock:
            return next((a for a in self.apps if a.issued(issuer)), self.apps[0])

    def add_app_key(self, app_id: int | None = None) -> AppKey:
        """Generate another active key for an App, as an owner does before a rotation."""
        key = AppKey.generate()
        app = self.app(app_id)
        with self.lock:
            app.keys.append(key)
        return key

    def revoke_app_key(self, key: AppKey) -> None:
        """Delete an App's key: JWTs it signs are refused from now on (once an App has no key
        left, no JWT of it is accepted: a revoked key)."""
        with self.lock:
            for app in self.apps:
                if key in app.keys:
                    app.keys.remove(key)

    @property
    def url(self) -> str:
        """The server's base URL, the value of GHES_URL (the API is under `/api/v3`)."""
        return self.base_url

    @property
    def api_url(self) -> str:
        """`<url>/api/v3`."""
        return self.base_url + "/api/v3"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = a free port) in a daemon thread; returns the base URL."""
        from devstack.github_http import make_server  # the HTTP front is only needed once started

        if self._server is not None:
            return self.url
        server = make_server(self, host, port)
        self._server = server
        self.base_url = f"http://{host}:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="github-fake",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the socket."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def reset(self) -> None:
        """Forget all state, faults, limits, logs, hooks, clock and sleep; keep the server, the
        latency profile and the first App with its key (the Apps and keys added since are
        removed)."""
        with self.lock:
            self._clear()
            self._spare_apps = self.apps[1:] + self._spare_apps
            self.apps = self.apps[:1]
            for app in (*self.apps, *self._spare_apps):
                app.keys[:] = [app.key]
            self.deliveries.clear()
            self.clock = time.time
            self.sleep = time.sleep
            self.on_job_event = None
            self.limits = RateLimits()
            self.faults = Faults()
            self._log.clear()
            self._violations.clear()

    # -- the API pipeline ----------------------------------------------------------------------

    def handle(self, request: ApiRequest) -> ApiReply:
        """Answer one API call: faults, auth, rate limits, the route's handler, log, validation."""
        found = match(request.method, request.path)
        if found is None:
            reply = ApiReply(404, render.error("Not Found"))
            self._record(request.method, "", request.path, reply.status)
            return reply
        route, params = found
        with self.lock:
            delay = self.faults.delay(route.key) + self.latency.github_delay(route.key)
        if delay > 0:
            self.sleep(delay)
        reply, app_id = self._answer(route, params, request)
        self._record(request.method, route.key, request.path, reply.status, app_id)
        if self.validate:
            payload = b"" if reply.body is None else json.dumps(reply.body).encode()
            try:
                problem = check_response(
                    route.method,
                    route.template,
                    request.path,
                    params,
                    reply.status,
                    payload,
                    reply.headers,
                )
            except Exception as err:  # a validator crash is a finding, not a 500
                problem = f"validator failed: {err!r}"
            if problem is not None:
                with self.lock:
                    self._violations.append(Violation(route.key, reply.status, problem))
        return reply

    def _answer(self, route: Route, params: dict[str, str],
                request: ApiRequest) -> tuple[ApiReply, int | None]:
        """The reply, and the App that called (None: anonymous, or refused)."""
        auth_error: ApiError | None = None
        try:
            principal = authenticate(self, route, request.headers)
            caller = principal.app_id
        except ApiError as err:
            principal, auth_error = Principal("anonymous"), err
            caller = caller_app(self, request.headers)
        return self._reply(route, params, request, principal, auth_error), caller

    def _reply(self, route: Route, params: dict[str, str], request: ApiRequest,
               principal: Principal, auth_error: ApiError | None) -> ApiReply:
        now = self.clock()
        with self.lock:
            bucket = self.limits.bucket(principal.bucket, now)
            fault = self.faults.take(route.key)
            if fault is not None:
                return self._fault_reply(fault, principal, bucket, now)
            if auth_error is not None:
                return ApiReply(
                    auth_error.status, render.error(auth_error.message), bucket.headers()
                )
            if bucket.remaining <= 0:
                return self._primary_limited(principal, bucket, bucket.reset)
            retry_after = self.limits.secondary_retry_after(route.key, route.method, now)
            if retry_after is not None:
                return self._secondary_limited(bucket, retry_after)
            bucket.remaining -= 1
            headers = bucket.headers()
        try:
            reply = route.handler(self, request, params, principal)
        except ApiError as err:
            reply = ApiReply(err.status, render.error(err.message), dict(err.headers))
        reply.headers = {**headers, **reply.headers}
        return reply

    def _fault_reply(
        self, fault: Fault, principal: Principal, bucket: Bucket, now: float
    ) -> ApiReply:
        if fault.kind == "secondary":
            return self._secondary_limited(bucket, fault.seconds)
        if fault.kind == "primary":
            return self._primary_limited(principal, bucket, now + fault.seconds)
        message = "Server Error" if fault.status >= 500 else "Injected failure"
        return ApiReply(fault.status, render.error(message), bucket.headers())

    @staticmethod
    def _primary_limited(principal: Principal, bucket: Bucket, reset: float) -> ApiReply:
        who = (
            f"installation ID {principal.installation.id}"
            if principal.installation
            else "127.0.0.1"
        )
        body = {
            "message": f"API rate limit exceeded for {who}.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        }
        return ApiReply(403, body, bucket.headers(remaining=0, reset=reset))

    @staticmethod
    def _secondary_limited(bucket: Bucket, retry_after: int) -> ApiReply:
        body = {
            "message": MSG_SECONDARY.format(request_id=secrets.token_hex(8).upper()),
            "documentation_url": SECONDARY_DOCS,
        }
        return ApiReply(403, body, {**bucket.headers(), "Retry-After": str(retry_after)})

    def handle_download(self, method: str, path: str) -> tuple[int, bytes, str]:
        """Serve a runner release asset (non-API path); (status, body, content type)."""
        with self.lock:
            delay = self.faults.delay(DOWNLOAD_ROUTE)
        if delay > 0:
            self.sleep(delay)
        asset = parse_download_path(path) if method in ("GET", "HEAD") else None
        with self.lock:
            fault = self.faults.take(DOWNLOAD_ROUTE) if asset else None
        if fault is not None:
            status, body, ctype = fault.status, b"Server Error", "text/plain"
        elif asset is None:
            status, body, ctype = 404, b"Not Found", "text/plain"
        else:
            status, body, ctype = 200, asset_bytes(*asset), "application/octet-stream"
        self._record(method, DOWNLOAD_ROUTE if asset else "", path, status)
        return status, body, ctype

    def release_bytes(self, os_name: str, arch: str) -> bytes:
        """The bytes served for the latest release's asset of `os_name` (linux|osx|win), `arch`."""
        return asset_bytes(os_name, arch, self.runner_version)

    # -- test hooks: limits and faults -------------------------------------------------------------

    def installation_id(self, owner: str, app_id: int | None = None) -> int | None:
        """The installation id of App `app_id` (the first by default) on `owner`, if any."""
        record = self.installation_for(owner, app_id)
        return record.id if record else None

    def set_rate_limit(
        self, installation_id: int, remaining: int, reset_epoch: float, limit: int | None = None
    ) -> None:
        """Force the primary budget of an installation (refilled at `reset_epoch`)."""
        with self.lock:
            self.limits.set_budget(("installation", installation_id), remaining, reset_epoch, limit)

    def rate_limit(self, installation_id: int) -> Bucket:
        """The current primary budget of an installation."""
        with self.lock:
            return self.limits.bucket(("installation", installation_id), self.clock())

    def fail_next(self, route: str, n: int = 1, status: int = 502) -> None:
        """Answer the next `n` calls of `route` with `status` (GitHub's error body)."""
        self._add_fault(route, Fault("fail", n, status=status))

    def secondary_limit_next(self, route: str, n: int = 1, retry_after: int = 30) -> None:
        """Answer the next `n` calls of `route` with a secondary rate limit (403 + Retry-After)."""
        self._add_fault(route, Fault("secondary", n, status=403, seconds=retry_after))

    def primary_limit_next(self, route: str, n: int = 1, reset_in: int = 120) -> None:
        """Answer the next `n` calls of `route` with a spent primary budget (403, remaining 0)."""
        self._add_fault(route, Fault("primary", n, status=403, seconds=reset_in))

    def add_latency(self, route: str, seconds: float) -> None:
        """Hold every call of `route` for `seconds` before answering (0 removes it)."""
        self._check_route(route)
        with self.lock:
            self.faults.latency[route] = seconds

    def _add_fault(self, route: str, fault: Fault) -> None:
        self._check_route(route)
        with self.lock:
            self.faults.add(route, fault)

    @staticmethod
    def _check_route(route: str) -> None:
        if route != "*" and route != DOWNLOAD_ROUTE and route not in ROUTE_KEYS:
            raise ValueError(f"unknown route {route!r}; known: {sorted(ROUTE_KEYS)}")

    # -- request log and conformance ---------------------------------------------------------

    def _record(self, method: str, route: str, path: str, status: int,
                app_id: int | None = None) -> None:
        with self.lock:
            self._log.append(LoggedRequest(method, route, path, status, self.clock(), app_id))

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request answered since the last reset or `clear_log()`, oldest first."""
        with self.lock:
            return list(self._log)

    def count(
        self, route: str | None = None, method: str | None = None, prefix: str | None = None,
        app_id: int | None = None,
    ) -> int:
        """How many logged requests match the route key, method, path prefix and App given."""
        return sum(
            1
            for entry in self.requests
            if (route is None or entry.route == route)
            and (method is None or entry.method == method.upper())
            and (prefix is None or entry.path.startswith(prefix))
            and (app_id is None or entry.app_id == app_id)
        )

    def calls_by_app(self) -> dict[int, int]:
        """How many logged requests each App made (with its JWT or its installations' tokens)."""
        counts: dict[int, int] = {}
        for entry in self.requests:
            if entry.app_id is not None:
                counts[entry.app_id] = counts.get(entry.app_id, 0) + 1
        return counts

    def clear_log(self) -> None:
        """Empty the request log."""
        with self.lock:
            self._log.clear()

    @property
    def violations(self) -> list[Violation]:
        """Responses that did not conform to the OpenAPI description (with `validate=True`)."""
        with self.lock:
            return list(self._violations)
