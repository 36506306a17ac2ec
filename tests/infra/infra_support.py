"""Helpers of the infrastructure checks (imported by their conftest and tests)."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# What `chalice package` needs to run offline: a region, dummy credentials, no IMDS probing.
PACKAGE_ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass(frozen=True)
class Package:
    """The output of `chalice package --merge-template infra/template.yaml`."""

    directory: Path
    template: dict[str, Any]

    @property
    def template_path(self) -> Path:
        return self.directory / "sam.yaml"

    @property
    def zip_path(self) -> Path:
        return self.directory / "deployment.zip"


def tool(name: str) -> str:
    """Path of a command-line tool: the project's virtualenv first, then PATH."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    assert found is not None, f"{name} is not installed"
    return found
