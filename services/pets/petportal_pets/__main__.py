"""`python -m petportal_pets serve|migrate|replay`."""

from __future__ import annotations

from petportal_runtime.cli import run_cli

from .bootstrap import build_runtime
from .settings import PetsSettings


def main() -> int:
    return run_cli(
        service="pets",
        settings=PetsSettings,
        runtime=build_runtime,
    )


if __name__ == "__main__":
    raise SystemExit(main())
