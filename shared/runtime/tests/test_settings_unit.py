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
    settings = ServiceSettings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.production


def test_dependency_timeout_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().dependency_timeout_seconds == 2
    monkeypatch.setenv("DEPENDENCY_TIMEOUT_SECONDS", "0.5")
    assert ServiceSettings().dependency_timeout_seconds == 0.5
    with pytest.raises(ValidationError):
        ServiceSettings(dependency_timeout_seconds=0)
