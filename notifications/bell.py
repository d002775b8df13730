"""The header bell's unread count kept in the cache (Redis) for the pages that follow, so
a page shows it at once instead of asking for it with a request of its own.

The bell view counts (`selectors.bell`) and keeps the count here (`remember`); a page
shows a kept count (`known`) and otherwise lets the bell load it after the page, as
before. A user's count is forgotten when it may have changed: their own reads and
preferences (`notifications.services`), new notifications (`notifications.producer`).
`TTL` bounds how long a change that reached neither could go unseen. Redis down: nothing
is kept, every page loads the count."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.cache import cache
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

TTL = 60


def key(user_id: int) -> str:
    return f"notifications:bell:{user_id}"


def known(user_id: int) -> dict | None:
    """The user's kept count ({"unread", "over", "shown"}), or None."""
    try:
        return cache.get(key(user_id))
    except (RedisError, OSError) as exc:
        logger.warning("Bell count not read from the cache (%s)", exc)
        return None


def remember(user_id: int, value: dict) -> None:
    try:
        cache.set(key(user_id), value, timeout=TTL)
    except (RedisError, OSError) as exc:
        logger.warning("Bell count not kept in the cache (%s)", exc)


def forget(user_ids: Iterable[int]) -> None:
    """These users' counts may have changed: forgotten once the change commits (before,
    a bell counting meanwhile would keep the old count again)."""
    keys = [key(user_id) for user_id in user_ids]
    if keys:
        transaction.on_commit(lambda: _delete(keys))


def _delete(keys: list[str]) -> None:
    try:
        cache.delete_many(keys)
    except (RedisError, OSError) as exc:
        logger.warning("Bell counts not forgotten: cache unavailable (%s)", exc)
