from __future__ import annotations

from pathlib import Path

from petportal_runtime.cli import run_cli

from .bootstrap import bootstrap
from .settings import NotifySettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def main() -> int:
    return run_cli(
        service="notify",
        app_factory="petportal_notify.entrypoints.app:create_app",
        settings=NotifySettings,
        runtime=lambda s: bootstrap(s if isinstance(s, NotifySettings) else None).runtime,
        migrations_dir=MIGRATIONS,
        default_port=8086,
    )


if __name__ == "__main__":
    raise SystemExit(main())
