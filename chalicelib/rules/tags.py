"""User tags of runner instances and volumes (`RUNNER_EC2_TAGS`): read and checked, no I/O.

The value is a JSON object of strings (`{"Team": "ci"}`) or a `Key=Value,Key2=Value2` list.
Keys under `ghr:` are the system's (docs/REFERENCE.md §4: the cap counts `ghr:Owner`, scale-down
spares `ghr:bypass-removal=true`), so a user tag there is a configuration problem, never dropped
quietly nor allowed to override one: a deployment that asked for it learns at once.
"""

from __future__ import annotations

import json
import re

RESERVED_PREFIXES = ("ghr:", "aws:")
# EC2 allows 50 tags per resource. The system's own on an instance: the five of the launch
# request, the launch template's Name, ghr:ssm_config_path and ghr:runner_name_prefix, and the
# three written later (ghr:github_runner_id, ghr:orphan-suspected, ghr:interrupted).
EC2_TAG_LIMIT = 50
SYSTEM_TAGS = 11
MAX_USER_TAGS = EC2_TAG_LIMIT - SYSTEM_TAGS
# With instance tags in the instance metadata (the launch template's default), EC2 refuses keys
# with spaces or '/', and the keys '.', '..' and '_index': a launch would fail for every job.
KEY = re.compile(r"^[A-Za-z0-9+\-=.,_:@]{1,128}$")
FORBIDDEN_KEYS = (".", "..", "_index")
MAX_VALUE_LENGTH = 256

Tags = tuple[tuple[str, str], ...]


def parse_user_tags(text: str) -> Tags:
    """The (key, value) pairs of `text`; ValueError naming every problem."""
    text = text.strip()
    if not text:
        return ()
    pairs: list[tuple[str, object]] = [*(_json_pairs(text) if text.startswith(("{", "["))
                                          else _list_pairs(text))]
    problems = [problem for key, value in pairs for problem in _tag_problems(key, value)]
    keys = [key for key, _ in pairs]
    problems += [f"tag {key!r} given twice" for key in sorted(set(keys)) if keys.count(key) > 1]
    if len(pairs) > MAX_USER_TAGS:
        problems.append(f"{len(pairs)} tags, at most {MAX_USER_TAGS} (EC2 allows "
                        f"{EC2_TAG_LIMIT} per resource, {SYSTEM_TAGS} are the system's)")
    if problems:
        raise ValueError("; ".join(problems))
    return tuple((key, str(value)) for key, value in pairs)


def _json_pairs(text: str) -> list[tuple[str, object]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON ({error.msg} at position {error.pos})") from None
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object of tags or a Key=Value,... list")
    return [(str(key), item) for key, item in value.items()]


def _list_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"expected Key=Value, got {item!r}")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _tag_problems(key: str, value: object) -> list[str]:
    problems = []
    if not isinstance(value, str):
        return [f"tag {key!r}: the value must be a string"]
    if key.lower().startswith(RESERVED_PREFIXES):
        problems.append(f"tag {key!r}: keys under ghr: and aws: are reserved")
    elif not KEY.match(key) or key in FORBIDDEN_KEYS:
        problems.append(f"tag {key!r}: a key is 1 to 128 of A-Z a-z 0-9 + - = . , _ : @ "
                        "(EC2's rule with instance tags in the metadata)")
    if len(value) > MAX_VALUE_LENGTH:
        problems.append(f"tag {key!r}: value longer than {MAX_VALUE_LENGTH} characters")
    return problems
