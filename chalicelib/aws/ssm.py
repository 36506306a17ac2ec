"""The SSM Parameter Store adapter, for every parameter the functions read or write: runner
tokens and JIT configs, the runner-group id cache, the App credentials, the webhook secret.

Raw SSM dictionaries stop here; callers get strings, `ParameterInfo` and the project's errors.
The client retries throttling itself (Parameter Store allows about 40 TPS per account).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import error_code, translate
from chalicelib.errors import PermanentError
from chalicelib.logs import get_logger

log = get_logger(__name__)

# The Standard tier holds values up to 4 KB; a JIT config with many labels can pass that.
STANDARD_TIER_MAX_BYTES = 4096
# DeleteParameters takes at most 10 names per call.
DELETE_CHUNK = 10


@dataclass(frozen=True)
class ParameterInfo:
    """A parameter's name and when it was last written (no value)."""

    name: str
    last_modified: datetime


def tier_for(value: str) -> str:
    """"Standard" for values up to 4 KB, "Advanced" above (R-SSM-06)."""
    return "Advanced" if len(value.encode("utf-8")) > STANDARD_TIER_MAX_BYTES else "Standard"


class Ssm:
    """Parameter Store as the functions use it, over an injected boto3 SSM client."""

    def __init__(self, client: Any, token_key_id: str | None = None) -> None:
        self.client = client
        # The KMS key of runner configurations (RUNNER_TOKEN_KMS_KEY_ID): the one the runner
        # role may decrypt with. None leaves SSM's default key (aws/ssm).
        self.token_key_id = token_key_id

    def put_runner_config(self, name: str, value: str, tags: Mapping[str, str] | None = None,
                          key_id: str | None = None) -> None:
        """Write a secret runner configuration as a SecureString, overwriting any old one, with
        `key_id` (a runner configuration's RUNNER_TOKEN_KMS_KEY_ID) or the adapter's key.

        With `tags` (e.g. the instance id an instance policy matches on), the parameter is
        created with them; SSM refuses tags together with Overwrite, so a parameter that
        already exists is overwritten without them.
        """
        base = {"Name": name, "Value": value, "Type": "SecureString", "Tier": tier_for(value)}
        key = key_id or self.token_key_id
        if key:
            base["KeyId"] = key
        try:
            if tags:
                try:
                    self.client.put_parameter(
                        **base, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
                    return
                except ClientError as error:
                    if error_code(error) != "ParameterAlreadyExists":
                        raise
            self.client.put_parameter(**base, Overwrite=True)
        except (ClientError, BotoCoreError) as error:
            # Never the value in the message: it is a registration token or a JIT config.
            raise translate(error, f"ssm PutParameter {name}") from error

    def get_string(self, name: str) -> str | None:
        """The (decrypted) value of `name`, or None when it does not exist."""
        found = self.get_versioned(name)
        return None if found is None else found[0]

    def get_versioned(self, name: str) -> tuple[str, int] | None:
        """The (decrypted) value of `name` and its version, or None when it does not exist."""
        try:
            answer = self.client.get_parameter(Name=name, WithDecryption=True)
        except ClientError as error:
            if error_code(error) == "ParameterNotFound":
                return None
            raise translate(error, f"ssm GetParameter {name}") from error
        except BotoCoreError as error:
            raise translate(error, f"ssm GetParameter {name}") from error
        return str(answer["Parameter"]["Value"]), int(answer["Parameter"].get("Version", 1))

    def get_strings(self, names: Sequence[str]) -> dict[str, str]:
        """The (decrypted) values of `names` in one GetParameters call (at most 10 names); a
        parameter that does not exist is absent from the answer."""
        try:
            answer = self.client.get_parameters(Names=list(names), WithDecryption=True)
        except (ClientError, BotoCoreError) as error:
            raise translate(error, "ssm GetParameters " + ", ".join(names)) from error
        return {str(p["Name"]): str(p.get("Value", "")) for p in answer.get("Parameters", [])}

    def put_string(self, name: str, value: str) -> None:
        """Write a plain String parameter, overwriting any old one."""
        try:
            self.client.put_parameter(Name=name, Value=value, Type="String",
                                      Tier=tier_for(value), Overwrite=True)
        except (ClientError, BotoCoreError) as error:
            raise translate(error, f"ssm PutParameter {name}") from error

    def parameters_under(self, path: str) -> list[ParameterInfo]:
        """Every parameter under `path` (recursively), with its last modification time. The
        root is refused: its parameters are not one function's to judge."""
        if not path.strip("/"):
            raise PermanentError(f"ssm DescribeParameters: refusing to list the root ({path!r})")
        found: list[ParameterInfo] = []
        try:
            # DescribeParameters returns metadata only: no values, no decryption, 50 a page.
            pages = self.client.get_paginator("describe_parameters").paginate(
                ParameterFilters=[{"Key": "Path", "Option": "Recursive",
                                   "Values": [path.rstrip("/") or "/"]}],
                PaginationConfig={"PageSize": 50},
            )
            for page in pages:
                for item in page.get("Parameters", []):
                    found.append(ParameterInfo(name=str(item["Name"]),
                                               last_modified=item["LastModifiedDate"]))
        except (ClientError, BotoCoreError) as error:
            raise translate(error, f"ssm DescribeParameters {path}") from error
        return found

    def delete_parameters(self, names: Sequence[str]) -> None:
        """Delete `names`, ten per DeleteParameters call; already-gone names are fine."""
        unique = list(dict.fromkeys(names))
        for start in range(0, len(unique), DELETE_CHUNK):
            chunk = unique[start:start + DELETE_CHUNK]
            try:
                self.client.delete_parameters(Names=chunk)
            except (ClientError, BotoCoreError) as error:
                raise translate(error, f"ssm DeleteParameters {chunk[0]}...") from error
