"""The small text markup of education pages, consent documents and instruction sheets.

Content is written by clinicians as data, so it is plain text with three conventions:

- source keys in brackets, ``[S10]`` or ``[S26-Mayo]``, and the two special keys
  ``[clinic-policy]`` and ``[evidence-review]``: rendered as links to the sources page;
- ``**words**`` for emphasis;
- in whole documents (consent text): ``# Heading`` lines, ``- item`` lines, and paragraphs
  separated by blank lines.

Everything else is escaped; no HTML from content ever reaches the page unescaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

CITATION = re.compile(r"\[(S\d+(?:-[A-Za-z]+)?|clinic-policy|evidence-review)\]")
EMPHASIS = re.compile(r"\*\*(.+?)\*\*")
SPECIAL_KEYS = ("clinic-policy", "evidence-review")


def cited_keys(text: str) -> list[str]:
    """The source keys a text cites, in order of appearance (repeats kept)."""
    return CITATION.findall(text)


def strip_citations(text: str) -> str:
    """The text without its source keys (for places where links cannot follow, e.g. PDF)."""
    return re.sub(r"\s+([.,;:])", r"\1", CITATION.sub("", text)).strip()


def render_inline(text: str, sources_url: str) -> SafeString:
    """One paragraph or list item as safe HTML, each source key a link to its entry."""
    html = str(escape(text))
    html = EMPHASIS.sub(r"<strong>\1</strong>", html)

    def link(match: re.Match[str]) -> str:
        key = match.group(1)
        return str(format_html('<a class="cite" href="{}#{}">[{}]</a>', sources_url, key, key))

    return mark_safe(CITATION.sub(link, html))  # built from escaped text


@dataclass(frozen=True)
class Block:
    kind: str  # "heading", "paragraph" or "list"
    lines: tuple[str, ...]


def parse_blocks(text: str) -> list[Block]:
    """Split a document into headings, paragraphs and lists."""
    blocks: list[Block] = []
    para: list[str] = []
    items: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(Block("paragraph", (" ".join(para),)))
            para.clear()
        if items:
            blocks.append(Block("list", tuple(items)))
            items.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            flush()
        elif line.startswith("# "):
            flush()
            blocks.append(Block("heading", (line[2:].strip(),)))
        elif line.startswith("- "):
            if para:
                flush()
            items.append(line[2:].strip())
        else:
            if items:
                flush()
            para.append(line)
    flush()
    return blocks


def render_document(text: str, sources_url: str, *, for_patient: bool = False) -> SafeString:
    """A whole document (consent text) as safe HTML.

    ``for_patient``: the text a patient reads, without source keys (the stored record keeps
    them, and the staff view links them)."""

    def inline(item: str) -> str:
        return str(render_inline(strip_citations(item) if for_patient else item, sources_url))

    parts: list[str] = []
    for block in parse_blocks(text):
        if block.kind == "heading":
            parts.append(str(format_html("<h2>{}</h2>", block.lines[0])))
        elif block.kind == "paragraph":
            parts.append(f"<p>{inline(block.lines[0])}</p>")
        else:
            lis = "".join(f"<li>{inline(item)}</li>" for item in block.lines)
            parts.append(f"<ul>{lis}</ul>")
    return mark_safe("\n".join(parts))  # every part is escaped above
