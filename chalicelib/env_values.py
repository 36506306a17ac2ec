"""Reading environment variables: each converted, every problem recorded, none raised.

`settings.py` builds the settings with it; every bad value becomes one line of the single
`ConfigError` an operator gets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

T = TypeVar("T")


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
