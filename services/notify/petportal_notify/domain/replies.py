"""Reply texts for carrier keywords, rendered as the SMS provider's reply document."""

from __future__ import annotations

from xml.sax.saxutils import escape

from .keywords import KeywordAction


def reply_text(action: KeywordAction, clinic_name: str) -> str:
    if action is KeywordAction.OPT_OUT:
        return (
            f"{clinic_name}: you are unsubscribed and will receive no more text messages. "
            "Reply START to resubscribe."
        )
    if action is KeywordAction.OPT_IN:
        return (
            f"{clinic_name}: you are subscribed to text messages again. "
            "Reply STOP to unsubscribe, HELP for help. Msg & data rates may apply."
        )
    return (
        f"{clinic_name}: appointment and care reminders from your vet. "
        "Reply STOP to unsubscribe, START to resubscribe. Msg & data rates may apply."
    )


def response_document(text: str | None) -> str:
    """`<Response><Message>…</Message></Response>`, or an empty Response (no reply is sent)."""
    body = f"<Message>{escape(text)}</Message>" if text else ""
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'
