"""The fenced ```python blocks of a Markdown file, for the tests that run the README's and the guides' examples
exactly as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)


def python_blocks(path: Path, section: str | None = None) -> list[str]:
    """The ```python blocks of ``path`` (only those under the heading ``section``, when given), in order."""
    text = path.read_text(encoding="utf-8")
    if section is not None:
        headings = [(m.start(), m.group(1).strip()) for m in _HEADING.finditer(text)]
        starts = [start for start, title in headings if title == section]
        if not starts:
            raise LookupError(f"{path.name} has no heading {section!r}")
        following = [start for start, _ in headings if start > starts[0]]
        text = text[starts[0] : following[0] if following else len(text)]
    return [match.group(1) for match in _FENCE.finditer(text)]


def code_lines(block: str) -> list[str]:
    """The lines of a block that do something: not blank, not a comment."""
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
