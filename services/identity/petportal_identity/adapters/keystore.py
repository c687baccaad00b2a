"""Loads the signing key from SIGNING_KEY_FILE, or (outside production) a generated development key."""

from __future__ import annotations

import os
from pathlib import Path

from petportal_runtime.logging import get_logger

from ..domain.keys import KeySet, SigningKey, public_key_from_pem
from ..settings import IdentitySettings

log = get_logger(__name__)

DEV_KEY_NAME = "identity-ed25519.pem"


class SigningKeyError(RuntimeError):
    pass


def load_key_set(settings: IdentitySettings) -> KeySet:
    """The signing key and the previous keys of PREVIOUS_SIGNING_KEY_FILES (published, not used)."""
    previous = []
    for path in settings.previous_signing_key_files:
        try:
            previous.append(public_key_from_pem(path.read_bytes()))
        except (OSError, ValueError, TypeError) as exc:
            raise SigningKeyError(f"cannot load a PREVIOUS_SIGNING_KEY_FILES key: {exc}") from exc
    return KeySet(load_signing_key(settings), tuple(previous))


def load_signing_key(settings: IdentitySettings) -> SigningKey:
    if settings.signing_key_file is not None:
        try:
            return SigningKey.from_pem(settings.signing_key_file.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise SigningKeyError(f"cannot load SIGNING_KEY_FILE: {exc}") from exc
    if settings.production:
        raise SigningKeyError("SIGNING_KEY_FILE is required when ENVIRONMENT=production")
    return load_or_create_dev_key(settings.dev_key_dir / DEV_KEY_NAME)


def load_or_create_dev_key(path: Path) -> SigningKey:
    """Generated once and kept (mode 0600), so tokens survive restarts in development."""
    if path.exists():
        return SigningKey.from_pem(path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = SigningKey.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return SigningKey.from_pem(path.read_bytes())
    with os.fdopen(fd, "wb") as file:
        file.write(key.to_pem())
    log.info("generated a development signing key", kid=key.kid)
    return key
