from __future__ import annotations

import pytest

from petportal_notify.domain.keywords import KeywordAction, classify

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
        "STOP!",
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
