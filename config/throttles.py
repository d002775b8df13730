"""API rate limits (issue 13): per user, per token, and per client address for callers
not signed in. The counters live in the cache (Redis); with Redis down the API answers
rather than fail (a throttle that cannot count lets the call through, and says so in
the log)."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

if TYPE_CHECKING:
    # Not at run time: DRF's APIView reads the throttle classes (this module) while
    # rest_framework.views is being imported.
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)


class _FailOpen:
    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - redis-py and socket errors
            logger.warning("API rate limit not checked: cache unavailable (%s)", exc)
            return True


class UserOrTokenRateThrottle(_FailOpen, UserRateThrottle):
    """One budget per API token (each token its own), else per signed-in user."""

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        token = getattr(request, "auth", None)
        key = getattr(token, "pk", None)
        if key is not None and request.user.is_authenticated:
            # A digest, not the token itself: cache keys are no place for secrets.
            ident = "token-" + hashlib.sha256(str(key).encode()).hexdigest()[:24]
            return self.cache_format % {"scope": self.scope, "ident": ident}
        return super().get_cache_key(request, view)


class AnonymousRateThrottle(_FailOpen, AnonRateThrottle):
    pass
