"""The config.sh arguments of docs/REFERENCE.md §4 reach the runner as sh would split them.

Scale-up quotes each argument with Python's shlex.quote; the real start-runner.sh must split the
stored value into the same words (never by whitespace alone, never through eval). The cases are
tests/fixtures/config_args_vectors.json, which devstack's runner simulation is held to as well
(tests/adapters/test_runner_sim.py).
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from infra_support import ROOT
from start_script import INSTANCE, SECRET, boot, put_token

VECTORS: dict[str, Any] = json.loads(
    (ROOT / "tests" / "fixtures" / "config_args_vectors.json").read_text())
SPLIT = VECTORS["split"]
REFUSED = VECTORS["refused"]
URL = "https://github.com/acme"


def _case(vector: dict[str, Any]) -> str:
    return str(vector["case"])


def sh_words(value: str, directory: Path) -> list[str]:
    """What sh itself makes of `value` as the words of a command (the oracle of the table)."""
    result = subprocess.run(["sh", "-c", 'eval "set -- $1"; printf "%s\\0" "$@"', "sh", value],
                            cwd=directory, capture_output=True, check=True, timeout=10)
    return result.stdout.decode().split("\0")[:-1]


@pytest.mark.parametrize("vector", SPLIT, ids=_case)
def test_the_table_says_what_sh_itself_makes_of_each_value(
        vector: dict[str, Any], tmp_path: Path) -> None:
    # Only accepted values reach sh here: none of them expands or runs anything.
    assert sh_words(vector["value"], tmp_path) == vector["args"]


@pytest.mark.parametrize("vector", [v for v in SPLIT if v["shlex"]], ids=_case)
def test_the_scale_up_form_is_shlex_quote_of_each_argument(vector: dict[str, Any]) -> None:
    assert " ".join(shlex.quote(arg) for arg in vector["args"]) == vector["value"]


@pytest.mark.parametrize("vector", SPLIT, ids=_case)
def test_the_start_script_hands_config_sh_each_argument_whole(
        vector: dict[str, Any], instance: Path) -> None:
    put_token(instance, f"--url {URL} --token {SECRET} {vector['value']}")

    run = boot(instance)

    assert run.exit_code == 0, run.everything_printed
    assert run.config_args == ["--unattended", "--name", f"pre-{INSTANCE}", "--work", "_work",
                               "--url", URL, *vector["args"]]
    assert "token=" + SECRET in run.text("runner.log")
    assert not (instance / "pwned").exists() and not Path("/tmp/pwned").exists()


@pytest.mark.parametrize("vector", REFUSED, ids=_case)
def test_the_start_script_refuses_a_value_sh_would_expand_and_terminates(
        vector: dict[str, Any], instance: Path) -> None:
    put_token(instance, f"--url {URL} --token {SECRET} {vector['value']}")

    run = boot(instance)

    assert run.exit_code != 0
    assert "not a line of shell-quoted words" in run.everything_printed
    assert run.config_args is None
    assert SECRET not in run.everything_printed + run.command_lines
    assert run.terminated()
