"""Several GitHub Apps (REFERENCE §10) with the network off: the parameter lists, reading every
App's credentials, and which App serves an owner's next call."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.errors import ConfigError
from chalicelib.github.app_key import AppKeyring, load_all_credentials
from chalicelib.rules.github_apps import AppStanding, app_order
from chalicelib.settings import load_settings

BASE = {
    "ENVIRONMENT": "prod", "LAUNCH_TEMPLATE_NAME": "prod-runner", "SUBNET_IDS": "subnet-a",
    "SSM_TOKEN_PATH": "/ghr/prod/tokens", "SSM_CONFIG_PATH": "/ghr/prod/config",
    "STATE_TABLE_NAME": "prod-state",
}
ARN = "arn:aws:ssm:eu-west-1:123456789012:parameter/ghr/app/{}"


def settings_with(ids: str, keys: str):  # type: ignore[no-untyped-def]
    return load_settings({**BASE, "PARAMETER_GITHUB_APP_ID_NAME": ids,
                          "PARAMETER_GITHUB_APP_KEY_BASE64_NAME": keys}, "scale_up")


# -- the parameter lists --------------------------------------------------------------------------


def test_one_parameter_each_is_a_list_of_one() -> None:
    s = settings_with("/ghr/app/id", "/ghr/app/key")
    assert s.parameter_github_app_id_name == ("/ghr/app/id",)
    assert s.parameter_github_app_key_base64_name == ("/ghr/app/key",)


def test_lists_separated_by_commas_keep_their_order_and_lose_spaces() -> None:
    s = settings_with("/ghr/app/id, /ghr/app2/id", "/ghr/app/key,/ghr/app2/key")
    assert s.parameter_github_app_id_name == ("/ghr/app/id", "/ghr/app2/id")
    assert s.parameter_github_app_key_base64_name == ("/ghr/app/key", "/ghr/app2/key")


def test_lists_separated_by_colons_as_the_reference_module_writes_them() -> None:
    s = settings_with("/ghr/app/id:/ghr/app2/id", "/ghr/app/key:/ghr/app2/key")
    assert s.parameter_github_app_id_name == ("/ghr/app/id", "/ghr/app2/id")


def test_arns_keep_their_colons_and_are_listed_with_commas() -> None:
    s = settings_with(f"{ARN.format('id')},{ARN.format('id2')}",
                      f"{ARN.format('key')},{ARN.format('key2')}")
    assert s.parameter_github_app_id_name == (ARN.format("id"), ARN.format("id2"))
    single = settings_with(ARN.format("id"), ARN.format("key"))
    assert single.parameter_github_app_key_base64_name == (ARN.format("key"),)


def test_lists_of_different_lengths_are_one_problem_naming_both_variables() -> None:
    with pytest.raises(ConfigError) as raised:
        settings_with("/a/id,/b/id", "/a/key")
    problems = [p for p in raised.value.problems if "PARAMETER_GITHUB_APP_ID_NAME" in p]
    assert len(problems) == 1
    assert "PARAMETER_GITHUB_APP_KEY_BASE64_NAME" in problems[0]
    assert "2 ids and 1 keys" in problems[0]


def test_an_empty_element_is_named() -> None:
    with pytest.raises(ConfigError, match="PARAMETER_GITHUB_APP_ID_NAME: an empty parameter"):
        settings_with("/a/id,", "/a/key,/b/key")


# -- reading every App's credentials --------------------------------------------------------------


class RecordingSsm:
    """get_strings over a dict, recording the names of each call."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.calls: list[list[str]] = []

    def get_strings(self, names: Sequence[str]) -> dict[str, str]:
        assert len(names) <= 10, "GetParameters takes at most 10 names"
        self.calls.append(list(names))
        return {n: self.values[n] for n in names if n in self.values}


@pytest.fixture(scope="module")
def key_base64() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    return base64.b64encode(pem).decode()


