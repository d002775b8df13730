"""Helpers shared by the engagement services' sub-domains."""

from __future__ import annotations

from django.contrib.auth.models import User


def actor_name(user: User | None) -> str:
    """Who did it, for a write-back's detail: the user, or Portfolio itself."""
    return user.get_username() if user is not None else "Portfolio"
