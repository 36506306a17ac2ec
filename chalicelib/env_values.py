"""Reading environment variables: each converted, every problem recorded, none raised.

`settings.py` builds the settings with it; every bad value becomes one line of the single
`ConfigError` an operator gets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

T = TypeVar("T")
NAMESPACE_PATTERN = re.compile(r"^[A-Za-z0-9 ._\-/#:]{1,255}$")


class EnvReader:
    """Reads variables, converting each and recording every problem instead of stopping."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def get(self, name: str, default: Any, convert: Callable[[str], T]) -> T:
        text = self.raw(name)
        if text is None:
            return cast(T, default)
        try:
            return convert(text)
        except (ValueError, TypeError) as error:
            self.problems.append(f"{name}: {error}")
            return cast(T, default)

    def text(self, name: str, default: str = "") -> str:
        return self.get(name, default, str)


def bool_value(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def int_value(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def minutes_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number of minutes, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"expected a finite number of minutes, got {text!r}")
    return value


def comma_list_value(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def parameter_list_value(text: str) -> tuple[str, ...]:
    """SSM parameter names separated by `,`, or by `:` as the reference module writes them when
    none is an ARN (an ARN holds colons of its own)."""
    separator = "," if "," in text or "arn:" in text else ":"
    names = tuple(item.strip() for item in text.split(separator))
    if not all(names):
        raise ValueError(f"an empty parameter name in {text!r}")
    return names


def json_string_list_value(text: str) -> tuple[str, ...]:
    value = json_value(text)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("expected a JSON list of strings")
    return tuple(value)


def json_string_lists_value(text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A JSON object of name -> list of strings (a lone string is a list of one), in order."""
    value = json_value(text)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object of name: [values]")
    items = {key: [item] if isinstance(item, str) else item for key, item in value.items()}
    bad = sorted(key for key, item in items.items() if not isinstance(item, list) or not item
                 or not all(isinstance(v, str) and v for v in item))
    if bad:
        raise ValueError(f"expected a non-empty list of strings for {', '.join(bad)}")
    return tuple((key, tuple(item)) for key, item in items.items())


def url_value(text: str) -> str:
    if not text.startswith(("https://", "http://")):
        raise ValueError(f"expected an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def namespace_value(text: str) -> str:
    """A CloudWatch metric namespace: up to 255 of A-Z a-z 0-9 space . - _ / # :, not AWS/."""
    if not NAMESPACE_PATTERN.match(text) or text.startswith("AWS/"):
        raise ValueError(f"expected a CloudWatch namespace (not AWS/...), got {text!r}")
    return text


def json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON ({error.msg} at position {error.pos})") from None


def choice_value(options: tuple[str, ...]) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text not in options:
            raise ValueError(f"{text!r} is not one of {', '.join(options)}")
        return text

    return convert
