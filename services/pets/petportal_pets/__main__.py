"""`python -m petportal_pets serve|migrate|replay`."""

from __future__ import annotations

from pathlib import Path

from petportal_runtime.cli import run_cli

from .bootstrap import build_runtime
from .settings import PetsSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def main() -> int:
    return run_cli(
        service="pets",
        app_factory="petportal_pets.entrypoints.app:create_app",
        settings=PetsSettings,
        runtime=build_runtime,
        migrations_dir=MIGRATIONS,
        default_port=8082,
    )


if __name__ == "__main__":
    raise SystemExit(main())
