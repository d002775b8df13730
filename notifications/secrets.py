"""Encryption at rest of the teams' webhook URLs (an incoming webhook's URL is its only
credential: whoever has it can post to the channel).

Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from SECRET_KEY; the keys of
SECRET_KEY_FALLBACKS still decrypt, so rotating SECRET_KEY the Django way keeps the
stored webhooks readable (save them again to re-encrypt under the new key).
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

SALT = b"portfolio.notifications.webhook-url"


def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(SALT + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> MultiFernet:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(s) for s in secrets])


def encrypt(value: str) -> str:
    return _keys().encrypt(value.encode()).decode()


def decrypt(token: str) -> str | None:
    """The URL, or None when no current or fallback key opens it."""
    try:
        return _keys().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def hint(url: str) -> str:
    """What may be shown of a webhook URL: its host and last four characters."""
    host = urlsplit(url).hostname or "?"
    return f"{host} …{url[-4:]}" if len(url) > 8 else host
