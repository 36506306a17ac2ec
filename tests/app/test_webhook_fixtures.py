"""The webhook fixtures are GitHub's published examples, valid against the published schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from webhook_support import FIXTURES

SCHEMA: dict[str, Any] = json.loads((FIXTURES / "schema" / "webhooks.schema.json").read_text())
EXAMPLES = sorted((FIXTURES / "workflow_job").glob("*.json")) + sorted(
    (FIXTURES / "ping").glob("*.json"))


def validator(definition: str) -> jsonschema.Draft7Validator:
    """A validator of one event definition of the schema, e.g. `workflow_job$queued`."""
    return jsonschema.Draft7Validator({**SCHEMA, "$ref": f"#/definitions/{definition}"})


def definition_of(path: Path, example: dict[str, Any]) -> str:
    return "ping$event" if path.parent.name == "ping" else f"workflow_job${example['action']}"


def test_fixtures_cover_every_action_the_webhook_distinguishes() -> None:
    actions = {json.loads(p.read_text()).get("action") for p in EXAMPLES}
    assert {"queued", "waiting", "in_progress", "completed"} <= actions


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_is_valid_against_published_schema(path: Path) -> None:
    example = json.loads(path.read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in validator(definition_of(path, example)).iter_errors(example)]
    assert errors == []


def test_schema_rejects_a_queued_job_without_labels() -> None:
    # The validation above can fail: a fixture stripped of a required field is refused.
    example = json.loads((FIXTURES / "workflow_job" / "queued.json").read_text())
    del example["workflow_job"]["labels"]
    assert not validator("workflow_job$queued").is_valid(example)
