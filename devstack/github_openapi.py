"""Checks the GitHub fake's responses against GitHub's OpenAPI description (the trimmed copy).

The spec is loaded once per process with whole-spec validation off (it is GitHub's, already valid),
which keeps a response check to a few milliseconds. A status the operation does not declare (GitHub
sends 401/403/5xx on any route) must still carry GitHub's generic `basic-error` body.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

SPEC_PATH = Path(__file__).with_name("openapi") / "github-api.trimmed.json"
API_ROOT = "/api/v3"


@functools.cache
def _spec() -> tuple[OpenAPI, dict[str, Any]]:
    raw = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return OpenAPI.from_dict(raw, config=Config(spec_validator_cls=None)), raw


def operations() -> set[str]:
    """Every "METHOD /template" the trimmed description holds."""
    _, raw = _spec()
    return {f"{method.upper()} {path}" for path, ops in raw["paths"].items() for method in ops}


def check_response(
    method: str,
    template: str,
    path: str,
    params: dict[str, str],
    status: int,
    body: bytes,
    headers: dict[str, str],
) -> str | None:
    """None if the response conforms to the operation `method template`, else why not."""
    api, raw = _spec()
    operation = raw["paths"].get(template, {}).get(method.lower())
    if operation is None:
        return f"{method} {template} is not in the OpenAPI description"
    declared = operation["responses"]
    if str(status) not in declared and "default" not in declared:
        return _check_generic_error(status, body, raw)
    request = MockRequest(
        "http://127.0.0.1",
        method,
        API_ROOT + path,
        path_pattern=API_ROOT + template,
        view_args=params,
    )
    response = MockResponse(
        body, status_code=status, headers=headers, content_type="application/json" if body else ""
    )
    try:
        # Validation only: unmarshalling into Python objects would cost 20 times more.
        api.validate_response(request, response)
    except OpenAPIError as err:
        return _describe(err)
    return None


def _check_generic_error(status: int, body: bytes, raw: dict[str, Any]) -> str | None:
    if status < 400:
        return f"undeclared status {status}"
    try:
        data = json.loads(body)
    except ValueError:
        return f"status {status}: body is not JSON"
    schema = raw["components"]["schemas"].get("basic-error") or {
        "type": "object",
        "properties": {"message": {"type": "string"}, "documentation_url": {"type": "string"}},
    }
    problems = [e.message for e in OAS30Validator(schema).iter_errors(data)]
    if not isinstance(data, dict) or "message" not in data:
        problems.append("error body has no message")
    return "; ".join(problems) or None


def _describe(err: BaseException) -> str:
    # openapi-core wraps the schema errors; the causes say which field is wrong.
    details = [str(err)]
    cause = err.__cause__
    for inner in getattr(cause, "schema_errors", None) or []:
        details.append(getattr(inner, "message", str(inner)))
    return ": ".join(details)
