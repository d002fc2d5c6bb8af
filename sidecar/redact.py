"""Keep submitted values out of text that goes to logs, errors and the dashboard.

A partner's error message often echoes what it rejected ("email jane@x.org is
invalid", "file Jane_Doe_HIV_result.pdf rejected", "diagnosis 'Type 2
diabetes'"), in part, in another case, HTML-escaped (`O&#39;Brien`) or cut
short. `Masker(values).mask(text)` replaces, in the partner's own text:

- every word of 4+ characters that is a word of a value (or of a file name:
  values are split into words on anything that is not a letter or digit, so
  `Jane_Doe_HIV_result.pdf` gives jane, doe, hiv, result, pdf);
- every run of 2+ consecutive words that are consecutive in a value (any
  n-gram of 2+ words is a chain of such pairs), short words included;
- a value that is one word of 3 characters wherever that word stands alone;
- when the text was cut, its last word if it begins a value word (a value
  cut in half);
- anything shaped like an e-mail address or a number of 5+ digits/separators.

Words are compared after HTML-unescaping (`&#39;`, `&amp;`, `&eacute;`...),
percent-decoding (`%20`), compatibility normalisation (NFKD, accents dropped)
and case-folding, on both sides; the masked spans are the partner's original
characters, and the rest of its wording stays as it was written. Adjacent
masked words become one `[redacted]`, so the output does not even say how many
words were there. The text is cut to `limit` characters *before* masking (a
cut after masking could only remove text); values of 1-2 characters are not
masked as words (they would mask the partner's own "no", "to", "ID").
Pure functions: no I/O.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

MASK = "[redacted]"
MIN_WORD = 4  # a single value word this long or longer is masked wherever it stands
MIN_WHOLE = 3  # a value that is one word is masked from this length
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?"
                     r"|%[0-9A-Fa-f]{2}")
_WORD = re.compile(r"[^\W_]+")  # letters and digits: _ - . and spaces all separate words
_SHAPES = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail addresses
    r"|\+?\d[\d\s().-]{3,}\d"  # phone, id and card numbers, dates written with digits
)


def fold(text: str) -> str:
    """`text` as words are compared: compatibility-decomposed, accents dropped, case-folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@dataclass(frozen=True)
class _Folded:
    """Text after unescaping and folding, with each character's span in the original."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]


def _folded(original: str) -> _Folded:
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for unit, start, end in _units(original):
        for ch in fold(unit):
            chars.append(ch)
            starts.append(start)
            ends.append(end)
        pos = end
    assert pos == len(original)
    return _Folded("".join(chars), tuple(starts), tuple(ends))


def _units(text: str) -> Iterable[tuple[str, int, int]]:
    """(decoded unit, start, end): an entity or %XX escape is one unit, any other char another."""
    pos = 0
    for m in _ENTITY.finditer(text):
        for i in range(pos, m.start()):
            yield text[i], i, i + 1
        raw = m.group()
        if raw.startswith("%"):
            code = int(raw[1:], 16)
            decoded = chr(code) if code < 0x80 else raw
        else:
            decoded = html.unescape(raw)
        yield decoded, m.start(), m.end()
        pos = m.end()
    for i in range(pos, len(text)):
        yield text[i], i, i + 1


def words(text: str) -> list[str]:
    """The compared words of `text` (unescaped, folded), in order."""
    return _WORD.findall(_folded(text).text)


class Masker:
    """Masks `values` (submitted values and original file names) in partner text."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        singles: set[str] = set()
        pairs: set[tuple[str, str]] = set()
        prefixes: set[str] = set()
        for value in values:
            found = words(str(value))
            if len(found) == 1 and len(found[0]) >= MIN_WHOLE:
                singles.add(found[0])
            for word in found:
                if len(word) >= MIN_WORD:
                    singles.add(word)
                if len(word) >= 2:
                    prefixes.add(word)
            pairs.update(pairwise(found))
        self.singles = frozenset(singles)
        self.pairs = frozenset(pairs)
        self.prefix_words = tuple(sorted(prefixes))

    def mask(self, text: str, limit: int = 300) -> str:
        """`text` cut to `limit` characters (the last one "…" if cut), then masked, one line."""
        cut = len(text) > limit
        if cut:
            text = text[:max(0, limit - 1)]
        folded = _folded(text)
        spans: list[tuple[int, int]] = []
        tokens = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(folded.text)]
        hidden = [False] * len(tokens)
        for i, (word, _, _) in enumerate(tokens):
            if word in self.singles:
                hidden[i] = True
            if i and (tokens[i - 1][0], word) in self.pairs:
                hidden[i - 1] = hidden[i] = True
        if cut and tokens and tokens[-1][2] == len(folded.text) and self._begins_value(
                tokens[-1][0]):
            hidden[-1] = True
        for flag, (_, start, end) in zip(hidden, tokens, strict=True):
            if flag:
                spans.append((folded.starts[start], folded.ends[end - 1]))
        for m in _SHAPES.finditer(folded.text):
            spans.append((folded.starts[m.start()], folded.ends[m.end() - 1]))
        return " ".join(_replace(text, spans).split()) + ("…" if cut else "")

    def _begins_value(self, partial: str) -> bool:
        return any(word.startswith(partial) for word in self.prefix_words)


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each span (merged when only non-word characters lie between) masked."""
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and (start <= merged[-1][1] or not _WORD.search(
                fold(html.unescape(text[merged[-1][1]:start])))):
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[str] = []
    pos = 0
    for start, end in merged:
        out.append(text[pos:start])
        out.append(MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def redact(text: str, values: Iterable[str] = (), limit: int = 300) -> str:
    """`text` with every value of `values` and every PII-shaped run masked (see Masker)."""
    return Masker(values).mask(text, limit)
