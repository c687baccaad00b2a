"""python -m petportal_gateway serve [--host --port]"""

from __future__ import annotations

from petportal_runtime.cli import run_cli

from .settings import GatewaySettings


def main() -> int:
    return run_cli(
        service="gateway",
        settings=GatewaySettings,
    )


if __name__ == "__main__":
    raise SystemExit(main())
