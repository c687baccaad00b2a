from __future__ import annotations

from pathlib import Path

from petportal_runtime.cli import run_cli

from .bootstrap import bootstrap
from .settings import MessagingSettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def main() -> int:
    return run_cli(
        service="messaging",
        app_factory="petportal_messaging.entrypoints.app:create_app",
        settings=MessagingSettings,
        runtime=lambda s: bootstrap(s if isinstance(s, MessagingSettings) else None),
        migrations_dir=MIGRATIONS,
        default_port=8083,
    )


if __name__ == "__main__":
    raise SystemExit(main())
