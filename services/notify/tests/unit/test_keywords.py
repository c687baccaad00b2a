from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from petportal_notify.domain.keywords import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    KeywordAction,
    classify,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "word", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"]
)
def test_opt_out_keywords(word: str) -> None:
    assert classify(word) is not None
    assert classify(word).action is KeywordAction.OPT_OUT  # type: ignore[union-attr]


@pytest.mark.parametrize("word", ["START", "UNSTOP", "YES", "OPTIN"])
def test_opt_in_keywords(word: str) -> None:
    assert classify(word).action is KeywordAction.OPT_IN  # type: ignore[union-attr]


@pytest.mark.parametrize("word", ["HELP", "INFO"])
def test_help_keywords(word: str) -> None:
    assert classify(word).action is KeywordAction.HELP  # type: ignore[union-attr]


@pytest.mark.parametrize("body", ["stop", " Stop\n", "\tsToP  ", "STOP"])
def test_whole_trimmed_message_in_any_case(body: str) -> None:
    keyword = classify(body)
    assert keyword is not None
    assert keyword.word == "STOP"


@pytest.mark.parametrize(
    "body",
    [
        "please stop by tomorrow",
        "stop stop",
        "S T O P",
        "",
        "   ",
        "starting",
        "yes please",
        "helpful",
    ],
)
def test_anything_else_is_an_ordinary_message(body: str) -> None:
    assert classify(body) is None


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ("Stop!", "STOP"),
        (" stop. ", "STOP"),
        ("opt out", "OPTOUT"),
        ("Opt  Out!", "OPTOUT"),
        ("stop all", "STOPALL"),
        ("\uff33\uff34\uff2f\uff30", "STOP"),
        ("¡Start!", "START"),
        ("help?", "HELP"),
    ],
)
def test_punctuation_spacing_and_wide_letters_do_not_hide_a_keyword(body: str, word: str) -> None:
    keyword = classify(body)
    assert keyword is not None
    assert keyword.word == word


KEYWORDS = sorted(OPT_OUT_KEYWORDS | OPT_IN_KEYWORDS | HELP_KEYWORDS)
PADDING = st.text(alphabet=" \t\n\r.!?,;:'\"-", max_size=6)


@given(st.sampled_from(KEYWORDS), PADDING, PADDING, st.lists(st.booleans(), min_size=12, max_size=12))
def test_any_case_and_any_padding_of_a_keyword_is_that_keyword(
    word: str, before: str, after: str, upper: list[bool]
) -> None:
    cased = "".join(c.upper() if upper[i % len(upper)] else c.lower() for i, c in enumerate(word))
    keyword = classify(before + cased + after)
    assert keyword is not None
    assert keyword.word == word


@given(
    st.sampled_from(KEYWORDS), st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=12)
)
def test_a_keyword_with_other_words_is_an_ordinary_message(word: str, other: str) -> None:
    assume(classify(other) is None)
    assert classify(f"{word} {other}") is None
    assert classify(f"{other} {word}") is None


@given(st.text(max_size=200))
def test_any_text_is_classified_without_error(body: str) -> None:
    keyword = classify(body)
    assert keyword is None or keyword.word in KEYWORDS
