"""`python -m bench --only NAME --update`: rewrite the sections of the workloads run in an
existing BENCHMARKS.md and keep every other section as it was, so that one workload can be
measured again after a change without the twenty minutes of the whole suite.

The header says which sections were measured when; the Verdict is read again from every
section's table (its `✗ MISSED` rows and `**Failed:**` lines), old and new alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from bench.common import Result, markdown

SECTION = re.compile(r"^### (?P<title>.+)$", re.MULTILINE)
MISSED_ROW = re.compile(r"^\| (?P<figure>[^|]+?) \|[^\n]*✗ MISSED", re.MULTILINE)


def sections(text: str) -> dict[str, str]:
    """The workload sections of a report by title, each from its heading to the next one (or
    to the Verdict), in the report's order."""
    figures = text.split("\n## Verdict", 1)[0]
    found = list(SECTION.finditer(figures))
    return {match.group("title"): figures[match.start():(found[n + 1].start()
                                                           if n + 1 < len(found) else None)]
            for n, match in enumerate(found)}


def updated(old: str, results: Sequence[Result], titles: Sequence[tuple[str, str]],
            command: str, when: datetime | None = None) -> str:
    """`old` with the sections of `results` replaced (or added in `titles` order: the
    (name, title) of every workload), the header noting the update, the Verdict read again."""
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    fresh = markdown(results, command, when)
    kept, new = sections(old), sections(fresh)
    body = [new.get(title) or kept[title] for _, title in titles if title in new or title in kept]
    head = old.split("\n## Figures", 1)[0].rstrip("\n")
    names = ", ".join(f"`{r.workload.name}`" for r in results)
    note = f"Sections {names} measured again by `{command}` on {stamp}; the others as written."
    lines = [head, "", note, "", "## Figures", "", *(part.rstrip("\n") + "\n" for part in body)]
    return "\n".join(lines) + "\n" + verdict(body, titles)


def verdict(body: Sequence[str], titles: Sequence[tuple[str, str]]) -> str:
    """The Verdict of the sections in `body`."""
    name_of = {title: name for name, title in titles}
    missed, failed = [], []
    for part in body:
        name = name_of.get(SECTION.match(part).group("title"), "?")  # type: ignore[union-attr]
        if "**Failed:**" in part:
            failed.append(name)
        missed += [f"{name}.{m.group('figure')}" for m in MISSED_ROW.finditer(part)]
    lines = ["## Verdict", ""]
    if not missed and not failed:
        lines.append("Every workload ran and every target was met.")
    if failed:
        lines.append(f"Failed workloads: {', '.join(failed)}.")
    if missed:
        lines.append(f"Targets missed: {', '.join(missed)}.")
    return "\n".join(lines) + "\n"
