"""The launch ledger: recent launches EC2 does not list yet, per owner, for a window."""

from __future__ import annotations

from chalicelib.services.launch_ledger import LaunchLedger


def test_recent_launches_not_listed_are_counted() -> None:
    ledger = LaunchLedger(window=60)
    ledger.record("acme", "Org", ["i-1", "i-2", "i-3"], now=100)

    assert ledger.unlisted("acme", "Org", [], now=101) == 3
    assert ledger.unlisted("acme", "Org", ["i-1", "i-9"], now=101) == 2


def test_owners_and_runner_types_are_apart() -> None:
    ledger = LaunchLedger(window=60)
    ledger.record("acme", "Org", ["i-1"], now=100)
    ledger.record("acme/app", "Repo", ["i-2", "i-3"], now=100)

    assert ledger.unlisted("acme", "Org", [], now=100) == 1
    assert ledger.unlisted("acme", "Repo", [], now=100) == 0
    assert ledger.unlisted("acme/app", "Repo", [], now=100) == 2


def test_launches_older_than_the_window_are_forgotten() -> None:
    ledger = LaunchLedger(window=60)
    ledger.record("acme", "Org", ["i-1"], now=100)
    ledger.record("acme", "Org", ["i-2"], now=130)

    assert ledger.unlisted("acme", "Org", [], now=159.9) == 2
    assert ledger.unlisted("acme", "Org", [], now=160) == 1
    assert ledger.unlisted("acme", "Org", [], now=190) == 0


def test_jobs_launched_for_are_remembered_for_the_job_window() -> None:
    ledger = LaunchLedger(job_window=600)
    ledger.record_jobs([("acme/app", 1), ("acme/app", 2)], now=100)

    assert ledger.recent_jobs(now=699) == {("acme/app", 1), ("acme/app", 2)}
    assert ledger.recent_jobs(now=700) == frozenset()


def test_recording_forgets_what_is_past_the_window() -> None:
    # With no cap nothing asks for the unlisted count, so recording must not only grow.
    ledger = LaunchLedger(window=60)
    ledger.record("acme", "Org", ["i-1"], now=100)
    ledger.record("acme", "Org", ["i-2"], now=200)

    assert ledger._launched[("acme", "Org")] == {"i-2": 200}
