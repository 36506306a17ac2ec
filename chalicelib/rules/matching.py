"""Which runner configuration a queued job goes to (docs/REFERENCE.md §6): the reference
system's label matching, as a pure function of the job's labels and the configurations'
matchers.

Labels compare case-insensitively. A matcher holds label sets and a mode:

- `exact`: one label set holds every job label (the job may ask for fewer labels);
- `bidirectional`: the job's labels equal one label set;
- neither: any one job label is in one label set.

A job without labels matches only a matcher with neither flag (the reference's rule: such a job
cannot ask for anything in particular). Candidates are tried strict ones first (exact or
bidirectional), then by `priority` (lower first), then in list order; the first match wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DEFAULT_PRIORITY = 999


@dataclass(frozen=True)
class Matcher:
    """The `matcherConfig` of one configuration, its label sets lower-cased."""

    label_sets: tuple[frozenset[str], ...]
    exact: bool = False
    bidirectional: bool = False
    priority: int = DEFAULT_PRIORITY

    @property
    def strict(self) -> bool:
        """Exact or bidirectional: tried before the loose matchers."""
        return self.exact or self.bidirectional


def matcher_of(label_sets: Iterable[Iterable[str]], exact: bool = False,
               bidirectional: bool = False, priority: int = DEFAULT_PRIORITY) -> Matcher:
    """A matcher over `label_sets`, compared without case."""
    return Matcher(tuple(frozenset(label.lower() for label in labels) for labels in label_sets),
                   exact, bidirectional, priority)


def default_matcher(runner_labels: Iterable[str]) -> Matcher:
    """The matcher of a configuration without `matcherConfig`: its own labels (GitHub's
    defaults and `RUNNER_LABELS`), exactly; the behaviour of one configuration."""
    return matcher_of([runner_labels], exact=True)


def matches(job_labels: Iterable[str], matcher: Matcher) -> bool:
    """Whether a job with `job_labels` may run on a runner of `matcher`."""
    wanted = frozenset(label.lower() for label in job_labels)
    if not wanted:
        return not matcher.strict
    if matcher.bidirectional:
        return any(wanted == labels for labels in matcher.label_sets)
    if matcher.exact:
        return any(wanted <= labels for labels in matcher.label_sets)
    return any(wanted & labels for labels in matcher.label_sets)


def candidate_order(matchers: Sequence[Matcher]) -> list[int]:
    """The positions of `matchers` in the order they are tried: strict first, then by
    priority, then in list order."""
    return sorted(range(len(matchers)),
                  key=lambda n: (not matchers[n].strict, matchers[n].priority, n))


def choose(job_labels: Sequence[str], matchers: Sequence[Matcher]) -> int | None:
    """The position of the configuration a job goes to, or None when no matcher takes it."""
    for position in candidate_order(matchers):
        if matches(job_labels, matchers[position]):
            return position
    return None
