"""The repository's documents link to files that exist, and to headings that exist in them: a
reader following a link from README.md or docs/ never lands on nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", ROOT / "devstack" / "README.md",
             *sorted((ROOT / "docs").glob("*.md"))]
# [text](target), not images' sources nor code spans: targets without spaces, as Markdown has.
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _links(document: Path) -> list[str]:
    text = FENCE.sub("", document.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(document: Path) -> set[str]:
    text = FENCE.sub("", document.read_text(encoding="utf-8"))
    return {_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def test_the_documents_have_relative_links_to_check() -> None:
    relative = [link for document in DOCUMENTS for link in _links(document)
                if not link.startswith(("http://", "https://", "mailto:"))]
    assert len(relative) >= 10


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_and_heading_of_the_repository(
        document: Path) -> None:
    for link in _links(document):
        if link.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, fragment = link.partition("#")
        target = (document.parent / path).resolve() if path else document
        assert target.is_relative_to(ROOT), f"{document.name}: {link} leaves the repository"
        assert target.exists(), f"{document.name}: {link} does not exist"
        if fragment:
            assert target.suffix == ".md", f"{document.name}: {link}: anchor in a non-document"
            assert fragment in _anchors(target), f"{document.name}: {link}: no such heading"
