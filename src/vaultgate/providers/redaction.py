"""Finding a provider credential, or an echo of one, in text a provider sent back.

A provider may repeat the key it was sent in an error message: whole, in another letter
case, or masked the way key dashboards show them (``sk-proj-****abcd``, ``sk-FAKES...cdef``).
Each form is replaced with ``***``:

- the whole key, in any letter case, wherever it stands (inside a longer word too);
- its first or last ``MIN_ECHO`` characters or more;
- a mask (``***``, ``...``, ``•••``, ``…``) with a start of the key right before it and an
  end of the key right after it, ``MIN_MASKED_VISIBLE`` characters or more in all.

Ordinary text survives: a random key's first eight characters, or a run of dots between
pieces of its start and end, do not occur in prose by chance.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

REDACTED = "***"
MIN_SECRET = 4
MIN_ECHO = 8
MIN_MASKED_VISIBLE = 4
# How far from a mask a visible piece of the key is looked for.
MAX_VISIBLE = 64
MASK = re.compile(r"[*.\u2022]{2,}|\u2026")

Span = tuple[int, int]


def redact_secret(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` and every echo of it replaced by ``***``."""
    if not secret or len(secret) < MIN_SECRET:
        return text
    spans = list(_whole(text, secret))
    if len(secret) > MIN_ECHO:
        spans += [*_starts(text, secret), *_ends(text, secret), *_masked(text, secret)]
    return _blank(text, spans)


def _whole(text: str, secret: str) -> Iterator[Span]:
    for found in re.finditer(re.escape(secret), text, re.IGNORECASE):
        yield found.span()


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _starts(text: str, secret: str) -> Iterator[Span]:
    """Runs of text that repeat the key's first characters, extended as far as they go."""
    for found in re.finditer(re.escape(secret[:MIN_ECHO]), text, re.IGNORECASE):
        end, matched = found.end(), MIN_ECHO
        while end < len(text) and matched < len(secret) and _same(text[end], secret[matched]):
            end, matched = end + 1, matched + 1
        yield found.start(), end


def _ends(text: str, secret: str) -> Iterator[Span]:
    """Runs of text that repeat the key's last characters, extended as far back as they go."""
    for found in re.finditer(re.escape(secret[-MIN_ECHO:]), text, re.IGNORECASE):
        start, matched = found.start(), MIN_ECHO
        while start > 0 and matched < len(secret) and _same(text[start - 1], secret[-matched - 1]):
            start, matched = start - 1, matched + 1
        yield start, found.end()


def _masked(text: str, secret: str) -> Iterator[Span]:
    """Masks with a start of the key before them and an end of it after them."""
    for mask in MASK.finditer(text):
        head = _visible_start(text[max(mask.start() - MAX_VISIBLE, 0) : mask.start()], secret)
        tail = _visible_end(text[mask.end() : mask.end() + MAX_VISIBLE], secret)
        if head + tail >= MIN_MASKED_VISIBLE:
            yield mask.start() - head, mask.end() + tail


def _visible_start(before: str, secret: str) -> int:
    """How many of the key's first characters ``before`` ends with (0 to MAX_VISIBLE)."""
    most = min(len(before), len(secret) - 1, MAX_VISIBLE)
    return next((n for n in range(most, 0, -1) if _same(before[-n:], secret[:n])), 0)


def _visible_end(after: str, secret: str) -> int:
    """How many of the key's last characters ``after`` starts with (0 to MAX_VISIBLE)."""
    most = min(len(after), len(secret) - 1, MAX_VISIBLE)
    return next((n for n in range(most, 0, -1) if _same(after[:n], secret[-n:])), 0)


def _blank(text: str, spans: list[Span]) -> str:
    """``text`` with each span, overlapping ones merged, replaced by ``***``."""
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces, done = [], 0
    for start, end in merged:
        pieces += [text[done:start], REDACTED]
        done = end
    return "".join([*pieces, text[done:]])
