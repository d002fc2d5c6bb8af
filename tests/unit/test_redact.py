"""The masker: submitted values and file names never readable in a partner's text."""

from __future__ import annotations

import html
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.redact import MASK, MIN_WORD, Masker, redact, words

pytestmark = pytest.mark.unit

ISSUE_VALUES = ["Jane Doe", "Type 2 diabetes, insulin dependent", "O'Brien",
                "Jane_Doe_HIV_result.pdf", "jane@example.com", "Al Wu", "José Müller"]


@pytest.mark.parametrize("text, leaked", [
    ("file Jane_Doe_HIV_result.pdf rejected: needs a signed consent form",
     ["Jane", "Doe", "result.pdf", "HIV_result"]),
    ("diagnosis 'Type 2 diabetes' is not a known code", ["Type 2", "diabetes"]),
    ("surname O&#39;Brien is invalid", ["Brien"]),
    ("surname O&#x27;Brien is invalid", ["Brien"]),
    ("name J&#97;ne D%6Fe unknown", ["J&#97;ne", "D%6Fe"]),
    ("TYPE 2 DIABETES, INSULIN DEPENDENT not allowed", ["TYPE", "DIABETES", "INSULIN"]),
    ("e-mail jane@example.com bounced", ["jane@example.com", "example"]),
    ("patient Al Wu not found", ["Al Wu"]),
    ("patient JOSE MULLER not found", ["JOSE", "MULLER"]),
    ("patient Jose\u0301 Mu\u0308ller not found", ["Jose", "ller"]),
    ("ﬁeld jane-doe conflicts", ["jane", "doe"]),
])
def test_the_echoes_in_the_issue_are_masked(text, leaked):
    masked = Masker(ISSUE_VALUES).mask(text)
    assert MASK in masked
    for word in leaked:
        assert word.casefold() not in masked.casefold(), masked


def test_the_partners_own_wording_stays_readable():
    masked = Masker(ISSUE_VALUES).mask(
        "file Jane_Doe_HIV_result.pdf rejected: needs a signed consent form")
    assert masked == f"file {MASK} rejected: needs a signed consent form"
    assert Masker(["Type 2 diabetes, insulin dependent"]).mask(
        "diagnosis 'Type 2 diabetes' is not a known code") == (
        f"diagnosis '{MASK}' is not a known code")


def test_a_value_cut_in_half_at_the_end_is_masked():
    masker = Masker(["Jane_Doe_HIV_result.pdf"])
    text = "rejected file Jane_Doe_HIV_result.pdf"
    for limit in range(len("rejected file ") + 2, len(text)):
        masked = masker.mask(text, limit)
        assert masked.endswith("…") and MASK in masked, (limit, masked)
        assert not any(c.isalpha() for c in masked.replace(MASK, "")[len("rejected file "):])
        assert "res" not in masked and "Jane" not in masked
    assert masker.mask("rejected filename res", 30) == "rejected filename res"  # not cut


def test_short_values_and_unrelated_words_are_left_alone():
    assert Masker(["No", "to"]).mask("no value to save") == "no value to save"
    masked = Masker(["Bob"]).mask("bob is unknown, bobby is not")
    assert masked == f"{MASK} is unknown, bobby is not"


def test_shapes_one_line_and_the_cut_marker():
    text = ("field email jane@example.com is invalid for Jane Doe, phone +1 (555) 010-9999,"
            " born 1980-02-01, ok")
    masked = redact(text, ["Jane Doe", "x"])
    for leaked in ("jane@example.com", "Jane Doe", "555", "1980"):
        assert leaked not in masked
    assert masked.endswith("ok") and MASK in masked
    assert redact("a\n\nb\t c") == "a b c"
    long = redact("word " * 200, limit=50)
    assert len(long) <= 50 and long.endswith("…")


# ---- the property -----------------------------------------------------------------------

LETTERS = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzéüßØ'"), min_size=1, max_size=9)
VALUE = st.lists(LETTERS, min_size=1, max_size=5).map(" ".join)
WORDING = st.lists(st.sampled_from(
    ["invalid", "value", "for", "field", "is", "not", "allowed", "the", "rejected", "got",
     ":", "'", '"', "(", ")", ",", "—", "error", "unknown"]), max_size=6).map(" ".join)


def _variants(value: str) -> st.SearchStrategy[str]:
    parts = value.split(" ")
    ngram = st.tuples(st.integers(0, len(parts) - 1), st.integers(1, len(parts))).map(
        lambda ij: " ".join(parts[ij[0]:ij[0] + ij[1]]))
    return st.tuples(ngram, st.sampled_from([str, str.upper, str.title, str.casefold]),
                     st.sampled_from(["plain", "html", "html_all", "underscores"])).map(
        lambda t: _encode(t[1](t[0]), t[2]))


def _encode(text: str, how: str) -> str:
    if how == "html":
        return html.escape(text)
    if how == "html_all":
        return "".join(f"&#{ord(c)};" if c != " " else " " for c in text)
    if how == "underscores":
        return text.replace(" ", "_")
    return text


@st.composite
def echoes(draw: st.DrawFn) -> tuple[list[str], str, int]:
    values = draw(st.lists(VALUE, min_size=1, max_size=4))
    pieces = []
    for _ in range(draw(st.integers(1, 4))):
        pieces.append(draw(WORDING))
        pieces.append(draw(_variants(draw(st.sampled_from(values)))))
    pieces.append(draw(WORDING))
    text = " ".join(pieces)
    return values, text, draw(st.integers(1, len(text) + 5))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(echoes())
def test_no_value_word_or_ngram_is_readable_after_masking(case):
    values, text, limit = case
    masked = Masker(values).mask(text, limit)
    long_words = {w for v in values for w in words(v) if len(w) >= MIN_WORD}
    pairs = {p for v in values for p in pairwise(words(v))}
    seen = words(masked.removesuffix("…"))
    for word in seen:
        assert word not in long_words, (masked, word)
    for pair in pairwise(seen):
        assert pair not in pairs, (masked, pair)
