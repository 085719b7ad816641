"""Entries of a Google-style docstring section, so that flag help is the documentation itself."""

from __future__ import annotations

import re

_ENTRY = re.compile(r"([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*:\s+(.*)")


def doc_entries(doc: str | None, section: str) -> dict[str, str]:
    """``{name: text}`` of a docstring's ``section`` (``"Args"``, ``"Attributes"``).

    An entry is ``name: text`` (or ``a, b: text``, the text shared) at the section's first
    indentation; deeper-indented lines continue it. The section ends at a line indented no
    deeper than its header.
    """
    entries: dict[str, str] = {}
    lines = (doc or "").expandtabs().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == f"{section}:"), None)
    if start is None:
        return entries
    header = len(lines[start]) - len(lines[start].lstrip())
    indent, names = None, []
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth <= header:
            break
        indent = depth if indent is None else indent
        match = _ENTRY.fullmatch(line.strip()) if depth == indent else None
        if match:
            names = [n.strip() for n in match.group(1).split(",")]
            entries.update({n: match.group(2).strip() for n in names})
        else:
            entries.update({n: f"{entries[n]} {line.strip()}" for n in names})
    return entries
