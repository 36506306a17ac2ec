"""Routing a queued job to a runner configuration (docs/REFERENCE.md §6): the reference
system's label matching, as plain functions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.rules.matching import (
    candidate_order,
    choose,
    default_matcher,
    matcher_of,
    matches,
)
from chalicelib.rules.webhook_payload import labels_match

LINUX = ["self-hosted", "linux", "x64"]
labels = st.lists(st.sampled_from(["self-hosted", "Linux", "linux", "x64", "ARM64", "gpu"]),
                  max_size=5)
label_sets = st.lists(labels.filter(bool), min_size=1, max_size=3)


def test_exact_match_takes_a_job_whose_labels_one_set_holds() -> None:
    matcher = matcher_of([LINUX], exact=True)
    assert matches(["self-hosted", "linux"], matcher)
    assert matches(["SELF-HOSTED", "Linux", "X64"], matcher)  # case-insensitive
    assert not matches(["self-hosted", "linux", "gpu"], matcher)


def test_bidirectional_match_wants_the_job_labels_to_equal_one_set() -> None:
    matcher = matcher_of([LINUX, ["self-hosted", "gpu"]], bidirectional=True)
    assert matches(["gpu", "Self-Hosted"], matcher)
    assert not matches(["self-hosted", "linux"], matcher)  # a subset is not enough
    assert not matches([*LINUX, "gpu"], matcher)


def test_loose_match_takes_a_job_sharing_any_one_label() -> None:
    matcher = matcher_of([["gpu"]])
    assert matches(["self-hosted", "GPU"], matcher)
    assert not matches(["self-hosted", "linux"], matcher)


def test_a_job_without_labels_matches_only_a_matcher_with_neither_flag() -> None:
    assert matches([], matcher_of([LINUX]))
    assert not matches([], matcher_of([LINUX], exact=True))
    assert not matches([], matcher_of([LINUX], bidirectional=True))


def test_strict_matchers_are_tried_first_then_priority_then_list_order() -> None:
    loose_urgent = matcher_of([["linux"]], priority=1)
    exact_late = matcher_of([LINUX], exact=True, priority=500)
    exact_early = matcher_of([LINUX], exact=True, priority=10)
    exact_tie = matcher_of([LINUX], exact=True, priority=10)
    matchers = [loose_urgent, exact_late, exact_early, exact_tie]
    assert candidate_order(matchers) == [2, 3, 1, 0]
    assert choose(["self-hosted", "linux"], matchers) == 2
    # Only the loose one takes a job with a label no exact set holds.
    assert choose(["linux", "gpu"], matchers) == 0
    assert choose(["windows"], matchers) is None


def test_priority_ties_go_to_list_order() -> None:
    first, second = matcher_of([["gpu"]], priority=5), matcher_of([["gpu"]], priority=5)
    assert choose(["gpu"], [first, second]) == 0
    assert choose(["gpu"], [second, matcher_of([["gpu"]], priority=4)]) == 1


@given(labels, labels)
def test_the_default_matcher_is_todays_label_check(job: list[str], runner: list[str]) -> None:
    # One configuration without matcherConfig routes exactly as the webhook always did.
    expected = bool(job) and {x.lower() for x in job} <= {x.lower() for x in runner}
    assert matches(job, default_matcher(runner)) is expected
    assert labels_match(job, runner) is expected


@given(labels, st.lists(st.tuples(label_sets, st.booleans(), st.booleans(),
                                  st.integers(0, 3)), min_size=1, max_size=4))
def test_the_chosen_configuration_matches_and_none_tried_before_it_does(
        job: list[str], specs: list[tuple[list[list[str]], bool, bool, int]]) -> None:
    matchers = [matcher_of(sets, exact, bidirectional, priority)
                for sets, exact, bidirectional, priority in specs]
    chosen = choose(job, matchers)
    order = candidate_order(matchers)
    if chosen is None:
        assert not any(matches(job, m) for m in matchers)
    else:
        assert matches(job, matchers[chosen])
        assert not any(matches(job, matchers[n]) for n in order[:order.index(chosen)])
    # Whatever the case the job's labels are written in.
    assert choose([x.upper() for x in job], matchers) == chosen
