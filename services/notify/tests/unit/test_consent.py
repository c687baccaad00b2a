from __future__ import annotations

import pytest

from petportal_notify.domain.consent import Consent

pytestmark = pytest.mark.unit


def test_opt_out_then_repeat_changes_once() -> None:
    consent = Consent(clinic_id="c", client_id="k")
    assert not consent.sms_opt_out_indicator
    assert consent.set_sms(False, "sms_keyword") is True
    assert consent.sms_opt_out_indicator
    assert consent.source == "sms_keyword"
    assert consent.set_sms(False, "portal") is False  # already out: nothing to publish
    assert consent.source == "sms_keyword"
    assert consent.set_sms(True, "portal") is True
    assert not consent.sms_opt_out_indicator


def test_email_consent_is_independent_of_sms() -> None:
    consent = Consent(clinic_id="c", client_id="k")
    assert consent.set_email(False, "portal") is True
    assert consent.sms_opted_in
    assert consent.set_email(False, "portal") is False
