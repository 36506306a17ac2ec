"""Trim GitHub's OpenAPI description to the operations the GitHub fake serves.

The full description (`api.github.com.json`, about 10 MB) ships in the npm package
`@octokit/openapi`. This script keeps only the operations listed in OPERATIONS and the components
they reference (transitively), drops prose (descriptions, summaries, examples), lists null in
nullable enums (see null_in_nullable_enums) and points the server at `/api/v3`, the API root of a
GitHub Enterprise Server, so that openapi-core can validate what the fake answers.

Regenerate the committed `github-api.trimmed.json` with:

    npm install --prefix /tmp/octo @octokit/openapi
    .venv/bin/python devstack/openapi/trim.py \
        /tmp/octo/node_modules/@octokit/openapi/generated/api.github.com.json

Add an operation to OPERATIONS (and a route to the fake) when the system calls a new endpoint.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("github-api.trimmed.json")

# (method, path) of every endpoint the system calls; the fake serves exactly these.
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("get", "/app"),
    ("get", "/orgs/{org}/installation"),
    ("get", "/repos/{owner}/{repo}/installation"),
    ("get", "/users/{username}/installation"),
    ("post", "/app/installations/{installation_id}/access_tokens"),
    ("get", "/app/hook/deliveries"),
    ("post", "/app/hook/deliveries/{delivery_id}/attempts"),
    ("get", "/repos/{owner}/{repo}/actions/jobs/{job_id}"),
    ("post", "/repos/{owner}/{repo}/actions/jobs/{job_id}/rerun"),
    ("get", "/repos/{owner}/{repo}/releases"),
    ("get", "/repos/{owner}/{repo}/releases/latest"),
    ("get", "/orgs/{org}/actions/runner-groups"),
    ("post", "/orgs/{org}/actions/runners/registration-token"),
    ("post", "/orgs/{org}/actions/runners/remove-token"),
    ("post", "/orgs/{org}/actions/runners/generate-jitconfig"),
    ("get", "/orgs/{org}/actions/runners"),
    ("get", "/orgs/{org}/actions/runners/{runner_id}"),
    ("delete", "/orgs/{org}/actions/runners/{runner_id}"),
    ("post", "/repos/{owner}/{repo}/actions/runners/registration-token"),
    ("post", "/repos/{owner}/{repo}/actions/runners/remove-token"),
    ("post", "/repos/{owner}/{repo}/actions/runners/generate-jitconfig"),
    ("get", "/repos/{owner}/{repo}/actions/runners"),
    ("get", "/repos/{owner}/{repo}/actions/runners/{runner_id}"),
    ("delete", "/repos/{owner}/{repo}/actions/runners/{runner_id}"),
)

# Prose keys, dropped everywhere except where they name a schema property.
PROSE = {"description", "summary", "example", "examples", "externalDocs", "x-github", "tags"}


def strip_prose(node: Any, in_properties: bool = False) -> Any:
    """`node` without prose keys; keys under `properties` are property names and stay."""
    if isinstance(node, dict):
        return {
            key: strip_prose(value, in_properties=key == "properties" and not in_properties)
            for key, value in node.items()
            if in_properties or key not in PROSE
        }
    if isinstance(node, list):
        return [strip_prose(item) for item in node]
    return node


def null_in_nullable_enums(node: Any) -> Any:
    """`node` with null listed in every nullable enum.

    OpenAPI 3.0.3 says a nullable enum must list null to accept it, and validators follow that;
    GitHub's description marks e.g. a job's `conclusion` nullable without listing null, while the
    API answers null for a job that has not finished.
    """
    if isinstance(node, dict):
        fixed = {key: null_in_nullable_enums(value) for key, value in node.items()}
        enum = fixed.get("enum")
        if fixed.get("nullable") is True and isinstance(enum, list) and None not in enum:
            fixed["enum"] = [*enum, None]
        return fixed
    if isinstance(node, list):
        return [null_in_nullable_enums(item) for item in node]
    return node


def refs_in(node: Any) -> set[str]:
    """Every `$ref` target below `node`."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value)
            else:
                found |= refs_in(value)
    elif isinstance(node, list):
        for item in node:
            found |= refs_in(item)
    return found


def trim(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of `spec` that OPERATIONS need, prose removed."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in OPERATIONS:
        paths.setdefault(path, {})[method] = strip_prose(spec["paths"][path][method])
    components: dict[str, dict[str, Any]] = {}
    pending = refs_in(paths)
    done: set[str] = set()
    while pending:
        ref = pending.pop()
        done.add(ref)
        _, _, kind, name = ref.split("/", 3)  # "#/components/<kind>/<name>"
        node = strip_prose(spec["components"][kind][name])
        components.setdefault(kind, {})[name] = node
        pending |= refs_in(node) - done
    trimmed = {
        "openapi": spec["openapi"],
        "info": {"title": spec["info"]["title"], "version": spec["info"]["version"]},
        "servers": [{"url": "/api/v3"}],
        "paths": paths,
        "components": {
            kind: dict(sorted(items.items())) for kind, items in sorted(components.items())
        },
    }
    result: dict[str, Any] = null_in_nullable_enums(trimmed)
    return result


def main(argv: list[str]) -> int:
    """Read the full description named in argv[1] and write the trimmed one next to this script."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    OUT.write_text(json.dumps(trim(spec), indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(OPERATIONS)} operations)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
