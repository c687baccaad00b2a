from datetime import timedelta

import pytest
from pydantic import ValidationError

from petportal_runtime.settings import ServiceSettings

pytestmark = pytest.mark.unit


def test_database_url_must_use_the_async_driver() -> None:
    with pytest.raises(ValidationError, match="postgresql\\+asyncpg"):
        ServiceSettings(database_url="postgresql://localhost/db")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("INTERNAL_API_TOKEN", "a-secret-of-its-own")
    settings = ServiceSettings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.production


def test_inbox_retention_defaults_to_outlive_outbox_replays(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().inbox_retention == timedelta(hours=168 + 24)
    monkeypatch.setenv("OUTBOX_RETENTION_HOURS", "720")
    assert ServiceSettings().inbox_retention == timedelta(hours=744)
    monkeypatch.setenv("INBOX_RETENTION_HOURS", "1000")
    assert ServiceSettings().inbox_retention == timedelta(hours=1000)


def test_inbox_retention_shorter_than_the_replay_window_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INBOX_RETENTION_HOURS", "168")
    with pytest.raises(ValidationError, match=r"at least OUTBOX_RETENTION_HOURS \+ 24 \(192\)"):
        ServiceSettings()
    with pytest.raises(ValidationError, match=r"\(26\)"):
        ServiceSettings(outbox_retention_hours=2, inbox_retention_hours=25)


def test_dependency_timeout_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().dependency_timeout_seconds == 2
    monkeypatch.setenv("DEPENDENCY_TIMEOUT_SECONDS", "0.5")
    assert ServiceSettings().dependency_timeout_seconds == 0.5
    with pytest.raises(ValidationError):
        ServiceSettings(dependency_timeout_seconds=0)
