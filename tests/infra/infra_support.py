"""Helpers of the infrastructure checks (imported by their conftest and tests)."""

from __future__ import annotations

import fnmatch
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
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


def walk(node: Any) -> Iterator[Any]:
    """Every value in a template, depth first."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def statements(template: dict[str, Any], resource: str) -> dict[str, dict[str, Any]]:
    """The IAM statements of a role's inline policies or a policy resource, by Sid."""
    properties = template["Resources"][resource]["Properties"]
    documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
    if "PolicyDocument" in properties:
        documents.append(properties["PolicyDocument"])
    return {s["Sid"]: s for d in documents for s in d["Statement"] if isinstance(s, dict)}


def as_list(value: Any) -> list[Any]:
    """An IAM element that may be one value or a list, as a list."""
    return value if isinstance(value, list) else [value]


def render(value: Any, names: Mapping[str, str]) -> str:
    """A Ref or Fn::Sub string of a template with `names` filled in; `${!x}` stays `${x}`.
    A Fn::GetAtt renders as `<resource>.<attribute>`."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return names[value["Ref"]]
    if "Fn::GetAtt" in value:
        return ".".join(value["Fn::GetAtt"])
    text = value["Fn::Sub"]
    assert isinstance(text, str), "only the one-string form of Fn::Sub"
    filled = re.sub(r"\$\{(?!!)([^}]+)\}", lambda m: names[m[1]], text)
    return filled.replace("${!", "${")


def iam_matches(pattern: str, value: str) -> bool:
    """IAM's wildcard matching of an ARN: `*` any run of characters (`/` too), `?` any one."""
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))
