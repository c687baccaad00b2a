from __future__ import annotations

from petportal_runtime.cli import run_cli

from .bootstrap import bootstrap
from .settings import NotifySettings


def main() -> int:
    return run_cli(
        service="notify",
        settings=NotifySettings,
        runtime=lambda s: bootstrap(s if isinstance(s, NotifySettings) else None).runtime,
    )


if __name__ == "__main__":
    raise SystemExit(main())
