from __future__ import annotations

import pytest

from petportal_schemas import SmsOptedIn, SmsOptedOut

from .conftest import NotifyUnderTest

pytestmark = pytest.mark.integration

URL = "/api/v1/notifications/preferences"


async def test_parent_changes_preferences_and_sms_changes_are_published(notify: NotifyUnderTest) -> None:
    n = notify
    me = n.parent("k1")
    assert (await n.http.get(URL, headers=me)).json() == {"sms_opted_in": True, "email_opted_in": True}

    response = await n.http.put(URL, json={"sms_opted_in": False, "email_opted_in": True}, headers=me)
    assert response.status_code == 200
    assert response.json() == {"sms_opted_in": False, "email_opted_in": True}
    assert await n.opted_out("k1")
    assert not await n.opted_out("k2")  # same phone, another client: the portal is per client

    # Same SMS value again, email changed: no SMS event.
    response = await n.http.put(URL, json={"sms_opted_in": False, "email_opted_in": False}, headers=me)
    assert response.json() == {"sms_opted_in": False, "email_opted_in": False}
    assert (await n.http.get(URL, headers=me)).json() == {"sms_opted_in": False, "email_opted_in": False}
    assert len(await n.outbox_events("SmsOptedOut")) == 1
    # Staff see both indicators on the client.
    status = (await n.http.get("/clinic/v1/clients/k1/sms-status", headers=n.staff())).json()
    assert status == {"sms_opt_out_indicator": True, "email_opt_out_indicator": True}

    await n.http.put(URL, json={"sms_opted_in": True, "email_opted_in": False}, headers=me)
    events = await n.outbox_events()
    assert [e.event_type for e in events] == ["SmsOptedOut", "SmsOptedIn"]

    [(_, out)] = await n.published("SmsOptedOut", 1)
    [(envelope, back_in)] = await n.published("SmsOptedIn", 1)
    assert isinstance(out, SmsOptedOut)
    assert isinstance(back_in, SmsOptedIn)
    assert (out.source, out.keyword) == ("portal", None)
    assert (envelope.clinic_id, envelope.client_id, back_in.source) == (n.clinic_id, "k1", "portal")


async def test_a_parent_only_touches_their_own_preferences(notify: NotifyUnderTest) -> None:
    n = notify
    await n.http.put(URL, json={"sms_opted_in": False, "email_opted_in": False}, headers=n.parent("k1"))
    assert (await n.http.get(URL, headers=n.parent("k3"))).json() == {
        "sms_opted_in": True,
        "email_opted_in": True,
    }


async def test_preferences_validation_and_auth(notify: NotifyUnderTest) -> None:
    n = notify
    me = n.parent("k1")
    for bad in ({"sms_opted_in": "no", "email_opted_in": True}, {"sms_opted_in": False}, {}):
        response = await n.http.put(URL, json=bad, headers=me)
        assert response.status_code == 422, bad
    assert (await n.http.get(URL)).status_code == 401
    assert (await n.http.get(URL, headers=n.staff())).status_code == 403
    assert await n.outbox_events() == []


async def test_sms_status_for_staff(notify: NotifyUnderTest) -> None:
    n = notify
    assert await n.opted_out("k4") is False
    response = await n.http.get("/clinic/v1/clients/nobody/sms-status", headers=n.staff())
    assert response.status_code == 404
    assert response.json()["detail"] == "no client nobody at this clinic"
    other_clinic = await n.http.get("/clinic/v1/clients/k1/sms-status", headers=n.staff("other-clinic"))
    assert other_clinic.status_code == 404
    assert (await n.http.get("/clinic/v1/clients/k1/sms-status", headers=n.parent("k1"))).status_code == 403