def apps_in(n: int, key: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    pairs = [(f"/app{i}/id", f"/app{i}/key") for i in range(n)]
    values = {name: (str(100 + i) if name.endswith("id") else key)
              for i, pair in enumerate(pairs) for name in pair}
    return pairs, values


def test_two_apps_are_read_in_one_get_parameters_call(key_base64: str) -> None:
    pairs, values = apps_in(2, key_base64)
    ssm = RecordingSsm(values)

    found = load_all_credentials(ssm, pairs)  # type: ignore[arg-type]

    assert [c.app_id for c in found] == [100, 101]
    assert ssm.calls == [["/app0/id", "/app0/key", "/app1/id", "/app1/key"]]


def test_more_than_five_apps_are_read_five_a_call(key_base64: str) -> None:
    pairs, values = apps_in(7, key_base64)
    ssm = RecordingSsm(values)

    found = load_all_credentials(ssm, pairs)  # type: ignore[arg-type]

    assert [c.app_id for c in found] == list(range(100, 107))
    assert [len(names) for names in ssm.calls] == [10, 4]


def test_every_problem_of_every_app_is_named_at_once(key_base64: str) -> None:
    pairs, values = apps_in(3, key_base64)
    values["/app1/id"] = "not-a-number"
    del values["/app2/key"]

    with pytest.raises(ConfigError) as raised:
        load_all_credentials(RecordingSsm(values), pairs)  # type: ignore[arg-type]

    assert raised.value.problems == ["/app1/id: GitHub App id must be numeric",
                                     "/app2/key: SSM parameter not found"]
    assert key_base64 not in str(raised.value)


def test_the_keyring_reads_once_and_tells_which_app_changed_on_a_reload(key_base64: str) -> None:
    pairs, values = apps_in(2, key_base64)
    ssm = RecordingSsm(values)
    keyring = AppKeyring(ssm, pairs)  # type: ignore[arg-type]

    assert keyring.loaded(1) is None
    assert keyring.credentials(1).app_id == 101 and keyring.credentials(0).app_id == 100
    assert len(ssm.calls) == 1
    values["/app1/id"] = "201"
    assert keyring.reload(0) is False
    assert keyring.reload(1) is False  # the first reload already read 201
    assert keyring.credentials(1).app_id == 201 and len(ssm.calls) == 3


def test_no_app_configured_is_a_configuration_error_when_credentials_are_needed() -> None:
    with pytest.raises(ConfigError, match="PARAMETER_GITHUB_APP_ID_NAME"):
        AppKeyring(RecordingSsm({}), []).credentials(0)  # type: ignore[arg-type]


# -- which App serves the next call ---------------------------------------------------------------

NOW = 1_000_000.0


def test_apps_not_seen_yet_count_as_full_and_ties_go_to_list_order() -> None:
    assert app_order([AppStanding(0), AppStanding(1)], NOW) == (0, 1)
    assert app_order([AppStanding(0, remaining=4999, reset=NOW + 60), AppStanding(1)],
                     NOW) == (1, 0)


def test_the_app_with_the_most_remaining_goes_first() -> None:
    standings = [AppStanding(0, remaining=100, reset=NOW + 60),
                 AppStanding(1, remaining=3000, reset=NOW + 60),
                 AppStanding(2, remaining=3000, reset=NOW + 60)]
    assert app_order(standings, NOW) == (1, 2, 0)


def test_a_budget_whose_hour_has_passed_counts_as_full_again() -> None:
    spent = AppStanding(0, remaining=0, reset=NOW - 1)
    assert spent.budget(NOW) == math.inf
    assert app_order([spent, AppStanding(1, remaining=10, reset=NOW + 60)], NOW) == (0, 1)


def test_a_skipped_app_is_left_out_until_its_hour_is_over() -> None:
    standings = [AppStanding(0, skipped_until=NOW + 1), AppStanding(1, remaining=5, reset=NOW + 9)]
    assert app_order(standings, NOW) == (1,)
    assert app_order(standings, NOW + 1) == (0, 1)


def test_when_every_app_is_skipped_all_are_tried_in_list_order() -> None:
    standings = [AppStanding(1, skipped_until=NOW + 5), AppStanding(0, skipped_until=NOW + 5)]
    assert app_order(standings, NOW) == (0, 1)


@given(st.lists(st.tuples(st.none() | st.integers(0, 15_000), st.booleans()), min_size=1,
                max_size=6))
def test_the_order_holds_each_usable_app_once_best_budget_first(
        apps: list[tuple[int | None, bool]]) -> None:
    standings = [AppStanding(i, remaining=r, reset=NOW + 60,
                             skipped_until=NOW + 60 if skipped else 0.0)
                 for i, (r, skipped) in enumerate(apps)]
    order = app_order(standings, NOW)
    usable = [s for s in standings if not s.skipped_until] or standings
    assert sorted(order) == sorted(s.index for s in usable)
    budgets = [standings[i].budget(NOW) for i in order]
    if any(not s.skipped_until for s in standings):
        assert budgets == sorted(budgets, reverse=True)


def test_calls_under_way_spread_concurrent_calls_before_any_budget_is_seen() -> None:
    fresh = [AppStanding(0, in_flight=3), AppStanding(1, in_flight=2)]
    assert app_order(fresh, now=0.0)[0] == 1
    seen = [AppStanding(0, remaining=100, in_flight=10), AppStanding(1, remaining=95)]
    assert app_order(seen, now=0.0)[0] == 1  # 90 left once the calls under way are answered


def test_an_app_whose_installation_is_being_looked_up_is_tried_last() -> None:
    standings = [AppStanding(0, remaining=10, in_flight=4), AppStanding(1, probing=True)]
    assert app_order(standings, now=0.0) == (0, 1)
