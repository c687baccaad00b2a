import pytest

from petportal_gateway.domain.routing import Route, resolve

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/auth/dev-token", Route("identity", "none")),
        ("/api/v1/auth", Route("identity", "none")),
        ("/api/v1/account", Route("identity", "parent")),
        ("/clinic/v1/auth/token", Route("identity", "none")),
        ("/api/v1/home", Route("gateway", "parent")),
        ("/api/v1/home/", Route("gateway", "parent")),
        ("/healthz/", Route("gateway", "none")),
        ("/readyz/", Route("gateway", "none")),
        ("/api/v1/todo", Route("todo", "parent")),
        ("/api/v1/pets", Route("pets", "parent")),
        ("/api/v1/pets/p-1/weights", Route("pets", "parent")),
        ("/api/v1/pets-overview", Route("pets", "parent")),
        ("/api/v1/booking/slots", Route("sync", "parent")),
        ("/api/v1/appointments/A-1/answer", Route("sync", "parent")),
        ("/api/v1/appointments", Route("pets", "parent")),
        ("/clinic/v1/outbound", Route("sync", "staff")),
        ("/api/v1/conversation", Route("messaging", "parent")),
        ("/api/v1/conversation/read", Route("messaging", "parent")),
        ("/api/v1/conversation/messages", Route("messaging", "parent")),
        ("/api/v1/notifications/preferences", Route("notify", "parent")),
        ("/clinic/v1/clients/c-1/messages", Route("messaging", "staff")),
        ("/clinic/v1/clients/c-1/conversation", Route("messaging", "staff")),
        ("/clinic/v1/conversations", Route("messaging", "staff")),
        ("/clinic/v1/conversations/0b8d6c5e-2f4a-4c3b-8e1d-9a7f6e5d4c3b", Route("messaging", "staff")),
        ("/clinic/v1/conversations/0b8d6c5e-2f4a-4c3b-8e1d-9a7f6e5d4c3b/read", Route("messaging", "staff")),
        ("/clinic/v1/conversations/0b8d6c5e-2f4a-4c3b-8e1d-9a7f6e5d4c3b/close", Route("messaging", "staff")),
        ("/clinic/v1/clients/c-1/sms-status", Route("notify", "staff")),
        ("/pims/v1/records", Route("sync", "none")),
        ("/pims/v1/rejections", Route("sync", "none")),
        ("/webhooks/sms/inbound", Route("notify", "none")),
        ("/api/v1/forms", Route("pets", "parent")),
        ("/api/v1/forms/0b8d6c5e-2f4a-4c3b-8e1d-9a7f6e5d4c3b/submission", Route("pets", "parent")),
        ("/clinic/v1/forms/0b8d6c5e-2f4a-4c3b-8e1d-9a7f6e5d4c3b/assignments", Route("pets", "staff")),
        ("/clinic/v1/form-submissions", Route("pets", "staff")),
        ("/clinic/v1/form-submissions/0b8d6c5e-2f4a-4c3b-8e1d-9a7f6e5d4c3b/pdf", Route("pets", "staff")),
    ],
)
def test_known_paths_go_to_the_owning_service_with_the_right_token(path: str, expected: Route) -> None:
    assert resolve(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/v1",
        "/api/v1/unknown",
        "/api/v1/petsitter",  # prefixes match on segment boundaries only
        "/api/v1/accounts",
        "/api/v2/pets",
        "/clinic/v1/clients",
        "/clinic/v1/clients/c-1",
        "/clinic/v1/clients/c-1/pets",
        "/clinic/v1/conversationsx",
        "/clinic/v1/clients/c-1/sms-status/extra",
        "/pims/v2/records",
        "/webhooks/email/inbound",
        "/.well-known/jwks.json",  # identity's keys are not published through the gateway
        "/metrics",  # served on the metrics port only
        "/api/v1/home//",
        "/api/v1/formsx",
        "/clinic/v1/form-submissionsx",
    ],
)
def test_unknown_paths_have_no_route(path: str) -> None:
    assert resolve(path) is None


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/auth/../account",
        "/api/v1/auth/./dev-token",
        "/pims/v1/../../api/v1/todo",
        "/webhooks/sms/..",
    ],
)
def test_dot_segments_are_refused_so_no_normalisation_can_change_the_decision(path: str) -> None:
    assert resolve(path) is None
