"""HTTP models: what the API accepts and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from petportal_runtime.text import Text
from petportal_schemas.envelope import ID_PATTERN

from ..domain.consent import Consent
from ..domain.delivery import Delivery


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
    email_opt_out_indicator: bool = Field(description="the client turned email notifications off")


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


class SmsStatusCallback(BaseModel):
    """Twilio's delivery-status callback fields (the others are ignored)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    message_sid: Text = Field(alias="MessageSid", min_length=2, max_length=64)
    message_status: Text = Field(alias="MessageStatus", min_length=1, max_length=30)
    error_code: Text | None = Field(default=None, alias="ErrorCode", max_length=10, pattern=r"^\d*$")


class SignInCodeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[0-9]{4,10}$")
    link: Text = Field(min_length=1, max_length=2000, pattern=r"^https?://")
    minutes: int = Field(default=10, ge=1, le=1440)


class ErasureCodeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[0-9]{4,10}$")
    minutes: int = Field(default=10, ge=1, le=1440)


class DeliveryRequest(BaseModel):
    """Another service asks notify to send something (identity: a sign-in code)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        min_length=1, max_length=150, pattern=r"^[A-Za-z0-9._:-]+$", description="idempotency key"
    )
    clinic_id: str = Field(pattern=ID_PATTERN)
    client_id: str = Field(pattern=ID_PATTERN)
    channel: Literal["email", "sms"]
    template: Literal["sign_in_code", "erasure_code"]
    params: SignInCodeParams | ErasureCodeParams

    @model_validator(mode="after")
    def _params_fit_the_template(self) -> Self:
        expected = SignInCodeParams if self.template == "sign_in_code" else ErasureCodeParams
        if not isinstance(self.params, expected):
            raise ValueError(f"{self.template} takes {', '.join(expected.model_fields)}")
        return self


class DeliveryPublic(BaseModel):
    """A delivery as staff and services see it (never its template values: a sign-in code)."""

    id: int
    client_id: str
    channel: str
    template: str
    status: str
    attempts: int
    reason: str | None
    not_before: datetime
    subject_kind: str | None
    subject_id: str | None

    @classmethod
    def of(cls, d: Delivery) -> DeliveryPublic:
        assert d.id is not None
        return cls(
            id=d.id,
            client_id=d.client_id,
            channel=d.channel,
            template=d.template.value,
            status=d.status.value,
            attempts=d.attempts,
            reason=d.reason,
            not_before=d.not_before,
            subject_kind=d.subject_kind,
            subject_id=d.subject_id,
        )


class DeliveriesPublic(BaseModel):
    deliveries: list[DeliveryPublic]
