"""HTTP models: what the API accepts and returns."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from petportal_runtime.text import Text

from ..domain.consent import Consent


class PreferencesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sms_opted_in: StrictBool
    email_opted_in: StrictBool


class PreferencesPublic(BaseModel):
    sms_opted_in: bool
    email_opted_in: bool

    @classmethod
    def of(cls, consent: Consent) -> PreferencesPublic:
        return cls(sms_opted_in=consent.sms_opted_in, email_opted_in=consent.email_opted_in)


class SmsStatusPublic(BaseModel):
    sms_opt_out_indicator: bool


class InboundSms(BaseModel):
    """The provider's form fields (Twilio style)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_number: Text = Field(alias="From", min_length=1, max_length=64)
    to_number: Text = Field(alias="To", min_length=1, max_length=64)
    body: Text = Field(alias="Body", max_length=1600)


class InboundTextPublic(BaseModel):
    id: int
    from_number: str
    body: str
    keyword: str | None
    matched_clients: int = Field(description="0: from a number on none of the clinic's contacts")
    received_at: datetime


class InboundTextsPublic(BaseModel):
    texts: list[InboundTextPublic]
