"""Staff sign-in limits: per client address, and per email (the lockout), on the runtime's limiter."""

from __future__ import annotations

from limits.aio.storage import Storage

from petportal_runtime.ratelimit import RateLimiter


class SignInLimits:
    def __init__(
        self, storage: Storage, per_email: str, per_ip: str, *, namespace: str = "staff-sign-in"
    ) -> None:
        """`namespace` keeps the staff counts apart from the parents' (`parent-sign-in`), which count
        per identifier digest instead of per email."""
        self.storage = storage
        self.per_ip = RateLimiter(storage, per_ip, namespace=f"{namespace}-ip")
        self.per_email = RateLimiter(storage, per_email, namespace=f"{namespace}-email")

    async def hit(self, email: str, ip: str) -> int | None:
        """Counts one attempt; None when allowed, else the seconds to wait before retrying. `email`
        is counted whether or not a staff user has it, so a lock tells nothing about who exists."""
        for limiter, key in ((self.per_ip, ip), (self.per_email, email)):
            if (retry_after := await limiter.hit(key)) is not None:
                return retry_after
        return None

    async def unlock(self, email: str) -> None:
        """Forgets the email's failed attempts (a successful sign-in, an operator, a password reset)."""
        await self.per_email.clear(email)
