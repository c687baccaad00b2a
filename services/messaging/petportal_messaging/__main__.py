from __future__ import annotations

from petportal_runtime.cli import run_cli

from .bootstrap import bootstrap
from .settings import MessagingSettings


def main() -> int:
    return run_cli(
        service="messaging",
        settings=MessagingSettings,
        runtime=lambda s: bootstrap(s if isinstance(s, MessagingSettings) else None).runtime,
    )


if __name__ == "__main__":
    raise SystemExit(main())
