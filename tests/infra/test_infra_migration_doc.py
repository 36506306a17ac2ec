"""docs/MIGRATION.md maps the Terraform module's variables to parameters the template has."""

from __future__ import annotations

import re
from typing import Any

from infra_support import ROOT

MIGRATION = ROOT / "docs" / "MIGRATION.md"


def test_every_parameter_the_migration_table_names_exists(stack_template: dict[str, Any]) -> None:
    rows = [line.split("|") for line in MIGRATION.read_text().splitlines()
            if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([A-Za-z0-9]+)`", row[2])}

    assert len(rows) >= 50
    assert len(named) >= 60
    assert named <= set(stack_template["Parameters"]), sorted(
        named - set(stack_template["Parameters"]))
