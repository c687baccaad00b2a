"""SMS consent keywords, per the CTIA Messaging Principles and Best Practices and the FCC's 2024
revocation rule (docs/consent.md): a keyword is the whole message, in any case, with surrounding
whitespace and punctuation ignored ("Stop!", " stop. "), and a two-word form written with a space
("opt out", "stop all") counts as the keyword. A keyword inside a longer message ("please stop by")
is an ordinary message."""

from __future__ import annotations

import string
import unicodedata
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


# Two-word spellings of a keyword (FCC: "opt out" revokes consent as "OPTOUT" does).
_SPACED = {"OPT OUT": "OPTOUT", "OPT IN": "OPTIN", "STOP ALL": "STOPALL", "UN SUBSCRIBE": "UNSUBSCRIBE"}
_EDGES = string.whitespace + string.punctuation + "\u00a1\u00bf\u2026\u201c\u201d\u2018\u2019"


def classify(body: str) -> Keyword | None:
    """The keyword the message is, or None for an ordinary message ("please stop by" is not STOP)."""
    # NFKC folds full-width and compatibility letters (full-width STOP) into plain ones.
    text = unicodedata.normalize("NFKC", body).strip(_EDGES).upper()
    word = _SPACED.get(" ".join(text.split()), text)
    action = _ACTIONS.get(word)
    return Keyword(word, action) if action is not None else None
