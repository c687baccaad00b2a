import pytest
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.storage.redis.redispy import RedispyBridge
from limits.errors import StorageError

from petportal_runtime.ratelimit import RateLimiter, storage_from_url

pytestmark = pytest.mark.unit


async def test_a_key_gets_its_amount_then_waits_for_the_window_to_end() -> None:
    limiter = RateLimiter(MemoryStorage(), "2/minute", namespace="t")
    assert await limiter.hit("1.1.1.1") is None
    assert await limiter.hit("1.1.1.1") is None
    retry_after = await limiter.hit("1.1.1.1")
    assert retry_after is not None
    assert 1 <= retry_after <= 60
    assert await limiter.hit("2.2.2.2") is None  # another key has its own count


async def test_clear_forgets_one_key_and_namespaces_are_apart() -> None:
    storage = MemoryStorage()
    emails = RateLimiter(storage, "1/minute", namespace="email")
    addresses = RateLimiter(storage, "1/minute", namespace="ip")
    assert await emails.hit("a") is None
    assert await emails.hit("b") is None
    assert await addresses.hit("a") is None  # same identifier, other namespace
    assert await emails.hit("a") is not None
    await emails.clear("a")
    assert await emails.hit("a") is None
    assert await emails.hit("b") is not None
    assert await addresses.hit("a") is not None


async def test_keys_are_stored_hashed() -> None:
    storage = MemoryStorage()
    await RateLimiter(storage, "5/minute", namespace="sign-in").hit("vet@clinic.example")
    [key] = storage.storage
    assert "vet@" not in key
    assert key.startswith("LIMITER/sign-in/")


class Unreachable(MemoryStorage):
    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        raise ValueError("storage down")


async def test_an_unreachable_storage_fails_the_hit_unless_the_limiter_fails_open() -> None:
    storage = Unreachable(wrap_exceptions=True)
    with pytest.raises(StorageError):
        await RateLimiter(storage, "1/minute", namespace="t").hit("k")
    open_limiter = RateLimiter(storage, "1/minute", namespace="t", fail_open=True)
    assert await open_limiter.hit("k") is None
    assert await open_limiter.hit("k") is None


def test_storage_urls() -> None:
    assert isinstance(storage_from_url("memory://"), MemoryStorage)
    assert isinstance(storage_from_url("async+memory://"), MemoryStorage)
    # Redis through the pinned `redis` client; nothing connects before the first hit.
    redis = storage_from_url("redis://127.0.0.1:6379/0")
    assert isinstance(redis, RedisStorage)
    assert isinstance(redis.bridge, RedispyBridge)
    with pytest.raises(ValueError, match="own database"):
        storage_from_url("postgresql")  # no engine: a service without a database
    for bad in ("redis", "nosuch://x", ""):
        with pytest.raises(ValueError, match="RATE_LIMIT_STORAGE_URL"):
            storage_from_url(bad)
