"""Carrier (CTIA-style) SMS keywords. A keyword is the whole message, trimmed, in any case."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class KeywordAction(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES", "OPTIN"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

_ACTIONS = {
    **dict.fromkeys(OPT_OUT_KEYWORDS, KeywordAction.OPT_OUT),
    **dict.fromkeys(OPT_IN_KEYWORDS, KeywordAction.OPT_IN),
    **dict.fromkeys(HELP_KEYWORDS, KeywordAction.HELP),
}


@dataclass(frozen=True)
class Keyword:
    word: str  # upper case, as listed above
    action: KeywordAction


def classify(body: str) -> Keyword | None:
    """The keyword the message is, or None for an ordinary message ("please stop by" is not STOP)."""
    word = body.strip().upper()
    action = _ACTIONS.get(word)
    return Keyword(word, action) if action is not None else None
